// A stored idempotency record and its binary encoding.
//
// Value layout, version 1 (integers big-endian unless a varint):
//   [0]      version (1)
//   [1]      flags: bit 0 completed, bit 1 released
//   [2..10)  expires_unix_ms: end of retention (fixed here so the TTL
//            compaction filter reads it without decoding the rest)
//   varint64 token, varint32 attempt, fixed64 lease_expires_unix_ms,
//   length-prefixed fingerprint,
//   if completed: varint32 zigzag(status), fixed64 completed_unix_ms,
//                 length-prefixed body
// Unknown flag bits or trailing bytes are corruption: a newer format gets a
// new version byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace idem::storage {

inline constexpr uint8_t kRecordVersion = 1;

struct Record {
  // The last token granted for this record; the one that may complete it.
  uint64_t token = 0;
  // Acquisitions of this record: 1 for the first, +1 per takeover.
  uint32_t attempt = 0;
  // Given with the first acquisition; empty when none was given.
  std::string fingerprint;
  // The current lease ends here (meaningless once completed).
  uint64_t lease_expires_unix_ms = 0;
  // End of retention: from here on the record is ABSENT.
  uint64_t expires_unix_ms = 0;
  // The holder gave the lease up (Release); the token is finished.
  bool released = false;

  bool completed = false;
  int32_t status = 0;
  std::string body;
  uint64_t completed_unix_ms = 0;

  bool operator==(const Record&) const = default;
};

// Appends the encoding of `r` to *dst.
void EncodeRecord(const Record& r, std::string* dst);
std::string EncodeRecord(const Record& r);

// Parses a value written by EncodeRecord. A truncated, over-long or unknown
// value gives Corruption naming what was wrong; *r is then unspecified.
Status DecodeRecord(std::string_view value, Record* r);

// Reads only the retention end. False when the value is too short or of an
// unknown version.
bool PeekExpiresUnixMs(std::string_view value, uint64_t* expires_unix_ms);

}  // namespace idem::storage
