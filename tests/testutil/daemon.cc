#include "tests/testutil/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "util/subprocess.h"

namespace idem::testutil {

namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int ConnectLoopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string IdemdPath() { return IDEM_IDEMD_PATH; }

Daemon::~Daemon() {
  if (pid_ > 0) Kill();
}

bool Daemon::Start(const std::string& data_dir, const std::vector<std::string>& extra_args,
                   std::string* error) {
  log_path_ = data_dir + ".log";
  port_ = 0;
  admin_port_ = 0;
  std::vector<std::string> args = {IdemdPath(),   "--listen",   "127.0.0.1:0", "--admin-listen",
                                   "127.0.0.1:0", "--data-dir", data_dir};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const size_t log_offset = ReadFile(log_path_).size();
  pid_ = SpawnWithLog(args, log_path_);
  if (pid_ <= 0) {
    *error = "spawn failed";
    return false;
  }
  const std::regex port_re(R"(idemd \S+ listening on \S+:(\d+))");
  const std::regex admin_re(R"(admin http listening on port (\d+))");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    const std::string log = ReadFile(log_path_).substr(log_offset);
    std::smatch m;
    if (std::regex_search(log, m, port_re)) port_ = static_cast<uint16_t>(std::stoi(m[1]));
    if (std::regex_search(log, m, admin_re)) admin_port_ = static_cast<uint16_t>(std::stoi(m[1]));
    if (port_ != 0 && (admin_port_ != 0 || log.find("data dir") != std::string::npos)) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "idemd exited: " + log;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *error = "idemd did not come up: " + ReadFile(log_path_);
  Kill();
  return false;
}

int Daemon::Stop(int signo, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signo);
  const int status = WaitExit(pid_, timeout);
  if (status == -1) {
    Kill();
    return -1;
  }
  pid_ = -1;
  return status;
}

void Daemon::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string Daemon::Log() const { return ReadFile(log_path_); }

int RunIdemd(const std::vector<std::string>& args, std::string* output,
             std::chrono::milliseconds timeout) {
  char templ[] = "/tmp/idem-run-XXXXXX";
  const int fd = mkstemp(templ);
  if (fd >= 0) close(fd);
  std::vector<std::string> full = {IdemdPath()};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = SpawnWithLog(full, templ);
  int status = pid > 0 ? WaitExit(pid, timeout) : -1;
  if (status == -1 && pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  *output = ReadFile(templ);
  unlink(templ);
  return status;
}

Client::~Client() { Close(); }

bool Client::Connect(uint16_t port) {
  Close();
  fd_ = ConnectLoopback(port);
  return fd_ >= 0;
}

void Client::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  decoder_ = protocol::FrameDecoder(64u << 20);
}

bool Client::SendRaw(const std::string& bytes) {
  return fd_ >= 0 && WriteAll(fd_, bytes.data(), bytes.size());
}

bool Client::Send(const idem::v1::Request& request) {
  std::string frame;
  return protocol::AppendFrame(&frame, request) && SendRaw(frame);
}

bool Client::Receive(idem::v1::Response* response, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (fd_ >= 0) {
    std::string_view payload;
    if (decoder_.Next(&payload) == protocol::FrameDecoder::Result::kFrame) {
      return response->ParseFromArray(payload.data(), static_cast<int>(payload.size()));
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  return false;
}

idem::v1::Response Client::Call(const idem::v1::Request& request) {
  idem::v1::Response response;
  if (!Send(request) || !Receive(&response)) {
    response.Clear();
    response.mutable_error()->set_code(idem::v1::ERROR_UNSPECIFIED);
    response.mutable_error()->set_message("test client: no answer");
  }
  return response;
}

bool Client::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (fd_ >= 0 && Clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) < 0) return false;
    if (p.revents == 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0) return false;
  }
  return false;
}

idem::v1::Request ReserveReq(uint64_t id, const std::string& scope, const std::string& key,
                             const std::string& fingerprint, uint32_t lease_ms, uint32_t wait_ms) {
  idem::v1::Request r;
  r.set_id(id);
  auto* op = r.mutable_reserve();
  op->set_scope(scope);
  op->set_key(key);
  op->set_fingerprint(fingerprint);
  op->set_lease_ms(lease_ms);
  op->set_wait_ms(wait_ms);
  return r;
}

idem::v1::Request CompleteReq(uint64_t id, const std::string& scope, const std::string& key,
                              uint64_t token, int32_t status, const std::string& body) {
  idem::v1::Request r;
  r.set_id(id);
  auto* op = r.mutable_complete();
  op->set_scope(scope);
  op->set_key(key);
  op->set_token(token);
  op->mutable_result()->set_status(status);
  op->mutable_result()->set_body(body);
  return r;
}

idem::v1::Request ReleaseReq(uint64_t id, const std::string& scope, const std::string& key,
                             uint64_t token) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_release()->set_scope(scope);
  r.mutable_release()->set_key(key);
  r.mutable_release()->set_token(token);
  return r;
}

idem::v1::Request RenewReq(uint64_t id, const std::string& scope, const std::string& key,
                           uint64_t token, uint32_t lease_ms) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_renew()->set_scope(scope);
  r.mutable_renew()->set_key(key);
  r.mutable_renew()->set_token(token);
  r.mutable_renew()->set_lease_ms(lease_ms);
  return r;
}

idem::v1::Request LookupReq(uint64_t id, const std::string& scope, const std::string& key) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_lookup()->set_scope(scope);
  r.mutable_lookup()->set_key(key);
  return r;
}

idem::v1::Request PurgeReq(uint64_t id, const std::string& scope, const std::string& key) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_purge()->set_scope(scope);
  r.mutable_purge()->set_key(key);
  return r;
}

idem::v1::Request HelloReq(uint64_t id, const std::string& token, uint32_t version) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_hello()->set_protocol_version(version);
  r.mutable_hello()->set_token(token);
  r.mutable_hello()->set_client_name("idem-tests");
  return r;
}

idem::v1::Request PingReq(uint64_t id, const std::string& payload) {
  idem::v1::Request r;
  r.set_id(id);
  r.mutable_ping()->set_payload(payload);
  return r;
}

std::string FrameOf(const idem::v1::Request& request) {
  std::string out;
  EXPECT_TRUE(protocol::AppendFrame(&out, request));
  return out;
}

HttpReply Http(uint16_t port, const std::string& method, const std::string& path,
               const std::string& body) {
  HttpReply reply;
  const int fd = ConnectLoopback(port);
  if (fd < 0) return reply;
  const std::string req = method + " " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                          "Content-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  std::string resp;
  if (WriteAll(fd, req.data(), req.size())) {
    char buf[65536];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 30'000) <= 0) break;
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t sp = resp.find(' ');
  const size_t split = resp.find("\r\n\r\n");
  if (sp == std::string::npos || split == std::string::npos) return reply;
  reply.status = std::atoi(resp.c_str() + sp + 1);
  reply.head = resp.substr(0, split);
  reply.body = resp.substr(split + 4);
  return reply;
}

int HttpGet(uint16_t port, const std::string& path, std::string* body) {
  HttpReply reply = Http(port, "GET", path);
  if (reply.status != 0) *body = std::move(reply.body);
  return reply.status;
}

}  // namespace idem::testutil
