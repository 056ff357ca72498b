#include "tools/crashloop/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>
#include <thread>

#include "util/subprocess.h"

namespace idem::crashloop {

namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  if (offset >= size) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(size - offset, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

size_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

}  // namespace

IdemdProcess::IdemdProcess(std::string idemd_path, std::string data_dir, std::string log_path,
                           std::vector<std::string> extra_args)
    : idemd_path_(std::move(idemd_path)),
      data_dir_(std::move(data_dir)),
      log_path_(std::move(log_path)),
      extra_args_(std::move(extra_args)) {}

IdemdProcess::~IdemdProcess() { Kill(); }

bool IdemdProcess::Start(std::string* error, std::chrono::milliseconds timeout) {
  if (pid_ > 0) Kill();
  port_ = 0;
  log_offset_ = FileSize(log_path_);
  std::vector<std::string> args = {idemd_path_, "--listen",   "127.0.0.1:0", "--admin-listen",
                                   "off",       "--data-dir", data_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  int rc = 0;
  const pid_t pid = SpawnWithLog(args, log_path_, &rc);
  if (pid < 0) {
    *error = "cannot start " + idemd_path_ + ": " + std::strerror(rc);
    return false;
  }
  pid_ = pid;

  const std::regex port_re(R"(idemd \S+ listening on 127\.0\.0\.1:(\d+))");
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const std::string log = RecentLog();
    std::smatch m;
    if (std::regex_search(log, m, port_re)) {
      port_ = static_cast<uint16_t>(std::stoi(m[1]));
      if (port_ != 0) return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "idemd exited (status " + std::to_string(status) + ") before listening: " + log;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
  *error = "idemd did not log its port within " + std::to_string(timeout.count()) +
           " ms: " + RecentLog();
  return false;
}

void IdemdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  // Bounded: a process stuck in the kernel is given up on (a restart on the
  // same data directory then fails on its lock and is reported).
  WaitExit(pid_, std::chrono::seconds(30));
  pid_ = -1;
}

int IdemdProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int status = WaitExit(pid_, timeout);
  if (status == -1) {
    Kill();
    return -1;
  }
  pid_ = -1;
  return status;
}

std::string IdemdProcess::RecentLog() const { return ReadFrom(log_path_, log_offset_); }

std::string SelfDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return exe.parent_path().string();
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace idem::crashloop
