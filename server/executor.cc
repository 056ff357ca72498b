// Executor: the data operations. Group commit is in commit.cc, waiters in
// waiters.cc.
#include "server/executor.h"

#include <spdlog/spdlog.h>

#include "protocol/frame_codec.h"
#include "server/reply.h"
#include "storage/key_codec.h"

namespace idem::server {

namespace v1 = idem::v1;
using storage::Decision;
using storage::Outcome;

namespace {
constexpr uint32_t kDefaultScanLimit = 100;
constexpr uint32_t kMaxScanLimit = 1000;
constexpr size_t kMaxCursorBytes = 1024;
}  // namespace

Executor::Executor(boost::asio::io_context& io, storage::Store* store, storage::TokenSource* tokens,
                   const Clock* clock, Metrics* metrics, Options options)
    : io_(io),
      store_(store),
      tokens_(tokens),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      cache_(options_.record_cache_bytes) {}

Executor::~Executor() { sync_thread_.join(); }

void Executor::Handle(const std::shared_ptr<Session>& s, const v1::Request& req,
                      TimePoint received) {
  if (failed_ || draining_) {
    ReplyError(s, req.id(), v1::ERROR_UNAVAILABLE,
               failed_ ? "storage failed; this server no longer serves requests"
                       : "the server is shutting down",
               req.op_case(), received);
    return;
  }
  switch (req.op_case()) {
    case v1::Request::kReserve: return HandleReserve(s, req, received);
    case v1::Request::kComplete: return HandleComplete(s, req, received);
    case v1::Request::kRelease: return HandleRelease(s, req, received);
    case v1::Request::kRenew: return HandleRenew(s, req, received);
    case v1::Request::kLookup: return HandleLookup(s, req, received);
    case v1::Request::kPurge: return HandlePurge(s, req, received);
    case v1::Request::kScan: return HandleScan(s, req, received);
    default:
      ReplyError(s, req.id(), v1::ERROR_INTERNAL, "operation not routed to the executor",
                 req.op_case(), received);
  }
}

bool Executor::Read(const std::string& rkey, ReadResult* out) {
  auto it = overlay_.find(rkey);
  if (it != overlay_.end()) {
    out->record = it->second.record ? &*it->second.record : nullptr;
    out->seq = it->second.seq;
    return true;
  }
  out->seq = 0;
  if (out->borrow) {
    out->record = cache_.Find(rkey);
    if (out->record != nullptr) return true;
  } else if (cache_.Get(rkey, &out->scratch)) {
    out->record = &out->scratch;
    return true;
  }
  bool found = false;
  Status s = store_->Get(rkey, &out->scratch, &found);
  if (!s.ok()) {
    spdlog::error("reading a record failed: {}", s.ToString());
    return false;
  }
  out->record = found ? &out->scratch : nullptr;
  // No change to this key is pending (else the overlay has it): durable.
  if (found) cache_.Put(rkey, out->scratch);
  return true;
}

bool Executor::Valid(const std::shared_ptr<Session>& s, const v1::Request& req, const Status& valid,
                     TimePoint received) {
  if (valid.ok()) return true;
  ReplyError(s, req.id(), v1::ERROR_INVALID_ARGUMENT, valid.message(), req.op_case(), received);
  return false;
}

bool Executor::ReadFor(const std::shared_ptr<Session>& s, const v1::Request& req,
                       const std::string& rkey, ReadResult* out, TimePoint received) {
  if (disk_full_ && suspect_keys_.count(rkey) > 0) {
    ReplyDiskFull(s, req.id(), req.op_case(), received);
    return false;
  }
  if (Read(rkey, out)) return true;
  ReplyError(s, req.id(), v1::ERROR_UNAVAILABLE, "storage read failed", req.op_case(), received);
  return false;
}

uint64_t Executor::Apply(const std::string& rkey, const Decision& d, uint64_t read_seq) {
  metrics_->CountOutcome(d.outcome);
  if (d.write == Decision::Write::kNone) return read_seq;
  if (d.token_used) {
    Status s = tokens_->Consume();
    if (!s.ok()) {
      // Not a disk-full pause: the token source is in an unknown state.
      FailStop(Status::Unavailable("granting a fencing token: " + s.message()));
      return read_seq;
    }
  }
  cache_.Erase(rkey);
  Dirty& dirty = overlay_[rkey];
  if (d.write == Decision::Write::kPut) {
    batch_.Put(rkey, d.record);
    dirty.record = d.record;
  } else {
    batch_.Delete(rkey);
    dirty.record.reset();
  }
  dirty.seq = open_seq_;
  open_keys_.push_back(rkey);
  ScheduleFlush();
  return open_seq_;
}

bool Executor::Commit(const std::shared_ptr<Session>& s, uint64_t id, v1::Request::OpCase op,
                      TimePoint received, const std::string& rkey, const Decision& d,
                      uint64_t read_seq, uint64_t* seq) {
  if (d.write != Decision::Write::kNone && disk_full_) {
    ReplyDiskFull(s, id, op, received);
    return false;
  }
  *seq = Apply(rkey, d, read_seq);
  if (!failed_) return true;
  // Granting its fencing token failed the store.
  ReplyError(s, id, v1::ERROR_UNAVAILABLE, "storage failed before this change was durable", op,
             received);
  return false;
}

void Executor::ReplyDiskFull(const std::shared_ptr<Session>& s, uint64_t id, v1::Request::OpCase op,
                             TimePoint received) {
  ReplyError(s, id, v1::ERROR_RESOURCE_EXHAUSTED,
             "disk full: changes are refused until space returns", op, received,
             kDiskFullRetryAfterMs);
}

void Executor::HandleReserve(const std::shared_ptr<Session>& s, const v1::Request& req,
                             TimePoint received) {
  const v1::Reserve& r = req.reserve();
  const Status valid =
      storage::ValidateReserve(r.scope(), r.key(), r.fingerprint(), r.wait_ms(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  const std::string rkey = storage::EncodeRecordKey(s->principal().tenant, r.scope(), r.key());
  // Queued waiters go first: a newcomer must not jump a lease that just ended.
  if (waiters_.count(rkey) > 0) ServeWaiters(rkey);
  ReadResult cur;
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  const uint64_t now = clock_->NowWallMs();
  const storage::ReserveOp op{r.fingerprint(), r.lease_ms(), r.retention_ms()};
  Decision d = storage::DecideReserve(cur.record, op, now, tokens_->Peek(), options_.limits);
  if (d.outcome == Outcome::kReserveInProgress && r.wait_ms() > 0 && !draining_) {
    // No waiting while the disk is full: the wait could end in a grant.
    if (disk_full_) return ReplyDiskFull(s, req.id(), req.op_case(), received);
    if (Enqueue(s, req, rkey, received)) return;
  }
  uint64_t seq = 0;
  if (!Commit(s, req.id(), req.op_case(), received, rkey, d, cur.seq, &seq)) return;
  v1::Response resp;
  resp.set_id(req.id());
  FillReserveReply(d, cur.record, now, resp.mutable_reserve());
  Reply(s, &resp, seq, req.op_case(), received);
}

void Executor::HandleComplete(const std::shared_ptr<Session>& s, const v1::Request& req,
                              TimePoint received) {
  const v1::Complete& c = req.complete();
  const Status valid =
      storage::ValidateComplete(c.scope(), c.key(), c.result().body().size(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  const std::string rkey = storage::EncodeRecordKey(s->principal().tenant, c.scope(), c.key());
  ReadResult cur;
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  const storage::CompleteOp op{c.token(), c.result().status(), c.result().body(), c.retention_ms()};
  Decision d = storage::DecideComplete(cur.record, op, clock_->NowWallMs(), options_.limits);
  uint64_t seq = 0;
  if (!Commit(s, req.id(), req.op_case(), received, rkey, d, cur.seq, &seq)) return;
  v1::Response resp;
  resp.set_id(req.id());
  FillCompleteReply(d, cur.record, resp.mutable_complete());
  Reply(s, &resp, seq, req.op_case(), received);
  if (d.wake != Decision::Wake::kNone && waiters_.count(rkey) > 0) ServeWaiters(rkey);
}

void Executor::HandleRelease(const std::shared_ptr<Session>& s, const v1::Request& req,
                             TimePoint received) {
  const v1::Release& r = req.release();
  const Status valid = storage::ValidateAddress(r.scope(), r.key(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  const std::string rkey = storage::EncodeRecordKey(s->principal().tenant, r.scope(), r.key());
  ReadResult cur;
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  Decision d = storage::DecideRelease(cur.record, r.token(), clock_->NowWallMs());
  uint64_t seq = 0;
  if (!Commit(s, req.id(), req.op_case(), received, rkey, d, cur.seq, &seq)) return;
  v1::Response resp;
  resp.set_id(req.id());
  FillReleaseReply(d, resp.mutable_release());
  Reply(s, &resp, seq, req.op_case(), received);
  if (d.wake != Decision::Wake::kNone && waiters_.count(rkey) > 0) ServeWaiters(rkey);
}

void Executor::HandleRenew(const std::shared_ptr<Session>& s, const v1::Request& req,
                           TimePoint received) {
  const v1::Renew& r = req.renew();
  const Status valid = storage::ValidateAddress(r.scope(), r.key(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  const std::string rkey = storage::EncodeRecordKey(s->principal().tenant, r.scope(), r.key());
  ReadResult cur;
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  const storage::RenewOp op{r.token(), r.lease_ms()};
  Decision d = storage::DecideRenew(cur.record, op, clock_->NowWallMs(), options_.limits);
  uint64_t seq = 0;
  if (!Commit(s, req.id(), req.op_case(), received, rkey, d, cur.seq, &seq)) return;
  v1::Response resp;
  resp.set_id(req.id());
  FillRenewReply(d, resp.mutable_renew());
  Reply(s, &resp, seq, req.op_case(), received);
  // The lease end moved (possibly earlier): re-arm the waiters' timer.
  if (d.outcome == Outcome::kRenewOk && waiters_.count(rkey) > 0) ServeWaiters(rkey);
}

void Executor::HandleLookup(const std::shared_ptr<Session>& s, const v1::Request& req,
                            TimePoint received) {
  const v1::Lookup& l = req.lookup();
  const Status valid = storage::ValidateAddress(l.scope(), l.key(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  std::string& rkey = lookup_key_;
  storage::EncodeRecordKeyTo(s->principal().tenant, l.scope(), l.key(), &rkey);
  ReadResult cur;
  cur.borrow = true;  // nothing changes the cache before the answer is built
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  Decision d = storage::DecideLookup(cur.record, clock_->NowWallMs());
  metrics_->CountLookupState(d.state);
  v1::Response& resp = lookup_response_;
  resp.set_id(req.id());
  v1::LookupReply* reply = resp.mutable_lookup();
  reply->Clear();
  FillLookupReply(d, cur.record, reply);
  Reply(s, &resp, cur.seq, req.op_case(), received);
}

void Executor::HandlePurge(const std::shared_ptr<Session>& s, const v1::Request& req,
                           TimePoint received) {
  const v1::Purge& p = req.purge();
  const Status valid = storage::ValidateAddress(p.scope(), p.key(), options_.limits);
  if (!Valid(s, req, valid, received)) return;
  const std::string rkey = storage::EncodeRecordKey(s->principal().tenant, p.scope(), p.key());
  ReadResult cur;
  if (!ReadFor(s, req, rkey, &cur, received)) return;
  Decision d = storage::DecidePurge(cur.record, clock_->NowWallMs());
  uint64_t seq = 0;
  if (!Commit(s, req.id(), req.op_case(), received, rkey, d, cur.seq, &seq)) return;
  v1::Response resp;
  resp.set_id(req.id());
  resp.mutable_purge()->set_existed(d.existed);
  Reply(s, &resp, seq, req.op_case(), received);
  if (d.wake != Decision::Wake::kNone && waiters_.count(rkey) > 0) ServeWaiters(rkey);
}

void Executor::HandleScan(const std::shared_ptr<Session>& s, const v1::Request& req,
                          TimePoint received) {
  const v1::Scan& sc = req.scan();
  std::string problem;
  if (sc.scope().size() > options_.limits.max_scope_bytes) problem = "scope is too long";
  if (sc.prefix().size() > options_.limits.max_key_bytes) problem = "prefix is too long";
  if (sc.cursor().size() > kMaxCursorBytes) problem = "cursor is too long";
  if (!problem.empty()) {
    return ReplyError(s, req.id(), v1::ERROR_INVALID_ARGUMENT, problem, req.op_case(), received);
  }
  // A scan could show the values of the batch that failed.
  if (disk_full_ && !suspect_keys_.empty()) {
    return ReplyDiskFull(s, req.id(), req.op_case(), received);
  }
  storage::ScanOptions o;
  o.tenant = s->principal().tenant;
  o.scope = sc.scope();
  o.prefix = sc.prefix();
  o.cursor = sc.cursor();
  o.all_scopes = sc.all_scopes();
  o.limit = sc.limit() == 0 ? kDefaultScanLimit : std::min(sc.limit(), kMaxScanLimit);
  storage::ScanPage page;
  Status st = store_->Scan(o, clock_->NowWallMs(), &page);
  if (!st.ok()) {
    return ReplyError(s, req.id(), ErrorCodeFor(st), st.message(), req.op_case(), received);
  }
  v1::Response resp;
  resp.set_id(req.id());
  v1::ScanReply* out = resp.mutable_scan();
  for (const storage::ScanItem& item : page.items) {
    v1::ScanEntry* e = out->add_entries();
    e->set_scope(item.scope);
    e->set_key(item.key);
    const storage::KeyState state = storage::StateAt(&item.record, clock_->NowWallMs());
    e->set_state(static_cast<v1::KeyState>(state));
    e->set_attempt(item.record.attempt);
    if (!item.record.completed) e->set_lease_expires_unix_ms(item.record.lease_expires_unix_ms);
    e->set_expires_unix_ms(item.record.expires_unix_ms);
    e->set_body_bytes(static_cast<uint32_t>(item.record.body.size()));
    e->set_status(item.record.status);
  }
  out->set_next_cursor(page.next_cursor);
  // RocksDB already holds the batch being synced (not the open one): wait for it.
  Reply(s, &resp, syncing_ ? open_seq_ - 1 : 0, req.op_case(), received);
}

void Executor::Reply(const std::shared_ptr<Session>& s, v1::Response* response, uint64_t seq,
                     v1::Request::OpCase op, TimePoint received) {
  Answer a{s, response->id(), {}, op, received};
  if (!protocol::AppendFrame(&a.frame, *response)) {
    return ReplyError(s, response->id(), v1::ERROR_INTERNAL, "answer too large", op, received);
  }
  if (seq <= durable_seq_) return Deliver(std::move(a));
  if (seq == open_seq_) {
    open_answers_.push_back(std::move(a));
  } else {
    syncing_answers_.push_back(std::move(a));
  }
}

void Executor::ReplyError(const std::shared_ptr<Session>& s, uint64_t id, v1::ErrorCode code,
                          std::string_view message, v1::Request::OpCase op, TimePoint received,
                          uint32_t retry_after_ms) {
  v1::Response resp;
  resp.set_id(id);
  SetError(&resp, code, message, retry_after_ms);
  metrics_->CountError(code);
  Answer a{s, id, {}, op, received};
  (void)protocol::AppendFrame(&a.frame, resp);
  Deliver(std::move(a));
}

void Executor::Deliver(Answer answer) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - answer.received).count();
  metrics_->ObserveLatency(answer.op, seconds);
  answer.session->Deliver(std::move(answer.frame));
}

}  // namespace idem::server
