#include "server/backup.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <exception>
#include <system_error>
#include <utility>

namespace idem::server {

namespace fs = std::filesystem;
namespace net = boost::asio;

namespace {

constexpr char kWhitespace[] = " \t\r\n\f\v";

std::string_view Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

// Lexically normal, without a trailing separator ("/a/b/" -> "/a/b").
fs::path Normalize(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (n.has_relative_path() && !n.has_filename()) n = n.parent_path();
  return n;
}

// True when `p` is `root` or below it, component by component.
bool Within(const fs::path& root, const fs::path& p) {
  auto q = p.begin();
  for (const fs::path& part : root) {
    if (q == p.end() || *q != part) return false;
    ++q;
  }
  return true;
}

std::string Quote(const fs::path& p) { return "\"" + p.string() + "\""; }

}  // namespace

BackupVerdict ResolveBackupTarget(const fs::path& root, std::string_view text, fs::path* target) {
  const std::string_view path = Trim(text);
  if (path.empty()) return {400, "the backup path is empty"};
  if (path.size() > kMaxBackupPathBytes) {
    return {400,
            "the backup path is longer than " + std::to_string(kMaxBackupPathBytes) + " bytes"};
  }
  if (path.find('\0') != std::string_view::npos) return {400, "the backup path contains NUL"};
  if (std::any_of(path.begin(), path.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return {400, "the backup path contains a control character"};
  }
  const fs::path requested{std::string(path)};
  for (const fs::path& part : requested) {
    if (part == "..") return {400, "the backup path must not contain \"..\""};
  }
  fs::path resolved = Normalize(requested.is_absolute() ? requested : root / requested);
  if (!Within(root, resolved)) {
    return {403, Quote(resolved) + " is outside the backup root " + Quote(root)};
  }
  if (resolved == root) return {409, Quote(root) + " already exists (it is the backup root)"};
  *target = std::move(resolved);
  return {200, target->string()};
}

Status BackupRunner::Create(net::io_context& io, storage::Store* store, const std::string& root,
                            std::unique_ptr<BackupRunner>* out) {
  if (root.empty()) return Status::InvalidArgument("--backup-dir is empty");
  std::error_code ec;
  fs::path absolute = fs::absolute(root, ec);
  if (ec) return Status::InvalidArgument("--backup-dir " + root + ": " + ec.message());
  out->reset(new BackupRunner(io, store, Normalize(absolute)));
  return Status::OK();
}

BackupRunner::BackupRunner(net::io_context& io, storage::Store* store, fs::path root)
    : io_(io), store_(store), root_(std::move(root)) {}

BackupRunner::~BackupRunner() { Wait(); }

void BackupRunner::Wait() { pool_.join(); }

void BackupRunner::Start(std::string body, AdminHttp::Respond respond) {
  fs::path target;
  BackupVerdict verdict = ResolveBackupTarget(root_, body, &target);
  if (verdict.status == 200 && *running_) verdict = {409, "a backup is already running"};
  if (verdict.status != 200) {
    spdlog::info("backup refused ({}): {}", verdict.status, verdict.message);
    return respond(verdict.status, verdict.message + "\n");
  }
  *running_ = true;
  net::post(pool_, [this, target = std::move(target), respond = std::move(respond),
                    running = running_]() mutable {
    const auto started = std::chrono::steady_clock::now();
    BackupVerdict result;
    try {
      result = Run(target);
    } catch (const std::exception& e) {
      result = {500, std::string("backup failed: ") + e.what()};
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (result.status == 200) {
      spdlog::info("backup {} written in {} ms", target.string(), ms);
    } else {
      spdlog::warn("backup {} failed after {} ms ({}): {}", target.string(), ms, result.status,
                   result.message);
    }
    // The flag lives on io's thread; the answer may go from anywhere.
    net::post(io_, [running = std::move(running), respond = std::move(respond),
                    result = std::move(result)] {
      *running = false;
      respond(result.status, result.message + "\n");
    });
  });
}

BackupVerdict BackupRunner::Run(const fs::path& target) const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return {500, "creating the backup root " + Quote(root_) + ": " + ec.message()};
  const fs::path real_root = fs::canonical(root_, ec);
  if (ec) return {500, "the backup root " + Quote(root_) + ": " + ec.message()};
  // Symlinks: the parent, resolved, must still be inside the resolved root.
  // Checked before anything about the target is revealed.
  const fs::path parent = target.parent_path();
  fs::path real_parent = fs::weakly_canonical(parent, ec);
  if (ec) return {500, Quote(parent) + ": " + ec.message()};
  auto escapes = [&] {
    return BackupVerdict{403, Quote(target) + " leads outside the backup root " + Quote(root_) +
                                  " through a symbolic link"};
  };
  if (!Within(real_root, real_parent)) return escapes();
  const fs::file_status status = fs::symlink_status(target, ec);
  if (fs::exists(status)) return {409, Quote(target) + " already exists"};
  if (status.type() != fs::file_type::not_found) {
    return {500, Quote(target) + ": " + ec.message()};
  }
  // RocksDB stages the copy in TARGET.tmp and empties a leftover one first:
  // it must not be a symlink (that would empty its destination).
  fs::path staging = target;
  staging += ".tmp";
  const fs::file_status staging_status = fs::symlink_status(staging, ec);
  if (fs::exists(staging_status) && !fs::is_directory(staging_status)) {
    return {409, Quote(staging) + " exists and is not a directory"};
  }
  fs::create_directories(parent, ec);
  if (ec) return {500, "creating " + Quote(parent) + ": " + ec.message()};
  real_parent = fs::canonical(parent, ec);
  if (ec) return {500, Quote(parent) + ": " + ec.message()};
  if (!Within(real_root, real_parent)) return escapes();
  Status st = store_->Checkpoint(target.string());
  if (!st.ok()) return {500, "checkpoint " + Quote(target) + " failed: " + st.ToString()};
  return {200, target.string()};
}

}  // namespace idem::server
