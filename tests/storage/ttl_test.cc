// TTL: expired records are ABSENT at once (state machine) and physically
// removed by the compaction filter; periodic compaction revisits idle files.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "storage/key_codec.h"
#include "storage/store.h"
#include "tests/testutil/temp_dir.h"

namespace idem::storage {
namespace {

class TtlTest : public ::testing::Test {
 protected:
  void Open(uint64_t periodic_compaction_seconds = 24 * 3600) {
    store_.reset();
    StoreOptions o;
    o.path = dir_.Sub("db");
    o.periodic_compaction_seconds = periodic_compaction_seconds;
    ASSERT_TRUE(Store::Open(o, &clock_, &store_).ok());
  }

  void PutWithRetention(const std::string& key, uint64_t retention_ms, std::string body) {
    Record r;
    r.token = 1;
    r.attempt = 1;
    r.completed = true;
    r.body = std::move(body);
    r.lease_expires_unix_ms = clock_.NowWallMs();
    r.expires_unix_ms = clock_.NowWallMs() + retention_ms;
    Batch b;
    b.Put(EncodeRecordKey("t", "s", key), r);
    ASSERT_TRUE(store_->Write(&b, true).ok());
  }

  bool Present(const std::string& key, std::string* body = nullptr) {
    Record r;
    bool found = false;
    EXPECT_TRUE(store_->Get(EncodeRecordKey("t", "s", key), &r, &found).ok());
    if (found && body != nullptr) *body = r.body;
    return found;
  }

  uint64_t Entries() {
    uint64_t n = 0;
    EXPECT_TRUE(store_->CountRecordEntries(&n).ok());
    return n;
  }

  testutil::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(TtlTest, CompactionDropsExpiredAndKeepsLive) {
  Open();
  for (int i = 0; i < 100; ++i) PutWithRetention("short" + std::to_string(i), 1'000, "x");
  for (int i = 0; i < 50; ++i) PutWithRetention("long" + std::to_string(i), 60'000, "y");
  ASSERT_TRUE(store_->PutMetaSync("token_epoch", std::string(8, '\0')).ok());

  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_EQ(Entries(), 150u);  // nothing expired yet

  clock_.Advance(1'000);  // exactly at the retention end of the short ones
  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_EQ(Entries(), 50u);
  for (int i = 0; i < 50; ++i) {
    std::string body;
    ASSERT_TRUE(Present("long" + std::to_string(i), &body));
    EXPECT_EQ(body, "y");
  }
  EXPECT_FALSE(Present("short0"));
  std::string epoch;
  bool found = false;
  ASSERT_TRUE(store_->GetMeta("token_epoch", &epoch, &found).ok());
  EXPECT_TRUE(found);  // meta keys are never filtered
}

TEST_F(TtlTest, OneMillisecondBeforeTheEndIsKept) {
  Open();
  PutWithRetention("k", 5'000, "x");
  clock_.Advance(4'999);
  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_EQ(Entries(), 1u);
  clock_.Advance(1);
  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_EQ(Entries(), 0u);
}

// A short-retention record written over a long-retention one, in another SST:
// when the newer one expires, the older must not come back.
TEST_F(TtlTest, ExpiredNewerVersionDoesNotResurrectOlder) {
  Open();
  PutWithRetention("k", 3'600'000, "old");
  ASSERT_TRUE(store_->CompactAll().ok());  // the old version sits in the bottom level
  PutWithRetention("k", 1'000, "new");
  clock_.Advance(2'000);
  // Compacting only the newer file's level first would be the dangerous case;
  // a full compaction covers both orders.
  ASSERT_TRUE(store_->CompactAll().ok());
  EXPECT_FALSE(Present("k"));
  EXPECT_EQ(Entries(), 0u);
}

TEST_F(TtlTest, PeriodicCompactionRevisitsIdleFiles) {
  Open(/*periodic_compaction_seconds=*/3600);
  for (int i = 0; i < 20; ++i) PutWithRetention("k" + std::to_string(i), 1'000, "x");
  ASSERT_TRUE(store_->CompactAll().ok());  // one SST, then nothing writes
  ASSERT_EQ(Entries(), 20u);

  clock_.Advance(2 * 3600 * 1000);  // the file is now older than the period
  ASSERT_TRUE(store_->TriggerPeriodicCompaction().ok());
  // The compaction runs in the background: poll, bounded.
  for (int i = 0; i < 500 && Entries() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Entries(), 0u);
}

TEST_F(TtlTest, NoPeriodicCompactionBeforeThePeriod) {
  Open(/*periodic_compaction_seconds=*/3600);
  for (int i = 0; i < 20; ++i) PutWithRetention("k" + std::to_string(i), 1'000, "x");
  ASSERT_TRUE(store_->CompactAll().ok());
  clock_.Advance(1'800 * 1000);  // expired, but the file is younger than the period
  ASSERT_TRUE(store_->TriggerPeriodicCompaction().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Entries(), 20u);  // still there physically (reads treat them as ABSENT)
}

}  // namespace
}  // namespace idem::storage
