// WAL pre-filling (storage/wal_prefill.h) on the real file system: the log
// really is filled ahead, a crash image of it (zeros after the last record)
// recovers every synced record, and a clean close trims the zeros.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/key_codec.h"
#include "storage/store.h"
#include "tests/testutil/temp_dir.h"

namespace idem::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChunk = 1ull << 20;

// The write-ahead logs (NNNNNN.log) in dir, with their sizes.
std::vector<std::pair<fs::path, uint64_t>> Wals(const std::string& dir) {
  std::vector<std::pair<fs::path, uint64_t>> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log") out.emplace_back(e.path(), e.file_size());
  }
  return out;
}

// True when the last n bytes of the file are all zero.
bool TailIsZero(const fs::path& file, uint64_t n) {
  std::ifstream in(file, std::ios::binary);
  in.seekg(-static_cast<std::streamoff>(n), std::ios::end);
  std::string tail(n, '\1');
  in.read(tail.data(), static_cast<std::streamsize>(n));
  return in.gcount() == static_cast<std::streamsize>(n) &&
         tail.find_first_not_of('\0') == std::string::npos;
}

class WalPrefillTest : public ::testing::Test {
 protected:
  void Open(uint64_t prefill) {
    StoreOptions o;
    o.path = dir_.Sub("db");
    o.wal_prefill_bytes = prefill;
    ASSERT_TRUE(Store::Open(o, &clock_, &store_).ok());
  }

  Record Completed(const std::string& body) {
    Record r;
    r.token = 1;
    r.attempt = 1;
    r.completed = true;
    r.body = body;
    r.expires_unix_ms = clock_.NowWallMs() + 3'600'000;
    return r;
  }

  // n synced batches of one record each, bodies of `size` bytes; key i has
  // body "<i>" padded with 'x'.
  void WriteSynced(int first, int n, size_t size) {
    for (int i = first; i < first + n; ++i) {
      Batch b;
      b.Put(EncodeRecordKey("t", "s", "k" + std::to_string(i)), Completed(Body(i, size)));
      ASSERT_TRUE(store_->Write(&b, /*sync=*/true).ok());
    }
  }

  // Opens the database at `path` (default options) and returns the body of
  // key i, or nullopt when absent.
  std::vector<std::optional<std::string>> BodiesAt(const std::string& path, int n) {
    StoreOptions o;
    o.path = path;
    std::unique_ptr<Store> store;
    Status st = Store::Open(o, &clock_, &store);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::vector<std::optional<std::string>> bodies(n);
    for (int i = 0; st.ok() && i < n; ++i) {
      Record got;
      bool found = false;
      st = store->Get(EncodeRecordKey("t", "s", "k" + std::to_string(i)), &got, &found);
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (found) bodies[i] = got.body;
    }
    return bodies;
  }

  static std::string Body(int i, size_t size) {
    std::string body = std::to_string(i);
    body.resize(size, 'x');
    return body;
  }

  testutil::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(WalPrefillTest, LogIsFilledAheadAndACrashImageRecoversEverySyncedRecord) {
  Open(kChunk);
  WriteSynced(0, 200, 100);
  // One batch larger than a chunk: the fill must stay ahead of it too.
  {
    Batch big;
    for (int i = 200; i < 230; ++i) {
      big.Put(EncodeRecordKey("t", "s", "k" + std::to_string(i)), Completed(Body(i, 100'000)));
    }
    ASSERT_TRUE(store_->Write(&big, /*sync=*/true).ok());
  }
  WriteSynced(230, 50, 100);

  auto wals = Wals(dir_.Sub("db"));
  ASSERT_EQ(wals.size(), 1u);
  // ~3 MiB of records: filled in whole chunks, at least half a chunk ahead.
  EXPECT_EQ(wals[0].second % kChunk, 0u);
  EXPECT_GE(wals[0].second, 4 * kChunk);
  EXPECT_TRUE(TailIsZero(wals[0].first, kChunk / 2));

  // What a crash (SIGKILL or power loss after the syncs) leaves on disk: the
  // files as they are now, with the zeros after the last record.
  fs::copy(dir_.Sub("db"), dir_.Sub("crash"));
  const auto bodies = BodiesAt(dir_.Sub("crash"), 280);
  for (int i = 0; i < 280; ++i) {
    EXPECT_EQ(bodies[i], Body(i, i >= 200 && i < 230 ? 100'000 : 100)) << "key " << i;
  }
}

TEST_F(WalPrefillTest, CleanCloseTrimsTheZeros) {
  Open(kChunk);
  WriteSynced(0, 50, 100);
  ASSERT_GE(Wals(dir_.Sub("db")).at(0).second, kChunk);
  ASSERT_TRUE(store_->Close().ok());
  auto wals = Wals(dir_.Sub("db"));
  ASSERT_EQ(wals.size(), 1u);
  EXPECT_LT(wals[0].second, 64u << 10);
  EXPECT_FALSE(TailIsZero(wals[0].first, 64));
}

// A checkpoint is the flushed state and carries no log: a copy of the live,
// pre-filled log could skip a record and keep later ones (wal_prefill.h).
TEST_F(WalPrefillTest, CheckpointHoldsEverySyncedRecordAndNoLog) {
  Open(kChunk);
  WriteSynced(0, 100, 100);
  ASSERT_TRUE(store_->Checkpoint(dir_.Sub("backup")).ok());
  WriteSynced(100, 10, 100);  // after the checkpoint: not in it
  EXPECT_TRUE(Wals(dir_.Sub("backup")).empty());
  const auto bodies = BodiesAt(dir_.Sub("backup"), 110);
  for (int i = 0; i < 110; ++i) {
    if (i < 100) {
      EXPECT_EQ(bodies[i], Body(i, 100)) << "key " << i;
    } else {
      EXPECT_FALSE(bodies[i].has_value()) << "key " << i;
    }
  }
}

// Negative control: with pre-filling off the log ends at its last record.
TEST_F(WalPrefillTest, OffLeavesTheLogAtItsLastRecord) {
  Open(0);
  WriteSynced(0, 50, 100);
  auto wals = Wals(dir_.Sub("db"));
  ASSERT_EQ(wals.size(), 1u);
  EXPECT_LT(wals[0].second, 64u << 10);
  EXPECT_FALSE(TailIsZero(wals[0].first, 64));
}

}  // namespace
}  // namespace idem::storage
