#include "storage/store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <mutex>
#include <shared_mutex>
#include <vector>

#include "storage/clock_env.h"
#include "storage/key_codec.h"
#include "storage/rocks_logger.h"
#include "storage/ttl_filter.h"
#include "storage/wal_prefill.h"

namespace idem::storage {

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsNoSpace()) return Status::ResourceExhausted(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  return Status::IOError(msg);
}

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

// After a write error RocksDB may recover in place (for ENOSPC, once its
// SstFileManager sees free space). This build then goes on writing through the
// WAL writer that saw the error and aborts on an assertion; so idem recovers
// by reopening the database instead (Store::Reopen), and RocksDB's own
// recovery is turned off.
class NoInPlaceRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status /*bg_error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Options MakeOptions(const StoreOptions& o, const TtlCompactionFilter* filter,
                             rocksdb::Env* env) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_background_jobs = o.max_background_jobs;
  options.use_fsync = false;  // fdatasync is enough for the WAL
  options.compaction_filter = filter;
  options.periodic_compaction_seconds = o.periodic_compaction_seconds;
  options.level_compaction_dynamic_level_bytes = true;
  options.env = env;
  // A bloom filter over whole keys in each memtable: a Get of an absent key
  // (every fresh Reserve) skips the skiplist walk, which profiling showed to
  // be ~40% of a Reserve's user-space instructions (BENCHMARKS.md). ~1.3 MiB
  // per 64 MiB memtable.
  options.memtable_prefix_bloom_size_ratio = 0.02;
  options.memtable_whole_key_filtering = true;
  // No LOG file on the data disk (see rocks_logger.h).
  options.info_log = NewSpdlogRocksLogger();
  options.listeners.push_back(std::make_shared<NoInPlaceRecovery>());

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  // Point reads of absent keys (every fresh Reserve) are answered by the bloom
  // filter without touching data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.optimize_filters_for_memory = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

}  // namespace

Batch::Batch() : rep_(std::make_unique<rocksdb::WriteBatch>()) {}
Batch::~Batch() = default;

void Batch::Put(std::string_view key, const Record& record) {
  scratch_.clear();
  EncodeRecord(record, &scratch_);
  PutRaw(key, scratch_);
}

void Batch::PutRaw(std::string_view key, std::string_view value) {
  // WriteBatch only fails here past its size limit (unset), so the status is
  // not interesting.
  (void)rep_->Put(ToSlice(key), ToSlice(value));
}

void Batch::Delete(std::string_view key) { (void)rep_->Delete(ToSlice(key)); }
void Batch::Clear() { rep_->Clear(); }
uint32_t Batch::count() const { return rep_->Count(); }
size_t Batch::bytes() const { return rep_->GetDataSize(); }

Status Store::Open(const StoreOptions& options, const Clock* clock, std::unique_ptr<Store>* store) {
  std::unique_ptr<Store> s(new Store());
  s->filter_ = std::make_unique<TtlCompactionFilter>(clock);
  if (options.env != nullptr) {
    s->env_ = std::make_unique<ClockEnv>(options.env, clock);
  } else {
    rocksdb::Env* os = rocksdb::Env::Default();
    std::shared_ptr<rocksdb::FileSystem> fs;
    if (options.wal_prefill_bytes > 0) {
      fs = NewWalPrefillFileSystem(os->GetFileSystem(), options.wal_prefill_bytes, options.path);
    }
    s->env_ = std::make_unique<ClockEnv>(os, clock, std::move(fs));
  }
  s->periodic_compaction_seconds_ = options.periodic_compaction_seconds;
  s->options_ = options;
  IDEM_RETURN_IF_ERROR(s->OpenDb());
  *store = std::move(s);
  return Status::OK();
}

Status Store::OpenDb() {
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs =
      rocksdb::DB::Open(MakeOptions(options_, filter_.get(), env_.get()), options_.path, &db);
  if (!rs.ok()) return FromRocks(rs, "opening the database in " + options_.path);
  db_.reset(db);
  write_failed_ = false;
  return Status::OK();
}

Store::~Store() { (void)Close(); }

Status Store::Closed() { return Status::Unavailable("the database is closed"); }

Status Store::Close() {
  std::unique_lock lock(mu_);
  if (!db_) return Status::OK();
  rocksdb::Status rs = write_failed_ ? rocksdb::Status::OK() : db_->SyncWAL();
  rocksdb::Status close = db_->Close();
  db_.reset();
  if (!rs.ok()) return FromRocks(rs, "syncing the WAL at close");
  return FromRocks(close, "closing the database");
}

Status Store::Get(std::string_view key, Record* record, bool* found) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &value);
  if (rs.IsNotFound()) {
    *found = false;
    return Status::OK();
  }
  if (!rs.ok()) return FromRocks(rs, "reading a record");
  *found = true;
  return DecodeRecord(value, record);
}

Status Store::Write(Batch* batch, bool sync) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status rs = db_->Write(wo, batch->rep_.get());
  if (!rs.ok()) write_failed_ = true;
  return FromRocks(rs, "writing a batch");
}

Status Store::SyncWal() {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  rocksdb::Status rs = db_->SyncWAL();
  if (!rs.ok()) write_failed_ = true;
  return FromRocks(rs, "syncing the WAL");
}

Status Store::FreeBytes(uint64_t* bytes) {
  return FromRocks(env_->GetFreeSpace(options_.path, bytes), "reading the free disk space");
}

Status Store::Reopen() {
  std::unique_lock lock(mu_);
  if (db_) {
    // No WAL sync: after an I/O error RocksDB's WAL writer asserts on one.
    (void)db_->Close();
    db_.reset();
  }
  IDEM_RETURN_IF_ERROR(OpenDb());
  // The replayed WAL was flushed at open; one synced write makes sure.
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Delete(wo, MetaKey("reopen_probe")), "writing after reopening");
}

Status Store::GetMeta(std::string_view name, std::string* value, bool* found) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), MetaKey(name), value);
  *found = rs.ok();
  if (rs.IsNotFound()) return Status::OK();
  return FromRocks(rs, "reading meta value");
}

Status Store::PutMetaSync(std::string_view name, std::string_view value) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Put(wo, MetaKey(name), ToSlice(value)), "writing meta value");
}

Status Store::Checkpoint(const std::string& dir) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  rocksdb::Checkpoint* raw = nullptr;
  IDEM_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: flush first, so the copy needs no WAL replay.
  IDEM_RETURN_IF_ERROR(
      FromRocks(checkpoint->CreateCheckpoint(dir, 0), "creating a checkpoint in " + dir));
  // The copy holds every change made before the flush. Its WAL copies could
  // only add later changes, and a copy of the live, pre-filled log can skip
  // a record (wal_prefill.h): without them the checkpoint is exactly the
  // flushed state.
  std::vector<std::string> children;
  rocksdb::Env* env = db_->GetEnv();
  IDEM_RETURN_IF_ERROR(FromRocks(env->GetChildren(dir, &children), "listing " + dir));
  for (const std::string& name : children) {
    if (IsWalFileName(name)) {
      IDEM_RETURN_IF_ERROR(
          FromRocks(env->DeleteFile(dir + "/" + name), "removing the log copy " + name));
    }
  }
  return Status::OK();
}

Status Store::CompactAll() {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  IDEM_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flushing"));
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(db_->CompactRange(cro, nullptr, nullptr), "compacting");
}

Status Store::CountRecordEntries(uint64_t* count) {
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  *count = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, kRecordTag);
  for (it->Seek(start); it->Valid() && it->key()[0] == kRecordTag; it->Next()) ++*count;
  return FromRocks(it->status(), "counting records");
}

Status Store::TriggerPeriodicCompaction() {
  if (periodic_compaction_seconds_ == 0) return Status::OK();
  std::shared_lock lock(mu_);
  if (!db_) return Closed();
  // Setting an option installs a new version, which recomputes which files
  // are due for periodic compaction and schedules them. Without this, RocksDB
  // looks only when a flush or compaction happens, i.e. never on an idle store.
  const std::string value = std::to_string(periodic_compaction_seconds_);
  return FromRocks(db_->SetOptions({{"periodic_compaction_seconds", value}}),
                   "scheduling periodic compaction");
}

uint64_t Store::EstimateKeys() {
  std::shared_lock lock(mu_);
  uint64_t n = 0;
  if (!db_) return 0;
  if (!db_->GetIntProperty("rocksdb.estimate-num-keys", &n)) return 0;
  return n;
}

}  // namespace idem::storage
