// `idemctl backup DIR`: POST /backup on the daemon's admin HTTP port. The
// request body is DIR; the daemon answers 200 with the checkpoint's absolute
// path, or 4xx/5xx with a one-line error.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/format.h"
#include "protocol/async_connection.h"

namespace idem::cli {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;
using boost::system::error_code;

struct HttpExchange {
  http::request<http::string_body> request;
  http::response<http::string_body> response;
  error_code error;
  const char* stage = "connecting to";  // where `error` happened
};

// Connects, writes, reads one response; all within `timeout`.
void RunExchange(const tcp::resolver::results_type& endpoints, std::chrono::milliseconds timeout,
                 boost::asio::io_context& io, HttpExchange* x) {
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](const error_code& connected, const tcp::endpoint&) {
    if (connected) return void(x->error = connected);
    x->stage = "sending to";
    http::async_write(stream, x->request, [&](const error_code& written, size_t) {
      if (written) return void(x->error = written);
      x->stage = "reading from";
      http::async_read(stream, buffer, x->response,
                       [&](const error_code& read, size_t) { x->error = read; });
    });
  });
  io.run();
}

// POSTs `body` to http://endpoint/target; fills *x. IOError on failure to
// get any HTTP response.
Status HttpPost(const std::string& endpoint, const std::string& target, const std::string& body,
                std::chrono::milliseconds timeout, HttpExchange* x) {
  std::string host;
  uint16_t port = 0;
  IDEM_RETURN_IF_ERROR(client::ParseEndpoint(endpoint, &host, &port));
  boost::asio::io_context io;
  tcp::resolver resolver(io);
  error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Status::IOError("resolving " + endpoint + ": " + ec.message());
  x->request = {http::verb::post, target, 11};
  x->request.set(http::field::host, endpoint);
  x->request.set(http::field::user_agent, "idemctl");
  x->request.set(http::field::content_type, "text/plain");
  x->request.set(http::field::connection, "close");
  x->request.body() = body;
  x->request.prepare_payload();
  RunExchange(endpoints, timeout, io, x);
  if (x->error) {
    const std::string why = x->error == beast::error::timeout ? "timed out" : x->error.message();
    return Status::IOError(std::string(x->stage) + " " + endpoint + ": " + why);
  }
  return Status::OK();
}

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

int RunBackup(const Globals& g, const std::string& dir) {
  // Sent as given: the daemon resolves a relative DIR inside its --backup-dir.
  if (dir.empty()) return Fail(kExitUsage, "DIR is empty");
  HttpExchange x;
  if (Status s =
          HttpPost(g.admin_endpoint, "/backup", dir, std::chrono::milliseconds(g.timeout_ms), &x);
      !s.ok()) {
    return Fail(s.IsInvalidArgument() ? kExitUsage : kExitError,
                "backup: " + s.ToString() + " (is --admin-endpoint right?)");
  }
  const int code = x.response.result_int();
  const std::string text = FirstLine(x.response.body());
  if (code < 200 || code >= 300) {
    return Fail(kExitError, "backup failed: HTTP " + std::to_string(code) + ": " + text);
  }
  if (g.json()) {
    std::cout << DumpJson(Json{{"path", text}}) << "\n";
  } else {
    std::cout << Escape(text) << "\n";
  }
  return kExitOk;
}

}  // namespace idem::cli
