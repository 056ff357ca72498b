#include "server/admin_http.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace idem::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr char kMetrics[] = "# TYPE idem_up gauge\nidem_up 1\n";
// Every client operation gives up after this long.
constexpr auto kClientTimeout = 5s;

struct Reply {
  beast::error_code ec;
  http::response<http::string_body> res;
};

// A blocking HTTP client on its own io_context; every call is bounded by
// kClientTimeout.
class Client {
 public:
  beast::error_code Connect(uint16_t port) {
    beast::error_code result = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](const beast::error_code& ec) { result = ec; });
    RunBounded();
    return result;
  }

  beast::error_code SendRaw(const std::string& bytes) {
    beast::error_code result = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    net::async_write(stream_, net::buffer(bytes),
                     [&](const beast::error_code& ec, size_t) { result = ec; });
    RunBounded();
    return result;
  }

  Reply Request(http::verb verb, const std::string& target, bool keep_alive = true) {
    http::request<http::empty_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(keep_alive);
    Reply reply;
    reply.ec = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    http::async_write(stream_, req, [&](const beast::error_code& ec, size_t) { reply.ec = ec; });
    RunBounded();
    return reply.ec ? reply : ReadResponse(verb == http::verb::head);
  }

  Reply Post(const std::string& target, const std::string& body) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = body;
    req.prepare_payload();
    Reply reply;
    reply.ec = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    http::async_write(stream_, req, [&](const beast::error_code& ec, size_t) { reply.ec = ec; });
    RunBounded();
    return reply.ec ? reply : ReadResponse();
  }

  Reply ReadResponse(bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    Reply reply;
    reply.ec = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    http::async_read(stream_, buffer_, parser,
                     [&](const beast::error_code& ec, size_t) { reply.ec = ec; });
    RunBounded();
    if (!reply.ec) reply.res = parser.release();
    return reply;
  }

  // Reads until the server closes; returns what ended the read (eof, reset)
  // or timeout when the server kept the connection open.
  beast::error_code ReadUntilClosed() {
    beast::error_code result = net::error::timed_out;
    stream_.expires_after(kClientTimeout);
    ReadSome(&result);
    RunBounded();
    return result;
  }

 private:
  void ReadSome(beast::error_code* result) {
    stream_.async_read_some(net::buffer(scratch_),
                            [this, result](const beast::error_code& ec, size_t) {
                              if (ec) {
                                *result = ec;
                              } else {
                                ReadSome(result);
                              }
                            });
  }

  void RunBounded() {
    io_.restart();
    io_.run_for(kClientTimeout + 2s);
  }

  net::io_context io_;
  beast::tcp_stream stream_{io_};
  beast::flat_buffer buffer_;
  char scratch_[512];
};

bool IsClosed(const beast::error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset ||
         ec == http::error::end_of_stream || ec == net::error::broken_pipe;
}

class AdminHttpTest : public ::testing::Test {
 protected:
  AdminHttp::Handlers DefaultHandlers() {
    AdminHttp::Handlers handlers;
    handlers.metrics = [] { return std::string(kMetrics); };
    handlers.healthy = [this] { return healthy_.load(); };
    handlers.health_detail = [] { return std::string("draining\n"); };
    return handlers;
  }

  void StartServer(AdminHttp::Limits limits = {}) { StartServer(DefaultHandlers(), limits); }

  void StartServer(AdminHttp::Handlers handlers, AdminHttp::Limits limits = {}) {
    Status s =
        AdminHttp::Start(io_, HostPort{"127.0.0.1", 0}, std::move(handlers), limits, &server_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      StopOnIo();
      io_.stop();  // bounded: do not wait for the queue to drain
      thread_.join();
    }
    server_.reset();  // io_ is not running: allowed, and Stop() is idempotent
  }

  // Stop() must run on io's thread while io runs there.
  void StopOnIo() {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> stopped = done->get_future();
    AdminHttp* server = server_.get();
    net::post(io_, [server, done] {
      if (server != nullptr) server->Stop();
      done->set_value();
    });
    ASSERT_EQ(stopped.wait_for(kClientTimeout), std::future_status::ready);
  }

  // Runs `fn` on io's thread and waits for it.
  void OnIo(std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> ran = done->get_future();
    net::post(io_, [fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
    ASSERT_EQ(ran.wait_for(kClientTimeout), std::future_status::ready);
  }

  // A backup handler that hands its body and Respond to the test.
  AdminHttp::Handlers CapturingHandlers() {
    AdminHttp::Handlers handlers = DefaultHandlers();
    handlers.backup = [this](std::string body, AdminHttp::Respond respond) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(std::move(body));
      responds_.push_back(std::move(respond));
      cv_.notify_all();
    };
    return handlers;
  }

  // Waits until the backup handler was called `n` times; its n-th Respond.
  AdminHttp::Respond WaitForBackup(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kClientTimeout, [&] { return responds_.size() >= n; });
    return responds_.size() >= n ? responds_[n - 1] : AdminHttp::Respond();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::vector<AdminHttp::Respond> responds_;

  uint16_t port() const { return server_->port(); }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  std::atomic<bool> healthy_{true};
  std::unique_ptr<AdminHttp> server_;
  std::thread thread_;
};

TEST_F(AdminHttpTest, MetricsReturnsHandlerTextAndContentType) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::get, "/metrics");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res.body(), kMetrics);
  EXPECT_EQ(r.res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.res[http::field::server], "idemd");
}

TEST_F(AdminHttpTest, HealthFollowsTheHealthyFlag) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply ok = client.Request(http::verb::get, "/health");
  ASSERT_FALSE(ok.ec) << ok.ec.message();
  EXPECT_EQ(ok.res.result(), http::status::ok);
  EXPECT_EQ(ok.res.body(), "ok\n");
  EXPECT_EQ(ok.res[http::field::content_type].substr(0, 10), "text/plain");

  healthy_ = false;
  Reply down = client.Request(http::verb::get, "/health");
  ASSERT_FALSE(down.ec) << down.ec.message();
  EXPECT_EQ(down.res.result(), http::status::service_unavailable);
  EXPECT_EQ(down.res.body(), "draining\n");
}

TEST_F(AdminHttpTest, HeadHasContentLengthButNoBody) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::head, "/metrics");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res[http::field::content_length], std::to_string(sizeof(kMetrics) - 1));
  EXPECT_TRUE(r.res.body().empty());
  // The connection is still in step: a GET after the HEAD works.
  Reply get = client.Request(http::verb::get, "/health");
  ASSERT_FALSE(get.ec) << get.ec.message();
  EXPECT_EQ(get.res.body(), "ok\n");
}

TEST_F(AdminHttpTest, UnknownPathIs404) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::get, "/nope");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::not_found);
}

TEST_F(AdminHttpTest, OtherMethodsAre405WithAllow) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::post, "/metrics");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::method_not_allowed);
  EXPECT_EQ(r.res[http::field::allow], "GET, HEAD");
}

TEST_F(AdminHttpTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  for (int i = 0; i < 2; ++i) {
    Reply r = client.Request(http::verb::get, "/metrics");
    ASSERT_FALSE(r.ec) << "request " << i << ": " << r.ec.message();
    EXPECT_EQ(r.res.body(), kMetrics);
    EXPECT_TRUE(r.res.keep_alive());
  }
}

TEST_F(AdminHttpTest, ConnectionCloseIsHonoured) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::get, "/health", /*keep_alive=*/false);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_FALSE(r.res.keep_alive());
  EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
}

TEST_F(AdminHttpTest, ThrowingHandlerIs500) {
  AdminHttp::Handlers handlers = DefaultHandlers();
  handlers.metrics = []() -> std::string { throw std::runtime_error("registry broken"); };
  StartServer(handlers);
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Request(http::verb::get, "/metrics");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::internal_server_error);
  EXPECT_EQ(r.res.body(), "registry broken\n");
}

TEST_F(AdminHttpTest, OversizedRequestIs413OrClose) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  std::string big =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
  beast::error_code sent = client.SendRaw(big);
  if (sent) {
    EXPECT_TRUE(IsClosed(sent)) << sent.message();
    return;
  }
  Reply r = client.ReadResponse();
  if (r.ec) {
    EXPECT_TRUE(IsClosed(r.ec)) << r.ec.message();
  } else {
    EXPECT_EQ(r.res.result(), http::status::payload_too_large);
    EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
  }
}

TEST_F(AdminHttpTest, IdleSessionIsClosed) {
  AdminHttp::Limits limits;
  limits.idle_timeout = 200ms;
  StartServer(limits);
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(client.Request(http::verb::get, "/health").ec);
  EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
}

TEST_F(AdminHttpTest, ConnectionsBeyondTheLimitAreClosed) {
  AdminHttp::Limits limits;
  limits.max_sessions = 2;
  StartServer(limits);
  Client first, second, third;
  for (Client* c : {&first, &second}) {
    ASSERT_FALSE(c->Connect(port()));
    ASSERT_FALSE(c->Request(http::verb::get, "/health").ec);  // now a live session
  }
  ASSERT_FALSE(third.Connect(port()));  // the kernel accepts; the server closes it
  EXPECT_TRUE(IsClosed(third.ReadUntilClosed()));
  Reply still = first.Request(http::verb::get, "/metrics");
  ASSERT_FALSE(still.ec) << still.ec.message();
  EXPECT_EQ(still.res.body(), kMetrics);
}

TEST_F(AdminHttpTest, StopRefusesNewConnectionsAndIsIdempotent) {
  StartServer();
  uint16_t bound = port();
  StopOnIo();
  Client client;
  EXPECT_EQ(client.Connect(bound), net::error::connection_refused);
  StopOnIo();
}

TEST_F(AdminHttpTest, StopClosesOpenSessions) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(client.Request(http::verb::get, "/health").ec);
  StopOnIo();
  EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
}

TEST_F(AdminHttpTest, BackupHandlerGetsTheBodyAndItsAnswerReachesTheClient) {
  StartServer(CapturingHandlers());
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  // The answer comes later, from another thread, while the client waits.
  std::thread answer([this] {
    AdminHttp::Respond respond = WaitForBackup(1);
    ASSERT_TRUE(respond);
    std::this_thread::sleep_for(50ms);
    respond(200, "/backups/snap1\n");
    respond(500, "ignored: only the first call counts\n");
  });
  Reply r = client.Post("/backup", "snap1");
  answer.join();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::ok);
  EXPECT_EQ(r.res.body(), "/backups/snap1\n");
  EXPECT_EQ(r.res[http::field::content_type].substr(0, 10), "text/plain");
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(bodies_.size(), 1u);
    EXPECT_EQ(bodies_[0], "snap1");
  }
  // The connection is still in step (keep-alive) for the next request.
  Reply next = client.Request(http::verb::get, "/health");
  ASSERT_FALSE(next.ec) << next.ec.message();
  EXPECT_EQ(next.res.body(), "ok\n");
}

TEST_F(AdminHttpTest, BackupErrorStatusesPassThrough) {
  AdminHttp::Handlers handlers = DefaultHandlers();
  handlers.backup = [](std::string body, AdminHttp::Respond respond) {
    respond(body == "x" ? 409 : 1000, "exists\n");  // answered at once, on io's thread
  };
  StartServer(handlers);
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Post("/backup", "x");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::conflict);
  EXPECT_EQ(r.res.body(), "exists\n");
  r = client.Post("/backup", "y");  // not an HTTP status: 500
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 500u);
}

TEST_F(AdminHttpTest, OtherMethodsOnBackupAre405WithAllowPost) {
  StartServer(CapturingHandlers());
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  for (http::verb verb : {http::verb::get, http::verb::head, http::verb::put}) {
    Reply r = client.Request(verb, "/backup");
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.res.result(), http::status::method_not_allowed);
    EXPECT_EQ(r.res[http::field::allow], "POST");
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(bodies_.empty());
}

TEST_F(AdminHttpTest, BackupWithoutAHandlerIs404) {
  StartServer();
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Post("/backup", "snap1");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::not_found);
}

TEST_F(AdminHttpTest, ThrowingBackupHandlerIs500) {
  AdminHttp::Handlers handlers = DefaultHandlers();
  handlers.backup = [](std::string, AdminHttp::Respond) { throw std::runtime_error("no disk"); };
  StartServer(handlers);
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Post("/backup", "snap1");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result(), http::status::internal_server_error);
  EXPECT_EQ(r.res.body(), "no disk\n");
}

TEST_F(AdminHttpTest, DroppingTheRespondClosesTheConnection) {
  AdminHttp::Handlers handlers = DefaultHandlers();
  handlers.backup = [](std::string, AdminHttp::Respond) {};
  StartServer(handlers);
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  Reply r = client.Post("/backup", "snap1");
  EXPECT_TRUE(IsClosed(r.ec)) << r.ec.message();
}

TEST_F(AdminHttpTest, RespondAfterStopIsHarmless) {
  StartServer(CapturingHandlers());
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(
      client.SendRaw("POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nsnap1"));
  AdminHttp::Respond respond = WaitForBackup(1);
  ASSERT_TRUE(respond);
  StopOnIo();
  respond(200, "/too/late\n");  // from this thread, after Stop
  OnIo([] {});                  // the posted answer ran (and was dropped)
  EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
}

TEST_F(AdminHttpTest, RespondAfterTheServerIsDestroyedIsHarmless) {
  StartServer(CapturingHandlers());
  Client client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(client.SendRaw("POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"));
  AdminHttp::Respond respond = WaitForBackup(1);
  ASSERT_TRUE(respond);
  OnIo([this] { server_.reset(); });
  respond(200, "/too/late\n");
  OnIo([] {});
  EXPECT_TRUE(IsClosed(client.ReadUntilClosed()));
  // The last copy goes on a thread that is not io's: still harmless.
  std::thread([r = std::move(respond)]() mutable { r = nullptr; }).join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    responds_.clear();
  }
  OnIo([] {});
}

TEST_F(AdminHttpTest, StartOnABoundPortNamesTheAddress) {
  net::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  uint16_t busy = taken.local_endpoint().port();
  std::unique_ptr<AdminHttp> server;
  Status s = AdminHttp::Start(io, HostPort{"127.0.0.1", busy}, DefaultHandlers(), &server);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError());
  EXPECT_NE(s.message().find("admin listen 127.0.0.1:" + std::to_string(busy) + ": "),
            std::string::npos)
      << s.message();
  EXPECT_EQ(server, nullptr);
}

}  // namespace
}  // namespace idem::server
