// A RocksDB FileSystem that can simulate a power cut: everything not yet on
// stable storage is dropped.
//
// The model (what survives a cut):
//   * File data: for each file written through this FileSystem, the bytes up
//     to its size at the last successful Sync or Fsync (counted in bytes whose
//     Append had returned when the sync started). Later bytes are lost.
//     RangeSync is not a sync: the Posix file system implements it with
//     sync_file_range(SYNC_FILE_RANGE_WRITE), which starts writeback but
//     waits for nothing and flushes no metadata.
//   * A file created here and never synced is deleted (not even its directory
//     entry is trusted); one that replaced an existing name is left empty.
//   * Directory entries: a file created in, or renamed into, a directory after
//     the last Fsync of that directory (through an FSDirectory opened here)
//     loses that entry: a created file is deleted; a renamed file moves back to
//     its old name when that name was durable, and the name it replaced gets
//     back its durable contents (the CURRENT file case). Deletions are taken as
//     durable (as RocksDB's FaultInjectionTestFS does), and so are directories
//     created here.
//   * Files that existed before this FileSystem saw them are durable as they
//     are.
// Not modelled: chains of renames within one directory-sync window restore only
// the first source; LinkFile and NewRandomRWFile are passed through untracked;
// ReuseWritableFile (WAL recycling) is refused with NotSupported, so a store
// that turns recycling on makes this model fail loudly instead of silently.
//
// After the cut instant (Freeze()) the process goes on seeing a working file
// system, as it would until the power actually dies (the page cache still
// works): writes, creations, truncations and renames are applied, and every
// call succeeds. But nothing becomes durable any more: syncs and directory
// syncs count for nothing, and deletions are not applied (reported done, the
// file stays so that PowerCut() can give back its durable contents).
// PowerCut() then rolls the disk back to what was durable at the cut instant.
// Why not fail everything after the cut with IOError: this RocksDB build keeps
// its assertions, and once a WritableFileWriter has seen an error the SyncWAL
// of Store::Close() aborts the process. Why not drop writes after the cut:
// RocksDB reads back files it has just written (a flush, a recovery at open).
//
// Use:
//   auto fs = std::make_shared<PowerCutFs>();
//   std::unique_ptr<rocksdb::Env> env = NewPowerCutEnv(fs);
//   ... open the store with env.get(), work ...
//   fs->Freeze();      // the instant of the cut
//   ... ignore the store's answers from now on; destroy it (a normal Close) ...
//   fs->PowerCut();    // the disk as it would be after the power came back
//
// Thread-safe.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace idem::testutil {

// What PowerCut() did.
struct PowerCutStats {
  uint64_t files_tracked = 0;
  uint64_t files_truncated = 0;  // lost a tail of unsynced bytes
  uint64_t bytes_dropped = 0;    // in those tails
  uint64_t files_deleted = 0;    // never synced, or an entry never made durable
  uint64_t renames_undone = 0;   // moved back, or old contents restored
};

class PowerCutFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit PowerCutFs(
      const std::shared_ptr<rocksdb::FileSystem>& target = rocksdb::FileSystem::Default());
  ~PowerCutFs() override;

  static const char* kClassName() { return "idem.PowerCutFs"; }
  const char* Name() const override { return kClassName(); }

  // The instant of the cut (see above): from now on nothing becomes durable;
  // a sync still running now counts as not done.
  void Freeze();
  bool frozen() const;
  // Freezes right after the n-th (n >= 1) mutation from now on: an append, a
  // sync, a truncation, a creation, a rename, a deletion or a directory sync,
  // whichever thread makes it. So a cut can land anywhere, e.g. between an
  // SST's sync and its directory's, or inside a Close.
  void FreezeAfter(uint64_t n);
  // Mutations so far.
  uint64_t mutations() const;

  // Makes the disk what it would be after the power came back (see the model
  // above), then forgets everything and unfreezes: files on disk now count as
  // durable. Freezes first if not yet frozen. Call once every file written
  // through this FileSystem is closed (the database is closed or destroyed).
  rocksdb::IOStatus PowerCut(PowerCutStats* stats = nullptr);

  // FileSystem.
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size, const rocksdb::IOOptions& opts,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& opts, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& opts,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname, const rocksdb::IOOptions& opts,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& opts,
                              rocksdb::IODebugContext* dbg) override;

  // Per-file state; public for the file wrapper in the .cc.
  struct FileState {
    uint64_t size = 0;          // bytes appended whose Append returned
    uint64_t synced = 0;        // durable prefix
    bool ever_synced = false;   // false: the whole file is lost at the cut
    bool replaced_old = false;  // the name existed (durably) before creation
  };
  // Hooks for the file and directory wrappers. Each does nothing once frozen.
  void OnAppended(const std::shared_ptr<FileState>& f, uint64_t offset, uint64_t n,
                  bool positioned);
  uint64_t SizeForSync(const std::shared_ptr<FileState>& f);
  void OnSynced(const std::shared_ptr<FileState>& f, uint64_t size);
  void OnTruncated(const std::shared_ptr<FileState>& f, uint64_t size);
  // Entries of `dir` not yet durable; after an fsync of `dir` that started
  // with those, OnDirSynced makes them durable.
  std::set<std::string> NewEntries(const std::string& dir) const;
  void OnDirSynced(const std::string& dir, const std::set<std::string>& names);

 private:
  // How to undo a directory entry that never became durable.
  struct EntryUndo {
    std::optional<std::string> restore_src;   // move the file back here
    std::optional<std::string> old_contents;  // then give the name these
  };

  bool EntryIsNew(const std::string& path) const;  // requires mu_
  // What `path` holds on stable storage; nullopt: the name would not exist.
  std::optional<std::string> DurableContents(const std::string& path);  // requires mu_

  void CountMutation();  // requires mu_

  mutable std::mutex mu_;
  bool frozen_ = false;
  uint64_t mutations_ = 0;
  uint64_t freeze_at_ = 0;                                               // 0: no planned freeze
  std::map<std::string, std::shared_ptr<FileState>> files_;              // by normalized path
  std::map<std::string, std::map<std::string, EntryUndo>> new_entries_;  // dir -> name -> undo
};

// An Env whose file system is `fs` (threads and clock are the default Env's),
// to pass as StoreOptions.env.
std::unique_ptr<rocksdb::Env> NewPowerCutEnv(const std::shared_ptr<PowerCutFs>& fs);

}  // namespace idem::testutil
