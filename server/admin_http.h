// The admin HTTP port of idemd (--admin-listen, PROTOCOL.md section 6):
// GET /metrics (Prometheus text format 0.0.4) and GET /health, for scrapers
// and probes, and POST /backup (an online checkpoint) for operators. An ops
// port, so it stays cheap and bounded: HTTP/1.1 keep-alive, small requests
// only, few sessions, idle sessions closed. No authentication of its own
// (PROTOCOL.md section 4: it is loopback unless --allow-insecure).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "server/config.h"
#include "util/status.h"

namespace idem::server {

// Serves the admin port on an io_context.
//
// Thread-safety: requires that one thread runs `io` (as idemd does). Handlers
// run on that thread. port() is safe from any thread. Stop() and the
// destructor must be called on io's thread (e.g. from a signal_set handler),
// or while no thread runs io (before run(), or after it returned).
//
// `io` must outlive the AdminHttp and the handlers of any operation still
// queued on io; sessions never touch the AdminHttp itself, so destroying it
// while completions are still queued is safe.
class AdminHttp {
 public:
  // Completes an asynchronous request: `status` (an HTTP status code; one
  // outside 100..599 becomes 500) and the whole response body. May be called,
  // copied and destroyed on any thread while the io_context exists; the reply
  // is written on io's thread. Only the first call counts. A call after the
  // client left, after Stop() or after the AdminHttp was destroyed does
  // nothing. Dropping every copy uncalled closes the connection.
  using Respond = std::function<void(int status, std::string body)>;

  struct Handlers {
    // Body of GET /metrics. Empty function: an empty body.
    std::function<std::string()> metrics;
    // GET /health: 200 "ok\n" if true, else 503. Empty function: healthy.
    std::function<bool()> healthy;
    // The 503 body, e.g. "draining\n" or "storage failed\n". Empty function
    // or empty result: "unavailable\n".
    std::function<std::string()> health_detail;
    // POST /backup, asynchronous: called on io's thread with the request body;
    // the session reads no further request until `respond` is called (from
    // any thread). Another method on /backup: 405 with "Allow: POST". Empty
    // function: /backup is 404 like any unknown path.
    std::function<void(std::string body, Respond respond)> backup;
    // A handler that throws is answered 500; nothing escapes to io.run().
  };

  struct Limits {
    // Largest request head, and largest request body, in bytes. A larger
    // request is answered 413 and the connection closed (or just closed).
    // Default: 8 KiB.
    uint32_t max_request_bytes = 8 * 1024;
    // Sessions served at once; a connection beyond this is accepted and
    // closed at once. Default: 64.
    size_t max_sessions = 64;
    // A session closes when a request (or the reply to it) takes longer
    // than this, which includes waiting idle for the next request.
    // Default: 30 s.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  };

  // Binds `at` on `io` with default Limits and starts accepting (the
  // accepting happens when io runs). On failure returns IOError naming the
  // address, e.g. "admin listen 127.0.0.1:7421: Address already in use", and
  // leaves *out untouched.
  static Status Start(boost::asio::io_context& io, const HostPort& at, Handlers handlers,
                      std::unique_ptr<AdminHttp>* out);
  // As above, with explicit limits.
  static Status Start(boost::asio::io_context& io, const HostPort& at, Handlers handlers,
                      const Limits& limits, std::unique_ptr<AdminHttp>* out);

  AdminHttp(const AdminHttp&) = delete;
  AdminHttp& operator=(const AdminHttp&) = delete;

  // Calls Stop().
  ~AdminHttp();

  // The bound port (the one picked, when `at.port` was 0).
  uint16_t port() const { return port_; }

  // Closes the acceptor (new connections are refused from then on) and every
  // open session. Idempotent.
  void Stop();

 private:
  struct State;  // acceptor and sessions; shared with the pending operations
  class Session;
  class Pending;  // behind a Respond

  AdminHttp(std::shared_ptr<State> state, uint16_t port);

  const std::shared_ptr<State> state_;
  const uint16_t port_;
};

}  // namespace idem::server
