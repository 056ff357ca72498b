// A tiny single-threaded executor for storage tests: reads the record, asks
// the state machine, writes the decision. The daemon's executor does the same
// with group commit; this one syncs every write.
#pragma once

#include <memory>
#include <string>

#include "storage/key_codec.h"
#include "storage/state_machine.h"
#include "storage/store.h"
#include "storage/token_source.h"

namespace idem::storage::testing {

class Harness {
 public:
  Harness(Store* store, const Clock* clock) : store_(store), clock_(clock) {}

  Status Init() { return TokenSource::Open(store_, &tokens_); }

  Decision Reserve(const std::string& key, uint32_t lease_ms = 0, uint64_t retention_ms = 0) {
    ReserveOp op;
    op.lease_ms = lease_ms;
    op.retention_ms = retention_ms;
    return Apply(key, [&](const Record* cur, uint64_t now) {
      return DecideReserve(cur, op, now, tokens_->Peek(), limits_);
    });
  }
  Decision Complete(const std::string& key, uint64_t token, const std::string& body,
                    uint64_t retention_ms = 0) {
    CompleteOp op;
    op.token = token;
    op.body = body;
    op.retention_ms = retention_ms;
    return Apply(key, [&](const Record* cur, uint64_t now) {
      return DecideComplete(cur, op, now, limits_);
    });
  }
  Decision Release(const std::string& key, uint64_t token) {
    return Apply(key,
                 [&](const Record* cur, uint64_t now) { return DecideRelease(cur, token, now); });
  }
  Decision Purge(const std::string& key) {
    return Apply(key, [&](const Record* cur, uint64_t now) { return DecidePurge(cur, now); });
  }

  TokenSource* tokens() { return tokens_.get(); }
  Status last_status() const { return last_; }

 private:
  template <typename Fn>
  Decision Apply(const std::string& key, Fn decide) {
    const std::string rkey = EncodeRecordKey("tenant", "scope", key);
    Record cur;
    bool found = false;
    last_ = store_->Get(rkey, &cur, &found);
    Decision d = decide(found ? &cur : nullptr, clock_->NowWallMs());
    Batch batch;
    if (d.write == Decision::Write::kPut) batch.Put(rkey, d.record);
    if (d.write == Decision::Write::kDelete) batch.Delete(rkey);
    if (batch.count() > 0 && last_.ok()) last_ = store_->Write(&batch, /*sync=*/true);
    if (d.token_used && last_.ok()) last_ = tokens_->Consume();
    return d;
  }

  Store* store_;
  const Clock* clock_;
  Limits limits_;
  std::unique_ptr<TokenSource> tokens_;
  Status last_;
};

}  // namespace idem::storage::testing
