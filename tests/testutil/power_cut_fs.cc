#include "tests/testutil/power_cut_fs.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

namespace idem::testutil {

namespace {

using rocksdb::FileOptions;
using rocksdb::FSDirectory;
using rocksdb::FSRandomRWFile;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// Collapses repeated slashes and drops a trailing one, so that the names
// RocksDB builds ("dir" + "/" + "000012.log") and the directory it opens
// ("dir") agree.
std::string Normalize(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// (directory, name) of a normalized path.
std::pair<std::string, std::string> Split(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// The Posix FileSystem has no FileSystem::Truncate: the cut truncates with
// truncate(2) (the target is the local file system).
IOStatus TruncatePath(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) == 0) return IOStatus::OK();
  return IOStatus::IOError("truncating " + path, std::strerror(errno));
}

class PowerCutFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  PowerCutFile(std::unique_ptr<FSWritableFile> target, PowerCutFs* fs,
               std::shared_ptr<PowerCutFs::FileState> state)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), state_(std::move(state)) {}

  // After the cut the process still sees every write (the page cache works);
  // only syncs stop counting.
  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) fs_->OnAppended(state_, 0, data.size(), /*positioned=*/false);
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) fs_->OnAppended(state_, 0, data.size(), /*positioned=*/false);
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) fs_->OnAppended(state_, offset, data.size(), /*positioned=*/true);
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    IOStatus s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) fs_->OnAppended(state_, offset, data.size(), /*positioned=*/true);
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_->OnTruncated(state_, size);
    return s;
  }
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    return target()->Flush(options, dbg);
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    if (fs_->frozen()) return IOStatus::OK();
    // Only bytes whose Append returned before the sync started are covered.
    const uint64_t size = fs_->SizeForSync(state_);
    IOStatus s = target()->Sync(options, dbg);
    if (s.ok()) fs_->OnSynced(state_, size);
    return s;
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (fs_->frozen()) return IOStatus::OK();
    const uint64_t size = fs_->SizeForSync(state_);
    IOStatus s = target()->Fsync(options, dbg);
    if (s.ok()) fs_->OnSynced(state_, size);
    return s;
  }
  // Not a durability point (see the header).
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions& options,
                    IODebugContext* dbg) override {
    return target()->Allocate(offset, len, options, dbg);
  }
  // Closing always releases the descriptor, frozen or not; it changes no data
  // the model cares about.
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    return target()->Close(options, dbg);
  }

 private:
  PowerCutFs* fs_;
  std::shared_ptr<PowerCutFs::FileState> state_;
};

class PowerCutDir final : public rocksdb::FSDirectoryWrapper {
 public:
  PowerCutDir(std::unique_ptr<FSDirectory> target, PowerCutFs* fs, std::string path)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (fs_->frozen()) return IOStatus::OK();
    const std::set<std::string> names = fs_->NewEntries(path_);
    IOStatus s = FSDirectoryWrapper::Fsync(options, dbg);
    if (s.ok()) fs_->OnDirSynced(path_, names);
    return s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    if (fs_->frozen()) return IOStatus::OK();
    const std::set<std::string> names = fs_->NewEntries(path_);
    IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
    if (s.ok()) fs_->OnDirSynced(path_, names);
    return s;
  }

 private:
  PowerCutFs* fs_;
  std::string path_;
};

}  // namespace

PowerCutFs::PowerCutFs(const std::shared_ptr<rocksdb::FileSystem>& target)
    : FileSystemWrapper(target) {}

PowerCutFs::~PowerCutFs() = default;

void PowerCutFs::Freeze() {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = true;
}

bool PowerCutFs::frozen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frozen_;
}

void PowerCutFs::FreezeAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  freeze_at_ = mutations_ + n;
}

uint64_t PowerCutFs::mutations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mutations_;
}

void PowerCutFs::CountMutation() {
  ++mutations_;
  if (freeze_at_ != 0 && mutations_ >= freeze_at_) frozen_ = true;
}

void PowerCutFs::OnAppended(const std::shared_ptr<FileState>& f, uint64_t offset, uint64_t n,
                            bool positioned) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!positioned) {
    f->size += n;
  } else {
    // Overwriting synced bytes makes them unsynced again (conservative).
    f->synced = std::min(f->synced, offset);
    f->size = std::max(f->size, offset + n);
  }
  CountMutation();
}

uint64_t PowerCutFs::SizeForSync(const std::shared_ptr<FileState>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  return f->size;
}

void PowerCutFs::OnSynced(const std::shared_ptr<FileState>& f, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_) return;  // a sync still running at the cut instant did not finish
  f->synced = std::max(f->synced, std::min(size, f->size));
  f->ever_synced = true;
  CountMutation();
}

void PowerCutFs::OnTruncated(const std::shared_ptr<FileState>& f, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  f->size = size;
  // After the cut a truncation is not durable either. (Below the durable
  // prefix it would destroy bytes the cut cannot bring back; RocksDB does not.)
  if (!frozen_) f->synced = std::min(f->synced, size);
  CountMutation();
}

std::set<std::string> PowerCutFs::NewEntries(const std::string& dir) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> names;
  auto it = new_entries_.find(dir);
  if (it != new_entries_.end()) {
    for (const auto& entry : it->second) names.insert(entry.first);
  }
  return names;
}

void PowerCutFs::OnDirSynced(const std::string& dir, const std::set<std::string>& names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_) return;  // still running at the cut instant: did not finish
  auto it = new_entries_.find(dir);
  if (it == new_entries_.end()) {
    CountMutation();
    return;
  }
  // Only the entries made before the fsync started are covered.
  for (const std::string& name : names) it->second.erase(name);
  CountMutation();
}

bool PowerCutFs::EntryIsNew(const std::string& path) const {
  const auto [dir, name] = Split(path);
  auto it = new_entries_.find(dir);
  return it != new_entries_.end() && it->second.count(name) > 0;
}

std::optional<std::string> PowerCutFs::DurableContents(const std::string& path) {
  std::string contents;
  auto it = files_.find(path);
  if (it != files_.end() && !it->second->ever_synced) {
    if (it->second->replaced_old) return std::string();
    return std::nullopt;
  }
  if (!rocksdb::ReadFileToString(target(), path, &contents).ok()) return std::nullopt;
  if (it != files_.end()) contents.resize(std::min<uint64_t>(contents.size(), it->second->synced));
  return contents;
}

IOStatus PowerCutFs::NewWritableFile(const std::string& fname, const FileOptions& opts,
                                     std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string path = Normalize(fname);
  const bool existed = target()->FileExists(fname, IOOptions(), nullptr).ok();
  std::unique_ptr<FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  auto state = std::make_shared<FileState>();
  if (existed && !EntryIsNew(path)) {
    state->replaced_old = true;
  } else if (!existed) {
    const auto [dir, name] = Split(path);
    new_entries_[dir][name] = EntryUndo{};
  }
  files_[path] = state;
  CountMutation();
  *result = std::make_unique<PowerCutFile>(std::move(file), this, std::move(state));
  return IOStatus::OK();
}

IOStatus PowerCutFs::ReopenWritableFile(const std::string& fname, const FileOptions& opts,
                                        std::unique_ptr<FSWritableFile>* result,
                                        IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string path = Normalize(fname);
  const bool existed = target()->FileExists(fname, IOOptions(), nullptr).ok();
  uint64_t size = 0;
  if (existed) (void)target()->GetFileSize(fname, IOOptions(), &size, nullptr);
  std::unique_ptr<FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<FileState>& state = files_[path];
  if (state == nullptr) {
    state = std::make_shared<FileState>();
    if (existed) {
      // Untracked until now: what is on the disk predates us and is durable.
      state->size = state->synced = size;
      state->ever_synced = true;
    } else {
      const auto [dir, name] = Split(path);
      new_entries_[dir][name] = EntryUndo{};
    }
  }
  *result = std::make_unique<PowerCutFile>(std::move(file), this, state);
  return IOStatus::OK();
}

IOStatus PowerCutFs::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                       const FileOptions&, std::unique_ptr<FSWritableFile>*,
                                       IODebugContext*) {
  return IOStatus::NotSupported("PowerCutFs does not model WAL recycling (recycle_log_file_num): ",
                                old_fname + " -> " + fname);
}

IOStatus PowerCutFs::NewRandomRWFile(const std::string& fname, const FileOptions& opts,
                                     std::unique_ptr<FSRandomRWFile>* result, IODebugContext* dbg) {
  return target()->NewRandomRWFile(fname, opts, result, dbg);
}

IOStatus PowerCutFs::NewDirectory(const std::string& name, const IOOptions& opts,
                                  std::unique_ptr<FSDirectory>* result, IODebugContext* dbg) {
  std::unique_ptr<FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, opts, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<PowerCutDir>(std::move(dir), this, Normalize(name));
  return IOStatus::OK();
}

IOStatus PowerCutFs::DeleteFile(const std::string& fname, const IOOptions& opts,
                                IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mu_);
  // After the cut a deletion is not durable: the file stays, to come back at
  // PowerCut() with its durable contents.
  if (frozen_) return IOStatus::OK();
  IOStatus s = target()->DeleteFile(fname, opts, dbg);
  if (!s.ok()) return s;
  const std::string path = Normalize(fname);
  files_.erase(path);
  const auto [dir, name] = Split(path);
  auto it = new_entries_.find(dir);
  if (it != new_entries_.end()) it->second.erase(name);
  CountMutation();
  return IOStatus::OK();
}

IOStatus PowerCutFs::Truncate(const std::string& fname, size_t size, const IOOptions& opts,
                              IODebugContext* dbg) {
  std::shared_ptr<FileState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(Normalize(fname));
    if (it != files_.end()) state = it->second;
  }
  IOStatus s = target()->Truncate(fname, size, opts, dbg);
  if (s.ok() && state != nullptr) OnTruncated(state, size);
  return s;
}

IOStatus PowerCutFs::RenameFile(const std::string& src, const std::string& dst,
                                const IOOptions& opts, IODebugContext* dbg) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string src_path = Normalize(src);
  const std::string dst_path = Normalize(dst);
  const auto [src_dir, src_name] = Split(src_path);
  const auto [dst_dir, dst_name] = Split(dst_path);

  // How to undo this rename if dst's directory is not synced before the cut.
  EntryUndo undo;
  if (EntryIsNew(src_path)) {
    undo.restore_src = new_entries_[src_dir][src_name].restore_src;  // a chain: first source
  } else {
    undo.restore_src = src_path;
  }
  if (target()->FileExists(dst, IOOptions(), nullptr).ok()) {
    if (EntryIsNew(dst_path)) {
      undo.old_contents = new_entries_[dst_dir][dst_name].old_contents;
    } else {
      undo.old_contents = DurableContents(dst_path);
    }
  }

  IOStatus s = target()->RenameFile(src, dst, opts, dbg);
  if (!s.ok()) return s;

  auto it = files_.find(src_path);
  if (it != files_.end()) {
    std::shared_ptr<FileState> state = it->second;
    files_.erase(it);
    files_[dst_path] = std::move(state);
  } else {
    files_.erase(dst_path);  // an untracked (durable) file now has this name
  }
  auto sit = new_entries_.find(src_dir);
  if (sit != new_entries_.end()) sit->second.erase(src_name);
  new_entries_[dst_dir][dst_name] = std::move(undo);
  CountMutation();
  return IOStatus::OK();
}

IOStatus PowerCutFs::LinkFile(const std::string& src, const std::string& dst, const IOOptions& opts,
                              IODebugContext* dbg) {
  return target()->LinkFile(src, dst, opts, dbg);
}

IOStatus PowerCutFs::CreateDir(const std::string& dirname, const IOOptions& opts,
                               IODebugContext* dbg) {
  return target()->CreateDir(dirname, opts, dbg);
}

IOStatus PowerCutFs::CreateDirIfMissing(const std::string& dirname, const IOOptions& opts,
                                        IODebugContext* dbg) {
  return target()->CreateDirIfMissing(dirname, opts, dbg);
}

IOStatus PowerCutFs::DeleteDir(const std::string& dirname, const IOOptions& opts,
                               IODebugContext* dbg) {
  if (frozen()) return IOStatus::OK();  // not durable after the cut: kept
  return target()->DeleteDir(dirname, opts, dbg);
}

IOStatus PowerCutFs::PowerCut(PowerCutStats* stats) {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = true;
  PowerCutStats local;
  PowerCutStats& st = stats != nullptr ? *stats : local;
  st = PowerCutStats{};
  st.files_tracked = files_.size();
  rocksdb::FileSystem* fs = target();
  const IOOptions io;
  IOStatus result;
  auto note = [&result](const IOStatus& s) {
    if (result.ok() && !s.ok()) result = s;
  };

  // 1. File data: keep the synced prefix; a never-synced file is gone.
  for (const auto& [path, f] : files_) {
    uint64_t actual = 0;
    if (!fs->GetFileSize(path, io, &actual, nullptr).ok()) continue;  // deleted meanwhile
    if (!f->ever_synced) {
      st.bytes_dropped += actual;
      if (f->replaced_old) {
        note(TruncatePath(path, 0));
        ++st.files_truncated;
      } else {
        note(fs->DeleteFile(path, io, nullptr));
        ++st.files_deleted;
      }
    } else if (actual > f->synced) {
      note(TruncatePath(path, f->synced));
      st.bytes_dropped += actual - f->synced;
      ++st.files_truncated;
    }
  }

  // 2. Directory entries never made durable.
  for (const auto& [dir, names] : new_entries_) {
    for (const auto& [name, undo] : names) {
      const std::string path = dir + "/" + name;
      if (fs->FileExists(path, io, nullptr).ok()) {
        if (undo.restore_src) {
          note(fs->RenameFile(path, *undo.restore_src, io, nullptr));
        } else {
          note(fs->DeleteFile(path, io, nullptr));
          if (!undo.old_contents) ++st.files_deleted;  // else: restored below
        }
      }
      if (undo.old_contents) {
        note(rocksdb::WriteStringToFile(fs, *undo.old_contents, path, /*should_sync=*/true));
      }
      if (undo.restore_src || undo.old_contents) ++st.renames_undone;
    }
  }

  files_.clear();
  new_entries_.clear();
  frozen_ = false;
  freeze_at_ = 0;
  return result;
}

std::unique_ptr<rocksdb::Env> NewPowerCutEnv(const std::shared_ptr<PowerCutFs>& fs) {
  return rocksdb::NewCompositeEnv(fs);
}

}  // namespace idem::testutil
