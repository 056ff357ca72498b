// The RocksDB store: point reads, batched writes with a choice of sync, WAL
// syncs for group commit, ordered scans, checkpoints. Records are addressed by
// keys from key_codec.h. No RocksDB type appears in this header.
//
// Thread-safety: every method may be called from any thread concurrently
// (RocksDB serializes writes); Close and Reopen wait for the calls in progress
// and hold off new ones.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/clock.h"
#include "storage/record.h"
#include "util/status.h"

namespace rocksdb {
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace idem::storage {

class TtlCompactionFilter;

struct StoreOptions {
  // Directory of the database; created if missing.
  std::string path;
  // Size of the shared LRU block cache. Default: 64 MiB.
  size_t block_cache_bytes = 64ull << 20;
  // SST files older than this are recompacted (so the TTL filter revisits them
  // even when nothing else writes). 0 disables. Default: 1 day.
  uint64_t periodic_compaction_seconds = 24 * 3600;
  // Background flush and compaction threads. Default: 2.
  int max_background_jobs = 2;
  // Alternative Env (tests that simulate failures). Not owned. Default: the OS.
  rocksdb::Env* env = nullptr;
  // Write-ahead logs are filled with zeros this far ahead of their end, so a
  // commit's WAL sync overwrites instead of growing the file (wal_prefill.h).
  // Only with the OS file system (env unset). 0 disables. Default: 1 MiB.
  uint64_t wal_prefill_bytes = 1ull << 20;
};

// A set of changes applied atomically by Store::Write.
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  void Put(std::string_view key, const Record& record);
  void PutRaw(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  void Clear();
  // Number of Put and Delete entries.
  uint32_t count() const;
  size_t bytes() const;

 private:
  friend class Store;
  std::unique_ptr<rocksdb::WriteBatch> rep_;
  std::string scratch_;  // reused encoding buffer
};

struct ScanOptions {
  std::string tenant;
  std::string scope;     // ignored when all_scopes
  std::string prefix;    // keys starting with these bytes
  std::string cursor;    // from a previous ScanPage; empty to start
  uint32_t limit = 100;  // entries per page, at least 1
  bool all_scopes = false;
  // Records examined per page (live or expired) before the page ends early
  // with a cursor, so a range full of expired records cannot stall the caller.
  uint32_t max_examined = 10'000;
};

struct ScanItem {
  std::string scope;
  std::string key;
  Record record;
};

struct ScanPage {
  std::vector<ScanItem> items;
  std::string next_cursor;  // empty when the scan is done
};

class Store {
 public:
  // Opens (creating if missing) the database at options.path. `clock` decides
  // what the TTL filter drops and must outlive the store.
  static Status Open(const StoreOptions& options, const Clock* clock,
                     std::unique_ptr<Store>* store);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // *found is false when there is no value (expired records are returned:
  // judging expiry is the state machine's job). Corruption if the value does
  // not decode.
  Status Get(std::string_view key, Record* record, bool* found);

  // Applies `batch` atomically. With sync, returns after the WAL is
  // fdatasync'ed; without, after the write reached the OS (survives a killed
  // process, not a power cut).
  Status Write(Batch* batch, bool sync);
  // Makes every write that returned before this call durable (one fdatasync
  // of the WAL). May run concurrently with Write: that is group commit.
  Status SyncWal();

  // Free bytes on the data directory's file system.
  Status FreeBytes(uint64_t* bytes);
  // After a failed write or sync (the disk was full): closes the database
  // without syncing and opens it again, which replays the WAL; then one
  // synced write. When it succeeds, everything the store holds is durable and
  // writes work again. When it fails the store stays closed: every call
  // answers Unavailable (call Reopen again). Blocks other callers meanwhile.
  Status Reopen();

  // Live records of one tenant in (scope, key) order. InvalidArgument for a
  // cursor that does not belong to this scan.
  Status Scan(const ScanOptions& options, uint64_t now_ms, ScanPage* page);

  // Meta values (outside every tenant's key space).
  Status GetMeta(std::string_view name, std::string* value, bool* found);
  Status PutMetaSync(std::string_view name, std::string_view value);

  // A consistent copy of the database in `dir` (which must not exist): every
  // change made before the call, and no write-ahead log.
  Status Checkpoint(const std::string& dir);

  // Flushes memtables and compacts everything (tests and admin).
  Status CompactAll();
  // Schedules compaction of SST files older than periodic_compaction_seconds
  // (so the TTL filter drops their expired records) even when nothing writes.
  // The daemon calls this periodically. Returns before the compaction runs.
  Status TriggerPeriodicCompaction();
  // Physical record entries, expired included (tests).
  Status CountRecordEntries(uint64_t* count);
  // RocksDB's estimate of the number of keys.
  uint64_t EstimateKeys();

  // Syncs the WAL and closes. Further calls fail. Called by the destructor.
  Status Close();

 private:
  Store() = default;
  Status OpenDb();  // mu_ held (or no other thread yet)
  static Status Closed();

  StoreOptions options_;
  std::unique_ptr<TtlCompactionFilter> filter_;
  std::unique_ptr<rocksdb::Env> env_;  // outlives db_
  uint64_t periodic_compaction_seconds_ = 0;
  // A write or WAL sync failed: RocksDB must not be asked to sync again at
  // Close (its WAL writer asserts on that).
  std::atomic<bool> write_failed_{false};
  // Shared by every call that uses db_; exclusive for Close and Reopen.
  std::shared_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace idem::storage
