// Differential fuzzing of protocol::FrameDecoder (PROTOCOL.md section 1).
//
// Input: [limit: 2 bytes, little-endian; 0xFFFF means UINT32_MAX]
//        [chunk pattern: 4 bytes, each a chunk size 0..255, used in turn]
//        [the byte stream]
// The stream is decoded three ways: fed in chunks of the pattern's sizes
// (draining Next() after every Feed), fed whole, and by a direct reading of
// the framing rules. All three must give the same frames and end the same way
// (kNeedMore or kTooLarge, with the same rejected length and buffered bytes);
// re-encoding the frames must give back the consumed prefix of the stream.
// Any difference aborts, so libFuzzer reports it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame_codec.h"

namespace {

using idem::protocol::FrameDecoder;
using idem::protocol::kFrameHeaderBytes;

constexpr size_t kConfigBytes = 6;
constexpr size_t kPatternSize = 4;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "frame_decoder_fuzz: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

// How a decoding of the whole stream ended.
struct Decoded {
  std::vector<std::string> frames;
  FrameDecoder::Result last = FrameDecoder::Result::kNeedMore;
  uint64_t rejected_length = 0;
  size_t buffered = 0;  // bytes not consumed by a frame
};

// The framing rules read directly: a 4-byte big-endian length, then that
// many bytes; a length above the limit ends the stream for good.
Decoded Reference(std::string_view s, uint32_t limit) {
  Decoded out;
  size_t pos = 0;
  while (s.size() - pos >= kFrameHeaderBytes) {
    const uint32_t len = (uint32_t{static_cast<uint8_t>(s[pos])} << 24) |
                         (uint32_t{static_cast<uint8_t>(s[pos + 1])} << 16) |
                         (uint32_t{static_cast<uint8_t>(s[pos + 2])} << 8) |
                         uint32_t{static_cast<uint8_t>(s[pos + 3])};
    if (len > limit) {
      out.last = FrameDecoder::Result::kTooLarge;
      out.rejected_length = len;
      break;
    }
    if (s.size() - pos - kFrameHeaderBytes < len) break;
    out.frames.emplace_back(s.substr(pos + kFrameHeaderBytes, len));
    pos += kFrameHeaderBytes + len;
  }
  out.buffered = s.size() - pos;
  return out;
}

// Calls Next() until it stops returning frames; checks what it may promise.
void Drain(FrameDecoder* d, uint32_t limit, Decoded* out) {
  std::string_view payload;
  FrameDecoder::Result r;
  while ((r = d->Next(&payload)) == FrameDecoder::Result::kFrame) {
    Check(payload.size() <= limit, "a frame longer than the limit was returned");
    out->frames.emplace_back(payload);
  }
  out->last = r;
  if (r == FrameDecoder::Result::kTooLarge) {
    Check(d->rejected_length() > limit, "kTooLarge for a length within the limit");
    Check(d->Next(&payload) == FrameDecoder::Result::kTooLarge, "kTooLarge did not stick");
    out->rejected_length = d->rejected_length();
  }
  out->buffered = d->buffered();
  Check(d->InsideFrame() == (d->buffered() > 0), "InsideFrame() disagrees with buffered()");
}

Decoded Whole(std::string_view s, uint32_t limit) {
  FrameDecoder d(limit);
  d.Feed(s);
  Decoded out;
  Drain(&d, limit, &out);
  return out;
}

Decoded Chunked(std::string_view s, uint32_t limit, const uint8_t* pattern) {
  FrameDecoder d(limit);
  Decoded out;
  size_t fed = 0;
  size_t consumed = 0;
  bool any_nonzero = false;
  for (size_t i = 0; i < kPatternSize; ++i) any_nonzero |= pattern[i] != 0;
  for (size_t i = 0; fed < s.size() || i == 0; ++i) {
    size_t n = any_nonzero ? pattern[i % kPatternSize] : 1;
    n = std::min(n, s.size() - fed);
    d.Feed(s.substr(fed, n));  // size 0 too: an empty read must be harmless
    fed += n;
    const size_t frames_before = out.frames.size();
    Drain(&d, limit, &out);
    for (size_t f = frames_before; f < out.frames.size(); ++f) {
      consumed += kFrameHeaderBytes + out.frames[f].size();
    }
    Check(d.buffered() == fed - consumed, "buffered() is not the bytes fed minus those consumed");
  }
  return out;
}

void CheckSame(const Decoded& a, const Decoded& b, const char* what) {
  Check(a.frames == b.frames, what);
  Check(a.last == b.last, what);
  Check(a.rejected_length == b.rejected_length, what);
  Check(a.buffered == b.buffered, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kConfigBytes) return 0;
  const uint32_t raw_limit = data[0] | (uint32_t{data[1]} << 8);
  const uint32_t limit = raw_limit == 0xFFFF ? UINT32_MAX : raw_limit;
  const uint8_t* pattern = data + 2;
  const std::string_view stream(reinterpret_cast<const char*>(data + kConfigBytes),
                                size - kConfigBytes);

  const Decoded expected = Reference(stream, limit);
  CheckSame(Whole(stream, limit), expected, "whole-stream decoding differs from the reference");
  CheckSame(Chunked(stream, limit, pattern), expected,
            "chunked decoding differs from the reference");

  // Re-encoding the frames gives back the consumed prefix of the stream.
  std::string encoded;
  for (const std::string& f : expected.frames) {
    idem::protocol::AppendFrameHeader(&encoded, static_cast<uint32_t>(f.size()));
    encoded += f;
  }
  Check(encoded.size() + expected.buffered == stream.size(), "frames plus leftover != stream");
  Check(stream.substr(0, encoded.size()) == encoded, "re-encoded frames differ from the stream");
  return 0;
}
