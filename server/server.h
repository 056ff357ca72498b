// idemd: owns the store, the executor, the acceptor, the live connections,
// the admin HTTP port, the signal handling and the shutdown sequence.
//
//   std::unique_ptr<Server> server;
//   Status s = Server::Create(config, &server);   // opens storage, binds ports
//   int exit_code = server->Run();                // until SIGTERM/SIGINT
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "server/admin_http.h"
#include "server/auth.h"
#include "server/backup.h"
#include "server/config.h"
#include "server/connection.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "storage/clock.h"
#include "storage/store.h"
#include "storage/token_source.h"

namespace idem::server {

inline constexpr char kServerVersion[] = "0.1.0";

class Server {
 public:
  // Opens the data directory and binds the listeners; nothing is served yet.
  // InvalidArgument/IOError naming the directory, file or address on failure
  // (the daemon then exits with status 2).
  static Status Create(const Config& config, std::unique_ptr<Server>* out);
  ~Server();

  // Serves until a signal (or Shutdown()) and the drain complete; closes the
  // store. Returns the process exit status (0 after a clean shutdown).
  int Run();
  // Starts the graceful shutdown (what SIGTERM does). io thread or any
  // thread via post.
  void Shutdown();

  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }

  // For connections.
  const Config& config() const { return config_; }
  const AuthTable* auth() const { return auth_ ? &*auth_ : nullptr; }
  Metrics& metrics() { return metrics_; }
  Executor& executor() { return *executor_; }
  void FillStats(const Principal& principal, idem::v1::StatsReply* out);
  void FillHello(const Principal& principal, idem::v1::HelloReply* out);
  void OnClosed(Connection* connection, const char* reason);
  // The connection's answers are written at the end of this io-loop turn, by
  // one posted handler for all the connections queued in the turn (a group
  // commit answers dozens at once).
  void QueueWrite(std::shared_ptr<Connection> connection);

 private:
  explicit Server(const Config& config);
  Status OpenStorage();
  Status Listen();
  Status StartAdmin();
  void Accept();
  void OnAccept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void Sweep();
  void ScheduleCompactionCheck();
  void OnSignal(const boost::system::error_code& ec, int signo);
  void FinishShutdown();
  bool healthy() const;
  // Why healthy() is false.
  std::string UnhealthyReason() const;

  Config config_;
  std::optional<AuthTable> auth_;
  Metrics metrics_;
  // Leases and retention are judged on this (storage/clock.h): it outlives
  // the store and the executor, declared below.
  SteadyWallClock clock_{SystemClock::Default()};
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  boost::asio::signal_set signals_{io_, SIGINT, SIGTERM};
  boost::asio::steady_timer sweep_timer_{io_};
  boost::asio::steady_timer accept_retry_timer_{io_};
  boost::asio::steady_timer compaction_timer_{io_};
  boost::asio::steady_timer drain_timer_{io_};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::TokenSource> tokens_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<BackupRunner> backup_;  // with the admin port; before Store::Close, Wait()
  std::unique_ptr<AdminHttp> admin_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Connection>> write_queue_;  // QueueWrite
  std::vector<std::shared_ptr<Connection>> writing_now_;  // its capacity is reused
  uint16_t port_ = 0;
  bool draining_ = false;
  bool drained_ = false;  // the executor's drain completed
  bool finished_ = false;
  bool storage_failed_ = false;
  int signals_seen_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace idem::server
