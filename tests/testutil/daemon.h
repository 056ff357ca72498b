// Black-box test helpers: start the real idemd binary on a free loopback port
// with its own data directory, and talk to it over a real socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"

namespace idem::testutil {

// The idemd built next to the tests (IDEM_IDEMD_PATH at compile time).
std::string IdemdPath();

// A running idemd child process. Destruction kills it (SIGKILL) if running.
class Daemon {
 public:
  Daemon() = default;
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts idemd with --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
  // --data-dir `data_dir` plus `extra_args`, and waits (bounded) until it logs
  // its ports. False (with the log in *error) if it does not come up.
  bool Start(const std::string& data_dir, const std::vector<std::string>& extra_args,
             std::string* error);
  // Sends `signo` and waits (bounded) for the exit; returns the exit status,
  // or 128+signal when killed by a signal, or -1 on timeout.
  int Stop(int signo = 15, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap.
  void Kill();

  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  pid_t pid() const { return pid_; }
  // Everything the daemon wrote to stderr so far.
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::string log_path_;
};

// Runs idemd with `args` to completion (bounded); returns its exit status and
// fills *output with stdout+stderr.
int RunIdemd(const std::vector<std::string>& args, std::string* output,
             std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A blocking protocol client over one TCP connection (tests only).
class Client {
 public:
  Client() = default;
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool Connect(uint16_t port);
  void Close();
  bool connected() const { return fd_ >= 0; }

  // Raw bytes, for framing tests.
  bool SendRaw(const std::string& bytes);
  bool Send(const idem::v1::Request& request);
  // Reads one Response; false on EOF, error or timeout.
  bool Receive(idem::v1::Response* response,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Send then Receive (the next answer, whatever its id).
  idem::v1::Response Call(const idem::v1::Request& request);
  // True when the server closed the connection (EOF) within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  protocol::FrameDecoder decoder_{64u << 20};
};

// The frame (length prefix + payload) of `request`, for raw sends.
std::string FrameOf(const idem::v1::Request& request);

// Request builders.
idem::v1::Request ReserveReq(uint64_t id, const std::string& scope, const std::string& key,
                             const std::string& fingerprint = "", uint32_t lease_ms = 0,
                             uint32_t wait_ms = 0);
idem::v1::Request CompleteReq(uint64_t id, const std::string& scope, const std::string& key,
                              uint64_t token, int32_t status, const std::string& body);
idem::v1::Request ReleaseReq(uint64_t id, const std::string& scope, const std::string& key,
                             uint64_t token);
idem::v1::Request RenewReq(uint64_t id, const std::string& scope, const std::string& key,
                           uint64_t token, uint32_t lease_ms);
idem::v1::Request LookupReq(uint64_t id, const std::string& scope, const std::string& key);
idem::v1::Request PurgeReq(uint64_t id, const std::string& scope, const std::string& key);
idem::v1::Request HelloReq(uint64_t id, const std::string& token, uint32_t version = 1);
idem::v1::Request PingReq(uint64_t id, const std::string& payload = "");

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string head;
  std::string body;
};
// One blocking HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
HttpReply Http(uint16_t port, const std::string& method, const std::string& path,
               const std::string& body = "");
// A GET; returns the status code (0 on failure) and fills *body.
int HttpGet(uint16_t port, const std::string& path, std::string* body);

}  // namespace idem::testutil
