#include "protocol/async_connection.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace idem::client {

namespace v1 = idem::v1;
using boost::asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

Status ParseEndpoint(const std::string& text, std::string* host, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("endpoint " + text + " is not HOST:PORT");
  }
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = text.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    return Status::InvalidArgument("endpoint " + text + " has an invalid port");
  }
  *host = h;
  *port = static_cast<uint16_t>(std::stoul(p));
  return Status::OK();
}

std::shared_ptr<AsyncConnection> AsyncConnection::Create(boost::asio::io_context& io,
                                                         Options options) {
  return std::shared_ptr<AsyncConnection>(new AsyncConnection(io, std::move(options)));
}

AsyncConnection::AsyncConnection(boost::asio::io_context& io, Options options)
    : io_(io),
      options_(std::move(options)),
      socket_(io),
      connect_timer_(io),
      sweep_timer_(io),
      decoder_(options_.max_frame_bytes) {}

AsyncConnection::~AsyncConnection() {
  error_code ignored;
  socket_.close(ignored);
}

void AsyncConnection::Connect(std::function<void(const Status&)> done) {
  std::string host;
  uint16_t port = 0;
  Status st = ParseEndpoint(options_.endpoint, &host, &port);
  if (!st.ok()) return done(st);
  error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return done(Status::IOError("resolving " + options_.endpoint + ": " + ec.message()));
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this()](const error_code& e) {
    if (!e) {
      error_code ignored;
      self->socket_.close(ignored);
    }
  });
  boost::asio::async_connect(socket_, endpoints,
                             [self = shared_from_this(), done = std::move(done)](
                                 const error_code& e, const tcp::endpoint&) mutable {
                               self->OnConnected(e, std::move(done));
                             });
}

void AsyncConnection::OnConnected(const error_code& ec, std::function<void(const Status&)> done) {
  connect_timer_.cancel();
  if (ec) {
    const std::string why =
        ec == boost::asio::error::operation_aborted ? "timed out" : ec.message();
    return done(Status::IOError("connecting to " + options_.endpoint + ": " + why));
  }
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  connected_ = true;
  DoRead();
  if (!options_.hello) return done(Status::OK());
  SendHello(std::move(done));
}

void AsyncConnection::SendHello(std::function<void(const Status&)> done) {
  v1::Request req;
  req.mutable_hello()->set_protocol_version(1);
  req.mutable_hello()->set_token(options_.token);
  req.mutable_hello()->set_client_name(options_.client_name);
  Call(std::move(req),
       [self = shared_from_this(), done = std::move(done)](const Status& st, v1::Response* resp) {
         if (!st.ok()) return done(st);
         if (resp->has_error()) {
           return done(Status::Remote(resp->error().code(), resp->error().message(),
                                      resp->error().retry_after_ms()));
         }
         self->hello_ = resp->hello();
         done(Status::OK());
       });
}

void AsyncConnection::Call(v1::Request request, Callback done, std::chrono::milliseconds timeout) {
  if (!connected_) {
    Status st = Status::IOError("not connected to " + options_.endpoint);
    return done(st, nullptr);
  }
  const uint64_t id = next_id_++;
  request.set_id(id);
  if (timeout == kDefaultTimeout) timeout = options_.call_timeout;
  if (timeout.count() > 0 && request.has_reserve()) {
    timeout += std::chrono::milliseconds(request.reserve().wait_ms());
  }
  Pending p{std::move(done),
            timeout.count() > 0 ? SteadyClock::now() + timeout : SteadyClock::time_point::max()};
  pending_.emplace(id, std::move(p));
  if (timeout.count() > 0) ArmSweep();
  const bool idle = out_.empty() && !write_in_flight_;
  if (!protocol::AppendFrame(&out_, request)) {
    auto node = pending_.extract(id);
    return node.mapped().done(Status::InvalidArgument("request too large"), nullptr);
  }
  // Posted: requests issued in the same turn go out in one write.
  if (idle) boost::asio::post(io_, [self = shared_from_this()] { self->StartWrite(); });
}

void AsyncConnection::StartWrite() {
  if (write_in_flight_ || out_.empty() || !connected_) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                           [self = shared_from_this()](const error_code& ec, size_t) {
                             self->write_in_flight_ = false;
                             self->writing_.clear();
                             if (ec)
                               return self->FailAll(Status::IOError("write: " + ec.message()));
                             self->StartWrite();
                           });
}

void AsyncConnection::DoRead() {
  socket_.async_read_some(
      boost::asio::buffer(read_buf_),
      [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void AsyncConnection::OnRead(const error_code& ec, size_t n) {
  if (ec) {
    if (!connected_) return;
    const std::string why = ec == boost::asio::error::eof ? "closed by the server" : ec.message();
    return FailAll(Status::IOError("connection to " + options_.endpoint + " " + why));
  }
  decoder_.Feed(std::string_view(read_buf_.data(), n));
  std::string_view payload;
  while (true) {
    const auto r = decoder_.Next(&payload);
    if (r == protocol::FrameDecoder::Result::kNeedMore) break;
    if (r == protocol::FrameDecoder::Result::kTooLarge) {
      return FailAll(Status::IOError("response frame larger than max_frame_bytes"));
    }
    Dispatch(payload);
    if (!connected_) return;
  }
  DoRead();
}

void AsyncConnection::Dispatch(std::string_view payload) {
  response_.Clear();
  if (!response_.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return FailAll(Status::Corruption("the server sent a frame that is not a Response"));
  }
  if (response_.id() == 0 && response_.has_error()) {
    // A connection-level error (frame too large, malformed): the server may close.
    const auto& e = response_.error();
    return FailAll(Status::Remote(e.code(), e.message(), e.retry_after_ms()));
  }
  auto node = pending_.extract(response_.id());
  if (node.empty()) return;  // timed out earlier: dropped
  node.mapped().done(Status::OK(), &response_);
}

void AsyncConnection::ArmSweep() {
  if (sweep_armed_) return;
  sweep_armed_ = true;
  sweep_timer_.expires_after(std::chrono::milliseconds(20));
  sweep_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    self->sweep_armed_ = false;
    if (!ec) self->Sweep();
  });
}

void AsyncConnection::Sweep() {
  const auto now = SteadyClock::now();
  bool any_deadline = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      Callback done = std::move(it->second.done);
      it = pending_.erase(it);
      done(Status::Unavailable("the call timed out; it may or may not have taken effect"), nullptr);
      continue;
    }
    any_deadline |= it->second.deadline != SteadyClock::time_point::max();
    ++it;
  }
  if (any_deadline) ArmSweep();
}

void AsyncConnection::FailAll(const Status& status) {
  connected_ = false;
  error_code ignored;
  socket_.close(ignored);
  connect_timer_.cancel();
  sweep_timer_.cancel();
  auto pending = std::move(pending_);
  pending_.clear();
  out_.clear();
  for (auto& [id, p] : pending) p.done(status, nullptr);
}

void AsyncConnection::Close() { FailAll(Status::IOError("connection closed")); }

}  // namespace idem::client
