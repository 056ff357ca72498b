#include "storage/token_source.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <memory>
#include <vector>

#include "tests/storage/token_harness.h"
#include "tests/testutil/temp_dir.h"

namespace idem::storage {
namespace {

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    harness_.reset();
    store_.reset();
    StoreOptions o;
    o.path = dir_.Sub("db");
    ASSERT_TRUE(Store::Open(o, &clock_, &store_).ok());
    harness_ = std::make_unique<testing::Harness>(store_.get(), &clock_);
    ASSERT_TRUE(harness_->Init().ok());
  }

  uint64_t Acquire(const std::string& key) {
    Decision d = harness_->Reserve(key, /*lease_ms=*/1000, /*retention_ms=*/60000);
    EXPECT_TRUE(harness_->last_status().ok()) << harness_->last_status().ToString();
    EXPECT_EQ(d.outcome, Outcome::kReserveAcquired);
    return d.token;
  }

  testutil::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<testing::Harness> harness_;
};

TEST_F(TokenTest, NeverZeroAndRisingWithinARun) {
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t t = Acquire("k" + std::to_string(i));
    EXPECT_GT(t, last);
    last = t;
  }
  EXPECT_GT(last, 0u);
}

TEST_F(TokenTest, RisesAcrossReopen) {
  const uint64_t before = Acquire("a");
  const uint64_t epoch = harness_->tokens()->epoch();
  Reopen();
  EXPECT_EQ(harness_->tokens()->epoch(), epoch + 1);
  clock_.Advance(5000);  // the lease ended: the next reserve takes it over
  Decision d = harness_->Reserve("a");
  ASSERT_EQ(d.outcome, Outcome::kReserveAcquired);
  EXPECT_GT(d.token, before);
  EXPECT_EQ(d.attempt, 2u);
}

TEST_F(TokenTest, RisesAfterPurgeAndReReserve) {
  const uint64_t first = Acquire("a");
  EXPECT_TRUE(harness_->Purge("a").existed);
  const uint64_t second = Acquire("a");
  EXPECT_GT(second, first);
  Reopen();
  EXPECT_TRUE(harness_->Purge("a").existed);
  EXPECT_GT(Acquire("a"), second);
}

TEST_F(TokenTest, RisesAfterReleaseAndReReserve) {
  const uint64_t first = Acquire("a");
  ASSERT_EQ(harness_->Release("a", first).outcome, Outcome::kReleaseOk);
  EXPECT_GT(Acquire("a"), first);
}

TEST_F(TokenTest, RisesAfterExpiryCompactionAndReReserve) {
  const uint64_t first = Acquire("a");
  ASSERT_EQ(harness_->Complete("a", first, "done", 1000).outcome, Outcome::kCompleteOk);
  clock_.Advance(61000);  // past retention (the reserve's 60 s; Complete set 1 s)
  ASSERT_TRUE(store_->CompactAll().ok());
  uint64_t entries = 1;
  ASSERT_TRUE(store_->CountRecordEntries(&entries).ok());
  ASSERT_EQ(entries, 0u);  // physically gone: nothing on disk remembers the token
  Reopen();
  Decision d = harness_->Reserve("a");
  ASSERT_EQ(d.outcome, Outcome::kReserveAcquired);
  EXPECT_EQ(d.attempt, 1u);  // a new record
  EXPECT_GT(d.token, first);
}

TEST_F(TokenTest, CounterExhaustionBumpsTheEpochDurably) {
  const uint64_t epoch = harness_->tokens()->epoch();
  harness_->tokens()->SetCounterForTest(UINT32_MAX - 2);
  const uint64_t a = Acquire("a");
  const uint64_t b = Acquire("b");  // the last counter value of this epoch
  const uint64_t c = Acquire("c");  // first of the next epoch
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(harness_->tokens()->epoch(), epoch + 1);
  Reopen();
  EXPECT_EQ(harness_->tokens()->epoch(), epoch + 2);
  EXPECT_GT(Acquire("d"), c);
}

// A real crash: another process grants tokens with unsynced writes and dies by
// SIGKILL; whatever of its writes survived, the next run's tokens are higher
// than every token it handed out.
TEST_F(TokenTest, CrashBetweenWriteAndSyncNeverReusesAToken) {
  harness_.reset();
  store_.reset();
  const std::string cmd = std::string(IDEM_CRASH_WRITER) + " " + dir_.Sub("db") + " 50";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::vector<uint64_t> granted;
  unsigned long long t = 0;
  while (fscanf(pipe, "%llu", &t) == 1) granted.push_back(t);
  const int rc = pclose(pipe);
  ASSERT_TRUE(WIFSIGNALED(rc) || (WIFEXITED(rc) && WEXITSTATUS(rc) == 128 + 9)) << rc;
  ASSERT_EQ(granted.size(), 50u);

  Reopen();
  uint64_t highest = 0;
  for (uint64_t g : granted) highest = std::max(highest, g);
  for (int i = 0; i < 50; ++i) {
    clock_.Advance(1000);
    EXPECT_GT(Acquire("fresh" + std::to_string(i)), highest);
  }
}

}  // namespace
}  // namespace idem::storage
