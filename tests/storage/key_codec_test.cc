#include "storage/key_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace idem::storage {
namespace {

TEST(KeyCodecTest, SeparatorBytesCannotCollide) {
  EXPECT_NE(EncodeRecordKey("t", "a", "|b"), EncodeRecordKey("t", "a|", "b"));
  EXPECT_NE(EncodeRecordKey("t", std::string("a\0", 2), "b"),
            EncodeRecordKey("t", "a", std::string("\0b", 2)));
  EXPECT_NE(EncodeRecordKey("ab", "", "c"), EncodeRecordKey("a", "b", "c"));
  EXPECT_NE(EncodeRecordKey(std::string("a\0\x01", 3), "", "k"), EncodeRecordKey("a", "", "k"));
}

TEST(KeyCodecTest, RoundTripsArbitraryBytes) {
  const std::string parts[] = {"",
                               "a",
                               std::string("\0", 1),
                               std::string("\0\x01", 2),
                               std::string("\0\xff", 2),
                               std::string("\xff\0\0\x01", 4)};
  for (const auto& tenant : parts) {
    for (const auto& scope : parts) {
      for (const auto& key : parts) {
        std::string t, s, k;
        ASSERT_TRUE(DecodeRecordKey(EncodeRecordKey(tenant, scope, key), &t, &s, &k));
        EXPECT_EQ(t, tenant);
        EXPECT_EQ(s, scope);
        EXPECT_EQ(k, key);
      }
    }
  }
}

TEST(KeyCodecTest, ByteOrderIsTenantScopeKeyOrder) {
  using Triple = std::tuple<std::string, std::string, std::string>;
  std::vector<Triple> triples;
  const std::string parts[] = {
      "", "a", "a|", "ab", "b", std::string("a\0", 2), std::string("\0", 1), "\xff"};
  for (const auto& t : parts) {
    for (const auto& s : parts) {
      for (const auto& k : parts) triples.emplace_back(t, s, k);
    }
  }
  std::vector<Triple> by_encoding = triples;
  std::sort(triples.begin(), triples.end());
  std::sort(by_encoding.begin(), by_encoding.end(), [](const Triple& a, const Triple& b) {
    return EncodeRecordKey(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           EncodeRecordKey(std::get<0>(b), std::get<1>(b), std::get<2>(b));
  });
  EXPECT_EQ(triples, by_encoding);
}

TEST(KeyCodecTest, PrefixesAreContiguous) {
  const std::string tenant = TenantPrefix("t1");
  const std::string scope = ScopePrefix("t1", "pay");
  EXPECT_EQ(EncodeRecordKey("t1", "pay", "k").rfind(scope, 0), 0u);
  EXPECT_EQ(scope.rfind(tenant, 0), 0u);
  // Another tenant whose name extends this one is outside its prefix.
  EXPECT_NE(EncodeRecordKey("t10", "pay", "k").rfind(tenant, 0), 0u);
  EXPECT_NE(EncodeRecordKey("t1", "payments", "k").rfind(scope, 0), 0u);
}

TEST(KeyCodecTest, MetaKeysAreNotRecords) {
  std::string t, s, k;
  EXPECT_FALSE(DecodeRecordKey(MetaKey("token_epoch"), &t, &s, &k));
  EXPECT_LT(MetaKey("\xff\xff"), TenantPrefix(""));
}

TEST(KeyCodecTest, MalformedKeysAreRejected) {
  std::string t, s, k;
  EXPECT_FALSE(DecodeRecordKey("", &t, &s, &k));
  EXPECT_FALSE(DecodeRecordKey(std::string("\x01"
                                           "abc",
                                           4),
                               &t, &s, &k));  // no terminator
  EXPECT_FALSE(DecodeRecordKey(std::string("\x01"
                                           "a\0\x05",
                                           4),
                               &t, &s, &k));  // bad escape
  EXPECT_FALSE(DecodeRecordKey(std::string("\x01"
                                           "a\0",
                                           3),
                               &t, &s, &k));
}

}  // namespace
}  // namespace idem::storage
