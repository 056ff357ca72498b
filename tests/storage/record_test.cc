#include "storage/record.h"

#include <gtest/gtest.h>

namespace idem::storage {
namespace {

Record InProgress() {
  Record r;
  r.token = (7ull << 32) | 3;
  r.attempt = 2;
  r.fingerprint = std::string("fp\0x", 4);
  r.lease_expires_unix_ms = 1'700'000'030'000;
  r.expires_unix_ms = 1'700'086'400'000;
  return r;
}

Record Completed() {
  Record r = InProgress();
  r.completed = true;
  r.status = -201;
  r.body = std::string("{\"ok\":true}\0\xff", 13);
  r.completed_unix_ms = 1'700'000'001'234;
  return r;
}

TEST(RecordTest, RoundTrips) {
  for (const Record& r : {Record{}, InProgress(), Completed()}) {
    Record released = r;
    released.released = !r.completed;
    for (const Record& in : {r, released}) {
      Record out;
      ASSERT_TRUE(DecodeRecord(EncodeRecord(in), &out).ok());
      EXPECT_EQ(out, in);
    }
  }
}

TEST(RecordTest, PeekReadsRetentionEnd) {
  uint64_t expires = 0;
  ASSERT_TRUE(PeekExpiresUnixMs(EncodeRecord(Completed()), &expires));
  EXPECT_EQ(expires, Completed().expires_unix_ms);
  EXPECT_FALSE(PeekExpiresUnixMs("\x01short", &expires));
  std::string other_version = EncodeRecord(Completed());
  other_version[0] = '\x02';
  EXPECT_FALSE(PeekExpiresUnixMs(other_version, &expires));
}

TEST(RecordTest, EveryTruncationIsCorruptionNotACrash) {
  const std::string full = EncodeRecord(Completed());
  for (size_t n = 0; n < full.size(); ++n) {
    Record out;
    Status s = DecodeRecord(std::string_view(full).substr(0, n), &out);
    EXPECT_TRUE(s.IsCorruption()) << "length " << n << ": " << s.ToString();
  }
}

TEST(RecordTest, CorruptValuesAreRejected) {
  Record out;
  std::string v = EncodeRecord(InProgress());
  std::string bad_version = v;
  bad_version[0] = '\x09';
  EXPECT_NE(DecodeRecord(bad_version, &out).message().find("version 9"), std::string::npos);
  std::string bad_flags = v;
  bad_flags[1] = '\x80';
  EXPECT_TRUE(DecodeRecord(bad_flags, &out).IsCorruption());
  EXPECT_TRUE(DecodeRecord(v + "x", &out).IsCorruption());
  // A body length that points past the end.
  std::string c = EncodeRecord(Completed());
  c[c.size() - Completed().body.size() - 1] = '\x7f';
  EXPECT_TRUE(DecodeRecord(c, &out).IsCorruption());
}

TEST(RecordTest, FlippedBytesNeverCrash) {
  const std::string full = EncodeRecord(Completed());
  for (size_t i = 0; i < full.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string v = full;
      v[i] = static_cast<char>(v[i] ^ (1 << bit));
      Record out;
      // Under ASan this also proves no byte past the value is read.
      Status s = DecodeRecord(v, &out);
      EXPECT_TRUE(s.ok() || s.IsCorruption()) << s.ToString();
    }
  }
}

}  // namespace
}  // namespace idem::storage
