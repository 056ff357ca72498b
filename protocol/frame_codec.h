// The frame codec of PROTOCOL.md section 1: a 4-byte big-endian length, then
// that many payload bytes. Pure: no I/O, no allocation beyond its buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace google::protobuf {
class MessageLite;
}

namespace idem::protocol {

inline constexpr size_t kFrameHeaderBytes = 4;
// PROTOCOL.md section 1 defaults.
inline constexpr uint32_t kDefaultMaxFrameBytes = 512 * 1024;
inline constexpr uint32_t kPreAuthMaxFrameBytes = 4 * 1024;

// Appends the 4-byte header for a payload of `payload_len` bytes.
void AppendFrameHeader(std::string* out, uint32_t payload_len);

// Appends one whole frame holding `msg` serialized. Returns false (and leaves
// `out` unchanged) when the serialized size does not fit in 32 bits.
bool AppendFrame(std::string* out, const google::protobuf::MessageLite& msg);

// Splits a byte stream, fed in arbitrary chunks, into frame payloads.
//
//   FrameDecoder d(limit);
//   d.Feed(bytes);
//   std::string_view payload;
//   while (d.Next(&payload) == FrameDecoder::Result::kFrame) { ... }
//
// A payload returned by Next() stays valid until the next call to Feed() or
// Next(). After kTooLarge the decoder is stuck: the stream cannot be re-synced
// and the caller must close it. Not thread-safe.
class FrameDecoder {
 public:
  enum class Result {
    kFrame,     // *payload holds one frame's payload (possibly empty)
    kNeedMore,  // no whole frame buffered yet
    kTooLarge,  // the next frame's length exceeds the limit
  };

  explicit FrameDecoder(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Changes the limit for frames not yet started (e.g. after a Hello).
  void set_max_frame_bytes(uint32_t limit) { max_frame_bytes_ = limit; }
  uint32_t max_frame_bytes() const { return max_frame_bytes_; }

  void Feed(std::string_view bytes);
  Result Next(std::string_view* payload);

  // True when some bytes of an unfinished frame are buffered (a client
  // stalling here is subject to the frame timeout).
  bool InsideFrame() const { return buffered() > 0; }
  size_t buffered() const { return buf_.size() - pos_; }
  // The length announced by the frame that made Next() return kTooLarge.
  uint64_t rejected_length() const { return rejected_length_; }

 private:
  uint32_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;  // start of the first unconsumed byte in buf_
  bool too_large_ = false;
  uint64_t rejected_length_ = 0;
};

}  // namespace idem::protocol
