#include "storage/state_machine.h"

#include <algorithm>
#include <limits>
#include <string>

namespace idem::storage {

namespace {

uint64_t SatAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

uint32_t RemainingMs(uint64_t until, uint64_t now) {
  if (until <= now) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(until - now, UINT32_MAX));
}

// Retention restarts at `now` but never ends before the lease does.
uint64_t RetentionEnd(uint64_t now, uint64_t retention_ms, uint64_t lease_expires) {
  return std::max(SatAdd(now, retention_ms), lease_expires);
}

bool HoldsToken(const Record& r, uint64_t token) { return !r.released && r.token == token; }

Status TooLong(const char* field, size_t size, uint32_t limit) {
  return Status::InvalidArgument(std::string(field) + " is " + std::to_string(size) +
                                 " bytes; the limit is " + std::to_string(limit));
}

// Fills the lease and retention fields of the reply from `r`.
void DescribeLease(const Record& r, uint64_t now, Decision* d) {
  d->attempt = r.attempt;
  d->lease_expires_unix_ms = r.lease_expires_unix_ms;
  d->lease_remaining_ms = RemainingMs(r.lease_expires_unix_ms, now);
  d->expires_unix_ms = r.expires_unix_ms;
}

Decision Grant(const Record* current, const ReserveOp& op, uint64_t now, uint64_t fresh_token,
               const Limits& limits) {
  Decision d;
  d.outcome = Outcome::kReserveAcquired;
  d.write = Decision::Write::kPut;
  d.token_used = true;
  Record& r = d.record;
  const bool takeover = StateAt(current, now) == KeyState::kLeaseExpired;
  // A takeover keeps the record's fingerprint (the first acquisition's).
  r.fingerprint = takeover ? current->fingerprint : std::string(op.fingerprint);
  r.attempt = takeover ? current->attempt + 1 : 1;
  r.token = fresh_token;
  r.lease_expires_unix_ms = SatAdd(now, EffectiveLeaseMs(op.lease_ms, limits));
  r.expires_unix_ms =
      RetentionEnd(now, EffectiveRetentionMs(op.retention_ms, limits), r.lease_expires_unix_ms);
  d.token = r.token;
  DescribeLease(r, now, &d);
  return d;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kReserveAcquired: return "reserve.acquired";
    case Outcome::kReserveInProgress: return "reserve.in_progress";
    case Outcome::kReserveCompleted: return "reserve.completed";
    case Outcome::kReserveMismatch: return "reserve.mismatch";
    case Outcome::kCompleteOk: return "complete.ok";
    case Outcome::kCompleteLeaseLost: return "complete.lease_lost";
    case Outcome::kCompleteAlreadyCompleted: return "complete.already_completed";
    case Outcome::kCompleteNotFound: return "complete.not_found";
    case Outcome::kReleaseOk: return "release.ok";
    case Outcome::kReleaseLeaseLost: return "release.lease_lost";
    case Outcome::kReleaseAlreadyCompleted: return "release.already_completed";
    case Outcome::kReleaseNotFound: return "release.not_found";
    case Outcome::kRenewOk: return "renew.ok";
    case Outcome::kRenewLeaseLost: return "renew.lease_lost";
    case Outcome::kRenewAlreadyCompleted: return "renew.already_completed";
    case Outcome::kRenewNotFound: return "renew.not_found";
    case Outcome::kLookup: return "lookup";
    case Outcome::kPurge: return "purge";
  }
  return "unknown";
}

KeyState StateAt(const Record* r, uint64_t now_ms) {
  if (r == nullptr || now_ms >= r->expires_unix_ms) return KeyState::kAbsent;
  if (r->completed) return KeyState::kCompleted;
  if (r->released || now_ms >= r->lease_expires_unix_ms) return KeyState::kLeaseExpired;
  return KeyState::kInProgress;
}

uint32_t EffectiveLeaseMs(uint32_t lease_ms, const Limits& limits) {
  if (lease_ms == 0) return limits.default_lease_ms;
  return std::clamp<uint32_t>(lease_ms, 1, limits.max_lease_ms);
}

uint64_t EffectiveRetentionMs(uint64_t retention_ms, const Limits& limits) {
  if (retention_ms == 0) return limits.default_retention_ms;
  return std::clamp<uint64_t>(retention_ms, kMinRetentionMs, limits.max_retention_ms);
}

Status ValidateAddress(std::string_view scope, std::string_view key, const Limits& limits) {
  if (scope.size() > limits.max_scope_bytes) {
    return TooLong("scope", scope.size(), limits.max_scope_bytes);
  }
  if (key.empty()) return Status::InvalidArgument("key is empty; it must be 1 byte or more");
  if (key.size() > limits.max_key_bytes) return TooLong("key", key.size(), limits.max_key_bytes);
  return Status::OK();
}

Status ValidateReserve(std::string_view scope, std::string_view key, std::string_view fingerprint,
                       uint32_t wait_ms, const Limits& limits) {
  IDEM_RETURN_IF_ERROR(ValidateAddress(scope, key, limits));
  if (fingerprint.size() > limits.max_fingerprint_bytes) {
    return TooLong("fingerprint", fingerprint.size(), limits.max_fingerprint_bytes);
  }
  if (wait_ms > limits.max_wait_ms) {
    return Status::InvalidArgument("wait_ms is " + std::to_string(wait_ms) + "; the limit is " +
                                   std::to_string(limits.max_wait_ms));
  }
  return Status::OK();
}

Status ValidateComplete(std::string_view scope, std::string_view key, size_t body_bytes,
                        const Limits& limits) {
  IDEM_RETURN_IF_ERROR(ValidateAddress(scope, key, limits));
  if (body_bytes > limits.max_body_bytes) {
    return TooLong("result.body", body_bytes, limits.max_body_bytes);
  }
  return Status::OK();
}

Decision DecideReserve(const Record* current, const ReserveOp& op, uint64_t now_ms,
                       uint64_t fresh_token, const Limits& limits) {
  const KeyState state = StateAt(current, now_ms);
  Decision d;
  if (state != KeyState::kAbsent && !op.fingerprint.empty() && !current->fingerprint.empty() &&
      op.fingerprint != current->fingerprint) {
    d.outcome = Outcome::kReserveMismatch;  // whatever the state; reveals nothing
    return d;
  }
  switch (state) {
    case KeyState::kAbsent:
    case KeyState::kLeaseExpired: return Grant(current, op, now_ms, fresh_token, limits);
    case KeyState::kInProgress:
      d.outcome = Outcome::kReserveInProgress;
      DescribeLease(*current, now_ms, &d);
      return d;
    case KeyState::kCompleted:
      d.outcome = Outcome::kReserveCompleted;
      d.has_result = true;
      d.expires_unix_ms = current->expires_unix_ms;
      return d;
  }
  return d;
}

Decision DecideComplete(const Record* current, const CompleteOp& op, uint64_t now_ms,
                        const Limits& limits) {
  const KeyState state = StateAt(current, now_ms);
  Decision d;
  if (state == KeyState::kAbsent) {
    d.outcome = Outcome::kCompleteNotFound;
    return d;
  }
  d.expires_unix_ms = current->expires_unix_ms;
  if (state == KeyState::kCompleted) {
    // The same token again is a harmless retry: OK, and the first result stands.
    d.outcome =
        current->token == op.token ? Outcome::kCompleteOk : Outcome::kCompleteAlreadyCompleted;
    d.has_result = true;
    return d;
  }
  if (!HoldsToken(*current, op.token)) {
    d.outcome = Outcome::kCompleteLeaseLost;
    return d;
  }
  d.outcome = Outcome::kCompleteOk;
  d.write = Decision::Write::kPut;
  d.wake = Decision::Wake::kCompleted;
  d.has_result = true;
  d.record = *current;
  Record& r = d.record;
  r.completed = true;
  r.status = op.status;
  r.body.assign(op.body);
  r.completed_unix_ms = now_ms;
  r.expires_unix_ms =
      RetentionEnd(now_ms, EffectiveRetentionMs(op.retention_ms, limits), r.lease_expires_unix_ms);
  d.expires_unix_ms = r.expires_unix_ms;
  return d;
}

Decision DecideRelease(const Record* current, uint64_t token, uint64_t now_ms) {
  Decision d;
  switch (StateAt(current, now_ms)) {
    case KeyState::kAbsent: d.outcome = Outcome::kReleaseNotFound; return d;
    case KeyState::kCompleted: d.outcome = Outcome::kReleaseAlreadyCompleted; return d;
    case KeyState::kInProgress:
    case KeyState::kLeaseExpired: break;
  }
  if (!HoldsToken(*current, token)) {
    d.outcome = Outcome::kReleaseLeaseLost;
    return d;
  }
  d.outcome = Outcome::kReleaseOk;
  d.write = Decision::Write::kPut;
  d.wake = Decision::Wake::kFreed;
  d.record = *current;
  d.record.released = true;
  d.record.lease_expires_unix_ms = std::min(d.record.lease_expires_unix_ms, now_ms);
  return d;
}

Decision DecideRenew(const Record* current, const RenewOp& op, uint64_t now_ms,
                     const Limits& limits) {
  Decision d;
  switch (StateAt(current, now_ms)) {
    case KeyState::kAbsent: d.outcome = Outcome::kRenewNotFound; return d;
    case KeyState::kCompleted: d.outcome = Outcome::kRenewAlreadyCompleted; return d;
    case KeyState::kInProgress:
    case KeyState::kLeaseExpired: break;
  }
  if (!HoldsToken(*current, op.token)) {
    d.outcome = Outcome::kRenewLeaseLost;
    return d;
  }
  d.outcome = Outcome::kRenewOk;
  d.write = Decision::Write::kPut;
  d.record = *current;
  Record& r = d.record;
  r.lease_expires_unix_ms = SatAdd(now_ms, EffectiveLeaseMs(op.lease_ms, limits));
  r.expires_unix_ms = std::max(r.expires_unix_ms, r.lease_expires_unix_ms);
  DescribeLease(r, now_ms, &d);
  return d;
}

Decision DecideLookup(const Record* current, uint64_t now_ms) {
  Decision d;
  d.outcome = Outcome::kLookup;
  d.state = StateAt(current, now_ms);
  if (d.state == KeyState::kAbsent) return d;
  if (d.state == KeyState::kCompleted) {
    // A completed record has no lease to report.
    d.attempt = current->attempt;
    d.expires_unix_ms = current->expires_unix_ms;
    d.has_result = true;
  } else {
    DescribeLease(*current, now_ms, &d);
  }
  d.has_fingerprint = true;
  return d;
}

Decision DecidePurge(const Record* current, uint64_t now_ms) {
  Decision d;
  d.outcome = Outcome::kPurge;
  d.state = StateAt(current, now_ms);
  d.existed = d.state != KeyState::kAbsent;
  // An expired record still on disk is deleted too, but was not "found".
  if (current != nullptr) d.write = Decision::Write::kDelete;
  if (d.existed && d.state != KeyState::kCompleted) d.wake = Decision::Wake::kFreed;
  return d;
}

}  // namespace idem::storage
