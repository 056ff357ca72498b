// The RocksDB store: point reads that hit (block cache) and miss (answered by
// the bloom filter), batched writes with and without sync, and WAL syncs.
//
// Store benchmarks measure wall time (UseRealTime): a synced write spends its
// time blocked in fdatasync, which CPU time does not see, and the runner would
// otherwise keep adding iterations until the *CPU* time reached min_time.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "storage/clock.h"
#include "storage/key_codec.h"
#include "storage/store.h"

namespace idem::storage {
namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;
constexpr int kReadRecords = 50'000;  // ~10 MB of SST: cached, several blocks
constexpr int kMissKeys = 4'096;
constexpr int kWriteKeys = 1 << 16;  // cycled: an overwrite costs what an insert does
constexpr int kPopulateBatch = 1'000;
// Caps the time of each synced benchmark whatever --benchmark_min_time says:
// an fdatasync takes 0.2 ms to tens of ms depending on the disk and its load.
constexpr double kSyncMinTime = 0.1;

std::string RecordKey(uint64_t seed) {
  return EncodeRecordKey(bench::kTenant, bench::kScope, bench::HexKey(seed));
}

// A completed record with a 32-byte fingerprint and a 100-byte body, all
// derived from `seed` (distinct bodies, so blocks compress as little as real
// ones might).
Record Completed(uint64_t seed) {
  Record r;
  r.token = (3ull << 32) | seed;
  r.attempt = 1;
  r.fingerprint = bench::RandomBytes(bench::kFingerprintBytes, seed * 2);
  r.lease_expires_unix_ms = kNowMs + 30'000;
  r.expires_unix_ms = kNowMs + 86'400'000;  // live at the fixture's clock
  r.completed = true;
  r.status = 201;
  r.body = bench::RandomBytes(bench::kBodyBytes, seed * 2 + 1);
  r.completed_unix_ms = kNowMs;
  return r;
}

// One database in its own directory. A function-local static per kind: it
// is built on first use (populating takes a second) and must be destroyed at
// exit, so the store closes and the directory is removed.
struct Fixture {
  explicit Fixture(std::string_view name) : dir(name), clock(kNowMs) {
    StoreOptions options;
    options.path = dir.Sub("db");
    status = Store::Open(options, &clock, &store);
  }

  bench::TempDir dir;
  FakeClock clock;  // the TTL filter's time: every record is live
  std::unique_ptr<Store> store;
  Status status;
  std::vector<std::string> keys;  // present (read) or to write (write)
  std::vector<std::string> miss_keys;
  size_t next = 0;  // the next key of `keys` to write
};

Status Populate(Fixture* f) {
  Batch batch;
  for (int i = 0; i < kReadRecords; ++i) {
    f->keys.push_back(RecordKey(i));
    batch.Put(f->keys.back(), Completed(i));
    if (batch.count() == kPopulateBatch || i + 1 == kReadRecords) {
      IDEM_RETURN_IF_ERROR(f->store->Write(&batch, /*sync=*/false));
      batch.Clear();
    }
  }
  for (int i = 0; i < kMissKeys; ++i) f->miss_keys.push_back(RecordKey(kReadRecords + i));
  // Everything into SST files: reads go through the block cache and the
  // bloom filter, not the memtable.
  IDEM_RETURN_IF_ERROR(f->store->CompactAll());
  // Warm the block cache (it holds the whole data set): BM_GetHit measures
  // the hot path, not a pread and a decompression per read.
  Record r;
  bool found = false;
  for (const std::string& key : f->keys) IDEM_RETURN_IF_ERROR(f->store->Get(key, &r, &found));
  return Status::OK();
}

Fixture& ReadFixture() {
  static Fixture f("read");
  static bool populated = false;
  if (!populated) {
    populated = true;
    if (f.status.ok()) f.status = Populate(&f);
  }
  return f;
}

Fixture& WriteFixture() {
  static Fixture f("write");
  if (f.keys.empty()) {
    for (int i = 0; i < kWriteKeys; ++i) f.keys.push_back(RecordKey(i));
  }
  return f;
}

// Reads keys[i % size] in turn. The keys are hashes, so consecutive reads
// land in unrelated blocks.
void RunGet(benchmark::State& state, const std::vector<std::string>& keys, bool want_found) {
  Fixture& f = ReadFixture();
  if (!f.status.ok()) {
    state.SkipWithError(f.status.ToString().c_str());
    return;
  }
  Record r;
  bool found = false;
  size_t i = 0;
  for (auto _ : state) {
    const Status s = f.store->Get(keys[i], &r, &found);
    if (!s.ok() || found != want_found) {
      state.SkipWithError(s.ok() ? "unexpected found/not found" : s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_GetHit(benchmark::State& state) { RunGet(state, ReadFixture().keys, true); }
BENCHMARK(BM_GetHit)->UseRealTime();

void BM_GetMiss(benchmark::State& state) { RunGet(state, ReadFixture().miss_keys, false); }
BENCHMARK(BM_GetMiss)->UseRealTime();

// Writes `n` records (a fresh Batch::Put each, encoding included) into the
// write fixture. Returns the batch's bytes, or -1 after SkipWithError.
int64_t WriteBatchOf(benchmark::State& state, Fixture& f, Batch* batch, const Record& r, int n,
                     bool sync) {
  batch->Clear();
  for (int i = 0; i < n; ++i) {
    batch->Put(f.keys[f.next], r);
    if (++f.next == f.keys.size()) f.next = 0;
  }
  const Status s = f.store->Write(batch, sync);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return -1;
  }
  return static_cast<int64_t>(batch->bytes());
}

// Args: records per batch, sync (0 or 1).
void BM_Write(benchmark::State& state) {
  Fixture& f = WriteFixture();
  if (!f.status.ok()) {
    state.SkipWithError(f.status.ToString().c_str());
    return;
  }
  const int n = static_cast<int>(state.range(0));
  const bool sync = state.range(1) != 0;
  const Record r = Completed(1);
  Batch batch;
  int64_t bytes = 0;
  for (auto _ : state) {
    const int64_t b = WriteBatchOf(state, f, &batch, r, n, sync);
    if (b < 0) break;
    bytes += b;
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Write)->ArgNames({"batch", "sync"})->ArgsProduct({{1, 16, 128}, {0}})->UseRealTime();
BENCHMARK(BM_Write)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{1, 16, 128}, {1}})
    ->UseRealTime()
    ->MinTime(kSyncMinTime);

// SyncWal with nothing new in the WAL: the floor of a sync.
void BM_SyncWalIdle(benchmark::State& state) {
  Fixture& f = WriteFixture();
  if (!f.status.ok()) {
    state.SkipWithError(f.status.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    const Status s = f.store->SyncWal();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SyncWalIdle)->UseRealTime()->MinTime(kSyncMinTime);

// Group commit as the daemon does it: `writes` unsynced one-record writes,
// then one SyncWal that makes them all durable. Compare with
// BM_Write/batch:1/sync:1 per record. Arg: writes per sync.
void BM_GroupCommit(benchmark::State& state) {
  Fixture& f = WriteFixture();
  if (!f.status.ok()) {
    state.SkipWithError(f.status.ToString().c_str());
    return;
  }
  const int writes = static_cast<int>(state.range(0));
  const Record r = Completed(1);
  Batch batch;
  for (auto _ : state) {
    int done = 0;
    while (done < writes && WriteBatchOf(state, f, &batch, r, 1, /*sync=*/false) >= 0) ++done;
    if (done < writes) break;  // already skipped with the error
    const Status s = f.store->SyncWal();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * writes);
}
BENCHMARK(BM_GroupCommit)
    ->ArgName("writes")
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->MinTime(kSyncMinTime);

}  // namespace
}  // namespace idem::storage
