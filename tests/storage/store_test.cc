#include "storage/store.h"

#include <gtest/gtest.h>

#include <memory>

#include "storage/key_codec.h"
#include "tests/testutil/temp_dir.h"

namespace idem::storage {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    StoreOptions o;
    o.path = dir_.Sub("db");
    ASSERT_TRUE(Store::Open(o, &clock_, &store_).ok());
  }

  Record Live(uint64_t token, std::string body = "") {
    Record r;
    r.token = token;
    r.attempt = 1;
    r.lease_expires_unix_ms = clock_.NowWallMs() + 30'000;
    r.expires_unix_ms = clock_.NowWallMs() + 3'600'000;
    if (!body.empty()) {
      r.completed = true;
      r.body = std::move(body);
    }
    return r;
  }

  void Put(const std::string& tenant, const std::string& scope, const std::string& key,
           const Record& r) {
    Batch b;
    b.Put(EncodeRecordKey(tenant, scope, key), r);
    ASSERT_TRUE(store_->Write(&b, true).ok());
  }

  testutil::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, PointReadsAndBatchedWrites) {
  Record got;
  bool found = true;
  ASSERT_TRUE(store_->Get(EncodeRecordKey("t", "s", "k"), &got, &found).ok());
  EXPECT_FALSE(found);

  Batch b;
  b.Put(EncodeRecordKey("t", "s", "k1"), Live(1));
  b.Put(EncodeRecordKey("t", "s", "k2"), Live(2, "body"));
  b.Delete(EncodeRecordKey("t", "s", "k3"));
  EXPECT_EQ(b.count(), 3u);
  ASSERT_TRUE(store_->Write(&b, /*sync=*/false).ok());
  ASSERT_TRUE(store_->SyncWal().ok());

  ASSERT_TRUE(store_->Get(EncodeRecordKey("t", "s", "k2"), &got, &found).ok());
  ASSERT_TRUE(found);
  EXPECT_EQ(got, Live(2, "body"));
}

TEST_F(StoreTest, SurvivesReopen) {
  Put("t", "s", "k", Live(9, "result"));
  Reopen();
  Record got;
  bool found = false;
  ASSERT_TRUE(store_->Get(EncodeRecordKey("t", "s", "k"), &got, &found).ok());
  ASSERT_TRUE(found);
  EXPECT_EQ(got.body, "result");
}

TEST_F(StoreTest, CorruptValueIsAnErrorNotACrash) {
  Batch b;
  b.PutRaw(EncodeRecordKey("t", "s", "bad"), "\x01garbage");
  ASSERT_TRUE(store_->Write(&b, false).ok());
  Record got;
  bool found = false;
  EXPECT_TRUE(store_->Get(EncodeRecordKey("t", "s", "bad"), &got, &found).IsCorruption());
}

TEST_F(StoreTest, ScanOneScopeInKeyOrderWithPrefixAndCursor) {
  for (const char* k : {"b2", "a1", "b1", "c1", "b3"}) Put("t", "s", k, Live(1));
  Put("t", "s2", "b0", Live(1));  // another scope
  Put("u", "s", "b0", Live(1));   // another tenant

  ScanOptions o;
  o.tenant = "t";
  o.scope = "s";
  o.prefix = "b";
  o.limit = 2;
  ScanPage page;
  ASSERT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).ok());
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].key, "b1");
  EXPECT_EQ(page.items[1].key, "b2");
  ASSERT_FALSE(page.next_cursor.empty());

  o.cursor = page.next_cursor;
  ASSERT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).ok());
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].key, "b3");
  EXPECT_TRUE(page.next_cursor.empty());
}

TEST_F(StoreTest, ScanAllScopesInScopeKeyOrderSkippingExpired) {
  Put("t", "b", "k1", Live(1));
  Put("t", "a", "k2", Live(1));
  Put("t", "a", "k1", Live(1));
  Put("t", "a|", "k0", Live(1));
  Record expired = Live(1);
  expired.expires_unix_ms = clock_.NowWallMs();  // ABSENT from this millisecond on
  Put("t", "a", "k3", expired);
  Put("t2", "a", "k1", Live(1));

  ScanOptions o;
  o.tenant = "t";
  o.all_scopes = true;
  o.limit = 1000;
  ScanPage page;
  ASSERT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).ok());
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& item : page.items) got.emplace_back(item.scope, item.key);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"a", "k1"}, {"a", "k2"}, {"a|", "k0"}, {"b", "k1"}}));
  EXPECT_TRUE(page.next_cursor.empty());
}

TEST_F(StoreTest, ScanStopsAfterExaminingTooManyExpiredRecords) {
  Record expired = Live(1);
  expired.expires_unix_ms = clock_.NowWallMs() - 1;
  for (int i = 0; i < 20; ++i) Put("t", "s", "k" + std::to_string(100 + i), expired);
  ScanOptions o;
  o.tenant = "t";
  o.scope = "s";
  o.max_examined = 8;
  ScanPage page;
  ASSERT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).ok());
  EXPECT_TRUE(page.items.empty());
  EXPECT_FALSE(page.next_cursor.empty());  // a page may be empty and still carry a cursor
  int pages = 1;
  while (!page.next_cursor.empty()) {
    o.cursor = page.next_cursor;
    ASSERT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).ok());
    ++pages;
  }
  EXPECT_EQ(pages, 3);
}

TEST_F(StoreTest, ScanRejectsForeignCursor) {
  Put("t", "s", "k", Live(1));
  ScanOptions o;
  o.tenant = "t";
  o.scope = "s";
  o.cursor = "garbage";
  ScanPage page;
  EXPECT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).IsInvalidArgument());
  // A cursor of another scope is refused too.
  ScanOptions other = o;
  other.scope = "other";
  other.cursor.clear();
  Put("t", "other", "a", Live(1));
  Put("t", "other", "b", Live(1));
  other.limit = 1;
  ASSERT_TRUE(store_->Scan(other, clock_.NowWallMs(), &page).ok());
  ASSERT_FALSE(page.next_cursor.empty());
  o.cursor = page.next_cursor;
  EXPECT_TRUE(store_->Scan(o, clock_.NowWallMs(), &page).IsInvalidArgument());
}

TEST_F(StoreTest, MetaValuesAreOutsideRecords) {
  ASSERT_TRUE(store_->PutMetaSync("x", "y").ok());
  uint64_t records = 99;
  ASSERT_TRUE(store_->CountRecordEntries(&records).ok());
  EXPECT_EQ(records, 0u);
  std::string value;
  bool found = false;
  ASSERT_TRUE(store_->GetMeta("x", &value, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(value, "y");
}

TEST_F(StoreTest, CheckpointOpensAsADatabase) {
  Put("t", "s", "k", Live(5, "kept"));
  ASSERT_TRUE(store_->Checkpoint(dir_.Sub("backup")).ok());
  StoreOptions o;
  o.path = dir_.Sub("backup");
  std::unique_ptr<Store> copy;
  ASSERT_TRUE(Store::Open(o, &clock_, &copy).ok());
  Record got;
  bool found = false;
  ASSERT_TRUE(copy->Get(EncodeRecordKey("t", "s", "k"), &got, &found).ok());
  ASSERT_TRUE(found);
  EXPECT_EQ(got.body, "kept");
}

TEST_F(StoreTest, OpenFailsWithAClearErrorOnAFile) {
  std::unique_ptr<Store> other;
  StoreOptions o;
  o.path = "/proc/version/db";  // a path under a file
  Status s = Store::Open(o, &clock_, &other);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/proc/version/db"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace idem::storage
