#include "server/server.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <cstdlib>
#include <filesystem>

namespace idem::server {

namespace v1 = idem::v1;
using boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr auto kDrainGrace = std::chrono::seconds(5);

Status Resolve(boost::asio::io_context& io, const std::string& flag, const HostPort& at,
               tcp::endpoint* out) {
  error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(at.host, std::to_string(at.port), ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument(flag + " " + at.host + ": cannot resolve (" + ec.message() +
                                   ")");
  }
  *out = results.begin()->endpoint();
  return Status::OK();
}

}  // namespace

Server::Server(const Config& config) : config_(config) {}

Server::~Server() = default;

Status Server::Create(const Config& config, std::unique_ptr<Server>* out) {
  std::unique_ptr<Server> s(new Server(config));
  s->started_ = std::chrono::steady_clock::now();
  if (!config.auth_file.empty()) {
    AuthTable table;
    IDEM_RETURN_IF_ERROR(AuthTable::Load(config.auth_file, &table));
    s->auth_ = std::move(table);
  }
  IDEM_RETURN_IF_ERROR(s->OpenStorage());
  IDEM_RETURN_IF_ERROR(s->Listen());
  IDEM_RETURN_IF_ERROR(s->StartAdmin());
  *out = std::move(s);
  return Status::OK();
}

Status Server::OpenStorage() {
  std::error_code fs_ec;
  std::filesystem::create_directories(config_.data_dir, fs_ec);
  if (fs_ec) {
    return Status::InvalidArgument("--data-dir " + config_.data_dir + ": " + fs_ec.message());
  }
  storage::StoreOptions options;
  options.path = config_.data_dir;
  options.block_cache_bytes = config_.block_cache_bytes;
  options.wal_prefill_bytes = config_.wal_prefill_bytes;
  options.periodic_compaction_seconds = config_.periodic_compaction_seconds;
  // One clock for the executor and the TTL filter (see SteadyWallClock).
  Status st = storage::Store::Open(options, &clock_, &store_);
  if (!st.ok()) return Status::InvalidArgument("--data-dir: " + st.message());
  IDEM_RETURN_IF_ERROR(
      storage::TokenSource::Open(store_.get(), &tokens_).WithContext("--data-dir"));
  Executor::Options eo;
  eo.durability = config_.durability;
  eo.limits = config_.limits;
  eo.max_waiters = config_.max_waiters;
  eo.max_waiters_per_key = config_.max_waiters_per_key;
  eo.record_cache_bytes = config_.record_cache_bytes;
  executor_ = std::make_unique<Executor>(io_, store_.get(), tokens_.get(), &clock_, &metrics_, eo);
  executor_->set_on_failure([this](const Status&) { storage_failed_ = true; });
  return Status::OK();
}

Status Server::Listen() {
  HostPort at;
  IDEM_RETURN_IF_ERROR(ParseHostPort("--listen", config_.listen, &at));
  tcp::endpoint endpoint;
  IDEM_RETURN_IF_ERROR(Resolve(io_, "--listen", at, &endpoint));
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(tcp::socket::max_listen_connections, ec);
  if (ec) return Status::IOError("--listen " + config_.listen + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return Status::OK();
}

Status Server::StartAdmin() {
  if (config_.admin_listen == "off") return Status::OK();
  HostPort at;
  IDEM_RETURN_IF_ERROR(ParseHostPort("--admin-listen", config_.admin_listen, &at));
  AdminHttp::Handlers handlers;
  handlers.metrics = [this] {
    Metrics::Gauges g;
    g.connections = static_cast<uint32_t>(connections_.size());
    g.waiters = executor_->waiters();
    g.keys_estimate = store_ ? store_->EstimateKeys() : 0;
    g.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    g.healthy = healthy();
    g.disk_full = executor_->disk_full();
    return metrics_.RenderPrometheus(g);
  };
  handlers.healthy = [this] { return healthy(); };
  handlers.health_detail = [this] { return UnhealthyReason(); };
  IDEM_RETURN_IF_ERROR(BackupRunner::Create(io_, store_.get(), config_.backup_dir, &backup_));
  handlers.backup = [this](std::string body, AdminHttp::Respond respond) {
    if (!healthy()) return respond(503, UnhealthyReason());
    backup_->Start(std::move(body), std::move(respond));
  };
  return AdminHttp::Start(io_, at, std::move(handlers), &admin_);
}

bool Server::healthy() const {
  return !draining_ && !storage_failed_ && !(executor_ && executor_->disk_full());
}

std::string Server::UnhealthyReason() const {
  if (storage_failed_) return "storage failed\n";
  if (draining_) return "draining\n";
  return "disk full: changes refused until space returns\n";
}

int Server::Run() {
  spdlog::info("idemd {} listening on {}:{}", kServerVersion,
               acceptor_.local_endpoint().address().to_string(), port_);
  if (admin_) {
    spdlog::info("admin http listening on port {}", admin_->port());
    spdlog::info("backups (POST /backup) go below {}", backup_->root().string());
  }
  spdlog::info("data dir {}, durability {}, auth {}", config_.data_dir,
               config_.durability == Durability::kSync ? "sync" : "async", auth_ ? "on" : "off");
  signals_.async_wait([this](const error_code& ec, int signo) { OnSignal(ec, signo); });
  Accept();
  Sweep();
  ScheduleCompactionCheck();
  io_.run();
  if (backup_) {
    if (backup_->running()) spdlog::info("waiting for the backup in progress");
    backup_->Wait();  // it reads the store
  }
  executor_.reset();
  tokens_.reset();
  Status st = store_->Close();
  if (!st.ok()) {
    spdlog::error("closing the store: {}", st.ToString());
    return 1;
  }
  spdlog::info("idemd stopped");
  return storage_failed_ ? 1 : 0;
}

void Server::Accept() {
  acceptor_.async_accept(
      [this](const error_code& ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void Server::OnAccept(const error_code& ec, tcp::socket socket) {
  if (ec == boost::asio::error::operation_aborted || draining_) return;
  if (ec) {
    // EMFILE and friends: back off instead of spinning.
    spdlog::warn("accept failed: {}", ec.message());
    accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_.async_wait([this](const error_code& e) {
      if (!e) Accept();
    });
    return;
  }
  const bool reject = connections_.size() >= config_.max_connections;
  auto conn = std::make_shared<Connection>(std::move(socket), this);
  if (reject) {
    metrics_.CountConnectionRejected();
  } else {
    metrics_.CountConnectionAccepted();
  }
  connections_.emplace(conn.get(), conn);
  conn->Start(reject);
  Accept();
}

void Server::OnClosed(Connection* connection, const char* reason) {
  metrics_.CountConnectionClosed(reason);
  executor_->DropSession(connection);
  // Deferred: the connection may be deep in its own call stack.
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  auto keep = std::move(it->second);
  connections_.erase(it);
  boost::asio::post(io_, [keep = std::move(keep)] {});
  if (drained_ && connections_.empty()) FinishShutdown();
}

void Server::QueueWrite(std::shared_ptr<Connection> connection) {
  write_queue_.push_back(std::move(connection));
  if (write_queue_.size() > 1) return;  // the handler is posted already
  boost::asio::post(io_, [this] {
    writing_now_.swap(write_queue_);
    for (const auto& c : writing_now_) c->WriteQueued();
    writing_now_.clear();
  });
}

void Server::Sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(connections_.size());
    for (auto& [ptr, conn] : connections_) all.push_back(conn);
    for (auto& conn : all) conn->CheckTimeouts(now);
    Sweep();
  });
}

void Server::ScheduleCompactionCheck() {
  compaction_timer_.expires_after(std::chrono::milliseconds(config_.compaction_check_interval_ms));
  compaction_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    Status st = store_->TriggerPeriodicCompaction();
    if (!st.ok()) spdlog::warn("periodic compaction: {}", st.ToString());
    ScheduleCompactionCheck();
  });
}

void Server::OnSignal(const error_code& ec, int signo) {
  if (ec) return;
  if (++signals_seen_ > 1) {
    spdlog::warn("second signal ({}): exiting at once", signo);
    std::_Exit(1);
  }
  spdlog::info("signal {}: shutting down gracefully (a second signal exits at once)", signo);
  signals_.async_wait([this](const error_code& e, int s) { OnSignal(e, s); });
  Shutdown();
}

void Server::Shutdown() {
  if (draining_) return;
  draining_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  for (auto& [ptr, conn] : connections_) conn->StopReading();
  executor_->Drain([this] {
    // Everything answered is durable; let the sockets drain, bounded.
    drained_ = true;
    std::vector<std::shared_ptr<Connection>> all;
    for (auto& [ptr, conn] : connections_) all.push_back(conn);
    for (auto& conn : all) conn->CloseAfterFlush("shutdown");
    if (connections_.empty()) return FinishShutdown();
    drain_timer_.expires_after(kDrainGrace);
    drain_timer_.async_wait([this](const error_code& e) {
      if (!e) FinishShutdown();
    });
  });
}

void Server::FinishShutdown() {
  if (finished_) return;
  finished_ = true;
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [ptr, conn] : connections_) all.push_back(conn);
  for (auto& conn : all) conn->Close("shutdown");
  error_code ignored;
  sweep_timer_.cancel();
  compaction_timer_.cancel();
  accept_retry_timer_.cancel();
  drain_timer_.cancel();
  signals_.cancel(ignored);
  if (admin_) admin_->Stop();
  io_.stop();
}

void Server::FillStats(const Principal& principal, v1::StatsReply* out) {
  (void)principal;
  out->set_server_version(kServerVersion);
  out->set_uptime_ms(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now() - started_)
                                               .count()));
  out->set_keys_estimate(store_->EstimateKeys());
  out->set_connections(static_cast<uint32_t>(connections_.size()));
  out->set_waiters(executor_->waiters());
  for (const auto& [name, value] : metrics_.Counters()) (*out->mutable_counters())[name] = value;
}

void Server::FillHello(const Principal& principal, v1::HelloReply* out) {
  out->set_protocol_version(1);
  out->set_server_version(kServerVersion);
  out->set_tenant(principal.tenant);
  out->set_role(static_cast<v1::Role>(principal.role));
  v1::Limits* l = out->mutable_limits();
  l->set_max_frame_bytes(config_.max_frame_bytes);
  l->set_max_scope_bytes(config_.limits.max_scope_bytes);
  l->set_max_key_bytes(config_.limits.max_key_bytes);
  l->set_max_fingerprint_bytes(config_.limits.max_fingerprint_bytes);
  l->set_max_body_bytes(config_.limits.max_body_bytes);
  l->set_default_lease_ms(config_.limits.default_lease_ms);
  l->set_max_lease_ms(config_.limits.max_lease_ms);
  l->set_default_retention_ms(config_.limits.default_retention_ms);
  l->set_max_retention_ms(config_.limits.max_retention_ms);
  l->set_max_wait_ms(config_.limits.max_wait_ms);
  l->set_max_inflight(config_.max_inflight);
}

}  // namespace idem::server
