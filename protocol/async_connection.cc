#include "protocol/async_connection.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <utility>
#include <vector>

namespace idem::client {

namespace v1 = idem::v1;
using boost::asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kSweepPeriod{20};

}  // namespace

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
  auto fail = [&](Status st) {
    boost::asio::post(io_, [done = std::move(done), st = std::move(st)] { done(st); });
  };
  if (state_ != State::kNew) {
    return fail(Status::InvalidArgument(
        "AsyncConnection::Connect may be called once; create a new connection to reconnect"));
  }
  state_ = State::kClosed;  // until the connect is under way
  std::string host;
  uint16_t port = 0;
  Status st = ParseEndpoint(options_.endpoint, &host, &port);
  if (!st.ok()) return fail(st);
  error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return fail(Status::IOError("resolving " + options_.endpoint + ": " + ec.message()));
  state_ = State::kConnecting;
  const bool bounded = options_.connect_timeout.count() > 0;
  connect_deadline_ =
      bounded ? SteadyClock::now() + options_.connect_timeout : SteadyClock::time_point::max();
  if (bounded) {
    connect_timer_.expires_at(connect_deadline_);
    connect_timer_.async_wait([self = shared_from_this()](const error_code& e) {
      // Only while the TCP connect is pending: a completion already queued
      // when the connect succeeded must not close the new connection.
      if (!e && self->state_ == State::kConnecting) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }
  boost::asio::async_connect(socket_, endpoints,
                             [self = shared_from_this(), done = std::move(done)](
                                 const error_code& e, const tcp::endpoint&) mutable {
                               self->OnConnected(e, std::move(done));
                             });
}

void AsyncConnection::OnConnected(const error_code& ec, std::function<void(const Status&)> done) {
  connect_timer_.cancel();
  const std::string what = "connecting to " + options_.endpoint + ": ";
  if (state_ != State::kConnecting) return done(Status::IOError(what + "connection closed"));
  if (ec) {
    FailAll(Status::IOError(what + "connect failed"));
    const std::string why =
        ec == boost::asio::error::operation_aborted ? "timed out" : ec.message();
    return done(Status::IOError(what + why));
  }
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  DoRead();
  if (!options_.hello) {
    state_ = State::kConnected;
    return done(Status::OK());
  }
  state_ = State::kHello;
  SendHello(std::move(done));
}

void AsyncConnection::SendHello(std::function<void(const Status&)> done) {
  v1::Request req;
  req.mutable_hello()->set_protocol_version(1);
  req.mutable_hello()->set_token(options_.token);
  req.mutable_hello()->set_client_name(options_.client_name);
  // The Hello's answer is due within what is left of connect_timeout.
  std::chrono::milliseconds timeout{0};
  if (connect_deadline_ != SteadyClock::time_point::max()) {
    timeout = std::max(std::chrono::milliseconds(1),
                       std::chrono::duration_cast<std::chrono::milliseconds>(connect_deadline_ -
                                                                             SteadyClock::now()));
  }
  Send(
      std::move(req),
      [self = shared_from_this(), done = std::move(done)](const Status& st, v1::Response* resp) {
        const std::string what = "connecting to " + self->options_.endpoint + ": ";
        Status failure;
        if (!st.ok()) {
          failure = st.IsUnavailable() ? Status::IOError(what + "no answer to Hello (timed out)")
                    : st.IsRemote()    ? st
                                       : Status::IOError(what + st.message());
        } else if (resp->has_error()) {
          failure = Status::Remote(resp->error().code(), resp->error().message(),
                                   resp->error().retry_after_ms());
        } else if (self->state_ == State::kHello) {
          self->hello_ = resp->hello();
          self->state_ = State::kConnected;
          return done(Status::OK());
        } else {
          failure = Status::IOError(what + "connection closed");
        }
        // A failed Hello leaves nothing usable: close the socket now rather
        // than leak it until the server gives up on it.
        self->FailAll(Status::IOError(what + "Hello failed"));
        done(failure);
      },
      timeout);
}

void AsyncConnection::PostFailure(Callback done, Status status) {
  boost::asio::post(
      io_, [done = std::move(done), status = std::move(status)] { done(status, nullptr); });
}

void AsyncConnection::Call(v1::Request request, Callback done, std::chrono::milliseconds timeout) {
  if (state_ != State::kConnected) {
    return PostFailure(
        std::move(done),
        Status::IOError((state_ == State::kClosed ? "connection to " : "not connected to ") +
                        options_.endpoint + (state_ == State::kClosed ? " is closed" : "")));
  }
  Send(std::move(request), std::move(done), timeout);
}

void AsyncConnection::Send(v1::Request request, Callback done, std::chrono::milliseconds timeout) {
  const uint64_t id = next_id_++;
  request.set_id(id);
  if (timeout == kDefaultTimeout) timeout = options_.call_timeout;
  if (timeout.count() > 0 && request.has_reserve()) {
    timeout += std::chrono::milliseconds(request.reserve().wait_ms());
  }
  // A frame over the server's limit would make it fail the whole connection
  // (every request in flight): refuse it here instead, unsent.
  const size_t size = request.ByteSizeLong();
  const uint32_t limit = hello_.limits().max_frame_bytes();
  if ((limit > 0 && size > limit) || size > UINT32_MAX) {
    return PostFailure(std::move(done),
                       Status::InvalidArgument("request of " + std::to_string(size) +
                                               " bytes is larger than the server's "
                                               "max_frame_bytes " +
                                               std::to_string(limit) + "; not sent"));
  }
  protocol::AppendFrame(&out_, request);
  pending_.emplace(id,
                   Pending{std::move(done), timeout.count() > 0 ? SteadyClock::now() + timeout
                                                                : SteadyClock::time_point::max()});
  if (timeout.count() > 0) ArmSweep();
  // Posted: requests issued in the same turn go out in one write. Those sent
  // by callbacks of OnRead go out when its loop ends.
  if (!write_in_flight_ && !write_posted_ && !dispatching_) {
    write_posted_ = true;
    boost::asio::post(io_, [self = shared_from_this()] {
      self->write_posted_ = false;
      self->StartWrite();
    });
  }
}

void AsyncConnection::StartWrite() {
  if (write_in_flight_ || out_.empty() || state_ == State::kClosed) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                           [self = shared_from_this()](const error_code& ec, size_t) {
                             self->write_in_flight_ = false;
                             self->writing_.clear();
                             if (self->state_ == State::kClosed) return;
                             if (ec) {
                               return self->FailAll(Status::IOError(
                                   "writing to " + self->options_.endpoint + ": " + ec.message()));
                             }
                             self->StartWrite();
                           });
}

void AsyncConnection::DoRead() {
  socket_.async_read_some(
      boost::asio::buffer(read_buf_),
      [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void AsyncConnection::OnRead(const error_code& ec, size_t n) {
  if (state_ == State::kClosed) return;
  if (ec) {
    const std::string why = ec == boost::asio::error::eof ? "closed by the server" : ec.message();
    return FailAll(Status::IOError("connection to " + options_.endpoint + " " + why));
  }
  decoder_.Feed(std::string_view(read_buf_.data(), n));
  std::string_view payload;
  bool too_large = false;
  dispatching_ = true;
  // Until a callback closes the connection.
  while (state_ != State::kClosed) {
    const auto r = decoder_.Next(&payload);
    if (r == protocol::FrameDecoder::Result::kNeedMore) break;
    if (r == protocol::FrameDecoder::Result::kTooLarge) {
      too_large = true;
      break;
    }
    Dispatch(payload);
  }
  dispatching_ = false;
  if (too_large) {
    return FailAll(Status::IOError("response frame from " + options_.endpoint +
                                   " larger than max_frame_bytes"));
  }
  if (state_ == State::kClosed) return;
  StartWrite();  // what the callbacks sent
  DoRead();
}

void AsyncConnection::Dispatch(std::string_view payload) {
  protocol::ScopedMessage<v1::Response> response(&arena_);
  if (!response->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return FailAll(Status::Corruption("the server sent a frame that is not a Response"));
  }
  if (response->id() == 0 && response->has_error()) {
    // A connection-level error (frame too large, malformed): the server may close.
    const auto& e = response->error();
    return FailAll(Status::Remote(e.code(), e.message(), e.retry_after_ms()));
  }
  auto node = pending_.extract(response->id());
  if (node.empty()) return;  // timed out earlier: dropped
  node.mapped().done(Status::OK(), response.get());
}

void AsyncConnection::ArmSweep() {
  if (sweep_armed_ || state_ == State::kClosed) return;
  sweep_armed_ = true;
  sweep_timer_.expires_after(kSweepPeriod);
  sweep_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    self->sweep_armed_ = false;
    if (!ec) self->Sweep();
  });
}

void AsyncConnection::Sweep() {
  if (state_ == State::kClosed) return;
  const auto now = SteadyClock::now();
  // Collect first: a callback may Call (growing pending_) or Close (emptying
  // it), either of which would invalidate an iterator held across it.
  std::vector<std::pair<uint64_t, Callback>> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      expired.emplace_back(it->first, std::move(it->second.done));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(expired.begin(), expired.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  const Status timed_out = Status::Unavailable("the call to " + options_.endpoint +
                                               " timed out; it may or may not have taken effect");
  for (auto& [id, done] : expired) done(timed_out, nullptr);
  for (const auto& [id, p] : pending_) {
    if (p.deadline != SteadyClock::time_point::max()) {
      ArmSweep();
      break;
    }
  }
}

void AsyncConnection::FailAll(const Status& status) {
  state_ = State::kClosed;
  error_code ignored;
  socket_.close(ignored);
  connect_timer_.cancel();
  sweep_timer_.cancel();
  out_.clear();
  // Moved out first: a callback may call Close (FailAll again) or Call.
  std::vector<std::pair<uint64_t, Callback>> failed;
  failed.reserve(pending_.size());
  for (auto& [id, p] : pending_) failed.emplace_back(id, std::move(p.done));
  pending_.clear();
  std::sort(failed.begin(), failed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [id, done] : failed) done(status, nullptr);
}

void AsyncConnection::Close() { FailAll(Status::IOError("connection closed")); }

}  // namespace idem::client
