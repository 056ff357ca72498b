#include "fuzz/request_oracle.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "protocol/frame_codec.h"

namespace idem::fuzz {

namespace v1 = idem::v1;

namespace {

constexpr uint32_t kDefaultScanLimit = 100;
constexpr uint32_t kMaxScanLimit = 1000;
constexpr size_t kMaxCursorBytes = 1024;
constexpr uint64_t kVerboseBaseMs = 1'700'000'000'000;  // the runs' clock start

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// IDEM_FUZZ_VERBOSE=1 prints every request and answer (to read a reproducer).
bool Verbose() {
  static const bool verbose = std::getenv("IDEM_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// The decoded answer and the request it answers, for violation reports.
thread_local const v1::Request* current_request = nullptr;
thread_local const v1::Response* current_response = nullptr;

}  // namespace

void Fail(const std::string& what) {
  std::fprintf(stderr, "request_path_fuzz: %s\n", what.c_str());
  if (current_request != nullptr) {
    std::fprintf(stderr, "request: %s\n", current_request->ShortDebugString().c_str());
  }
  if (current_response != nullptr) {
    std::fprintf(stderr, "response: %s\n", current_response->ShortDebugString().c_str());
  }
  std::abort();
}

#define ORACLE_EXPECT(cond, what) \
  do {                            \
    if (!(cond)) Fail(what);      \
  } while (0)

Oracle::Oracle(const storage::Limits& limits, const Clock* clock, uint64_t* max_token)
    : limits_(limits), clock_(clock), max_token_(max_token) {}

void Oracle::OnRequest(const v1::Request& request, const std::string& tenant, int session) {
  ORACLE_EXPECT(request.id() == sent_.size() + 1, "the driver sent ids out of sequence");
  if (Verbose()) {
    std::fprintf(stderr, "  -> [%d] now=+%llu %s\n", session,
                 static_cast<unsigned long long>(clock_->NowWallMs() - kVerboseBaseMs),
                 request.ShortDebugString().c_str());
  }
  sent_.push_back(Sent{request, tenant, session});
}

void Oracle::OnSessionClosed(int slot) {
  for (Sent& s : sent_) {
    if (s.session == slot && s.answers == 0) s.excused = true;
  }
}

void Oracle::Finish() const {
  for (const Sent& s : sent_) {
    current_request = &s.request;
    current_response = nullptr;
    ORACLE_EXPECT(s.excused || s.answers == 1, "a request was never answered");
  }
  current_request = nullptr;
}

uint64_t Oracle::GrantedToken(uint64_t index) const {
  return granted_.empty() ? 0 : granted_[index % granted_.size()];
}

bool Oracle::Valid(const v1::Request& r) const {
  auto address_ok = [this](const std::string& scope, const std::string& key) {
    return scope.size() <= limits_.max_scope_bytes && !key.empty() &&
           key.size() <= limits_.max_key_bytes;
  };
  switch (r.op_case()) {
    case v1::Request::kReserve: {
      const v1::Reserve& q = r.reserve();
      return address_ok(q.scope(), q.key()) &&
             q.fingerprint().size() <= limits_.max_fingerprint_bytes &&
             q.wait_ms() <= limits_.max_wait_ms;
    }
    case v1::Request::kComplete:
      return address_ok(r.complete().scope(), r.complete().key()) &&
             r.complete().result().body().size() <= limits_.max_body_bytes;
    case v1::Request::kRelease: return address_ok(r.release().scope(), r.release().key());
    case v1::Request::kRenew: return address_ok(r.renew().scope(), r.renew().key());
    case v1::Request::kLookup: return address_ok(r.lookup().scope(), r.lookup().key());
    case v1::Request::kPurge: return address_ok(r.purge().scope(), r.purge().key());
    case v1::Request::kScan:
      return r.scan().scope().size() <= limits_.max_scope_bytes &&
             r.scan().prefix().size() <= limits_.max_key_bytes &&
             r.scan().cursor().size() <= kMaxCursorBytes;
    default: return false;
  }
}

Oracle::Record* Oracle::Find(const Address& a) {
  auto it = records_.find(a);
  return it == records_.end() ? nullptr : &it->second;
}

// PROTOCOL.md section 2: ABSENT once retention ends; a lease is held while
// now < its end and it was not released.
v1::KeyState Oracle::StateOf(const Address& a) const {
  auto it = records_.find(a);
  const uint64_t now = clock_->NowWallMs();
  if (it == records_.end() || now >= it->second.expires) return v1::KEY_ABSENT;
  const Record& r = it->second;
  if (r.completed) return v1::KEY_COMPLETED;
  if (r.released || now >= r.lease_end) return v1::KEY_LEASE_EXPIRED;
  return v1::KEY_IN_PROGRESS;
}

void Oracle::OnFrame(std::string_view frame) {
  protocol::FrameDecoder decoder(UINT32_MAX);
  decoder.Feed(frame);
  std::string_view payload;
  ORACLE_EXPECT(decoder.Next(&payload) == protocol::FrameDecoder::Result::kFrame,
                "an answer is not a whole frame");
  ORACLE_EXPECT(decoder.buffered() == 0, "an answer has bytes after its frame");
  v1::Response resp;
  ORACLE_EXPECT(resp.ParseFromArray(payload.data(), static_cast<int>(payload.size())),
                "an answer does not parse as a Response");
  current_response = &resp;
  if (Verbose()) std::fprintf(stderr, "  <- %s\n", resp.ShortDebugString().c_str());
  ORACLE_EXPECT(resp.id() >= 1 && resp.id() <= sent_.size(), "an answer to an unknown id");
  Sent& s = sent_[resp.id() - 1];
  current_request = &s.request;
  ORACLE_EXPECT(++s.answers == 1, "a request was answered twice");
  ORACLE_EXPECT(resp.has_error() != (resp.reply_case() != v1::Response::REPLY_NOT_SET),
                "a response must carry exactly one of error and reply");
  if (resp.has_error()) {
    CheckError(s, resp.error());
  } else {
    ORACLE_EXPECT(static_cast<int>(resp.reply_case()) == static_cast<int>(s.request.op_case()),
                  "the reply is not of the request's op");
    ORACLE_EXPECT(Valid(s.request), "a request out of limits was not answered INVALID_ARGUMENT");
    switch (resp.reply_case()) {
      case v1::Response::kReserve: OnReserve(s, resp.reserve()); break;
      case v1::Response::kComplete: OnComplete(s, resp.complete()); break;
      case v1::Response::kRelease: OnRelease(s, resp.release()); break;
      case v1::Response::kRenew: OnRenew(s, resp.renew()); break;
      case v1::Response::kLookup: OnLookup(s, resp.lookup()); break;
      case v1::Response::kPurge: OnPurge(s, resp.purge()); break;
      case v1::Response::kScan: OnScan(s, resp.scan()); break;
      default: Fail("a reply of an op the executor does not serve");
    }
  }
  current_request = nullptr;
  current_response = nullptr;
}

void Oracle::CheckError(const Sent& s, const v1::Error& e) {
  ORACLE_EXPECT(!e.message().empty(), "an error without a message");
  const v1::Request& r = s.request;
  switch (e.code()) {
    case v1::ERROR_INVALID_ARGUMENT:
      // A scan cursor from the input may not belong to the scan.
      ORACLE_EXPECT(!Valid(r) || (r.has_scan() && !r.scan().cursor().empty()),
                    "INVALID_ARGUMENT for a request within the limits");
      return;
    case v1::ERROR_RESOURCE_EXHAUSTED:
      ORACLE_EXPECT(
          r.has_reserve() && r.reserve().wait_ms() > 0 &&
              StateOf({s.tenant, r.reserve().scope(), r.reserve().key()}) == v1::KEY_IN_PROGRESS,
          "RESOURCE_EXHAUSTED for a request that does not wait");
      return;
    default: Fail("an unexpected error code on the request path");
  }
}

void Oracle::CheckResult(const v1::Result& got, const Record& want, const char* what) const {
  ORACLE_EXPECT(got.status() == want.status && got.body() == want.body &&
                    got.completed_unix_ms() == want.completed_ms,
                what);
}

namespace {

uint64_t LeaseMs(uint32_t lease_ms, const storage::Limits& l) {
  return lease_ms == 0 ? l.default_lease_ms : std::clamp<uint32_t>(lease_ms, 1, l.max_lease_ms);
}

uint64_t RetentionMs(uint64_t retention_ms, const storage::Limits& l) {
  if (retention_ms == 0) return l.default_retention_ms;
  return std::clamp<uint64_t>(retention_ms, storage::kMinRetentionMs, l.max_retention_ms);
}

bool Held(v1::KeyState st) { return st == v1::KEY_IN_PROGRESS || st == v1::KEY_LEASE_EXPIRED; }

}  // namespace

void Oracle::OnReserve(const Sent& s, const v1::ReserveReply& r) {
  const v1::Reserve& q = s.request.reserve();
  const Address a{s.tenant, q.scope(), q.key()};
  const uint64_t now = clock_->NowWallMs();
  const v1::KeyState st = StateOf(a);
  const Record* rec = Find(a);
  const bool conflict = st != v1::KEY_ABSENT && !q.fingerprint().empty() &&
                        !rec->fingerprint.empty() && q.fingerprint() != rec->fingerprint;
  if (r.outcome() == v1::RESERVE_MISMATCH) {
    ORACLE_EXPECT(conflict, "MISMATCH without a differing stored fingerprint");
    ORACLE_EXPECT(r.token() == 0 && r.attempt() == 0 && r.lease_expires_unix_ms() == 0 &&
                      r.lease_remaining_ms() == 0 && !r.has_result() && r.expires_unix_ms() == 0,
                  "a MISMATCH reveals more than its outcome");
    return;
  }
  ORACLE_EXPECT(!conflict, "a differing fingerprint was not answered MISMATCH");
  switch (r.outcome()) {
    case v1::RESERVE_ACQUIRED: return OnAcquired(s, r, a);
    case v1::RESERVE_IN_PROGRESS:
      ORACLE_EXPECT(st == v1::KEY_IN_PROGRESS, "IN_PROGRESS for a key nobody holds");
      ORACLE_EXPECT(r.token() == 0 && !r.has_result(), "IN_PROGRESS with a token or result");
      ORACLE_EXPECT(r.attempt() == rec->attempt && r.lease_expires_unix_ms() == rec->lease_end &&
                        r.lease_remaining_ms() == rec->lease_end - now &&
                        r.expires_unix_ms() == rec->expires,
                    "IN_PROGRESS does not describe the current lease");
      return;
    case v1::RESERVE_COMPLETED:
      ORACLE_EXPECT(st == v1::KEY_COMPLETED, "COMPLETED for a key not completed");
      ORACLE_EXPECT(r.token() == 0 && r.attempt() == 0 && r.lease_expires_unix_ms() == 0 &&
                        r.lease_remaining_ms() == 0,
                    "COMPLETED with lease fields");
      ORACLE_EXPECT(r.has_result(), "COMPLETED without the result");
      CheckResult(r.result(), *rec, "COMPLETED replays another result");
      ORACLE_EXPECT(r.expires_unix_ms() == rec->expires, "COMPLETED with a wrong expiry");
      return;
    default: Fail("a Reserve outcome out of range");
  }
}

void Oracle::OnAcquired(const Sent& s, const v1::ReserveReply& r, const Address& a) {
  const v1::Reserve& q = s.request.reserve();
  const uint64_t now = clock_->NowWallMs();
  const v1::KeyState st = StateOf(a);
  ORACLE_EXPECT(st == v1::KEY_ABSENT || st == v1::KEY_LEASE_EXPIRED,
                "ACQUIRED while the key is held or completed");
  ORACLE_EXPECT(r.token() != 0 && r.token() > *max_token_, "a token not above every earlier one");
  *max_token_ = r.token();
  granted_.push_back(r.token());
  const uint64_t lease = LeaseMs(q.lease_ms(), limits_);
  const uint64_t lease_end = now + lease;
  const uint64_t expires = std::max(now + RetentionMs(q.retention_ms(), limits_), lease_end);
  ORACLE_EXPECT(r.lease_expires_unix_ms() == lease_end && r.lease_remaining_ms() == lease,
                "ACQUIRED with a lease other than lease_ms from now");
  ORACLE_EXPECT(r.expires_unix_ms() == expires, "ACQUIRED with a wrong retention end");
  ORACLE_EXPECT(!r.has_result(), "ACQUIRED with a result");
  const Record* old = Find(a);
  const bool takeover = st == v1::KEY_LEASE_EXPIRED;
  ORACLE_EXPECT(r.attempt() == (takeover ? old->attempt + 1 : 1), "a wrong attempt count");
  Record n;
  n.token = r.token();
  n.attempt = r.attempt();
  n.fingerprint = takeover ? old->fingerprint : q.fingerprint();
  n.lease_end = lease_end;
  n.expires = expires;
  records_[a] = std::move(n);
}

void Oracle::OnComplete(const Sent& s, const v1::CompleteReply& r) {
  const v1::Complete& q = s.request.complete();
  const Address a{s.tenant, q.scope(), q.key()};
  const uint64_t now = clock_->NowWallMs();
  const v1::KeyState st = StateOf(a);
  Record* rec = Find(a);
  const bool holds = Held(st) && rec->token == q.token() && !rec->released;
  switch (r.outcome()) {
    case v1::COMPLETE_NOT_FOUND:
      ORACLE_EXPECT(st == v1::KEY_ABSENT, "COMPLETE_NOT_FOUND for a live record");
      ORACLE_EXPECT(!r.has_result(), "COMPLETE_NOT_FOUND with a result");
      return;
    case v1::COMPLETE_ALREADY_COMPLETED:
      ORACLE_EXPECT(st == v1::KEY_COMPLETED && rec->token != q.token(),
                    "ALREADY_COMPLETED but not completed under another token");
      CheckResult(r.result(), *rec, "ALREADY_COMPLETED shows another result");
      return;
    case v1::COMPLETE_LEASE_LOST:
      ORACLE_EXPECT(Held(st) && !holds, "COMPLETE_LEASE_LOST for the holder or a settled key");
      ORACLE_EXPECT(!r.has_result(), "COMPLETE_LEASE_LOST with a result");
      return;
    case v1::COMPLETE_OK:
      if (st == v1::KEY_COMPLETED) {
        ORACLE_EXPECT(rec->token == q.token(), "COMPLETE_OK repeated with another token");
      } else {
        ORACLE_EXPECT(holds, "COMPLETE_OK without holding the current token");
        rec->completed = true;
        rec->status = q.result().status();
        rec->body = q.result().body();
        rec->completed_ms = now;
        rec->expires = std::max(now + RetentionMs(q.retention_ms(), limits_), rec->lease_end);
      }
      CheckResult(r.result(), *rec, "COMPLETE_OK shows another result than the stored one");
      ORACLE_EXPECT(r.expires_unix_ms() == rec->expires, "COMPLETE_OK with a wrong expiry");
      return;
    default: Fail("a Complete outcome out of range");
  }
}

void Oracle::OnRelease(const Sent& s, const v1::ReleaseReply& r) {
  const v1::Release& q = s.request.release();
  const Address a{s.tenant, q.scope(), q.key()};
  const v1::KeyState st = StateOf(a);
  Record* rec = Find(a);
  const bool holds = Held(st) && rec->token == q.token() && !rec->released;
  switch (r.outcome()) {
    case v1::RELEASE_NOT_FOUND:
      ORACLE_EXPECT(st == v1::KEY_ABSENT, "RELEASE_NOT_FOUND for a live record");
      return;
    case v1::RELEASE_ALREADY_COMPLETED:
      ORACLE_EXPECT(st == v1::KEY_COMPLETED, "RELEASE_ALREADY_COMPLETED, not completed");
      return;
    case v1::RELEASE_LEASE_LOST:
      ORACLE_EXPECT(Held(st) && !holds, "RELEASE_LEASE_LOST for the holder");
      return;
    case v1::RELEASE_OK:
      ORACLE_EXPECT(holds, "RELEASE_OK without holding the current token");
      rec->released = true;
      rec->lease_end = std::min(rec->lease_end, clock_->NowWallMs());
      return;
    default: Fail("a Release outcome out of range");
  }
}

void Oracle::OnRenew(const Sent& s, const v1::RenewReply& r) {
  const v1::Renew& q = s.request.renew();
  const Address a{s.tenant, q.scope(), q.key()};
  const v1::KeyState st = StateOf(a);
  Record* rec = Find(a);
  const bool holds = Held(st) && rec->token == q.token() && !rec->released;
  if (r.outcome() != v1::RENEW_OK) {
    ORACLE_EXPECT(r.lease_expires_unix_ms() == 0 && r.lease_remaining_ms() == 0,
                  "a failed Renew with lease fields");
  }
  switch (r.outcome()) {
    case v1::RENEW_NOT_FOUND:
      ORACLE_EXPECT(st == v1::KEY_ABSENT, "RENEW_NOT_FOUND for a live record");
      return;
    case v1::RENEW_ALREADY_COMPLETED:
      ORACLE_EXPECT(st == v1::KEY_COMPLETED, "RENEW_ALREADY_COMPLETED, not completed");
      return;
    case v1::RENEW_LEASE_LOST:
      ORACLE_EXPECT(Held(st) && !holds, "RENEW_LEASE_LOST for the holder");
      return;
    case v1::RENEW_OK: {
      ORACLE_EXPECT(holds, "RENEW_OK without holding the current token");
      const uint64_t lease = LeaseMs(q.lease_ms(), limits_);
      rec->lease_end = clock_->NowWallMs() + lease;
      rec->expires = std::max(rec->expires, rec->lease_end);
      ORACLE_EXPECT(r.lease_expires_unix_ms() == rec->lease_end && r.lease_remaining_ms() == lease,
                    "RENEW_OK with a lease other than lease_ms from now");
      return;
    }
    default: Fail("a Renew outcome out of range");
  }
}

void Oracle::OnLookup(const Sent& s, const v1::LookupReply& r) {
  const v1::Lookup& q = s.request.lookup();
  const Address a{s.tenant, q.scope(), q.key()};
  const uint64_t now = clock_->NowWallMs();
  const v1::KeyState st = StateOf(a);
  ORACLE_EXPECT(r.state() == st, "Lookup reports another state than the model's");
  if (st == v1::KEY_ABSENT) {
    ORACLE_EXPECT(r.attempt() == 0 && r.lease_expires_unix_ms() == 0 &&
                      r.lease_remaining_ms() == 0 && !r.has_result() && r.expires_unix_ms() == 0 &&
                      r.fingerprint().empty(),
                  "an ABSENT Lookup with fields");
    return;
  }
  const Record& rec = *Find(a);
  ORACLE_EXPECT(r.attempt() == rec.attempt && r.expires_unix_ms() == rec.expires &&
                    r.fingerprint() == rec.fingerprint,
                "Lookup shows another attempt, expiry or fingerprint");
  if (st == v1::KEY_COMPLETED) {
    ORACLE_EXPECT(r.lease_expires_unix_ms() == 0 && r.lease_remaining_ms() == 0,
                  "a COMPLETED Lookup with lease fields");
    ORACLE_EXPECT(r.has_result(), "a COMPLETED Lookup without the result");
    CheckResult(r.result(), rec, "Lookup shows another result");
    return;
  }
  ORACLE_EXPECT(!r.has_result(), "a Lookup of a key not completed with a result");
  ORACLE_EXPECT(r.lease_expires_unix_ms() == rec.lease_end &&
                    r.lease_remaining_ms() == (rec.lease_end > now ? rec.lease_end - now : 0),
                "Lookup shows another lease");
}

void Oracle::OnPurge(const Sent& s, const v1::PurgeReply& r) {
  const v1::Purge& q = s.request.purge();
  const Address a{s.tenant, q.scope(), q.key()};
  ORACLE_EXPECT(r.existed() == (StateOf(a) != v1::KEY_ABSENT),
                "Purge's existed disagrees with the record's state");
  records_.erase(a);
}

void Oracle::OnScan(const Sent& s, const v1::ScanReply& r) {
  const v1::Scan& q = s.request.scan();
  const uint32_t limit = q.limit() == 0 ? kDefaultScanLimit : std::min(q.limit(), kMaxScanLimit);
  ORACLE_EXPECT(static_cast<uint32_t>(r.entries_size()) <= limit, "a scan page over its limit");
  // The live records in the scanned range, in (scope, key) order.
  std::vector<Address> want;
  for (const auto& [a, rec] : records_) {
    if (a.tenant == s.tenant && (q.all_scopes() || a.scope == q.scope()) &&
        StartsWith(a.key, q.prefix()) && StateOf(a) != v1::KEY_ABSENT) {
      want.push_back(a);
    }
  }
  for (int i = 0; i < r.entries_size(); ++i) {
    const v1::ScanEntry& e = r.entries(i);
    const Address a{s.tenant, e.scope(), e.key()};
    if (i > 0) {
      const v1::ScanEntry& p = r.entries(i - 1);
      ORACLE_EXPECT(std::tie(p.scope(), p.key()) < std::tie(e.scope(), e.key()),
                    "scan entries out of (scope, key) order");
    }
    ORACLE_EXPECT((q.all_scopes() || e.scope() == q.scope()) && StartsWith(e.key(), q.prefix()),
                  "a scan entry outside the scanned range");
    const v1::KeyState st = StateOf(a);
    ORACLE_EXPECT(st != v1::KEY_ABSENT, "a scan lists an absent record");
    const Record& rec = *Find(a);
    ORACLE_EXPECT(e.state() == st && e.attempt() == rec.attempt &&
                      e.expires_unix_ms() == rec.expires &&
                      e.lease_expires_unix_ms() == (rec.completed ? 0 : rec.lease_end) &&
                      e.body_bytes() == rec.body.size() && e.status() == rec.status,
                  "a scan entry differs from the record");
    if (q.cursor().empty()) {
      ORACLE_EXPECT(static_cast<size_t>(i) < want.size() && want[i] == a,
                    "a first scan page is not the range's first live records");
    }
  }
  if (!q.cursor().empty()) return;
  if (r.next_cursor().empty()) {
    ORACLE_EXPECT(static_cast<size_t>(r.entries_size()) == want.size(),
                  "a finished scan missed live records");
  } else {
    ORACLE_EXPECT(static_cast<uint32_t>(r.entries_size()) == limit,
                  "a scan page with a cursor is not full");
  }
}

}  // namespace idem::fuzz
