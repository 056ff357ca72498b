// One client connection: reads frames, enforces the connection limits of
// PROTOCOL.md section 1 (frame size, malformed frames, backpressure at
// max_inflight, output cap, timeouts), authenticates (Hello), checks roles,
// answers Hello/Ping/Stats itself and hands data ops to the executor.
// Everything runs on the io thread.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"
#include "protocol/message_arena.h"
#include "server/session.h"

namespace idem::server {

class Server;

class Connection final : public Session, public std::enable_shared_from_this<Connection> {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  Connection(boost::asio::ip::tcp::socket socket, Server* server);

  // Starts reading. With `reject`, sends one ERROR_RESOURCE_EXHAUSTED
  // (the connection cap) and closes instead.
  void Start(bool reject);
  // Closes at once; pending answers are dropped.
  void Close(const char* reason);
  // Stops reading; closes once every answer owed is written.
  void CloseAfterFlush(const char* reason);
  // Shutdown: stop reading new requests, keep answering those in flight.
  void StopReading();
  // Closes the connection if it was idle or stalled inside a frame too long.
  void CheckTimeouts(TimePoint now);

  // Session.
  void Deliver(std::string frame) override;
  bool closed() const override { return closed_; }
  const Principal& principal() const override { return principal_; }

  uint32_t inflight() const { return inflight_; }
  // Server::QueueWrite's turn: writes what is pending.
  void WriteQueued();

 private:
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Decodes and handles buffered frames while under max_inflight.
  void ProcessFrames();
  void HandleFrame(std::string_view payload);
  void HandleRequest(const idem::v1::Request& req, TimePoint received);
  void HandleHello(const idem::v1::Request& req);
  // Answers at once (request counted as in flight already).
  void ReplyNow(idem::v1::Response* response);
  void ReplyError(uint64_t id, idem::v1::ErrorCode code, std::string_view message);
  void MaybeResume();
  size_t pending_output() const { return out_.size() + writing_.size(); }
  // Reading pauses while the client owes us this much reading.
  bool OutputFull() const;
  bool Paused() const;
  void ScheduleWrite();
  void StartWrite();
  void OnWrite(const boost::system::error_code& ec);

  boost::asio::ip::tcp::socket socket_;
  Server* server_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buf_;
  protocol::MessageArena arena_;  // each frame's Request, reset after the frame

  Principal principal_;
  bool authenticated_ = false;  // said a successful Hello
  uint32_t failed_hellos_ = 0;
  uint32_t malformed_ = 0;

  uint32_t inflight_ = 0;  // requests read and not yet answered
  bool reading_ = false;   // an async_read_some is pending
  bool stop_reading_ = false;
  bool processing_ = false;  // inside ProcessFrames (Deliver can re-enter)
  bool resume_posted_ = false;
  std::string out_;      // answers not yet handed to the socket
  std::string writing_;  // the buffer of the async_write in flight
  bool write_in_flight_ = false;
  bool write_posted_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
  const char* close_reason_ = "";

  TimePoint last_read_;
  TimePoint write_started_;
  TimePoint frame_started_;
  bool inside_frame_ = false;
};

}  // namespace idem::server
