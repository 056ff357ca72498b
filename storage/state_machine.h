// The idempotency state machine of PROTOCOL.md section 2, as pure functions:
//
//   (current record or none, operation, now, a fresh token) -> Decision
//
// No I/O and no clock reads: the executor reads the record, passes the time,
// persists Decision::write and serves waiters from Decision::wake. Every rule
// of section 2 (states, outcomes, fingerprints, clamping, retention) lives here
// and nowhere else; waiting itself is the daemon's.
//
// Time rules: a lease is held while now < lease_expires_unix_ms; a record is
// live while now < expires_unix_ms (at that millisecond it is ABSENT).
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/record.h"
#include "util/status.h"

namespace idem::storage {

// The limits of PROTOCOL.md sections 1-2. Every one is a server flag.
struct Limits {
  uint32_t max_scope_bytes = 128;
  uint32_t max_key_bytes = 256;
  uint32_t max_fingerprint_bytes = 64;
  uint32_t max_body_bytes = 256 * 1024;
  uint32_t default_lease_ms = 30'000;
  uint32_t max_lease_ms = 3'600'000;
  uint64_t default_retention_ms = 24ull * 3600 * 1000;
  uint64_t max_retention_ms = 30ull * 24 * 3600 * 1000;
  uint32_t max_wait_ms = 60'000;
};

// A retention_ms other than 0 is never below this.
inline constexpr uint64_t kMinRetentionMs = 1000;

// Numbers match the protocol's KeyState enum.
enum class KeyState : uint8_t {
  kAbsent = 1,
  kInProgress = 2,
  kLeaseExpired = 3,
  kCompleted = 4,
};

// Every outcome an operation can have. The protocol's per-op enums are the
// server's mapping of these.
enum class Outcome : uint8_t {
  kReserveAcquired,
  kReserveInProgress,
  kReserveCompleted,
  kReserveMismatch,
  kCompleteOk,
  kCompleteLeaseLost,
  kCompleteAlreadyCompleted,
  kCompleteNotFound,
  kReleaseOk,
  kReleaseLeaseLost,
  kReleaseAlreadyCompleted,
  kReleaseNotFound,
  kRenewOk,
  kRenewLeaseLost,
  kRenewAlreadyCompleted,
  kRenewNotFound,
  kLookup,  // Lookup always succeeds; Decision::state says what it found
  kPurge,   // Purge always succeeds; Decision::existed says whether it found one
};
inline constexpr int kOutcomeCount = static_cast<int>(Outcome::kPurge) + 1;

// "reserve.acquired", "complete.lease_lost", ...: for counters and tests.
const char* OutcomeName(Outcome outcome);

struct ReserveOp {
  std::string_view fingerprint;
  uint32_t lease_ms = 0;
  uint64_t retention_ms = 0;
};

struct CompleteOp {
  uint64_t token = 0;
  int32_t status = 0;
  std::string_view body;
  uint64_t retention_ms = 0;
};

struct RenewOp {
  uint64_t token = 0;
  uint32_t lease_ms = 0;
};

struct Decision {
  enum class Write { kNone, kPut, kDelete };
  // What waiters on this key learn: nothing; the result (all are answered);
  // or that the lease is free (the first waiter in line acquires it).
  enum class Wake { kNone, kCompleted, kFreed };

  Outcome outcome = Outcome::kLookup;
  Write write = Write::kNone;
  Record record;            // the new record, when write == kPut
  bool token_used = false;  // the fresh token was granted (record.token)
  Wake wake = Wake::kNone;

  // Reply fields; which are meaningful depends on the outcome (PROTOCOL.md 5).
  KeyState state = KeyState::kAbsent;
  uint64_t token = 0;
  uint32_t attempt = 0;
  uint64_t lease_expires_unix_ms = 0;
  uint32_t lease_remaining_ms = 0;
  uint64_t expires_unix_ms = 0;
  bool has_result = false;       // the described record's result is part of the reply
  bool has_fingerprint = false;  // Lookup: the fingerprint is part of the reply
  bool existed = false;          // Purge

  // The record this reply describes (its result, fingerprint): the new one
  // when written, otherwise `current`.
  const Record* Described(const Record* current) const {
    return write == Write::kPut ? &record : current;
  }
};

// The state of `r` (nullptr: no record) at `now_ms`.
KeyState StateAt(const Record* r, uint64_t now_ms);

// lease_ms 0 means the default, else clamped to [1, max_lease_ms].
uint32_t EffectiveLeaseMs(uint32_t lease_ms, const Limits& limits);
// retention_ms 0 means the default, else clamped to [kMinRetentionMs, max].
uint64_t EffectiveRetentionMs(uint64_t retention_ms, const Limits& limits);

// Field checks. InvalidArgument naming the field and its limit.
Status ValidateAddress(std::string_view scope, std::string_view key, const Limits& limits);
Status ValidateReserve(std::string_view scope, std::string_view key, std::string_view fingerprint,
                       uint32_t wait_ms, const Limits& limits);
Status ValidateComplete(std::string_view scope, std::string_view key, size_t body_bytes,
                        const Limits& limits);

// `fresh_token` must exceed every token ever granted (the TokenSource's
// job); it is used only when the decision says token_used.
Decision DecideReserve(const Record* current, const ReserveOp& op, uint64_t now_ms,
                       uint64_t fresh_token, const Limits& limits);
Decision DecideComplete(const Record* current, const CompleteOp& op, uint64_t now_ms,
                        const Limits& limits);
Decision DecideRelease(const Record* current, uint64_t token, uint64_t now_ms);
Decision DecideRenew(const Record* current, const RenewOp& op, uint64_t now_ms,
                     const Limits& limits);
Decision DecideLookup(const Record* current, uint64_t now_ms);
Decision DecidePurge(const Record* current, uint64_t now_ms);

}  // namespace idem::storage
