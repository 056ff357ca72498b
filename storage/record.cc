#include "storage/record.h"

#include <string>

#include "util/coding.h"

namespace idem::storage {

namespace {
constexpr uint8_t kFlagCompleted = 1 << 0;
constexpr uint8_t kFlagReleased = 1 << 1;
constexpr uint8_t kKnownFlags = kFlagCompleted | kFlagReleased;
constexpr size_t kFixedHeaderBytes = 10;

Status Truncated(const char* field) {
  return Status::Corruption(std::string("record value truncated or invalid at ") + field);
}
}  // namespace

void EncodeRecord(const Record& r, std::string* dst) {
  uint8_t flags = 0;
  if (r.completed) flags |= kFlagCompleted;
  if (r.released) flags |= kFlagReleased;
  dst->push_back(static_cast<char>(kRecordVersion));
  dst->push_back(static_cast<char>(flags));
  PutFixed64BE(dst, r.expires_unix_ms);
  PutVarint64(dst, r.token);
  PutVarint32(dst, r.attempt);
  PutFixed64BE(dst, r.lease_expires_unix_ms);
  PutLengthPrefixed(dst, r.fingerprint);
  if (r.completed) {
    PutVarint32(dst, ZigZagEncode32(r.status));
    PutFixed64BE(dst, r.completed_unix_ms);
    PutLengthPrefixed(dst, r.body);
  }
}

std::string EncodeRecord(const Record& r) {
  std::string out;
  EncodeRecord(r, &out);
  return out;
}

bool PeekExpiresUnixMs(std::string_view value, uint64_t* expires_unix_ms) {
  if (value.size() < kFixedHeaderBytes) return false;
  if (static_cast<uint8_t>(value[0]) != kRecordVersion) return false;
  *expires_unix_ms = DecodeFixed64BE(value.data() + 2);
  return true;
}

Status DecodeRecord(std::string_view value, Record* r) {
  if (value.empty()) return Status::Corruption("record value is empty");
  const auto version = static_cast<uint8_t>(value[0]);
  if (version != kRecordVersion) {
    return Status::Corruption("record value has unknown version " + std::to_string(version));
  }
  if (value.size() < kFixedHeaderBytes) return Truncated("header");
  const auto flags = static_cast<uint8_t>(value[1]);
  if ((flags & ~kKnownFlags) != 0) return Status::Corruption("record value has unknown flags");
  r->completed = (flags & kFlagCompleted) != 0;
  r->released = (flags & kFlagReleased) != 0;
  r->expires_unix_ms = DecodeFixed64BE(value.data() + 2);
  value.remove_prefix(kFixedHeaderBytes);

  std::string_view fingerprint;
  if (!GetVarint64(&value, &r->token)) return Truncated("token");
  if (!GetVarint32(&value, &r->attempt)) return Truncated("attempt");
  if (!GetFixed64BE(&value, &r->lease_expires_unix_ms)) return Truncated("lease expiry");
  if (!GetLengthPrefixed(&value, &fingerprint)) return Truncated("fingerprint");
  r->fingerprint.assign(fingerprint);

  r->status = 0;
  r->completed_unix_ms = 0;
  r->body.clear();
  if (r->completed) {
    uint32_t zigzag = 0;
    std::string_view body;
    if (!GetVarint32(&value, &zigzag)) return Truncated("status");
    if (!GetFixed64BE(&value, &r->completed_unix_ms)) return Truncated("completion time");
    if (!GetLengthPrefixed(&value, &body)) return Truncated("body");
    r->status = ZigZagDecode32(zigzag);
    r->body.assign(body);
  }
  if (!value.empty()) return Status::Corruption("record value has trailing bytes");
  return Status::OK();
}

}  // namespace idem::storage
