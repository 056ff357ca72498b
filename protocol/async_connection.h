// The asynchronous, pipelined idem client: one TCP connection, many requests
// in flight, answers matched by id (the server may answer out of order).
//
//   boost::asio::io_context io;
//   auto conn = idem::client::AsyncConnection::Create(io, options);
//   conn->Connect([&](idem::Status s) { ... conn->Call(request, callback); });
//   io.run();
//
// Contract:
//  - Threading: the object is not thread-safe and its internal handlers are
//    not bound to a strand, so `io` must be run by exactly one thread, and
//    Connect, Call, Close and the accessors must be called on that thread
//    (from a callback or a handler posted to `io`), or while `io` is not
//    running. Use one io_context (and thread) per connection, or several
//    connections on one io thread, to scale.
//  - Callbacks always run from `io` (never inside Connect or Call), so a
//    callback may issue new Calls or Close() the connection. The one
//    exception is Close(): it runs the pending callbacks before it returns.
//  - Every Call's callback runs exactly once: with the Response (status OK),
//    or with a non-OK Status: Unavailable (timed out: it may or may not have
//    taken effect), IOError (not connected, connection lost or closed),
//    InvalidArgument (the request is larger than the server's frame limit;
//    not sent), or Remote (the server failed the connection as a whole, e.g.
//    ERROR_FRAME_TOO_LARGE). A request is never re-sent: after a lost
//    connection the caller decides what to retry.
//  - A Response carrying Response.error is delivered as a Response (status
//    OK); the typed helpers in client.h turn it into Status::Remote.
//  - Request ids are assigned here; the caller's id is overwritten.
//  - One connection per object: Connect may be called once. After a failure
//    or Close(), create a new AsyncConnection to reconnect.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"
#include "protocol/message_arena.h"
#include "util/status.h"

namespace idem::client {

struct Options {
  // HOST:PORT of idemd.
  std::string endpoint = "127.0.0.1:7420";
  // Authentication token (sent in Hello). Empty: none.
  std::string token;
  std::string client_name = "idem-client";
  // Say Hello after connecting (required with a token; also learns limits).
  bool hello = true;
  // Bounds the TCP connect and the Hello exchange together; 0: no bound.
  std::chrono::milliseconds connect_timeout{5000};
  // Default per-call timeout; 0 waits forever. A waiting Reserve adds its
  // wait_ms to this.
  std::chrono::milliseconds call_timeout{10000};
  // Largest response frame accepted.
  uint32_t max_frame_bytes = 64u << 20;
};

// Parses "HOST:PORT" or "[V6]:PORT".
Status ParseEndpoint(const std::string& text, std::string* host, uint16_t* port);

class AsyncConnection : public std::enable_shared_from_this<AsyncConnection> {
 public:
  // `response` is null when `status` is not OK; it is valid only during the
  // callback (Swap it out to keep it).
  using Callback = std::function<void(const Status& status, idem::v1::Response* response)>;
  static constexpr std::chrono::milliseconds kDefaultTimeout{-1};

  static std::shared_ptr<AsyncConnection> Create(boost::asio::io_context& io, Options options);
  ~AsyncConnection();

  // Resolves, connects and (with options.hello) says Hello, all within
  // options.connect_timeout. `done` gets OK, an IOError naming the endpoint
  // (refused, timed out, closed), or the server's Hello error as Remote
  // (e.g. ERROR_UNAUTHENTICATED); on failure the socket is closed.
  void Connect(std::function<void(const Status&)> done);
  // Sends `request` with a fresh id. `timeout` kDefaultTimeout: the option's;
  // 0 (or negative): none. Requests issued in one turn of `io` go out in one
  // write. Before Connect's `done` got OK, fails with IOError.
  void Call(idem::v1::Request request, Callback done,
            std::chrono::milliseconds timeout = kDefaultTimeout);
  // Closes; every pending callback gets IOError("connection closed") before
  // Close returns. Idempotent.
  void Close();

  // True between a successful Connect and the connection's end.
  bool connected() const { return state_ == State::kConnected; }
  size_t inflight() const { return pending_.size(); }
  // The server's HelloReply (after a successful Connect with hello).
  const idem::v1::HelloReply& hello() const { return hello_; }

 private:
  enum class State { kNew, kConnecting, kHello, kConnected, kClosed };
  struct Pending {
    Callback done;
    std::chrono::steady_clock::time_point deadline;  // max(): none
  };

  AsyncConnection(boost::asio::io_context& io, Options options);
  void OnConnected(const boost::system::error_code& ec, std::function<void(const Status&)> done);
  void SendHello(std::function<void(const Status&)> done);
  // Queues `request` (state kHello or kConnected).
  void Send(idem::v1::Request request, Callback done, std::chrono::milliseconds timeout);
  void PostFailure(Callback done, Status status);
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void Dispatch(std::string_view payload);
  void StartWrite();
  void FailAll(const Status& status);
  void ArmSweep();
  void Sweep();

  boost::asio::io_context& io_;
  Options options_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer sweep_timer_;
  bool sweep_armed_ = false;
  State state_ = State::kNew;
  std::chrono::steady_clock::time_point connect_deadline_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buf_;
  std::string out_;
  std::string writing_;
  bool write_in_flight_ = false;
  bool write_posted_ = false;
  bool dispatching_ = false;  // in OnRead's loop: it writes what callbacks send
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  protocol::MessageArena arena_;  // each response, reset after its callback
  idem::v1::HelloReply hello_;
};

}  // namespace idem::client
