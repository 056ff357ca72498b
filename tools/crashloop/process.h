// A child idemd for the crash loop: started on a loopback port picked by the
// kernel (--listen 127.0.0.1:0, the port parsed from its log), killed with
// SIGKILL at will, restarted on the same data directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace idem::crashloop {

class IdemdProcess {
 public:
  // `log_path` collects the daemon's stdout and stderr over every start.
  IdemdProcess(std::string idemd_path, std::string data_dir, std::string log_path,
               std::vector<std::string> extra_args);
  ~IdemdProcess();  // SIGKILLs a running daemon
  IdemdProcess(const IdemdProcess&) = delete;
  IdemdProcess& operator=(const IdemdProcess&) = delete;

  // Starts idemd and waits (at most `timeout`) for its "listening on" line.
  // False, with the reason and the new part of the log in *error.
  bool Start(std::string* error, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap (waits at most 30 s).
  void Kill();
  // Sends SIGTERM and waits up to `timeout`; the exit status, 128+signal, or
  // -1 when it had to be killed.
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& log_path() const { return log_path_; }
  // The log written since the last Start.
  std::string RecentLog() const;

 private:
  std::string idemd_path_;
  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  size_t log_offset_ = 0;
};

// The directory holding the running executable (from /proc/self/exe).
std::string SelfDir();

// Creates a fresh directory under $TMPDIR (or /tmp); empty on failure.
std::string MakeTempDir(const std::string& prefix);

// Removes a directory tree (best effort).
void RemoveTree(const std::string& path);

}  // namespace idem::crashloop
