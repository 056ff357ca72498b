#include "server/connection.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "server/reply.h"
#include "server/server.h"

namespace idem::server {

namespace v1 = idem::v1;
using boost::system::error_code;

namespace {

OpKind OpKindOf(v1::Request::OpCase op) {
  switch (op) {
    case v1::Request::kHello: return OpKind::kHello;
    case v1::Request::kPing: return OpKind::kPing;
    case v1::Request::kReserve: return OpKind::kReserve;
    case v1::Request::kComplete: return OpKind::kComplete;
    case v1::Request::kRelease: return OpKind::kRelease;
    case v1::Request::kRenew: return OpKind::kRenew;
    case v1::Request::kLookup: return OpKind::kLookup;
    case v1::Request::kPurge: return OpKind::kPurge;
    case v1::Request::kScan: return OpKind::kScan;
    default: return OpKind::kStats;
  }
}

}  // namespace

Connection::Connection(boost::asio::ip::tcp::socket socket, Server* server)
    : socket_(std::move(socket)),
      server_(server),
      decoder_(server->auth() != nullptr ? std::min(server->config().preauth_max_frame_bytes,
                                                    server->config().max_frame_bytes)
                                         : server->config().max_frame_bytes) {
  if (server->auth() == nullptr) principal_ = Principal{"default", Role::kAdmin};
  last_read_ = std::chrono::steady_clock::now();
  error_code ignored;
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
}

void Connection::Start(bool reject) {
  if (reject) {
    ReplyError(0, v1::ERROR_RESOURCE_EXHAUSTED, "too many connections (max_connections)");
    CloseAfterFlush("connection cap");
    return;
  }
  DoRead();
}

bool Connection::OutputFull() const {
  return pending_output() >= server_->config().max_output_bytes / 2;
}

bool Connection::Paused() const {
  return inflight_ >= server_->config().max_inflight || OutputFull();
}

void Connection::DoRead() {
  if (reading_ || closed_ || stop_reading_ || close_after_flush_) return;
  if (Paused()) return;  // backpressure: resumed as answers drain
  reading_ = true;
  socket_.async_read_some(
      boost::asio::buffer(read_buf_),
      [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void Connection::OnRead(const error_code& ec, size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    // After a half-close the client may still be owed answers, but a waiting
    // Reserve of a client that left must not hold a place in line (or win it).
    if (ec == boost::asio::error::eof && inflight_ > 0 && waiting_keys.empty()) {
      return CloseAfterFlush("peer closed");
    }
    return Close(ec == boost::asio::error::eof ? "peer closed" : "read error");
  }
  last_read_ = std::chrono::steady_clock::now();
  decoder_.Feed(std::string_view(read_buf_.data(), n));
  ProcessFrames();
  DoRead();
}

void Connection::ProcessFrames() {
  if (processing_) return;
  processing_ = true;
  std::string_view payload;
  while (!closed_ && !close_after_flush_ && !stop_reading_ && !Paused()) {
    const auto result = decoder_.Next(&payload);
    if (result == protocol::FrameDecoder::Result::kNeedMore) break;
    if (result == protocol::FrameDecoder::Result::kTooLarge) {
      ReplyError(0, v1::ERROR_FRAME_TOO_LARGE,
                 "frame of " + std::to_string(decoder_.rejected_length()) +
                     " bytes exceeds the limit of " + std::to_string(decoder_.max_frame_bytes()));
      CloseAfterFlush("frame too large");
      break;
    }
    HandleFrame(payload);
  }
  const bool inside = decoder_.InsideFrame();
  if (inside && !inside_frame_) frame_started_ = std::chrono::steady_clock::now();
  inside_frame_ = inside;
  processing_ = false;
  // The answers given while processing (Ping, Lookup, errors...) go out now,
  // in one write, without a round through the io loop.
  StartWrite();
}

void Connection::HandleFrame(std::string_view payload) {
  const auto received = std::chrono::steady_clock::now();
  protocol::ScopedMessage<v1::Request> request(&arena_);
  if (!request->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    ++malformed_;
    ReplyError(0, v1::ERROR_MALFORMED, "the frame's payload is not a Request");
    if (malformed_ >= server_->config().max_malformed_frames) {
      CloseAfterFlush("malformed frames");
    }
    return;
  }
  HandleRequest(*request, received);
}

void Connection::HandleRequest(const v1::Request& req, TimePoint received) {
  server_->metrics().CountRequest(req.op_case());
  const uint64_t id = req.id();
  if (req.op_case() == v1::Request::OP_NOT_SET) {
    return ReplyError(id, v1::ERROR_INVALID_ARGUMENT, "the request has no op (or an unknown op)");
  }
  if (req.op_case() == v1::Request::kHello) return HandleHello(req);
  if (server_->auth() != nullptr && !authenticated_) {
    return ReplyError(id, v1::ERROR_UNAUTHENTICATED, "say Hello with a valid token first");
  }
  if (!RoleAllows(principal_.role, OpKindOf(req.op_case()))) {
    return ReplyError(
        id, v1::ERROR_PERMISSION_DENIED,
        std::string("role ") + RoleName(principal_.role) + " may not " + OpLabel(req.op_case()));
  }
  if (req.op_case() == v1::Request::kPing) {
    v1::Response resp;
    resp.set_id(id);
    resp.mutable_ping()->set_payload(req.ping().payload());
    return ReplyNow(&resp);
  }
  if (req.op_case() == v1::Request::kStats) {
    v1::Response resp;
    resp.set_id(id);
    server_->FillStats(principal_, resp.mutable_stats());
    return ReplyNow(&resp);
  }
  ++inflight_;
  server_->executor().Handle(shared_from_this(), req, received);
}

void Connection::HandleHello(const v1::Request& req) {
  const v1::Hello& hello = req.hello();
  if (authenticated_) {
    return ReplyError(req.id(), v1::ERROR_INVALID_ARGUMENT, "Hello was already said");
  }
  const uint32_t max_failed = server_->config().max_failed_hellos;
  auto fail = [&](v1::ErrorCode code, std::string_view message) {
    ++failed_hellos_;
    ReplyError(req.id(), code, message);
    if (failed_hellos_ >= max_failed) CloseAfterFlush("failed hellos");
  };
  if (hello.protocol_version() != 1) {
    return fail(v1::ERROR_UNSUPPORTED_VERSION, "protocol_version " +
                                                   std::to_string(hello.protocol_version()) +
                                                   " is not served; this server speaks 1");
  }
  if (const AuthTable* auth = server_->auth(); auth != nullptr) {
    auto principal = auth->Verify(hello.token());
    if (!principal) return fail(v1::ERROR_UNAUTHENTICATED, "the token is not valid");
    principal_ = *principal;
    decoder_.set_max_frame_bytes(server_->config().max_frame_bytes);
  }
  authenticated_ = true;
  spdlog::debug("connection authenticated: tenant {} role {} client {}", principal_.tenant,
                RoleName(principal_.role), hello.client_name().substr(0, 64));
  v1::Response resp;
  resp.set_id(req.id());
  server_->FillHello(principal_, resp.mutable_hello());
  ReplyNow(&resp);
}

void Connection::ReplyNow(v1::Response* response) {
  std::string frame;
  (void)protocol::AppendFrame(&frame, *response);
  ++inflight_;  // Deliver counts it answered
  Deliver(std::move(frame));
}

void Connection::ReplyError(uint64_t id, v1::ErrorCode code, std::string_view message) {
  server_->metrics().CountError(code);
  v1::Response resp;
  resp.set_id(id);
  SetError(&resp, code, message);
  ReplyNow(&resp);
}

void Connection::Deliver(std::string frame) {
  if (inflight_ > 0) --inflight_;
  if (closed_) return;
  if (out_.empty()) {
    out_ = std::move(frame);
  } else {
    out_ += frame;
  }
  if (out_.size() + writing_.size() > server_->config().max_output_bytes) {
    spdlog::warn("closing a connection whose unsent answers exceed {} bytes",
                 server_->config().max_output_bytes);
    return Close("output cap");
  }
  ScheduleWrite();
  MaybeResume();
}

void Connection::MaybeResume() {
  // Inside ProcessFrames its loop goes on by itself, and a read follows.
  if (processing_ || resume_posted_ || reading_ || stop_reading_ || close_after_flush_) return;
  if (Paused()) return;
  resume_posted_ = true;
  boost::asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->resume_posted_ = false;
    self->ProcessFrames();
    self->DoRead();
  });
}

void Connection::ScheduleWrite() {
  // Inside ProcessFrames, which writes when it ends.
  if (processing_ || write_in_flight_ || write_posted_) return;
  write_posted_ = true;
  // At the end of the turn, so every answer of this io-loop turn goes out in
  // one write.
  server_->QueueWrite(shared_from_this());
}

void Connection::WriteQueued() {
  write_posted_ = false;
  StartWrite();
}

void Connection::StartWrite() {
  if (closed_ || write_in_flight_) return;
  if (out_.empty()) {
    if (close_after_flush_ && inflight_ == 0) Close(close_reason_);
    return;
  }
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  write_started_ = std::chrono::steady_clock::now();
  boost::asio::async_write(
      socket_, boost::asio::buffer(writing_),
      [self = shared_from_this()](const error_code& ec, size_t) { self->OnWrite(ec); });
}

void Connection::OnWrite(const error_code& ec) {
  write_in_flight_ = false;
  writing_.clear();
  if (closed_) return;
  if (ec) return Close("write error");
  StartWrite();
  MaybeResume();
}

void Connection::CloseAfterFlush(const char* reason) {
  close_after_flush_ = true;
  close_reason_ = reason;
  if (!write_in_flight_ && out_.empty() && inflight_ == 0) return Close(reason);
  ScheduleWrite();
}

void Connection::StopReading() {
  // A read in flight may still complete; ProcessFrames ignores what it brings.
  stop_reading_ = true;
}

void Connection::Close(const char* reason) {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  server_->OnClosed(this, reason);
}

void Connection::CheckTimeouts(TimePoint now) {
  if (closed_) return;
  const auto& cfg = server_->config();
  if (write_in_flight_ && now - write_started_ > std::chrono::milliseconds(cfg.write_timeout_ms)) {
    return Close("write timeout");
  }
  if (inside_frame_ && !Paused() &&
      now - frame_started_ > std::chrono::milliseconds(cfg.frame_timeout_ms)) {
    return Close("frame timeout");
  }
  // Idle: nothing read, nothing owed, nothing to write.
  const bool busy = inflight_ > 0 || pending_output() > 0;
  if (!busy && now - last_read_ > std::chrono::milliseconds(cfg.idle_timeout_ms)) {
    Close("idle timeout");
  }
}

}  // namespace idem::server
