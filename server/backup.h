// Online backups for idemd: POST /backup on the admin port writes a RocksDB
// checkpoint (a consistent copy, hard-linked where it can be) into a directory
// below the backup root (--backup-dir), on a thread of its own so the io
// thread keeps serving. At most one backup runs at a time.
//
// Where a backup may go: the request names the target directory. A relative
// path is resolved inside the root; an absolute one must lie inside it after
// lexical normalization. ".." components, NUL and control characters are
// refused outright, and before writing, the canonical path of the target's
// parent (symlinks resolved) must lie inside the canonical root, so a symlink
// in the root cannot lead the backup elsewhere. Missing directories between
// the root and the target are created; the target itself must not exist.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "server/admin_http.h"
#include "storage/store.h"

namespace idem::server {

// Longest backup path accepted, in bytes.
inline constexpr size_t kMaxBackupPathBytes = 4096;

// An HTTP status and the one-line message for it (200: the absolute target).
struct BackupVerdict {
  int status = 200;
  std::string message;
};

// Resolves the request body `text` (whitespace-trimmed) against the absolute,
// normalized `root` without touching the file system: 400 for an empty, too
// long, NUL-, control-character- or ".."-bearing path, 403 for an absolute
// path outside the root, 409 for the root itself; else 200 and *target set.
BackupVerdict ResolveBackupTarget(const std::filesystem::path& root, std::string_view text,
                                  std::filesystem::path* target);

class BackupRunner {
 public:
  // `root` is --backup-dir (made absolute against the working directory);
  // `store` must stay open until Wait() returned.
  static Status Create(boost::asio::io_context& io, storage::Store* store, const std::string& root,
                       std::unique_ptr<BackupRunner>* out);
  // Waits for a running backup.
  ~BackupRunner();
  BackupRunner(const BackupRunner&) = delete;
  BackupRunner& operator=(const BackupRunner&) = delete;

  // Handles one POST /backup (io's thread): answers 400/403 at once, 409 if
  // a backup is running, else runs the checkpoint on the backup thread and
  // responds on io's thread when it is done.
  void Start(std::string body, AdminHttp::Respond respond);

  // Blocks until a running backup finished; no backup starts afterwards.
  // Call after io stopped and before the store closes (not on io's thread
  // while it runs: the backup's completion is posted there).
  void Wait();

  // True from a Start that launched a backup until its answer is sent (io's
  // thread, or after io stopped).
  bool running() const { return *running_; }
  const std::filesystem::path& root() const { return root_; }

 private:
  BackupRunner(boost::asio::io_context& io, storage::Store* store, std::filesystem::path root);
  // The backup thread: file-system checks, then the checkpoint.
  BackupVerdict Run(const std::filesystem::path& target) const;

  boost::asio::io_context& io_;
  storage::Store* const store_;
  const std::filesystem::path root_;
  // Read and written on io's thread only; shared with the completion.
  const std::shared_ptr<bool> running_ = std::make_shared<bool>(false);
  boost::asio::thread_pool pool_{1};
};

}  // namespace idem::server
