#include "server/record_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace idem::server {
namespace {

storage::Record Rec(uint64_t token, size_t body_bytes = 10) {
  storage::Record r;
  r.token = token;
  r.completed = true;
  r.body = std::string(body_bytes, 'b');
  return r;
}

TEST(RecordCache, GetReturnsACopyOfWhatWasPut) {
  RecordCache cache(1 << 20);
  storage::Record out;
  EXPECT_FALSE(cache.Get("k", &out));
  cache.Put("k", Rec(7));
  ASSERT_TRUE(cache.Get("k", &out));
  EXPECT_EQ(out, Rec(7));
  cache.Put("k", Rec(8));  // replaces
  ASSERT_TRUE(cache.Get("k", &out));
  EXPECT_EQ(out.token, 8u);
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(RecordCache, EraseAndClearForget) {
  RecordCache cache(1 << 20);
  cache.Put("a", Rec(1));
  cache.Put("b", Rec(2));
  cache.Erase("a");
  cache.Erase("never-there");
  storage::Record out;
  EXPECT_FALSE(cache.Get("a", &out));
  EXPECT_TRUE(cache.Get("b", &out));
  cache.Clear();
  EXPECT_FALSE(cache.Get("b", &out));
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(RecordCache, EvictsTheLeastRecentlyUsedWithinItsCapacity) {
  // Each entry charges its strings plus 192 bytes: 1 + 100 + 192 = 293.
  RecordCache cache(3 * 293);
  cache.Put("a", Rec(1, 100));
  cache.Put("b", Rec(2, 100));
  cache.Put("c", Rec(3, 100));
  storage::Record out;
  ASSERT_TRUE(cache.Get("a", &out));  // a is now the most recent: b goes first
  cache.Put("d", Rec(4, 100));
  EXPECT_FALSE(cache.Get("b", &out));
  EXPECT_TRUE(cache.Get("a", &out));
  EXPECT_TRUE(cache.Get("c", &out));
  EXPECT_TRUE(cache.Get("d", &out));
  EXPECT_LE(cache.bytes(), 3u * 293);
}

TEST(RecordCache, LargeBodiesAndAZeroCapacityAreNotKept) {
  RecordCache cache(1 << 20);
  cache.Put("big", Rec(1, RecordCache::kMaxBodyBytes + 1));
  storage::Record out;
  EXPECT_FALSE(cache.Get("big", &out));
  cache.Put("edge", Rec(1, RecordCache::kMaxBodyBytes));
  EXPECT_TRUE(cache.Get("edge", &out));
  RecordCache off(0);
  off.Put("k", Rec(1));
  EXPECT_FALSE(off.Get("k", &out));
}

}  // namespace
}  // namespace idem::server
