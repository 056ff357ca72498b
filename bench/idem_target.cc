// idem-bench's idemd driver, on the client library's pipelined connection.
#include "bench/target.h"
#include "protocol/async_connection.h"

namespace idem::bench {

namespace {

namespace v1 = idem::v1;

constexpr std::chrono::milliseconds kNoTimeout{0};

Reply ErrorReply(const Status& st, const v1::Response* resp) {
  Reply r;
  r.kind = Kind::kError;
  r.error = !st.ok() ? st.ToString()
                     : v1::ErrorCode_Name(resp->error().code()) + ": " + resp->error().message();
  return r;
}

class IdemTarget final : public Target {
 public:
  IdemTarget(boost::asio::io_context& io, const TargetOptions& o) : options_(o) {
    client::Options co;
    co.endpoint = o.endpoint;
    co.token = o.token;
    co.client_name = "idem-bench";
    co.call_timeout = kNoTimeout;
    conn_ = client::AsyncConnection::Create(io, co);
  }

  void Connect(std::function<void(const Status&)> done) override { conn_->Connect(done); }

  void Reserve(const std::string& key, uint32_t lease_ms, uint32_t wait_ms, ReplyFn done) override {
    v1::Request req;
    auto* r = req.mutable_reserve();
    r->set_scope(options_.scope);
    r->set_key(key);
    r->set_lease_ms(lease_ms);
    r->set_wait_ms(wait_ms);
    r->set_retention_ms(options_.retention_ms);
    Send(std::move(req), std::move(done), [](const v1::Response& resp, Reply* out) {
      switch (resp.reserve().outcome()) {
        case v1::RESERVE_ACQUIRED:
          out->kind = Kind::kAcquired;
          out->token = resp.reserve().token();
          break;
        case v1::RESERVE_IN_PROGRESS: out->kind = Kind::kInProgress; break;
        case v1::RESERVE_COMPLETED: out->kind = Kind::kReplayed; break;
        case v1::RESERVE_MISMATCH: out->kind = Kind::kMismatch; break;
        default: out->kind = Kind::kError;
      }
    });
  }

  void Complete(const std::string& key, uint64_t token, const std::string& body,
                ReplyFn done) override {
    v1::Request req;
    auto* c = req.mutable_complete();
    c->set_scope(options_.scope);
    c->set_key(key);
    c->set_token(token);
    c->mutable_result()->set_status(201);
    c->mutable_result()->set_body(body);
    c->set_retention_ms(options_.retention_ms);
    Send(std::move(req), std::move(done), [](const v1::Response& resp, Reply* out) {
      out->kind =
          resp.complete().outcome() == v1::COMPLETE_OK ? Kind::kCompleted : Kind::kNotCompleted;
    });
  }

  void Lookup(const std::string& key, ReplyFn done) override {
    v1::Request req;
    req.mutable_lookup()->set_scope(options_.scope);
    req.mutable_lookup()->set_key(key);
    Send(std::move(req), std::move(done), [](const v1::Response& resp, Reply* out) {
      switch (resp.lookup().state()) {
        case v1::KEY_COMPLETED: out->kind = Kind::kFound; break;
        case v1::KEY_ABSENT: out->kind = Kind::kAbsent; break;
        default: out->kind = Kind::kFoundInProgress;
      }
    });
  }

 private:
  template <typename Map>
  void Send(v1::Request req, ReplyFn done, Map map) {
    conn_->Call(
        std::move(req),
        [done = std::move(done), map](const Status& st, v1::Response* resp) {
          if (!st.ok() || resp->has_error()) return done(ErrorReply(st, resp));
          Reply r;
          map(*resp, &r);
          done(r);
        },
        kNoTimeout);
  }

  TargetOptions options_;
  std::shared_ptr<client::AsyncConnection> conn_;
};

}  // namespace

std::unique_ptr<Target> NewIdemTarget(boost::asio::io_context& io, const TargetOptions& options) {
  return std::make_unique<IdemTarget>(io, options);
}

}  // namespace idem::bench
