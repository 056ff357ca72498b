#include "server/admin_http.h"

#include <atomic>
#include <exception>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace idem::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

constexpr char kMetricsType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextType[] = "text/plain; charset=utf-8";
// After a failed accept (e.g. out of file descriptors), wait this long before
// the next one instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

std::string Describe(const HostPort& at) {
  bool v6 = at.host.find(':') != std::string::npos;
  return (v6 ? "[" + at.host + "]" : at.host) + ":" + std::to_string(at.port);
}

Status ListenError(const HostPort& at, const beast::error_code& ec) {
  return Status::IOError("admin listen " + Describe(at) + ": " + ec.message());
}

// A literal address, or the first address `at.host` resolves to.
Status Resolve(net::io_context& io, const HostPort& at, tcp::endpoint* out) {
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(at.host, ec);
  if (!ec) {
    *out = tcp::endpoint(address, at.port);
    return Status::OK();
  }
  tcp::resolver resolver(io);
  auto results = resolver.resolve(at.host, std::to_string(at.port), ec);
  if (ec) return ListenError(at, ec);
  if (results.empty()) return ListenError(at, net::error::host_not_found);
  *out = *results.begin();
  return Status::OK();
}

Status Listen(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, const HostPort& at) {
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  return ec ? ListenError(at, ec) : Status::OK();
}

// --- Mapping a request to a reply; never touches a socket. ---

struct Payload {
  http::status status;
  const char* content_type;
  std::string body;
};

Payload Metrics(const AdminHttp::Handlers& handlers) {
  std::string body = handlers.metrics ? handlers.metrics() : std::string();
  return {http::status::ok, kMetricsType, std::move(body)};
}

Payload Health(const AdminHttp::Handlers& handlers) {
  if (!handlers.healthy || handlers.healthy()) return {http::status::ok, kTextType, "ok\n"};
  std::string detail = handlers.health_detail ? handlers.health_detail() : std::string();
  if (detail.empty()) detail = "unavailable\n";
  return {http::status::service_unavailable, kTextType, std::move(detail)};
}

// Runs a user handler; an exception becomes a 500.
template <typename Fn>
Payload Guarded(Fn fn, const AdminHttp::Handlers& handlers) {
  try {
    return fn(handlers);
  } catch (const std::exception& e) {
    return {http::status::internal_server_error, kTextType, std::string(e.what()) + "\n"};
  } catch (...) {
    return {http::status::internal_server_error, kTextType, "internal error\n"};
  }
}

// A reply with the version and keep-alive of the request. For HEAD the body
// is left out but its Content-Length is kept.
Response MakeResponse(unsigned version, bool keep_alive, Payload payload, bool head) {
  Response res{payload.status, version};
  res.set(http::field::server, "idemd");
  res.set(http::field::content_type, payload.content_type);
  res.keep_alive(keep_alive);
  if (head) {
    res.content_length(payload.body.size());
  } else {
    res.body() = std::move(payload.body);
    res.prepare_payload();
  }
  return res;
}

std::string_view PathOf(beast::string_view target) {
  std::string_view path(target.data(), target.size());
  return path.substr(0, path.find('?'));
}

Response MethodNotAllowed(const Request& req, const char* allow) {
  Response res = MakeResponse(req.version(), req.keep_alive(),
                              {http::status::method_not_allowed, kTextType, "method not allowed\n"},
                              req.method() == http::verb::head);
  res.set(http::field::allow, allow);
  return res;
}

Response Route(const Request& req, const AdminHttp::Handlers& handlers) {
  std::string_view path = PathOf(req.target());
  bool head = req.method() == http::verb::head;
  auto reply = [&](Payload payload) {
    return MakeResponse(req.version(), req.keep_alive(), std::move(payload), head);
  };
  if (path != "/metrics" && path != "/health") {
    return reply({http::status::not_found, kTextType, "not found\n"});
  }
  if (req.method() != http::verb::get && !head) return MethodNotAllowed(req, "GET, HEAD");
  return reply(Guarded(path == "/metrics" ? Metrics : Health, handlers));
}

Response TooLarge() {
  return MakeResponse(11, false,
                      {http::status::payload_too_large, kTextType, "request too large\n"}, false);
}

}  // namespace

// --- The connection manager: owns the acceptor and knows every session. ---

struct AdminHttp::State : std::enable_shared_from_this<State> {
  State(net::io_context& io, Handlers handlers_in, const Limits& limits_in)
      : acceptor(io), retry_timer(io), handlers(std::move(handlers_in)), limits(limits_in) {}

  void Accept();
  void OnAccept(const beast::error_code& ec, tcp::socket socket);
  void Admit(tcp::socket socket);
  void Stop();

  tcp::acceptor acceptor;
  net::steady_timer retry_timer;
  const Handlers handlers;
  const Limits limits;
  bool stopped = false;
  // Live sessions; each removes itself when destroyed.
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
};

// --- One connection: reads a request, writes the reply, repeats. ---

class AdminHttp::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}
  ~Session() { state_->sessions.erase(this); }

  void Run() { Read(); }
  // Closes the socket; pending operations complete with operation_aborted.
  void Close() { stream_.close(); }
  // Writes the answer to an asynchronous request (io's thread), unless the
  // server stopped or the connection is gone.
  void Finish(unsigned version, bool keep_alive, int status, std::string body);

 private:
  void Read();
  void OnRead(const beast::error_code& ec, size_t bytes);
  // Hands POST /backup to its handler; the reply comes through Respond.
  void StartBackup(const Request& req);
  void Write(Response res);
  void OnWrite(const beast::error_code& ec, size_t bytes);
  void Shutdown();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;  // kept alive until its write completes
  const std::shared_ptr<State> state_;
};

// What a Respond function holds: the session waiting for its answer. The
// session is only ever released on io's thread (its destructor touches the
// State), whichever thread drops the last copy of the Respond.
class AdminHttp::Pending {
 public:
  Pending(net::any_io_executor executor, std::shared_ptr<Session> session, unsigned version,
          bool keep_alive)
      : executor_(std::move(executor)),
        session_(std::move(session)),
        version_(version),
        keep_alive_(keep_alive) {}
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  // Every caller holds a reference, so this runs after the last Respond call.
  ~Pending() {
    if (!session_) return;
    try {
      net::post(executor_, [session = std::move(session_)] {});  // closes the connection
    } catch (const std::exception&) {  // out of memory: nothing better to do
    }
  }

  void Respond(int status, std::string body) {
    if (done_.exchange(true)) return;  // from here on session_ is ours alone
    net::post(executor_, [session = std::move(session_), version = version_,
                          keep_alive = keep_alive_, status, body = std::move(body)]() mutable {
      session->Finish(version, keep_alive, status, std::move(body));
    });
  }

 private:
  const net::any_io_executor executor_;
  std::shared_ptr<Session> session_;
  const unsigned version_;
  const bool keep_alive_;
  std::atomic<bool> done_{false};
};

void AdminHttp::State::Accept() {
  acceptor.async_accept(
      [self = shared_from_this()](const beast::error_code& ec, tcp::socket socket) {
        self->OnAccept(ec, std::move(socket));
      });
}

void AdminHttp::State::OnAccept(const beast::error_code& ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopped) return;  // shutdown
  if (!ec) {
    Admit(std::move(socket));
    Accept();
    return;
  }
  retry_timer.expires_after(kAcceptRetryDelay);
  retry_timer.async_wait([self = shared_from_this()](const beast::error_code& wait_ec) {
    if (!wait_ec && !self->stopped) self->Accept();
  });
}

void AdminHttp::State::Admit(tcp::socket socket) {
  if (sessions.size() >= limits.max_sessions) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto session = std::make_shared<Session>(std::move(socket), shared_from_this());
  sessions.emplace(session.get(), session);
  session->Run();
}

void AdminHttp::State::Stop() {
  if (stopped) return;
  stopped = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  for (auto it = sessions.begin(); it != sessions.end();) {
    // Advance first: dropping `session` may destroy it, erasing its entry.
    std::shared_ptr<Session> session = (it++)->second.lock();
    if (session) session->Close();
  }
  retry_timer.cancel();  // throws only if the OS refuses; see ~AdminHttp
}

void AdminHttp::Session::Read() {
  parser_.emplace();
  parser_->header_limit(state_->limits.max_request_bytes);
  parser_->body_limit(state_->limits.max_request_bytes);
  stream_.expires_after(state_->limits.idle_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void AdminHttp::Session::OnRead(const beast::error_code& ec, size_t /*bytes*/) {
  if (ec == http::error::end_of_stream) return Shutdown();
  if (ec == http::error::header_limit || ec == http::error::body_limit) return Write(TooLarge());
  // Timeout, reset, or operation_aborted (Stop): drop the session.
  if (ec || state_->stopped) return;
  try {
    const Request& req = parser_->get();
    if (state_->handlers.backup && PathOf(req.target()) == "/backup") return StartBackup(req);
    Write(Route(req, state_->handlers));
  } catch (const std::exception&) {  // e.g. bad_alloc: drop this session only
  }
}

void AdminHttp::Session::StartBackup(const Request& req) {
  if (req.method() != http::verb::post) return Write(MethodNotAllowed(req, "POST"));
  auto pending = std::make_shared<Pending>(stream_.get_executor(), shared_from_this(),
                                           req.version(), req.keep_alive());
  AdminHttp::Respond respond = [pending](int status, std::string body) {
    pending->Respond(status, std::move(body));
  };
  try {
    state_->handlers.backup(req.body(), respond);
  } catch (const std::exception& e) {
    respond(500, std::string(e.what()) + "\n");
  } catch (...) {
    respond(500, "internal error\n");
  }
}

void AdminHttp::Session::Finish(unsigned version, bool keep_alive, int status, std::string body) {
  if (state_->stopped || !stream_.socket().is_open()) return;
  if (status < 100 || status > 599) status = 500;
  try {
    Write(MakeResponse(version, keep_alive,
                       {static_cast<http::status>(status), kTextType, std::move(body)}, false));
  } catch (const std::exception&) {  // e.g. bad_alloc: drop this session only
  }
}

void AdminHttp::Session::Write(Response res) {
  response_ = std::move(res);
  stream_.expires_after(state_->limits.idle_timeout);
  http::async_write(stream_, response_,
                    beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
}

void AdminHttp::Session::OnWrite(const beast::error_code& ec, size_t /*bytes*/) {
  if (ec) return;
  if (response_.need_eof() || state_->stopped) return Shutdown();
  Read();
}

void AdminHttp::Session::Shutdown() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // The socket closes when the last handler holding this session is gone.
}

// --- AdminHttp ---

Status AdminHttp::Start(net::io_context& io, const HostPort& at, Handlers handlers,
                        std::unique_ptr<AdminHttp>* out) {
  return Start(io, at, std::move(handlers), Limits(), out);
}

Status AdminHttp::Start(net::io_context& io, const HostPort& at, Handlers handlers,
                        const Limits& limits, std::unique_ptr<AdminHttp>* out) {
  tcp::endpoint endpoint;
  IDEM_RETURN_IF_ERROR(Resolve(io, at, &endpoint));
  auto state = std::make_shared<State>(io, std::move(handlers), limits);
  IDEM_RETURN_IF_ERROR(Listen(state->acceptor, endpoint, at));
  beast::error_code ec;
  tcp::endpoint bound = state->acceptor.local_endpoint(ec);
  if (ec) return ListenError(at, ec);
  state->Accept();
  out->reset(new AdminHttp(std::move(state), bound.port()));
  return Status::OK();
}

AdminHttp::AdminHttp(std::shared_ptr<State> state, uint16_t port)
    : state_(std::move(state)), port_(port) {}

AdminHttp::~AdminHttp() {
  try {
    Stop();
  } catch (const std::exception&) {  // a timer that cannot be cancelled; nothing left to do
  }
}

void AdminHttp::Stop() { state_->Stop(); }

}  // namespace idem::server
