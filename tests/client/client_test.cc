// The C++ client library (protocol/async_connection.h, client.h, once.h)
// against a real idemd: every sync call's outcomes as values, server errors as
// Status::Remote, authentication, connection failures and reconnection,
// per-call timeouts, pipelining out of order, Once, and the pool.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/async_connection.h"
#include "protocol/client.h"
#include "protocol/once.h"
#include "tests/testutil/daemon.h"
#include "tests/testutil/temp_dir.h"

namespace idem::client {
namespace {

namespace v1 = idem::v1;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

// A loopback port nothing listens on (bound, read, closed).
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

// A server that never answers: it listens but never accepts, so connects
// complete (the kernel's backlog) and requests are never read.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Runs `io` until `done()` or `limit` passes; false on the limit.
template <typename Pred>
bool RunUntil(boost::asio::io_context& io, Pred done, milliseconds limit = milliseconds(20000)) {
  const auto deadline = Clock::now() + limit;
  io.restart();
  while (!done()) {
    if (Clock::now() > deadline) return false;
    io.run_one_for(milliseconds(50));
    io.restart();
  }
  return true;
}

// Starts one idemd per test (own data dir, loopback ports).
class IdemdTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> Flags() { return {"--admin-listen", "off"}; }

  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartDaemon()); }

  void StartDaemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = Flags();
    flags.insert(flags.end(), extra.begin(), extra.end());
    std::string error;
    ASSERT_TRUE(daemon_.Start(dir_.Sub("data"), flags, &error)) << error;
  }

  Options Opts() const {
    Options o;
    o.endpoint = "127.0.0.1:" + std::to_string(daemon_.port());
    o.client_name = "client-test";
    return o;
  }

  testutil::TempDir dir_;
  testutil::Daemon daemon_;
};

// ---------------------------------------------------------------------------
// ClientTest: the synchronous Client.

using ClientTest = IdemdTest;

TEST_F(ClientTest, ReserveCompleteReplayLookup) {
  Client c(Opts());
  ASSERT_TRUE(c.Connect().ok());
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.hello().tenant(), "default");
  EXPECT_EQ(c.hello().role(), v1::ROLE_ADMIN);
  EXPECT_GT(c.hello().limits().max_frame_bytes(), 0u);

  auto r = c.Reserve("payments", "k1", {.fingerprint = "fp", .lease_ms = 10'000});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_GT(r->token(), 0u);
  EXPECT_EQ(r->attempt(), 1u);
  EXPECT_GT(r->lease_remaining_ms(), 9'000u);
  const uint64_t token = r->token();

  // A second Reserve is an outcome, not an error.
  auto again = c.Reserve("payments", "k1", {.fingerprint = "fp"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->outcome(), v1::RESERVE_IN_PROGRESS);
  EXPECT_EQ(again->token(), 0u);
  EXPECT_EQ(again->attempt(), 1u);

  auto lookup = c.Lookup("payments", "k1");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(lookup->fingerprint(), "fp");

  auto done = c.Complete("payments", "k1", token, 201, "created");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->outcome(), v1::COMPLETE_OK);
  EXPECT_EQ(done->result().status(), 201);
  EXPECT_EQ(done->result().body(), "created");
  // Repeating the same Complete: OK again, the first result stands.
  auto repeat = c.Complete("payments", "k1", token, 500, "other");
  ASSERT_TRUE(repeat.ok());
  EXPECT_EQ(repeat->outcome(), v1::COMPLETE_OK);
  EXPECT_EQ(repeat->result().body(), "created");

  auto replay = c.Reserve("payments", "k1", {.fingerprint = "fp"});
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->outcome(), v1::RESERVE_COMPLETED);
  EXPECT_EQ(replay->result().status(), 201);
  EXPECT_EQ(replay->result().body(), "created");

  lookup = c.Lookup("payments", "k1");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_COMPLETED);
  EXPECT_EQ(lookup->result().body(), "created");

  auto absent = c.Lookup("payments", "nope");
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent->state(), v1::KEY_ABSENT);
}

TEST_F(ClientTest, NegativeOutcomesAreValues) {
  Client c(Opts());
  // NOT_FOUND for every token operation on an absent key.
  auto complete = c.Complete("s", "absent", 7, 200, "x");
  ASSERT_TRUE(complete.ok()) << complete.status().ToString();
  EXPECT_EQ(complete->outcome(), v1::COMPLETE_NOT_FOUND);
  auto release = c.Release("s", "absent", 7);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->outcome(), v1::RELEASE_NOT_FOUND);
  auto renew = c.Renew("s", "absent", 7, 1000);
  ASSERT_TRUE(renew.ok());
  EXPECT_EQ(renew->outcome(), v1::RENEW_NOT_FOUND);

  auto r = c.Reserve("s", "k", {.fingerprint = "a"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  const uint64_t token = r->token();

  auto mismatch = c.Reserve("s", "k", {.fingerprint = "b", .wait_ms = 5000});
  ASSERT_TRUE(mismatch.ok());
  EXPECT_EQ(mismatch->outcome(), v1::RESERVE_MISMATCH);
  EXPECT_FALSE(mismatch->has_result());

  // A wrong token: LEASE_LOST everywhere.
  complete = c.Complete("s", "k", token + 1000, 200, "x");
  ASSERT_TRUE(complete.ok());
  EXPECT_EQ(complete->outcome(), v1::COMPLETE_LEASE_LOST);
  release = c.Release("s", "k", token + 1000);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->outcome(), v1::RELEASE_LEASE_LOST);
  renew = c.Renew("s", "k", token + 1000, 1000);
  ASSERT_TRUE(renew.ok());
  EXPECT_EQ(renew->outcome(), v1::RENEW_LEASE_LOST);

  // Renew with the right token extends the lease.
  renew = c.Renew("s", "k", token, 20'000);
  ASSERT_TRUE(renew.ok());
  EXPECT_EQ(renew->outcome(), v1::RENEW_OK);
  EXPECT_GT(renew->lease_remaining_ms(), 19'000u);

  // Release: LEASE_EXPIRED, the token is finished, the key reservable.
  release = c.Release("s", "k", token);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->outcome(), v1::RELEASE_OK);
  auto lookup = c.Lookup("s", "k");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_LEASE_EXPIRED);
  renew = c.Renew("s", "k", token, 1000);
  ASSERT_TRUE(renew.ok());
  EXPECT_EQ(renew->outcome(), v1::RENEW_LEASE_LOST);
  complete = c.Complete("s", "k", token, 200, "x");
  ASSERT_TRUE(complete.ok());
  EXPECT_EQ(complete->outcome(), v1::COMPLETE_LEASE_LOST);

  r = c.Reserve("s", "k", {.fingerprint = "a"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_GT(r->token(), token);
  EXPECT_EQ(r->attempt(), 2u);
  const uint64_t token2 = r->token();
  complete = c.Complete("s", "k", token2, 200, "done");
  ASSERT_TRUE(complete.ok());
  ASSERT_EQ(complete->outcome(), v1::COMPLETE_OK);

  // Completed: ALREADY_COMPLETED for everything but the winning token.
  complete = c.Complete("s", "k", token, 500, "late");
  ASSERT_TRUE(complete.ok());
  EXPECT_EQ(complete->outcome(), v1::COMPLETE_ALREADY_COMPLETED);
  EXPECT_EQ(complete->result().body(), "done");
  release = c.Release("s", "k", token2);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->outcome(), v1::RELEASE_ALREADY_COMPLETED);
  renew = c.Renew("s", "k", token2, 1000);
  ASSERT_TRUE(renew.ok());
  EXPECT_EQ(renew->outcome(), v1::RENEW_ALREADY_COMPLETED);
}

TEST_F(ClientTest, PurgeScanStatsPing) {
  Client c(Opts());
  auto ping = c.Ping("hello");
  ASSERT_TRUE(ping.ok()) << ping.status().ToString();
  EXPECT_EQ(ping->payload(), "hello");

  for (const char* k : {"a1", "a2", "a3", "b1"}) {
    auto r = c.Reserve("scan", k);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  }
  v1::Scan scan;
  scan.set_scope("scan");
  scan.set_prefix("a");
  scan.set_limit(2);
  auto page = c.Scan(scan);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->entries_size(), 2);
  EXPECT_EQ(page->entries(0).key(), "a1");
  EXPECT_EQ(page->entries(1).key(), "a2");
  ASSERT_FALSE(page->next_cursor().empty());
  scan.set_cursor(page->next_cursor());
  page = c.Scan(scan);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries_size(), 1);
  EXPECT_EQ(page->entries(0).key(), "a3");
  EXPECT_EQ(page->entries(0).state(), v1::KEY_IN_PROGRESS);

  auto purge = c.Purge("scan", "a1");
  ASSERT_TRUE(purge.ok());
  EXPECT_TRUE(purge->existed());
  purge = c.Purge("scan", "a1");
  ASSERT_TRUE(purge.ok());
  EXPECT_FALSE(purge->existed());
  auto lookup = c.Lookup("scan", "a1");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_ABSENT);

  auto stats = c.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_FALSE(stats->server_version().empty());
  EXPECT_GE(stats->connections(), 1u);

  // Call: any request; its reply comes back whole.
  v1::Request req;
  req.mutable_ping()->set_payload("raw");
  auto resp = c.Call(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->ping().payload(), "raw");
}

TEST_F(ClientTest, ServerErrorsAreRemoteStatus) {
  Client c(Opts());
  auto r = c.Reserve("s", std::string(257, 'k'));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsRemote()) << r.status().ToString();
  EXPECT_EQ(r.status().remote_code(), v1::ERROR_INVALID_ARGUMENT);
  EXPECT_NE(r.status().message().find("key"), std::string::npos) << r.status().message();

  auto l = c.Lookup(std::string(129, 's'), "k");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().remote_code(), v1::ERROR_INVALID_ARGUMENT);
  EXPECT_NE(l.status().message().find("scope"), std::string::npos) << l.status().message();

  // An empty Request: no op.
  auto empty = c.Call(v1::Request());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().remote_code(), v1::ERROR_INVALID_ARGUMENT);

  // A second Hello on the connection.
  v1::Request hello;
  hello.mutable_hello()->set_protocol_version(1);
  auto h = c.Call(hello);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().remote_code(), v1::ERROR_INVALID_ARGUMENT);

  // The connection survives request errors.
  EXPECT_TRUE(c.connected());
  EXPECT_TRUE(c.Ping().ok());
}

TEST_F(ClientTest, WaitingReserveExtendsCallTimeout) {
  Options o = Opts();
  o.call_timeout = milliseconds(300);
  Client holder(o), waiter(o);
  auto r = holder.Reserve("s", "w", {.fingerprint = "", .lease_ms = 10'000});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  ASSERT_TRUE(waiter.Connect().ok());
  std::thread completer([&] {
    std::this_thread::sleep_for(milliseconds(700));
    auto done = holder.Complete("s", "w", r->token(), 200, "waited");
    EXPECT_TRUE(done.ok());
  });
  const auto start = Clock::now();
  // The wait (2 s) exceeds call_timeout (300 ms): the timeout covers it.
  auto w = waiter.Reserve("s", "w", {.fingerprint = "", .wait_ms = 2000});
  completer.join();
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->outcome(), v1::RESERVE_COMPLETED);
  EXPECT_EQ(w->result().body(), "waited");
  EXPECT_GE(MsSince(start), 500);
}

TEST_F(ClientTest, OversizedRequestIsRefusedBeforeSending) {
  Client c(Opts());
  ASSERT_TRUE(c.Connect().ok());
  const uint32_t limit = c.hello().limits().max_frame_bytes();
  ASSERT_GT(limit, 0u);
  auto big = c.Complete("s", "k", 1, 200, std::string(limit + 1, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(big.status().IsInvalidArgument()) << big.status().ToString();
  EXPECT_NE(big.status().message().find("max_frame_bytes"), std::string::npos);
  // Not sent: the connection was not failed by the server.
  EXPECT_TRUE(c.connected());
  EXPECT_TRUE(c.Ping().ok());

  // Without Hello the limit is unknown: the server fails the connection
  // (FRAME_TOO_LARGE, then closes); the next call reconnects.
  Options o = Opts();
  o.hello = false;
  Client raw(o);
  auto too_large = raw.Complete("s", "k", 1, 200, std::string(limit + 1, 'x'));
  ASSERT_FALSE(too_large.ok());
  EXPECT_TRUE(too_large.status().IsRemote()) << too_large.status().ToString();
  EXPECT_EQ(too_large.status().remote_code(), v1::ERROR_FRAME_TOO_LARGE);
  auto ping = raw.Ping("again");
  ASSERT_TRUE(ping.ok()) << ping.status().ToString();
  EXPECT_EQ(ping->payload(), "again");
}

TEST_F(ClientTest, ConnectionRefusedNamesTheEndpoint) {
  Options o;
  const uint16_t port = FreePort();
  o.endpoint = "127.0.0.1:" + std::to_string(port);
  Client c(o);
  Status st = c.Connect();
  ASSERT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find(o.endpoint), std::string::npos) << st.message();
  EXPECT_FALSE(c.connected());
  auto ping = c.Ping();
  ASSERT_FALSE(ping.ok());
  EXPECT_TRUE(ping.status().IsIOError());
  EXPECT_NE(ping.status().message().find(o.endpoint), std::string::npos);

  o.endpoint = "no-port";
  Client bad(o);
  EXPECT_TRUE(bad.Connect().IsInvalidArgument());
}

TEST_F(ClientTest, CallTimeoutAgainstASilentServer) {
  SilentServer silent;
  Options o;
  o.endpoint = silent.endpoint();
  o.hello = false;
  o.call_timeout = milliseconds(200);
  Client c(o);
  const auto start = Clock::now();
  auto r = c.Reserve("s", "k", {.fingerprint = "", .wait_ms = 0});
  const auto took = MsSince(start);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_GE(took, 180);
  EXPECT_LT(took, 2000);
  // The connection stays; the next call times out the same way.
  EXPECT_TRUE(c.connected());
  auto p = c.Ping();
  EXPECT_TRUE(p.status().IsUnavailable()) << p.status().ToString();
}

TEST_F(ClientTest, ConnectTimeoutCoversTheHello) {
  SilentServer silent;
  Options o;
  o.endpoint = silent.endpoint();
  o.connect_timeout = milliseconds(300);
  o.call_timeout = milliseconds(0);  // calls wait forever; connecting must not
  Client c(o);
  const auto start = Clock::now();
  Status st = c.Connect();
  const auto took = MsSince(start);
  ASSERT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find(o.endpoint), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("Hello"), std::string::npos) << st.message();
  EXPECT_GE(took, 250);
  EXPECT_LT(took, 3000);
  EXPECT_FALSE(c.connected());
}

// The daemon on a port of the test's choosing, so it can come back on it.
class ClientRestartTest : public IdemdTest {
 protected:
  std::vector<std::string> Flags() override {
    return {"--admin-listen", "off", "--listen", "127.0.0.1:" + std::to_string(port_)};
  }
  void SetUp() override {
    port_ = FreePort();
    IdemdTest::SetUp();
    ASSERT_EQ(daemon_.port(), port_);
  }
  uint16_t port_ = 0;
};

TEST_F(ClientRestartTest, KilledServerFailsTheCallWhichIsNotResentAfterReconnect) {
  Client holder(Opts()), waiter(Opts()), idle(Opts());
  auto r = holder.Reserve("s", "k", {.fingerprint = "", .lease_ms = 1500});
  const auto reserved_at = Clock::now();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  ASSERT_TRUE(idle.Ping().ok());
  ASSERT_TRUE(waiter.Connect().ok());

  // In flight when the server dies: a Reserve waiting for the holder.
  StatusOr<v1::ReserveReply> waited = Status::Internal("not run");
  std::thread t([&] { waited = waiter.Reserve("s", "k", {.fingerprint = "", .wait_ms = 10'000}); });
  std::this_thread::sleep_for(milliseconds(300));
  daemon_.Kill();
  t.join();
  ASSERT_FALSE(waited.ok());
  EXPECT_TRUE(waited.status().IsIOError()) << waited.status().ToString();
  EXPECT_LT(MsSince(reserved_at), 1400);  // failed at once, not at the wait's end

  // While it is down: calls fail with IOError naming the endpoint.
  auto down = idle.Ping();
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(down.status().IsIOError());
  EXPECT_NE(down.status().message().find(Opts().endpoint), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  ASSERT_EQ(daemon_.port(), port_);
  // Past the holder's lease: had the waiting Reserve been re-sent, it would
  // have taken the key over (attempt 2).
  std::this_thread::sleep_for(milliseconds(1700) - (Clock::now() - reserved_at));
  auto lookup = waiter.Lookup("s", "k");
  ASSERT_TRUE(lookup.ok()) << lookup.status().ToString();
  EXPECT_EQ(lookup->state(), v1::KEY_LEASE_EXPIRED);
  EXPECT_EQ(lookup->attempt(), 1u);
  // The same Clients reconnect on their next call.
  EXPECT_TRUE(idle.Ping().ok());
  auto done = holder.Complete("s", "k", r->token(), 200, "after restart");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->outcome(), v1::COMPLETE_OK);
}

TEST_F(ClientRestartTest, IdleClientReconnectsAfterARestartWithoutFailingACall) {
  Client c(Opts());
  ASSERT_TRUE(c.Ping().ok());
  auto r = c.Reserve("s", "idle", {.fingerprint = "", .lease_ms = 60'000});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  daemon_.Kill();
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  // The old connection's close is noticed before sending: this call goes out
  // on a new connection instead of failing on the dead one.
  auto lookup = c.Lookup("s", "idle");
  ASSERT_TRUE(lookup.ok()) << lookup.status().ToString();
  EXPECT_EQ(lookup->state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(lookup->attempt(), 1u);
}

// The daemon with --auth-file.
class ClientAuthTest : public IdemdTest {
 protected:
  std::vector<std::string> Flags() override {
    const std::string path = dir_.Sub("auth.toml");
    std::ofstream out(path);
    // printf %s TOKEN | sha256sum
    out << "[[tokens]]\n"
           "token_sha256 = \"b314df1b95626efd95e84d29496ea73941632e7ec7de96f61ea6f221120d2958\"\n"
           "tenant = \"acme\"\nrole = \"write\"\n\n"  // write-token-1
           "[[tokens]]\n"
           "token_sha256 = \"3fdda857fb17b8429826c42d7ab77eaf4417f5ad7a8f4d50f18bb87ecd38c2fd\"\n"
           "tenant = \"acme\"\nrole = \"read\"\n\n"  // read-token-1
           "[[tokens]]\n"
           "token_sha256 = \"01a9119ca65b23539bbc977f36d9318334c72052593c35edb34cf3b162ec7136\"\n"
           "tenant = \"other\"\nrole = \"admin\"\n";  // admin-token-1
    out.close();
    return {"--admin-listen", "off", "--auth-file", path};
  }
  Options WithToken(const std::string& token) const {
    Options o = Opts();
    o.token = token;
    return o;
  }
};

TEST_F(ClientAuthTest, WrongTokenIsUnauthenticated) {
  Client c(WithToken("not-a-token"));
  Status st = c.Connect();
  ASSERT_TRUE(st.IsRemote()) << st.ToString();
  EXPECT_EQ(st.remote_code(), v1::ERROR_UNAUTHENTICATED);
  EXPECT_FALSE(c.connected());
  // Each call tries again (and fails the same way); nothing is sent unauthenticated.
  auto r = c.Reserve("s", "k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().remote_code(), v1::ERROR_UNAUTHENTICATED);

  Client none(Opts());
  st = none.Connect();
  EXPECT_EQ(st.remote_code(), v1::ERROR_UNAUTHENTICATED) << st.ToString();
}

TEST_F(ClientAuthTest, RolesAndTenantsFromHello) {
  Client reader(WithToken("read-token-1"));
  ASSERT_TRUE(reader.Connect().ok());
  EXPECT_EQ(reader.hello().tenant(), "acme");
  EXPECT_EQ(reader.hello().role(), v1::ROLE_READ);
  auto denied = reader.Reserve("s", "k");
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(denied.status().IsRemote());
  EXPECT_EQ(denied.status().remote_code(), v1::ERROR_PERMISSION_DENIED);
  auto lookup = reader.Lookup("s", "k");
  ASSERT_TRUE(lookup.ok()) << lookup.status().ToString();
  EXPECT_EQ(lookup->state(), v1::KEY_ABSENT);

  Client writer(WithToken("write-token-1"));
  auto r = writer.Reserve("s", "k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_EQ(writer.hello().role(), v1::ROLE_WRITE);
  auto purge = writer.Purge("s", "k");
  ASSERT_FALSE(purge.ok());
  EXPECT_EQ(purge.status().remote_code(), v1::ERROR_PERMISSION_DENIED);
  lookup = reader.Lookup("s", "k");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_IN_PROGRESS);

  // Another tenant does not see acme's key.
  Client other(WithToken("admin-token-1"));
  lookup = other.Lookup("s", "k");
  ASSERT_TRUE(lookup.ok()) << lookup.status().ToString();
  EXPECT_EQ(other.hello().tenant(), "other");
  EXPECT_EQ(other.hello().role(), v1::ROLE_ADMIN);
  EXPECT_EQ(lookup->state(), v1::KEY_ABSENT);
}

TEST_F(ClientAuthTest, AsyncHelloFailureClosesTheConnection) {
  boost::asio::io_context io;
  auto conn = AsyncConnection::Create(io, WithToken("wrong"));
  std::optional<Status> connected;
  conn->Connect([&](const Status& st) { connected = st; });
  ASSERT_TRUE(RunUntil(io, [&] { return connected.has_value(); }));
  EXPECT_EQ(connected->remote_code(), v1::ERROR_UNAUTHENTICATED) << connected->ToString();
  EXPECT_FALSE(conn->connected());
  std::optional<Status> called;
  conn->Call(testutil::PingReq(0), [&](const Status& st, v1::Response*) { called = st; });
  ASSERT_TRUE(RunUntil(io, [&] { return called.has_value(); }));
  EXPECT_TRUE(called->IsIOError()) << called->ToString();
}

// ---------------------------------------------------------------------------
// AsyncConnectionTest: pipelining on one connection.

class AsyncConnectionTest : public IdemdTest {
 protected:
  std::shared_ptr<AsyncConnection> Connected(boost::asio::io_context& io, Options o) {
    auto conn = AsyncConnection::Create(io, std::move(o));
    std::optional<Status> st;
    conn->Connect([&](const Status& s) { st = s; });
    EXPECT_TRUE(RunUntil(io, [&] { return st.has_value(); }));
    EXPECT_TRUE(st.has_value() && st->ok()) << (st ? st->ToString() : "no answer");
    return conn;
  }
};

TEST_F(AsyncConnectionTest, FiveThousandPipelinedRequestsMatchedById) {
  boost::asio::io_context io;
  auto conn = Connected(io, Opts());
  ASSERT_TRUE(conn->connected());
  EXPECT_EQ(conn->hello().tenant(), "default");
  constexpr int kRequests = 5000;
  int answered = 0, mismatched = 0, failed = 0;
  for (int i = 0; i < kRequests; ++i) {
    v1::Request req;
    v1::Response::ReplyCase expect;
    const std::string key = "p" + std::to_string(i);
    switch (i % 4) {
      case 0:
        req.mutable_ping()->set_payload(key);
        expect = v1::Response::kPing;
        break;
      case 1:
        req.mutable_reserve()->set_scope("pipe");
        req.mutable_reserve()->set_key(key);
        expect = v1::Response::kReserve;
        break;
      case 2:
        req.mutable_lookup()->set_scope("pipe");
        req.mutable_lookup()->set_key(key);
        expect = v1::Response::kLookup;
        break;
      default:
        req.mutable_stats();
        expect = v1::Response::kStats;
        break;
    }
    conn->Call(std::move(req), [&, expect, key](const Status& st, v1::Response* resp) {
      ++answered;
      if (!st.ok() || resp->has_error()) {
        ++failed;
        return;
      }
      bool ok = resp->reply_case() == expect;
      if (ok && expect == v1::Response::kPing) ok = resp->ping().payload() == key;
      if (ok && expect == v1::Response::kReserve) {
        ok = resp->reserve().outcome() == v1::RESERVE_ACQUIRED;
      }
      if (ok && expect == v1::Response::kLookup) {
        ok = resp->lookup().state() == v1::KEY_ABSENT;  // p(i) for i%4==2: never reserved
      }
      if (!ok) ++mismatched;
    });
  }
  // All issued before any is answered: one connection, 5000 in flight.
  EXPECT_EQ(conn->inflight(), static_cast<size_t>(kRequests));
  ASSERT_TRUE(RunUntil(
      io, [&] { return answered == kRequests; }, milliseconds(30000)));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(conn->inflight(), 0u);
  EXPECT_TRUE(conn->connected());
}

TEST_F(AsyncConnectionTest, AnswersComeOutOfOrder) {
  Client holder(Opts());
  auto held = holder.Reserve("s", "held", {.fingerprint = "", .lease_ms = 800});
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->outcome(), v1::RESERVE_ACQUIRED);

  boost::asio::io_context io;
  auto conn = Connected(io, Opts());
  std::vector<std::string> order;
  v1::ReserveOutcome outcome = v1::RESERVE_UNSPECIFIED;
  v1::Request wait = testutil::ReserveReq(0, "s", "held", "", 0, 3000);
  conn->Call(wait, [&](const Status& st, v1::Response* resp) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    outcome = resp->reserve().outcome();
    order.push_back("reserve");
  });
  conn->Call(testutil::PingReq(0, "after"), [&](const Status& st, v1::Response* resp) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(resp->ping().payload(), "after");
    order.push_back("ping");
  });
  ASSERT_TRUE(RunUntil(
      io, [&] { return order.size() == 2; }, milliseconds(5000)));
  EXPECT_EQ(order, (std::vector<std::string>{"ping", "reserve"}));
  // The holder's lease ran out (800 ms): the waiter took the key over.
  EXPECT_EQ(outcome, v1::RESERVE_ACQUIRED);
}

TEST_F(AsyncConnectionTest, CallbacksNeverRunInsideCallOrConnect) {
  boost::asio::io_context io;
  Options o;
  o.endpoint = "127.0.0.1:" + std::to_string(FreePort());
  auto refused = AsyncConnection::Create(io, o);
  bool connect_ran = false;
  Status connect_status;
  refused->Connect([&](const Status& st) {
    connect_ran = true;
    connect_status = st;
  });
  EXPECT_FALSE(connect_ran);
  bool call_ran = false;
  Status call_status;
  refused->Call(testutil::PingReq(0), [&](const Status& st, v1::Response* resp) {
    call_ran = true;
    call_status = st;
    EXPECT_EQ(resp, nullptr);
  });
  EXPECT_FALSE(call_ran);  // not connected: failed, but from io
  ASSERT_TRUE(RunUntil(io, [&] { return connect_ran && call_ran; }));
  EXPECT_TRUE(connect_status.IsIOError());
  EXPECT_NE(connect_status.message().find(o.endpoint), std::string::npos);
  EXPECT_TRUE(call_status.IsIOError());

  // A bad endpoint fails from io too; Connect is once per object.
  o.endpoint = "bad";
  auto bad = AsyncConnection::Create(io, o);
  bool bad_ran = false;
  bad->Connect([&](const Status& st) {
    bad_ran = true;
    EXPECT_TRUE(st.IsInvalidArgument());
  });
  EXPECT_FALSE(bad_ran);
  ASSERT_TRUE(RunUntil(io, [&] { return bad_ran; }));
  bool twice_ran = false;
  bad->Connect([&](const Status& st) {
    twice_ran = true;
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  });
  ASSERT_TRUE(RunUntil(io, [&] { return twice_ran; }));
}

TEST_F(AsyncConnectionTest, CallbacksMayIssueCallsAndClose) {
  boost::asio::io_context io;
  auto conn = Connected(io, Opts());
  // A chain: each answer issues the next request from inside its callback.
  int chained = 0;
  std::function<void()> next = [&] {
    conn->Call(testutil::PingReq(0, std::to_string(chained)),
               [&](const Status& st, v1::Response* resp) {
                 ASSERT_TRUE(st.ok());
                 EXPECT_EQ(resp->ping().payload(), std::to_string(chained));
                 if (++chained < 300) next();
               });
  };
  next();
  ASSERT_TRUE(RunUntil(io, [&] { return chained == 300; }));

  // The first answer of a batch closes the connection from its callback: the
  // others fail once each with IOError, and their callbacks (which issue new
  // calls, and Close again) run after the first has returned.
  Client holder(Opts());
  ASSERT_TRUE(holder.Reserve("s", "hold", {.fingerprint = "", .lease_ms = 30'000}).ok());
  int ok = 0, failed = 0, retried = 0;
  bool in_callback = false;
  conn->Call(testutil::PingReq(0), [&](const Status& st, v1::Response*) {
    ASSERT_TRUE(st.ok());
    ++ok;
    in_callback = true;
    conn->Close();
    in_callback = false;
  });
  for (int i = 0; i < 20; ++i) {
    // Waiting reserves: answered only after the Ping.
    conn->Call(testutil::ReserveReq(0, "s", "hold", "", 0, 5000),
               [&](const Status& st, v1::Response* resp) {
                 EXPECT_TRUE(in_callback);  // Close runs them before it returns
                 EXPECT_TRUE(st.IsIOError()) << st.ToString();
                 EXPECT_EQ(resp, nullptr);
                 ++failed;
                 conn->Close();
                 conn->Call(testutil::PingReq(0), [&](const Status& st2, v1::Response*) {
                   EXPECT_FALSE(in_callback);
                   EXPECT_TRUE(st2.IsIOError());
                   ++retried;
                 });
               });
  }
  ASSERT_TRUE(RunUntil(io, [&] { return retried == 20; }));
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(failed, 20);
  EXPECT_FALSE(conn->connected());
  EXPECT_EQ(conn->inflight(), 0u);
}

TEST_F(AsyncConnectionTest, TimeoutCallbacksMayIssueCallsAndClose) {
  SilentServer silent;
  Options o;
  o.endpoint = silent.endpoint();
  o.hello = false;
  boost::asio::io_context io;
  auto conn = Connected(io, o);
  constexpr int kFirst = 300;
  std::vector<int> runs(2 * kFirst, 0);
  int unavailable = 0, io_errors = 0, second = 0;
  for (int i = 0; i < kFirst; ++i) {
    conn->Call(
        testutil::PingReq(0),
        [&, i](const Status& st, v1::Response*) {
          ++runs[i];
          // Timed out, or failed by the Close if a slow run spread the
          // first generation's deadlines over several sweeps.
          EXPECT_TRUE(st.IsUnavailable() || st.IsIOError()) << st.ToString();
          if (st.IsUnavailable()) ++unavailable;
          // Grows pending_ while the sweep is under way.
          conn->Call(
              testutil::PingReq(0),
              [&, j = kFirst + i](const Status& st2, v1::Response*) {
                ++runs[j];
                ++second;
                if (st2.IsIOError()) ++io_errors;
                if (second == 1) conn->Close();  // empties it
              },
              // Half are still pending when the Close comes.
              milliseconds(i % 2 == 0 ? 30 : 10'000));
        },
        milliseconds(30));
  }
  ASSERT_TRUE(RunUntil(
      io, [&] { return second == kFirst; }, milliseconds(10000)));
  for (int i = 0; i < 2 * kFirst; ++i) EXPECT_EQ(runs[i], 1) << "callback " << i;
  EXPECT_GT(unavailable, 0);
  EXPECT_GT(io_errors, 0);  // the ones the Close failed
  EXPECT_EQ(conn->inflight(), 0u);
}

TEST_F(AsyncConnectionTest, ServerDeathFailsEveryPendingCallOnce) {
  Client holder(Opts());
  ASSERT_TRUE(holder.Reserve("s", "hold", {.fingerprint = "", .lease_ms = 30'000}).ok());
  boost::asio::io_context io;
  auto conn = Connected(io, Opts());
  int failed = 0;
  for (int i = 0; i < 50; ++i) {
    conn->Call(testutil::ReserveReq(0, "s", "hold", "", 0, 10'000),
               [&](const Status& st, v1::Response*) {
                 EXPECT_TRUE(st.IsIOError()) << st.ToString();
                 ++failed;
               });
  }
  RunUntil(
      io, [] { return false; }, milliseconds(200));  // sent, waiting
  EXPECT_EQ(conn->inflight(), 50u);
  daemon_.Kill();
  ASSERT_TRUE(RunUntil(
      io, [&] { return failed == 50; }, milliseconds(5000)));
  EXPECT_FALSE(conn->connected());
}

// ---------------------------------------------------------------------------
// OnceTest.

using OnceTest = IdemdTest;

TEST_F(OnceTest, FiftyConcurrentCallersRunFnExactlyOnce) {
  constexpr int kCallers = 50;
  std::atomic<int> runs{0};
  std::atomic<int> ready{0};
  std::vector<StatusOr<OnceResult>> results(kCallers, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      Client c(Opts());
      ASSERT_TRUE(c.Connect().ok());
      ++ready;
      while (ready.load() < kCallers) std::this_thread::sleep_for(milliseconds(1));
      results[i] = Once(c, "once", "the-key", {.fingerprint = "fp"}, [&]() -> StatusOr<OnceValue> {
        std::this_thread::sleep_for(milliseconds(200));
        ++runs;
        return OnceValue{201, "body-" + std::to_string(i)};
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  int ran = 0;
  std::string body;
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    if (results[i]->ran) ++ran;
    if (i == 0) body = results[i]->value.body;
    EXPECT_EQ(results[i]->value.status, 201);
    EXPECT_EQ(results[i]->value.body, body);
  }
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(body.rfind("body-", 0), 0u);
}

TEST_F(OnceTest, RetriableFailureReleasesAndALaterCallerRunsAgain) {
  Client c(Opts());
  int runs = 0;
  auto failing = Once(c, "once", "retry", {}, [&]() -> StatusOr<OnceValue> {
    ++runs;
    return Status::Unavailable("gateway down");
  });
  ASSERT_FALSE(failing.ok());
  EXPECT_TRUE(failing.status().IsUnavailable());
  EXPECT_EQ(failing.status().message(), "gateway down");
  auto lookup = c.Lookup("once", "retry");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_LEASE_EXPIRED);

  auto second = Once(c, "once", "retry", {}, [&]() -> StatusOr<OnceValue> {
    ++runs;
    return OnceValue{200, "second"};
  });
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->ran);
  EXPECT_EQ(second->value.body, "second");
  EXPECT_EQ(runs, 2);
  lookup = c.Lookup("once", "retry");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_COMPLETED);
  EXPECT_EQ(lookup->attempt(), 2u);

  // A duplicate now replays without running fn.
  auto third = Once(c, "once", "retry", {}, [&]() -> StatusOr<OnceValue> {
    ++runs;
    return OnceValue{500, "third"};
  });
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->ran);
  EXPECT_EQ(third->value.status, 200);
  EXPECT_EQ(third->value.body, "second");
  EXPECT_EQ(runs, 2);
}

TEST_F(OnceTest, LeaseIsRenewedWhileFnRuns) {
  Client c(Opts()), other(Opts());
  std::atomic<bool> fn_running{false};
  std::atomic<bool> fn_done{false};
  std::thread runner([&] {
    auto r =
        Once(c, "once", "long", {.fingerprint = "", .lease_ms = 600}, [&]() -> StatusOr<OnceValue> {
          fn_running = true;
          std::this_thread::sleep_for(milliseconds(2000));
          return OnceValue{200, "long"};
        });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->ran);
    fn_done = true;
  });
  while (!fn_running) std::this_thread::sleep_for(milliseconds(5));
  int probes = 0;
  while (!fn_done) {
    auto r = other.Reserve("once", "long");
    ASSERT_TRUE(r.ok());
    if (r->outcome() == v1::RESERVE_COMPLETED) break;  // fn finished meanwhile
    EXPECT_EQ(r->outcome(), v1::RESERVE_IN_PROGRESS) << "probe " << probes;
    if (r->outcome() == v1::RESERVE_ACQUIRED) break;
    ++probes;
    std::this_thread::sleep_for(milliseconds(100));
  }
  runner.join();
  EXPECT_GE(probes, 10);  // probed across three lease lengths
  auto lookup = other.Lookup("once", "long");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->state(), v1::KEY_COMPLETED);
  EXPECT_EQ(lookup->attempt(), 1u);
}

TEST_F(OnceTest, FingerprintMismatchIsInvalidArgument) {
  Client c(Opts());
  auto first = Once(c, "once", "fp", {.fingerprint = "A"}, []() -> StatusOr<OnceValue> {
    return OnceValue{200, "a"};
  });
  ASSERT_TRUE(first.ok());
  bool ran = false;
  auto second = Once(c, "once", "fp", {.fingerprint = "B"}, [&]() -> StatusOr<OnceValue> {
    ran = true;
    return OnceValue{200, "b"};
  });
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsInvalidArgument()) << second.status().ToString();
  EXPECT_FALSE(ran);
}

TEST_F(OnceTest, StillInProgressAfterWaitIsUnavailable) {
  Client holder(Opts()), c(Opts());
  auto held = holder.Reserve("once", "busy", {.fingerprint = "", .lease_ms = 30'000});
  ASSERT_TRUE(held.ok());
  bool ran = false;
  const auto start = Clock::now();
  auto r =
      Once(c, "once", "busy", {.fingerprint = "", .wait_ms = 300}, [&]() -> StatusOr<OnceValue> {
        ran = true;
        return OnceValue{};
      });
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_GE(MsSince(start), 250);
  EXPECT_FALSE(ran);
}

TEST_F(OnceTest, ServerErrorsComeBackAsIs) {
  Client c(Opts());
  bool ran = false;
  auto r = Once(c, "once", std::string(300, 'k'), {}, [&]() -> StatusOr<OnceValue> {
    ran = true;
    return OnceValue{};
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().remote_code(), v1::ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(ran);
}

// ---------------------------------------------------------------------------
// ClientPoolTest.

using ClientPoolTest = IdemdTest;

TEST_F(ClientPoolTest, EightThreadsShareThreeConnections) {
  ClientPool pool(Opts(), 3);
  Client observer(Opts());
  ASSERT_TRUE(observer.Connect().ok());
  std::atomic<int> ok{0}, failed{0};
  std::atomic<bool> stop{false};
  uint32_t max_connections = 0;
  std::thread watcher([&] {
    while (!stop) {
      auto s = observer.Stats();
      if (s.ok()) max_connections = std::max(max_connections, s->connections());
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto lease = pool.Acquire();
        const std::string key = std::to_string(t) + "-" + std::to_string(i);
        bool good;
        if (i % 2 == 0) {
          auto r = lease->Reserve("pool", key);
          good = r.ok() && r->outcome() == v1::RESERVE_ACQUIRED;
        } else {
          auto p = lease->Ping(key);
          good = p.ok() && p->payload() == key;
        }
        ++(good ? ok : failed);
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  watcher.join();
  EXPECT_EQ(ok.load(), 1600);
  EXPECT_EQ(failed.load(), 0);
  auto s = observer.Stats();
  ASSERT_TRUE(s.ok());
  EXPECT_LE(s->connections(), 4u);  // 3 pooled + the observer
  EXPECT_LE(max_connections, 4u);
  EXPECT_GE(max_connections, 2u);
}

TEST_F(ClientPoolTest, AcquireBlocksWhileAllAreLeased) {
  ClientPool pool(Opts(), 1);
  auto first = std::make_unique<ClientPool::Lease>(pool.Acquire());
  ASSERT_TRUE((*first)->Ping().ok());
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto second = pool.Acquire();
    got = true;
    EXPECT_TRUE(second->Ping().ok());
  });
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(got.load());
  first.reset();
  t.join();
  EXPECT_TRUE(got.load());
}

}  // namespace
}  // namespace idem::client
