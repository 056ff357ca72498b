#include "protocol/client.h"

#include <optional>

namespace idem::client {

namespace v1 = idem::v1;

namespace {

Status RemoteError(const v1::Response& resp) {
  return Status::Remote(resp.error().code(), resp.error().message(), resp.error().retry_after_ms());
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)) {}

Client::~Client() {
  if (conn_) conn_->Close();
}

bool Client::connected() const { return conn_ && conn_->connected(); }

const v1::HelloReply& Client::hello() const {
  static const v1::HelloReply kEmpty;
  return conn_ ? conn_->hello() : kEmpty;
}

Status Client::Connect() {
  if (conn_) conn_->Close();
  conn_.reset();
  io_.restart();
  auto conn = AsyncConnection::Create(io_, options_);
  // Shared with the callback: it must not refer to this frame if it ever
  // ran after Connect returned.
  auto outcome = std::make_shared<std::optional<Status>>();
  conn->Connect([outcome](const Status& st) { *outcome = st; });
  while (!outcome->has_value() && io_.run_one() > 0) {
  }
  if (!outcome->has_value()) {
    conn->Close();
    return Status::IOError("connecting to " + options_.endpoint + ": did not finish");
  }
  if (!(*outcome)->ok()) return **outcome;
  conn_ = std::move(conn);
  return Status::OK();
}

StatusOr<v1::Response> Client::Call(v1::Request request) {
  io_.restart();
  // Let a close that happened since the last call (the server went away)
  // be noticed now, so this call reconnects instead of failing on a dead
  // socket. Nothing has been sent yet: this is not a re-send.
  if (conn_) io_.poll();
  if (!connected()) IDEM_RETURN_IF_ERROR(Connect());
  io_.restart();
  struct Outcome {
    bool done = false;
    Status status;
    v1::Response response;
  };
  // Shared with the callback: it must not refer to this frame if it ever
  // ran after Call returned.
  auto outcome = std::make_shared<Outcome>();
  conn_->Call(std::move(request), [outcome](const Status& st, v1::Response* resp) {
    outcome->status = st;
    if (resp != nullptr) outcome->response.Swap(resp);
    outcome->done = true;
  });
  while (!outcome->done && io_.run_one() > 0) {
  }
  if (!outcome->done) {
    // Should not happen (a connection always has a read pending); if it
    // does, fail this call and drop the connection rather than wait forever.
    conn_->Close();
    conn_.reset();
    return Status::IOError("the call to " + options_.endpoint + " did not finish");
  }
  if (!outcome->status.ok()) return outcome->status;
  if (outcome->response.has_error()) return RemoteError(outcome->response);
  return std::move(outcome->response);
}

StatusOr<v1::ReserveReply> Client::Reserve(std::string_view scope, std::string_view key,
                                           const ReserveOptions& o) {
  v1::Request req;
  auto* r = req.mutable_reserve();
  r->set_scope(std::string(scope));
  r->set_key(std::string(key));
  r->set_fingerprint(o.fingerprint);
  r->set_lease_ms(o.lease_ms);
  r->set_retention_ms(o.retention_ms);
  r->set_wait_ms(o.wait_ms);
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_reserve());
}

StatusOr<v1::CompleteReply> Client::Complete(std::string_view scope, std::string_view key,
                                             uint64_t token, int32_t status, std::string_view body,
                                             uint64_t retention_ms) {
  v1::Request req;
  auto* c = req.mutable_complete();
  c->set_scope(std::string(scope));
  c->set_key(std::string(key));
  c->set_token(token);
  c->mutable_result()->set_status(status);
  c->mutable_result()->set_body(std::string(body));
  c->set_retention_ms(retention_ms);
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_complete());
}

StatusOr<v1::ReleaseReply> Client::Release(std::string_view scope, std::string_view key,
                                           uint64_t token) {
  v1::Request req;
  req.mutable_release()->set_scope(std::string(scope));
  req.mutable_release()->set_key(std::string(key));
  req.mutable_release()->set_token(token);
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_release());
}

StatusOr<v1::RenewReply> Client::Renew(std::string_view scope, std::string_view key, uint64_t token,
                                       uint32_t lease_ms) {
  v1::Request req;
  req.mutable_renew()->set_scope(std::string(scope));
  req.mutable_renew()->set_key(std::string(key));
  req.mutable_renew()->set_token(token);
  req.mutable_renew()->set_lease_ms(lease_ms);
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_renew());
}

StatusOr<v1::LookupReply> Client::Lookup(std::string_view scope, std::string_view key) {
  v1::Request req;
  req.mutable_lookup()->set_scope(std::string(scope));
  req.mutable_lookup()->set_key(std::string(key));
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_lookup());
}

StatusOr<v1::PurgeReply> Client::Purge(std::string_view scope, std::string_view key) {
  v1::Request req;
  req.mutable_purge()->set_scope(std::string(scope));
  req.mutable_purge()->set_key(std::string(key));
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_purge());
}

StatusOr<v1::ScanReply> Client::Scan(const v1::Scan& scan) {
  v1::Request req;
  *req.mutable_scan() = scan;
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_scan());
}

StatusOr<v1::StatsReply> Client::Stats() {
  v1::Request req;
  req.mutable_stats();
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_stats());
}

StatusOr<v1::PingReply> Client::Ping(std::string_view payload) {
  v1::Request req;
  req.mutable_ping()->set_payload(std::string(payload));
  auto resp = Call(std::move(req));
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_ping());
}

ClientPool::ClientPool(Options options, size_t max_clients)
    : options_(std::move(options)), max_clients_(std::max<size_t>(max_clients, 1)) {}

ClientPool::~ClientPool() = default;

ClientPool::Lease::~Lease() {
  if (client_) pool_->Return(std::move(client_));
}

ClientPool::Lease ClientPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || created_ < max_clients_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(c));
  }
  ++created_;
  return Lease(this, std::make_unique<Client>(options_));
}

void ClientPool::Return(std::unique_ptr<Client> client) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(client));
  }
  cv_.notify_one();
}

}  // namespace idem::client
