#include "storage/wal_prefill.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <string>

namespace idem::storage {

namespace {

// A write-ahead log directly in `dir`, where RocksDB keeps them.
bool IsWalFile(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/' && IsWalFileName(std::string_view(path).substr(dir.size() + 1));
}

class PrefilledWal final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  PrefilledWal(std::unique_ptr<rocksdb::FSWritableFile> target, int fd, uint64_t chunk)
      : FSWritableFileOwnerWrapper(std::move(target)), fd_(fd), chunk_(chunk) {}
  ~PrefilledWal() override { StopFilling(); }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    FillAhead(data.size());
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    FillAhead(data.size());
    return target()->Append(data, options, info, dbg);
  }
  // Writes anywhere but the end would break the bookkeeping: stop filling.
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    StopFilling();
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    StopFilling();
    return target()->PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    StopFilling();
    return target()->Truncate(size, options, dbg);
  }
  // Trims the zeros: every append has reached the file by now. (RocksDB's
  // own Close trims too, but only after a preallocation of its own.)
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (fd_ >= 0 && filled_ > written_) (void)::ftruncate(fd_, static_cast<off_t>(written_));
    StopFilling();
    return target()->Close(options, dbg);
  }

 private:
  // Keeps at least half a chunk of zeros beyond the end of what RocksDB has
  // written, filling whole chunks. The zeros are written before RocksDB's own
  // write, so they never land on its data.
  void FillAhead(size_t n) {
    written_ += n;
    while (fd_ >= 0 && written_ + chunk_ / 2 > filled_) {
      static const char kZeros[64 << 10] = {};
      uint64_t end = filled_ + chunk_;
      for (uint64_t at = filled_; at < end;) {
        size_t len = static_cast<size_t>(std::min<uint64_t>(sizeof kZeros, end - at));
        ssize_t w = ::pwrite(fd_, kZeros, len, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          StopFilling();  // e.g. ENOSPC: RocksDB's own write reports it
          return;
        }
        at += static_cast<uint64_t>(w);
      }
      // Start writing the zeros back now, so the next WAL sync has little
      // more than its own data to wait for.
      (void)::sync_file_range(fd_, static_cast<off_t>(filled_), static_cast<off_t>(chunk_),
                              SYNC_FILE_RANGE_WRITE);
      filled_ = end;
    }
  }

  void StopFilling() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_;
  const uint64_t chunk_;
  uint64_t written_ = 0;  // bytes RocksDB appended
  uint64_t filled_ = 0;   // bytes of the file known to be allocated and written
};

class WalPrefillFs final : public rocksdb::FileSystemWrapper {
 public:
  WalPrefillFs(const std::shared_ptr<rocksdb::FileSystem>& target, uint64_t chunk, std::string dir)
      : FileSystemWrapper(target), chunk_(chunk), dir_(std::move(dir)) {}

  static const char* kClassName() { return "idem.WalPrefillFs"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(fname, options, result, dbg);
    if (!s.ok() || !IsWalFile(fname, dir_) || options.use_mmap_writes ||
        options.use_direct_writes) {
      return s;
    }
    int fd = ::open(fname.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return s;  // not fatal: the log is just not pre-filled
    *result = std::make_unique<PrefilledWal>(std::move(*result), fd, chunk_);
    return s;
  }

 private:
  const uint64_t chunk_;
  const std::string dir_;
};

}  // namespace

bool IsWalFileName(std::string_view name) {
  constexpr std::string_view kSuffix = ".log";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return false;
  }
  name.remove_suffix(kSuffix.size());
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

std::shared_ptr<rocksdb::FileSystem> NewWalPrefillFileSystem(
    const std::shared_ptr<rocksdb::FileSystem>& target, uint64_t chunk_bytes,
    const std::string& db_dir) {
  std::string dir = db_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return std::make_shared<WalPrefillFs>(target, chunk_bytes, std::move(dir));
}

}  // namespace idem::storage
