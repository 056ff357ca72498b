#include "util/coding.h"

#include <gtest/gtest.h>

#include <limits>

namespace idem {
namespace {

TEST(CodingTest, FixedBigEndian) {
  std::string s;
  PutFixed32BE(&s, 0x01020304);
  PutFixed64BE(&s, 0x0102030405060708ull);
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(s.substr(0, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(DecodeFixed32BE(s.data()), 0x01020304u);
  EXPECT_EQ(DecodeFixed64BE(s.data() + 4), 0x0102030405060708ull);
}

TEST(CodingTest, VarintRoundTripAtBoundaries) {
  const uint64_t values[] = {0,
                             1,
                             127,
                             128,
                             16383,
                             16384,
                             (1ull << 32) - 1,
                             1ull << 32,
                             std::numeric_limits<uint64_t>::max()};
  std::string s;
  for (uint64_t v : values) PutVarint64(&s, v);
  std::string_view in = s;
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, VarintRejectsTruncatedAndOverlong) {
  std::string s;
  PutVarint64(&s, 1ull << 40);
  for (size_t n = 0; n < s.size(); ++n) {
    std::string_view in(s.data(), n);
    uint64_t v = 0;
    EXPECT_FALSE(GetVarint64(&in, &v)) << n;
  }
  std::string overlong(10, '\xff');
  overlong.push_back('\x01');
  std::string_view in = overlong;
  uint64_t v = 0;
  EXPECT_FALSE(GetVarint64(&in, &v));
  // A 64-bit value does not fit a varint32.
  std::string big;
  PutVarint64(&big, 1ull << 32);
  std::string_view in32 = big;
  uint32_t v32 = 0;
  EXPECT_FALSE(GetVarint32(&in32, &v32));
}

TEST(CodingTest, LengthPrefixedRejectsShortInput) {
  std::string s;
  PutLengthPrefixed(&s, "hello");
  std::string_view in = s;
  std::string_view out;
  ASSERT_TRUE(GetLengthPrefixed(&in, &out));
  EXPECT_EQ(out, "hello");
  std::string_view shorter(s.data(), s.size() - 1);
  EXPECT_FALSE(GetLengthPrefixed(&shorter, &out));
}

TEST(CodingTest, ZigZag) {
  for (int32_t v : {0, 1, -1, 200, -200, std::numeric_limits<int32_t>::max(),
                    std::numeric_limits<int32_t>::min()}) {
    EXPECT_EQ(ZigZagDecode32(ZigZagEncode32(v)), v);
  }
  EXPECT_EQ(ZigZagEncode32(-1), 1u);
}

}  // namespace
}  // namespace idem
