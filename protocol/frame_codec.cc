#include "protocol/frame_codec.h"

#include <google/protobuf/message_lite.h>

#include "util/coding.h"

namespace idem::protocol {

void AppendFrameHeader(std::string* out, uint32_t payload_len) { PutFixed32BE(out, payload_len); }

bool AppendFrame(std::string* out, const google::protobuf::MessageLite& msg) {
  const size_t size = msg.ByteSizeLong();
  if (size > UINT32_MAX) return false;
  const size_t start = out->size();
  AppendFrameHeader(out, static_cast<uint32_t>(size));
  out->resize(start + kFrameHeaderBytes + size);
  auto* dst = reinterpret_cast<uint8_t*>(out->data() + start + kFrameHeaderBytes);
  msg.SerializeWithCachedSizesToArray(dst);
  return true;
}

void FrameDecoder::Feed(std::string_view bytes) {
  // Compact before growing so a long-lived connection's buffer stays small.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

FrameDecoder::Result FrameDecoder::Next(std::string_view* payload) {
  if (too_large_) return Result::kTooLarge;
  if (buffered() < kFrameHeaderBytes) return Result::kNeedMore;
  const uint32_t len = DecodeFixed32BE(buf_.data() + pos_);
  if (len > max_frame_bytes_) {
    too_large_ = true;
    rejected_length_ = len;
    return Result::kTooLarge;
  }
  if (buffered() - kFrameHeaderBytes < len) return Result::kNeedMore;
  *payload = std::string_view(buf_.data() + pos_ + kFrameHeaderBytes, len);
  pos_ += kFrameHeaderBytes + len;
  return Result::kFrame;
}

}  // namespace idem::protocol
