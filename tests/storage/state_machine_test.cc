// Tests of the pure state machine of PROTOCOL.md section 2 (storage/state_machine.h).
//
// The centrepiece is StateMachineTableTest.EveryStateOpAndRelation: one row per
// (state, operation, token or fingerprint relation) with the outcome, write, token use and wake
// that section 2 requires; together the rows reach every outcome of section 5. The other suites
// check fields, chains of decisions, time boundaries, clamping and validation.
#include "storage/state_machine.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "storage/record.h"

namespace idem::storage {
namespace {

using W = Decision::Write;
using Wk = Decision::Wake;
using O = Outcome;
using K = KeyState;

constexpr uint64_t kNow = 1'000'000;
// Every stored record holds this token, granted with its 2nd acquisition.
constexpr uint64_t kCurrent = 50;
// Granted to an earlier holder of the same record.
constexpr uint64_t kStale = 40;
// Never granted: tokens are never 0, and 999 is above every token granted so far.
constexpr uint64_t kZeroToken = 0;
constexpr uint64_t kUngranted = 999;
// What the token source hands out next (above every token ever granted).
constexpr uint64_t kFresh = 1'000;

constexpr uint64_t kLeaseEnd = kNow + 5'000;
constexpr uint64_t kRetentionEnd = kNow + 600'000;

constexpr std::string_view kFpA = "fp-A";
constexpr std::string_view kFpB = "fp-B";

const Limits kLimits;  // the defaults of PROTOCOL.md

// ---------------------------------------------------------------------------
// Records at kNow.

// A record held under kCurrent (attempt 2) whose lease ends at `lease_end`.
Record Held(uint64_t lease_end, uint64_t expires, std::string_view fp = kFpA) {
  Record r;
  r.token = kCurrent;
  r.attempt = 2;
  r.fingerprint = std::string(fp);
  r.lease_expires_unix_ms = lease_end;
  r.expires_unix_ms = expires;
  return r;
}

// Released by its holder 100 ms ago (the lease end cut to the release time, as Release does).
Record Released(std::string_view fp = kFpA) {
  Record r = Held(kNow - 100, kRetentionEnd, fp);
  r.released = true;
  return r;
}

// Completed under kCurrent 3 s ago, before its lease ran out.
Record Completed(uint64_t expires, std::string_view fp = kFpA) {
  Record r = Held(kLeaseEnd, expires, fp);
  r.completed = true;
  r.status = 201;
  r.body = "stored body";
  r.completed_unix_ms = kNow - 3'000;
  return r;
}

enum class Fixture {
  kNoRecord,        // ABSENT: nothing stored
  kExpired,         // ABSENT: a completed record whose retention ended exactly at kNow
  kInProgress,      // IN_PROGRESS
  kTimedOut,        // LEASE_EXPIRED: the lease ran out
  kReleased,        // LEASE_EXPIRED: the holder released it
  kCompleted,       // COMPLETED
  kInProgressNoFp,  // the same four live states, stored with an empty fingerprint
  kTimedOutNoFp,
  kReleasedNoFp,
  kCompletedNoFp,
};

std::optional<Record> Build(Fixture f) {
  switch (f) {
    case Fixture::kNoRecord: return std::nullopt;
    case Fixture::kExpired: {
      Record r = Completed(kNow);
      r.lease_expires_unix_ms = kNow - 50'000;
      r.completed_unix_ms = kNow - 40'000;
      return r;
    }
    case Fixture::kInProgress: return Held(kLeaseEnd, kRetentionEnd);
    case Fixture::kTimedOut: return Held(kNow - 1'000, kRetentionEnd);
    case Fixture::kReleased: return Released();
    case Fixture::kCompleted: return Completed(kRetentionEnd);
    case Fixture::kInProgressNoFp: return Held(kLeaseEnd, kRetentionEnd, "");
    case Fixture::kTimedOutNoFp: return Held(kNow - 1'000, kRetentionEnd, "");
    case Fixture::kReleasedNoFp: return Released("");
    case Fixture::kCompletedNoFp: return Completed(kRetentionEnd, "");
  }
  return std::nullopt;
}

const char* FixtureName(Fixture f) {
  switch (f) {
    case Fixture::kNoRecord: return "ABSENT(no record)";
    case Fixture::kExpired: return "ABSENT(retention ended)";
    case Fixture::kInProgress: return "IN_PROGRESS";
    case Fixture::kTimedOut: return "LEASE_EXPIRED(time)";
    case Fixture::kReleased: return "LEASE_EXPIRED(released)";
    case Fixture::kCompleted: return "COMPLETED";
    case Fixture::kInProgressNoFp: return "IN_PROGRESS(stored fp empty)";
    case Fixture::kTimedOutNoFp: return "LEASE_EXPIRED(time, stored fp empty)";
    case Fixture::kReleasedNoFp: return "LEASE_EXPIRED(released, stored fp empty)";
    case Fixture::kCompletedNoFp: return "COMPLETED(stored fp empty)";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// The table.

enum class Op { kReserve, kComplete, kRelease, kRenew, kLookup, kPurge };

const char* OpName(Op op) {
  switch (op) {
    case Op::kReserve: return "Reserve";
    case Op::kComplete: return "Complete";
    case Op::kRelease: return "Release";
    case Op::kRenew: return "Renew";
    case Op::kLookup: return "Lookup";
    case Op::kPurge: return "Purge";
  }
  return "?";
}

// How the request's token or fingerprint relates to the stored record.
enum class Arg {
  kNone,       // Lookup, Purge
  kCurrent,    // token == the record's token
  kStale,      // a token granted before the current one
  kZero,       // never granted (tokens are never 0)
  kUngranted,  // never granted, above the current one
  kSameFp,     // fingerprint "fp-A"
  kOtherFp,    // fingerprint "fp-B"
  kEmptyFp,    // no fingerprint
};

const char* ArgName(Arg a) {
  switch (a) {
    case Arg::kNone: return "-";
    case Arg::kCurrent: return "token current";
    case Arg::kStale: return "token stale";
    case Arg::kZero: return "token 0 (never granted)";
    case Arg::kUngranted: return "token 999 (never granted)";
    case Arg::kSameFp: return "fingerprint fp-A";
    case Arg::kOtherFp: return "fingerprint fp-B";
    case Arg::kEmptyFp: return "fingerprint empty";
  }
  return "?";
}

uint64_t TokenOf(Arg a) {
  switch (a) {
    case Arg::kCurrent: return kCurrent;
    case Arg::kStale: return kStale;
    case Arg::kZero: return kZeroToken;
    case Arg::kUngranted: return kUngranted;
    default: return kCurrent;
  }
}

std::string_view FingerprintOf(Arg a) {
  switch (a) {
    case Arg::kSameFp: return kFpA;
    case Arg::kOtherFp: return kFpB;
    default: return "";
  }
}

struct Row {
  Fixture fixture;
  Op op;
  Arg arg;
  Outcome outcome;
  W write;
  bool token_used;
  Wk wake;
  K state;       // Lookup only
  bool existed;  // Purge only
};

constexpr bool kUsed = true;
constexpr bool kExisted = true;

Row ResRow(Fixture f, Arg fp, Outcome o, W w, bool used) {
  return {f, Op::kReserve, fp, o, w, used, Wk::kNone, K::kAbsent, false};
}
Row TokRow(Op op, Fixture f, Arg token, Outcome o, W w, Wk wake) {
  return {f, op, token, o, w, false, wake, K::kAbsent, false};
}
Row LookRow(Fixture f, K state) {
  return {f, Op::kLookup, Arg::kNone, O::kLookup, W::kNone, false, Wk::kNone, state, false};
}
Row PurgeRow(Fixture f, bool existed, W w, Wk wake) {
  return {f, Op::kPurge, Arg::kNone, O::kPurge, w, false, wake, K::kAbsent, existed};
}

// Complete, Release and Renew answer the same shape over the token relations.
void AddTokenRows(std::vector<Row>* rows, Op op, Fixture f, Outcome current, W write, Wk wake,
                  Outcome other) {
  rows->push_back(TokRow(op, f, Arg::kCurrent, current, write, wake));
  for (Arg a : {Arg::kStale, Arg::kZero, Arg::kUngranted}) {
    rows->push_back(TokRow(op, f, a, other, W::kNone, Wk::kNone));
  }
}

std::vector<Row> Table() {
  using F = Fixture;
  using A = Arg;
  std::vector<Row> t = {
      // Reserve. ABSENT (also an expired record, whatever its fingerprint): acquire.
      ResRow(F::kNoRecord, A::kSameFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kNoRecord, A::kOtherFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kNoRecord, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kExpired, A::kSameFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kExpired, A::kOtherFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kExpired, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      // IN_PROGRESS: the remaining lease; another fingerprint is a mismatch.
      ResRow(F::kInProgress, A::kSameFp, O::kReserveInProgress, W::kNone, false),
      ResRow(F::kInProgress, A::kOtherFp, O::kReserveMismatch, W::kNone, false),
      ResRow(F::kInProgress, A::kEmptyFp, O::kReserveInProgress, W::kNone, false),
      // LEASE_EXPIRED: take over, unless the fingerprint differs.
      ResRow(F::kTimedOut, A::kSameFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kTimedOut, A::kOtherFp, O::kReserveMismatch, W::kNone, false),
      ResRow(F::kTimedOut, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kReleased, A::kSameFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kReleased, A::kOtherFp, O::kReserveMismatch, W::kNone, false),
      ResRow(F::kReleased, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      // COMPLETED: a replay, unless the fingerprint differs.
      ResRow(F::kCompleted, A::kSameFp, O::kReserveCompleted, W::kNone, false),
      ResRow(F::kCompleted, A::kOtherFp, O::kReserveMismatch, W::kNone, false),
      ResRow(F::kCompleted, A::kEmptyFp, O::kReserveCompleted, W::kNone, false),
      // A record stored without a fingerprint never mismatches.
      ResRow(F::kInProgressNoFp, A::kOtherFp, O::kReserveInProgress, W::kNone, false),
      ResRow(F::kInProgressNoFp, A::kEmptyFp, O::kReserveInProgress, W::kNone, false),
      ResRow(F::kTimedOutNoFp, A::kOtherFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kTimedOutNoFp, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kReleasedNoFp, A::kOtherFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kReleasedNoFp, A::kEmptyFp, O::kReserveAcquired, W::kPut, kUsed),
      ResRow(F::kCompletedNoFp, A::kOtherFp, O::kReserveCompleted, W::kNone, false),
      ResRow(F::kCompletedNoFp, A::kEmptyFp, O::kReserveCompleted, W::kNone, false),

      // Lookup: the state, no side effects.
      LookRow(F::kNoRecord, K::kAbsent),
      LookRow(F::kExpired, K::kAbsent),
      LookRow(F::kInProgress, K::kInProgress),
      LookRow(F::kTimedOut, K::kLeaseExpired),
      LookRow(F::kReleased, K::kLeaseExpired),
      LookRow(F::kCompleted, K::kCompleted),
      LookRow(F::kCompletedNoFp, K::kCompleted),

      // Purge: deletes whatever is stored; waiters are served as for a release.
      PurgeRow(F::kNoRecord, !kExisted, W::kNone, Wk::kNone),
      PurgeRow(F::kExpired, !kExisted, W::kDelete, Wk::kNone),
      PurgeRow(F::kInProgress, kExisted, W::kDelete, Wk::kFreed),
      PurgeRow(F::kTimedOut, kExisted, W::kDelete, Wk::kFreed),
      PurgeRow(F::kReleased, kExisted, W::kDelete, Wk::kFreed),
      PurgeRow(F::kCompleted, kExisted, W::kDelete, Wk::kNone),
  };

  // ABSENT: every token op answers NOT_FOUND whatever the token.
  for (F f : {F::kNoRecord, F::kExpired}) {
    AddTokenRows(&t, Op::kComplete, f, O::kCompleteNotFound, W::kNone, Wk::kNone,
                 O::kCompleteNotFound);
    AddTokenRows(&t, Op::kRelease, f, O::kReleaseNotFound, W::kNone, Wk::kNone,
                 O::kReleaseNotFound);
    AddTokenRows(&t, Op::kRenew, f, O::kRenewNotFound, W::kNone, Wk::kNone, O::kRenewNotFound);
  }
  // IN_PROGRESS and LEASE_EXPIRED by time: the current token still holds the record (nobody
  // took it over); any other token has lost it.
  for (F f : {F::kInProgress, F::kTimedOut}) {
    AddTokenRows(&t, Op::kComplete, f, O::kCompleteOk, W::kPut, Wk::kCompleted,
                 O::kCompleteLeaseLost);
    AddTokenRows(&t, Op::kRelease, f, O::kReleaseOk, W::kPut, Wk::kFreed, O::kReleaseLeaseLost);
    AddTokenRows(&t, Op::kRenew, f, O::kRenewOk, W::kPut, Wk::kNone, O::kRenewLeaseLost);
  }
  // Released: the released token is finished, so every token has lost the lease.
  AddTokenRows(&t, Op::kComplete, F::kReleased, O::kCompleteLeaseLost, W::kNone, Wk::kNone,
               O::kCompleteLeaseLost);
  AddTokenRows(&t, Op::kRelease, F::kReleased, O::kReleaseLeaseLost, W::kNone, Wk::kNone,
               O::kReleaseLeaseLost);
  AddTokenRows(&t, Op::kRenew, F::kReleased, O::kRenewLeaseLost, W::kNone, Wk::kNone,
               O::kRenewLeaseLost);
  // COMPLETED: the same token repeating Complete is OK and changes nothing; everything else is
  // ALREADY_COMPLETED.
  AddTokenRows(&t, Op::kComplete, F::kCompleted, O::kCompleteOk, W::kNone, Wk::kNone,
               O::kCompleteAlreadyCompleted);
  AddTokenRows(&t, Op::kRelease, F::kCompleted, O::kReleaseAlreadyCompleted, W::kNone, Wk::kNone,
               O::kReleaseAlreadyCompleted);
  AddTokenRows(&t, Op::kRenew, F::kCompleted, O::kRenewAlreadyCompleted, W::kNone, Wk::kNone,
               O::kRenewAlreadyCompleted);
  return t;
}

Decision Decide(const Row& row, const Record* current, uint64_t now) {
  switch (row.op) {
    case Op::kReserve:
      return DecideReserve(current, ReserveOp{FingerprintOf(row.arg), 10'000, 60'000}, now, kFresh,
                           kLimits);
    case Op::kComplete:
      return DecideComplete(current, CompleteOp{TokenOf(row.arg), 200, "new body", 0}, now,
                            kLimits);
    case Op::kRelease: return DecideRelease(current, TokenOf(row.arg), now);
    case Op::kRenew: return DecideRenew(current, RenewOp{TokenOf(row.arg), 20'000}, now, kLimits);
    case Op::kLookup: return DecideLookup(current, now);
    case Op::kPurge: return DecidePurge(current, now);
  }
  return Decision{};
}

// Section 5: a result is part of ReserveReply with COMPLETED only, of CompleteReply with OK and
// ALREADY_COMPLETED, of LookupReply with COMPLETED only; never of the others.
bool CarriesResult(const Row& row) {
  switch (row.outcome) {
    case O::kReserveCompleted:
    case O::kCompleteOk:
    case O::kCompleteAlreadyCompleted: return true;
    case O::kLookup: return row.state == K::kCompleted;
    default: return false;
  }
}

TEST(StateMachineTableTest, EveryStateOpAndRelation) {
  std::set<Outcome> reached;
  std::set<KeyState> lookup_states;
  for (const Row& row : Table()) {
    SCOPED_TRACE(std::string(FixtureName(row.fixture)) + " x " + OpName(row.op) + " x " +
                 ArgName(row.arg));
    const std::optional<Record> stored = Build(row.fixture);
    const Record* current = stored ? &*stored : nullptr;
    const Decision d = Decide(row, current, kNow);

    EXPECT_EQ(OutcomeName(d.outcome), std::string(OutcomeName(row.outcome)));
    EXPECT_EQ(d.write, row.write);
    EXPECT_EQ(d.token_used, row.token_used);
    EXPECT_EQ(d.wake, row.wake);
    if (row.op == Op::kLookup) {
      EXPECT_EQ(d.state, row.state);
    }
    if (row.op == Op::kPurge) {
      EXPECT_EQ(d.existed, row.existed);
    }
    reached.insert(d.outcome);
    if (row.op == Op::kLookup) lookup_states.insert(d.state);

    // A token is revealed with ACQUIRED only, and it is the fresh one.
    EXPECT_EQ(d.token, d.outcome == O::kReserveAcquired ? kFresh : 0u);
    EXPECT_EQ(d.has_result, CarriesResult(row));
    if (d.has_result) {
      ASSERT_NE(d.Described(current), nullptr);
      EXPECT_TRUE(d.Described(current)->completed);
    }
    if (d.write == W::kPut) {
      // Only an acquisition changes the token; Complete, Release and Renew keep it.
      EXPECT_EQ(d.record.token, d.token_used ? kFresh : kCurrent);
    }
    if (row.op == Op::kReserve) {
      // expires_unix_ms is set with every outcome but MISMATCH.
      if (d.outcome == O::kReserveMismatch) {
        EXPECT_EQ(d.expires_unix_ms, 0u);
      } else {
        EXPECT_GT(d.expires_unix_ms, kNow);
      }
    }
  }

  for (int i = 0; i < kOutcomeCount; ++i) {
    const auto o = static_cast<Outcome>(i);
    EXPECT_TRUE(reached.count(o)) << "no row reaches " << OutcomeName(o);
  }
  EXPECT_EQ(reached.size(), static_cast<size_t>(kOutcomeCount));
  EXPECT_EQ(lookup_states,
            (std::set<KeyState>{K::kAbsent, K::kInProgress, K::kLeaseExpired, K::kCompleted}));
}

// The fixtures are what they claim to be.
TEST(StateMachineTableTest, FixturesHaveTheirStates) {
  EXPECT_EQ(StateAt(nullptr, kNow), K::kAbsent);
  const std::pair<Fixture, K> cases[] = {
      {Fixture::kExpired, K::kAbsent},
      {Fixture::kInProgress, K::kInProgress},
      {Fixture::kTimedOut, K::kLeaseExpired},
      {Fixture::kReleased, K::kLeaseExpired},
      {Fixture::kCompleted, K::kCompleted},
      {Fixture::kInProgressNoFp, K::kInProgress},
      {Fixture::kTimedOutNoFp, K::kLeaseExpired},
      {Fixture::kReleasedNoFp, K::kLeaseExpired},
      {Fixture::kCompletedNoFp, K::kCompleted},
  };
  for (const auto& [f, state] : cases) {
    SCOPED_TRACE(FixtureName(f));
    const std::optional<Record> r = Build(f);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(StateAt(&*r, kNow), state);
  }
}

// "The key becomes reservable at once": a released record is LEASE_EXPIRED even while its
// original lease would still run.
TEST(StateMachineTableTest, ReleasedIsLeaseExpiredBeforeTheLeaseEnd) {
  Record r = Held(kLeaseEnd, kRetentionEnd);
  r.released = true;
  EXPECT_EQ(StateAt(&r, kNow), K::kLeaseExpired);
  EXPECT_EQ(DecideLookup(&r, kNow).state, K::kLeaseExpired);
  const Decision d = DecideReserve(&r, ReserveOp{kFpA, 0, 0}, kNow, kFresh, kLimits);
  EXPECT_EQ(d.outcome, O::kReserveAcquired);
  EXPECT_EQ(d.record.attempt, 3u);
}

// ---------------------------------------------------------------------------
// Reserve fields.

void ExpectReplyDescribesRecord(const Decision& d) {
  EXPECT_EQ(d.token, d.record.token);
  EXPECT_EQ(d.attempt, d.record.attempt);
  EXPECT_EQ(d.lease_expires_unix_ms, d.record.lease_expires_unix_ms);
  EXPECT_EQ(d.expires_unix_ms, d.record.expires_unix_ms);
}

TEST(StateMachineReserveTest, AcquireOnNoRecordIsAttemptOne) {
  const Decision d = DecideReserve(nullptr, ReserveOp{kFpA, 10'000, 60'000}, kNow, kFresh, kLimits);
  ASSERT_EQ(d.outcome, O::kReserveAcquired);
  EXPECT_EQ(d.write, W::kPut);
  EXPECT_TRUE(d.token_used);
  EXPECT_EQ(d.token, kFresh);
  EXPECT_EQ(d.record.token, kFresh);
  EXPECT_EQ(d.record.attempt, 1u);
  EXPECT_EQ(d.record.fingerprint, kFpA);
  EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 10'000);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 60'000);
  EXPECT_FALSE(d.record.released);
  EXPECT_FALSE(d.record.completed);
  EXPECT_EQ(d.lease_remaining_ms, 10'000u);
  EXPECT_FALSE(d.has_result);
  ExpectReplyDescribesRecord(d);
  EXPECT_EQ(d.Described(nullptr), &d.record);
}

TEST(StateMachineReserveTest, AcquireOnExpiredRecordStartsAFreshRecord) {
  const Record expired = *Build(Fixture::kExpired);
  const Decision d =
      DecideReserve(&expired, ReserveOp{kFpB, 10'000, 60'000}, kNow, kFresh, kLimits);
  ASSERT_EQ(d.outcome, O::kReserveAcquired);
  EXPECT_EQ(d.token, kFresh);
  EXPECT_EQ(d.record.attempt, 1u);        // not a takeover: the old record is gone
  EXPECT_EQ(d.record.fingerprint, kFpB);  // a new first acquisition
  EXPECT_FALSE(d.record.completed);       // the old result is not carried over
  EXPECT_TRUE(d.record.body.empty());
  EXPECT_EQ(d.record.status, 0);
  EXPECT_FALSE(d.record.released);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 60'000);
  ExpectReplyDescribesRecord(d);
}

TEST(StateMachineReserveTest, TakeoverCountsAttemptAndKeepsTheFirstFingerprint) {
  struct Case {
    Fixture fixture;
    std::string_view request_fp;
    std::string_view stored_after;
  };
  const Case cases[] = {
      {Fixture::kTimedOut, kFpA, kFpA},   {Fixture::kTimedOut, "", kFpA},
      {Fixture::kReleased, kFpA, kFpA},   {Fixture::kReleased, "", kFpA},
      {Fixture::kTimedOutNoFp, kFpB, ""}, {Fixture::kTimedOutNoFp, "", ""},
      {Fixture::kReleasedNoFp, kFpB, ""}, {Fixture::kReleasedNoFp, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(FixtureName(c.fixture)) + " / request fp '" +
                 std::string(c.request_fp) + "'");
    const Record stored = *Build(c.fixture);
    const Decision d =
        DecideReserve(&stored, ReserveOp{c.request_fp, 10'000, 60'000}, kNow, kFresh, kLimits);
    ASSERT_EQ(d.outcome, O::kReserveAcquired);
    EXPECT_TRUE(d.token_used);
    EXPECT_EQ(d.token, kFresh);
    EXPECT_EQ(d.record.token, kFresh);
    EXPECT_EQ(d.record.attempt, stored.attempt + 1);
    EXPECT_EQ(d.record.fingerprint, c.stored_after);
    EXPECT_FALSE(d.record.released);  // the new holder's token is live
    EXPECT_FALSE(d.record.completed);
    EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 10'000);
    EXPECT_EQ(d.lease_remaining_ms, 10'000u);
    // Retention restarts at each acquisition.
    EXPECT_EQ(d.record.expires_unix_ms, kNow + 60'000);
    ExpectReplyDescribesRecord(d);
  }
}

TEST(StateMachineReserveTest, RetentionNeverEndsBeforeTheLease) {
  // A 1 h lease with a 1 s retention: the record lives until the lease ends.
  Decision d = DecideReserve(nullptr, ReserveOp{kFpA, 3'600'000, 1'000}, kNow, kFresh, kLimits);
  EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 3'600'000);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 3'600'000);
  EXPECT_EQ(d.expires_unix_ms, kNow + 3'600'000);
  // The default 30 s lease with a 1 s retention.
  d = DecideReserve(nullptr, ReserveOp{kFpA, 0, 1}, kNow, kFresh, kLimits);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 30'000);
  // Same on a takeover.
  const Record timed_out = *Build(Fixture::kTimedOut);
  d = DecideReserve(&timed_out, ReserveOp{kFpA, 50'000, 2'000}, kNow, kFresh, kLimits);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 50'000);
}

TEST(StateMachineReserveTest, RecordReflectsClampedLeaseAndRetention) {
  struct Case {
    uint32_t lease_ms;
    uint64_t retention_ms;
    uint64_t lease_end;
    uint64_t expires;
  };
  const uint64_t day = 24ull * 3600 * 1000;
  const Case cases[] = {
      {0, 0, kNow + 30'000, kNow + day},  // both defaults
      {1, 1, kNow + 1, kNow + 1'000},     // minimums: 1 ms, 1 s
      {1, 999, kNow + 1, kNow + 1'000},
      {7'200'000, 0, kNow + 3'600'000, kNow + day},  // lease clamped to 1 h
      {1, 31 * day, kNow + 1, kNow + 30 * day},      // retention clamped to 30 days
      {UINT32_MAX, UINT64_MAX, kNow + 3'600'000, kNow + 30 * day},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("lease_ms=" + std::to_string(c.lease_ms) +
                 " retention_ms=" + std::to_string(c.retention_ms));
    const Decision d =
        DecideReserve(nullptr, ReserveOp{kFpA, c.lease_ms, c.retention_ms}, kNow, kFresh, kLimits);
    ASSERT_EQ(d.outcome, O::kReserveAcquired);
    EXPECT_EQ(d.record.lease_expires_unix_ms, c.lease_end);
    EXPECT_EQ(d.lease_remaining_ms, c.lease_end - kNow);
    EXPECT_EQ(d.record.expires_unix_ms, c.expires);
  }
}

TEST(StateMachineReserveTest, InProgressReportsTheRemainingLease) {
  const Record stored = *Build(Fixture::kInProgress);
  const Decision d = DecideReserve(&stored, ReserveOp{kFpA, 10'000, 60'000}, kNow, kFresh, kLimits);
  ASSERT_EQ(d.outcome, O::kReserveInProgress);
  EXPECT_EQ(d.write, W::kNone);
  EXPECT_FALSE(d.token_used);
  EXPECT_EQ(d.token, 0u);
  EXPECT_EQ(d.attempt, 2u);
  EXPECT_EQ(d.lease_expires_unix_ms, kLeaseEnd);
  EXPECT_EQ(d.lease_remaining_ms, 5'000u);
  // Answering IN_PROGRESS does not restart the retention.
  EXPECT_EQ(d.expires_unix_ms, kRetentionEnd);
  EXPECT_FALSE(d.has_result);
}

TEST(StateMachineReserveTest, CompletedReplaysTheStoredResult) {
  const Record stored = *Build(Fixture::kCompleted);
  for (std::string_view fp : {kFpA, std::string_view()}) {
    SCOPED_TRACE("request fp '" + std::string(fp) + "'");
    const Decision d = DecideReserve(&stored, ReserveOp{fp, 10'000, 60'000}, kNow, kFresh, kLimits);
    ASSERT_EQ(d.outcome, O::kReserveCompleted);
    EXPECT_EQ(d.write, W::kNone);
    EXPECT_FALSE(d.token_used);
    EXPECT_EQ(d.token, 0u);
    EXPECT_TRUE(d.has_result);
    ASSERT_EQ(d.Described(&stored), &stored);
    EXPECT_EQ(d.Described(&stored)->status, 201);
    EXPECT_EQ(d.Described(&stored)->body, "stored body");
    EXPECT_EQ(d.Described(&stored)->completed_unix_ms, kNow - 3'000);
    // A replay does not restart the retention.
    EXPECT_EQ(d.expires_unix_ms, kRetentionEnd);
  }
}

TEST(StateMachineReserveTest, MismatchRevealsNothing) {
  for (Fixture f :
       {Fixture::kInProgress, Fixture::kTimedOut, Fixture::kReleased, Fixture::kCompleted}) {
    SCOPED_TRACE(FixtureName(f));
    const Record stored = *Build(f);
    const Decision d =
        DecideReserve(&stored, ReserveOp{kFpB, 10'000, 60'000}, kNow, kFresh, kLimits);
    ASSERT_EQ(d.outcome, O::kReserveMismatch);
    EXPECT_EQ(d.write, W::kNone);
    EXPECT_FALSE(d.token_used);
    EXPECT_EQ(d.wake, Wk::kNone);
    EXPECT_EQ(d.token, 0u);
    EXPECT_EQ(d.attempt, 0u);
    EXPECT_EQ(d.lease_expires_unix_ms, 0u);
    EXPECT_EQ(d.lease_remaining_ms, 0u);
    EXPECT_EQ(d.expires_unix_ms, 0u);
    EXPECT_FALSE(d.has_result);
  }
}

// ---------------------------------------------------------------------------
// Complete.

TEST(StateMachineCompleteTest, StoresTheResult) {
  for (Fixture f : {Fixture::kInProgress, Fixture::kTimedOut}) {
    SCOPED_TRACE(FixtureName(f));
    const Record stored = *Build(f);
    const Decision d =
        DecideComplete(&stored, CompleteOp{kCurrent, 201, "created", 120'000}, kNow, kLimits);
    ASSERT_EQ(d.outcome, O::kCompleteOk);
    EXPECT_EQ(d.write, W::kPut);
    EXPECT_EQ(d.wake, Wk::kCompleted);
    EXPECT_FALSE(d.token_used);
    EXPECT_TRUE(d.has_result);
    EXPECT_EQ(d.Described(&stored), &d.record);
    EXPECT_TRUE(d.record.completed);
    EXPECT_EQ(d.record.status, 201);
    EXPECT_EQ(d.record.body, "created");
    EXPECT_EQ(d.record.completed_unix_ms, kNow);
    EXPECT_EQ(d.record.token, kCurrent);
    EXPECT_EQ(d.record.attempt, 2u);
    EXPECT_EQ(d.record.fingerprint, kFpA);
    // Retention restarts at Complete with that request's retention_ms.
    EXPECT_EQ(d.record.expires_unix_ms, kNow + 120'000);
    EXPECT_EQ(d.expires_unix_ms, kNow + 120'000);
    EXPECT_EQ(StateAt(&d.record, kNow), K::kCompleted);
  }
}

TEST(StateMachineCompleteTest, RetentionDefaultsClampsAndOutlivesTheLease) {
  const Record stored = *Build(Fixture::kInProgress);  // lease ends at kNow + 5 s
  Decision d = DecideComplete(&stored, CompleteOp{kCurrent, 200, "", 0}, kNow, kLimits);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 24ull * 3600 * 1000);
  d = DecideComplete(&stored, CompleteOp{kCurrent, 200, "", UINT64_MAX}, kNow, kLimits);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + kLimits.max_retention_ms);
  // 1 ms is clamped to 1 s, still before the lease end: the record lives until the lease ends.
  d = DecideComplete(&stored, CompleteOp{kCurrent, 200, "", 1}, kNow, kLimits);
  EXPECT_EQ(d.record.expires_unix_ms, kLeaseEnd);
}

TEST(StateMachineCompleteTest, TheFirstResultStands) {
  const Record stored = *Build(Fixture::kInProgress);
  const Decision first =
      DecideComplete(&stored, CompleteOp{kCurrent, 201, "first", 120'000}, kNow, kLimits);
  ASSERT_EQ(first.outcome, O::kCompleteOk);
  const Record completed = first.record;

  // The same token again, with another result: OK, nothing written, the first result stands.
  const Decision again =
      DecideComplete(&completed, CompleteOp{kCurrent, 500, "second", 0}, kNow + 10, kLimits);
  EXPECT_EQ(again.outcome, O::kCompleteOk);
  EXPECT_EQ(again.write, W::kNone);
  EXPECT_EQ(again.wake, Wk::kNone);
  EXPECT_TRUE(again.has_result);
  ASSERT_EQ(again.Described(&completed), &completed);
  EXPECT_EQ(again.Described(&completed)->status, 201);
  EXPECT_EQ(again.Described(&completed)->body, "first");
  EXPECT_EQ(again.expires_unix_ms, kNow + 120'000);

  // Another token: ALREADY_COMPLETED with the stored result.
  for (uint64_t token : {kStale, kZeroToken, kUngranted}) {
    SCOPED_TRACE("token " + std::to_string(token));
    const Decision other =
        DecideComplete(&completed, CompleteOp{token, 500, "other", 0}, kNow + 10, kLimits);
    EXPECT_EQ(other.outcome, O::kCompleteAlreadyCompleted);
    EXPECT_EQ(other.write, W::kNone);
    EXPECT_TRUE(other.has_result);
    ASSERT_EQ(other.Described(&completed), &completed);
    EXPECT_EQ(other.Described(&completed)->body, "first");
  }
}

TEST(StateMachineCompleteTest, LeaseLostRevealsNoResult) {
  const Record stored = *Build(Fixture::kInProgress);
  const Decision d = DecideComplete(&stored, CompleteOp{kStale, 201, "x", 0}, kNow, kLimits);
  EXPECT_EQ(d.outcome, O::kCompleteLeaseLost);
  EXPECT_EQ(d.write, W::kNone);
  EXPECT_FALSE(d.has_result);
}

// ---------------------------------------------------------------------------
// Release, and the tokens a takeover finishes.

TEST(StateMachineReleaseTest, ReleasedTokenIsFinished) {
  const Record held = *Build(Fixture::kInProgress);
  const Decision rel = DecideRelease(&held, kCurrent, kNow);
  ASSERT_EQ(rel.outcome, O::kReleaseOk);
  EXPECT_EQ(rel.write, W::kPut);
  EXPECT_EQ(rel.wake, Wk::kFreed);
  EXPECT_TRUE(rel.record.released);
  EXPECT_EQ(rel.record.fingerprint, kFpA);  // kept
  EXPECT_EQ(rel.record.token, kCurrent);
  EXPECT_EQ(rel.record.attempt, 2u);
  EXPECT_FALSE(rel.record.completed);
  const Record released = rel.record;

  // Reservable at once.
  for (uint64_t t : {kNow, kNow + 1}) {
    SCOPED_TRACE("t=now+" + std::to_string(t - kNow));
    const Decision look = DecideLookup(&released, t);
    EXPECT_EQ(look.state, K::kLeaseExpired);
    EXPECT_EQ(look.lease_remaining_ms, 0u);
    EXPECT_EQ(look.token, 0u);
    EXPECT_EQ(look.attempt, 2u);
  }

  // Later Complete, Release or Renew with the released token: *_LEASE_LOST.
  EXPECT_EQ(
      DecideComplete(&released, CompleteOp{kCurrent, 200, "late", 0}, kNow + 1, kLimits).outcome,
      O::kCompleteLeaseLost);
  EXPECT_EQ(DecideRelease(&released, kCurrent, kNow + 1).outcome, O::kReleaseLeaseLost);
  EXPECT_EQ(DecideRenew(&released, RenewOp{kCurrent, 10'000}, kNow + 1, kLimits).outcome,
            O::kRenewLeaseLost);

  // The fingerprint is kept: another one is a mismatch, the same or none takes over.
  EXPECT_EQ(DecideReserve(&released, ReserveOp{kFpB, 0, 0}, kNow + 1, kFresh, kLimits).outcome,
            O::kReserveMismatch);
  const Decision again = DecideReserve(&released, ReserveOp{"", 0, 0}, kNow + 1, kFresh, kLimits);
  ASSERT_EQ(again.outcome, O::kReserveAcquired);
  EXPECT_EQ(again.record.attempt, 3u);
  EXPECT_EQ(again.record.fingerprint, kFpA);
  EXPECT_EQ(again.record.token, kFresh);
  EXPECT_FALSE(again.record.released);

  // The new holder completes; the released token still cannot.
  const Record reacquired = again.record;
  EXPECT_EQ(
      DecideComplete(&reacquired, CompleteOp{kCurrent, 200, "", 0}, kNow + 2, kLimits).outcome,
      O::kCompleteLeaseLost);
  EXPECT_EQ(DecideComplete(&reacquired, CompleteOp{kFresh, 200, "", 0}, kNow + 2, kLimits).outcome,
            O::kCompleteOk);
}

TEST(StateMachineReleaseTest, TakeoverFinishesThePreviousToken) {
  const Record timed_out = *Build(Fixture::kTimedOut);
  const Decision take =
      DecideReserve(&timed_out, ReserveOp{kFpA, 10'000, 0}, kNow, kFresh, kLimits);
  ASSERT_EQ(take.outcome, O::kReserveAcquired);
  const Record taken = take.record;
  // Another token was granted since: the old holder has lost the lease.
  EXPECT_EQ(DecideComplete(&taken, CompleteOp{kCurrent, 200, "", 0}, kNow + 1, kLimits).outcome,
            O::kCompleteLeaseLost);
  EXPECT_EQ(DecideRelease(&taken, kCurrent, kNow + 1).outcome, O::kReleaseLeaseLost);
  EXPECT_EQ(DecideRenew(&taken, RenewOp{kCurrent, 0}, kNow + 1, kLimits).outcome,
            O::kRenewLeaseLost);
  // The new token holds it.
  EXPECT_EQ(DecideRenew(&taken, RenewOp{kFresh, 0}, kNow + 1, kLimits).outcome, O::kRenewOk);
  EXPECT_EQ(DecideRelease(&taken, kFresh, kNow + 1).outcome, O::kReleaseOk);
}

// ---------------------------------------------------------------------------
// Renew.

TEST(StateMachineRenewTest, ExtendsTheLeaseToNowPlusLease) {
  const Record held = *Build(Fixture::kInProgress);
  const Decision d = DecideRenew(&held, RenewOp{kCurrent, 20'000}, kNow, kLimits);
  ASSERT_EQ(d.outcome, O::kRenewOk);
  EXPECT_EQ(d.write, W::kPut);
  EXPECT_EQ(d.wake, Wk::kNone);
  EXPECT_FALSE(d.token_used);
  EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 20'000);
  EXPECT_EQ(d.lease_expires_unix_ms, kNow + 20'000);
  EXPECT_EQ(d.lease_remaining_ms, 20'000u);
  EXPECT_EQ(d.record.token, kCurrent);
  EXPECT_EQ(d.record.attempt, 2u);
  EXPECT_EQ(d.record.fingerprint, kFpA);
  EXPECT_EQ(d.record.expires_unix_ms, kRetentionEnd);  // not restarted
  EXPECT_EQ(d.token, 0u);
}

TEST(StateMachineRenewTest, WorksAfterExpiryWhileNobodyTookOver) {
  const Record timed_out = *Build(Fixture::kTimedOut);
  const Decision d = DecideRenew(&timed_out, RenewOp{kCurrent, 10'000}, kNow, kLimits);
  ASSERT_EQ(d.outcome, O::kRenewOk);
  EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 10'000);
  EXPECT_EQ(d.lease_remaining_ms, 10'000u);
  EXPECT_EQ(StateAt(&d.record, kNow), K::kInProgress);
  // Held again: another Reserve now sees IN_PROGRESS.
  const Record renewed = d.record;
  EXPECT_EQ(DecideReserve(&renewed, ReserveOp{kFpA, 0, 0}, kNow + 1, kFresh, kLimits).outcome,
            O::kReserveInProgress);
}

TEST(StateMachineRenewTest, NeverShortensRetentionAndNeverEndsItBeforeTheLease) {
  const Record held = Held(kLeaseEnd, kNow + 6'000);
  // A lease past the retention end pushes the retention end to the lease end.
  Decision d = DecideRenew(&held, RenewOp{kCurrent, 60'000}, kNow, kLimits);
  ASSERT_EQ(d.outcome, O::kRenewOk);
  EXPECT_EQ(d.record.lease_expires_unix_ms, kNow + 60'000);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 60'000);
  // A short lease leaves the retention end where it was.
  d = DecideRenew(&held, RenewOp{kCurrent, 100}, kNow, kLimits);
  ASSERT_EQ(d.outcome, O::kRenewOk);
  EXPECT_EQ(d.record.expires_unix_ms, kNow + 6'000);
  EXPECT_GE(d.record.expires_unix_ms, d.record.lease_expires_unix_ms);
}

TEST(StateMachineRenewTest, LeaseIsDefaultedAndClamped) {
  const Record held = *Build(Fixture::kInProgress);
  EXPECT_EQ(DecideRenew(&held, RenewOp{kCurrent, 0}, kNow, kLimits).record.lease_expires_unix_ms,
            kNow + 30'000);
  EXPECT_EQ(DecideRenew(&held, RenewOp{kCurrent, 1}, kNow, kLimits).record.lease_expires_unix_ms,
            kNow + 1);
  EXPECT_EQ(
      DecideRenew(&held, RenewOp{kCurrent, UINT32_MAX}, kNow, kLimits).record.lease_expires_unix_ms,
      kNow + 3'600'000);
}

// ---------------------------------------------------------------------------
// Lookup and Purge.

TEST(StateMachineLookupTest, DescribesWithoutRevealingTheToken) {
  const Record held = *Build(Fixture::kInProgress);
  Decision d = DecideLookup(&held, kNow);
  EXPECT_EQ(d.state, K::kInProgress);
  EXPECT_EQ(d.token, 0u);
  EXPECT_EQ(d.attempt, 2u);
  EXPECT_EQ(d.lease_expires_unix_ms, kLeaseEnd);
  EXPECT_EQ(d.lease_remaining_ms, 5'000u);
  EXPECT_EQ(d.expires_unix_ms, kRetentionEnd);
  EXPECT_TRUE(d.has_fingerprint);
  EXPECT_FALSE(d.has_result);
  EXPECT_EQ(d.write, W::kNone);

  const Record completed = *Build(Fixture::kCompleted);
  d = DecideLookup(&completed, kNow);
  EXPECT_EQ(d.state, K::kCompleted);
  EXPECT_EQ(d.token, 0u);
  EXPECT_TRUE(d.has_result);
  EXPECT_EQ(d.Described(&completed), &completed);
  EXPECT_EQ(d.expires_unix_ms, kRetentionEnd);

  const Record expired = *Build(Fixture::kExpired);
  d = DecideLookup(&expired, kNow);
  EXPECT_EQ(d.state, K::kAbsent);
  EXPECT_FALSE(d.has_result);
  EXPECT_FALSE(d.has_fingerprint);
  EXPECT_EQ(d.token, 0u);
}

TEST(StateMachinePurgeTest, ExpiredRecordIsDeletedButWasNotFound) {
  const Record expired = *Build(Fixture::kExpired);
  const Decision d = DecidePurge(&expired, kNow);
  EXPECT_EQ(d.write, W::kDelete);
  EXPECT_FALSE(d.existed);
  EXPECT_EQ(d.wake, Wk::kNone);
  const Decision none = DecidePurge(nullptr, kNow);
  EXPECT_EQ(none.write, W::kNone);
  EXPECT_FALSE(none.existed);
}

// ---------------------------------------------------------------------------
// Time boundaries: a lease is held while now < L, a record lives while now < E.

TEST(StateMachineTimeTest, LeaseEndBoundary) {
  const uint64_t lease_end = kNow + 5'000;
  const Record held = Held(lease_end, kNow + 600'000);
  struct Case {
    uint64_t t;
    K state;
    Outcome reserve;
  };
  const Case cases[] = {
      {lease_end - 1, K::kInProgress, O::kReserveInProgress},
      {lease_end, K::kLeaseExpired, O::kReserveAcquired},
      {lease_end + 1, K::kLeaseExpired, O::kReserveAcquired},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("t=L" + std::to_string(static_cast<int64_t>(c.t - lease_end)));
    EXPECT_EQ(DecideLookup(&held, c.t).state, c.state);
    const Decision r = DecideReserve(&held, ReserveOp{kFpA, 10'000, 0}, c.t, kFresh, kLimits);
    EXPECT_EQ(r.outcome, c.reserve);
    if (c.reserve == O::kReserveInProgress) {
      EXPECT_EQ(r.lease_remaining_ms, 1u);
    } else {
      EXPECT_EQ(r.record.attempt, 3u);  // a takeover
      EXPECT_EQ(r.record.fingerprint, kFpA);
      EXPECT_EQ(r.token, kFresh);
      EXPECT_EQ(r.record.lease_expires_unix_ms, c.t + 10'000);
    }
    // The holder may still complete or renew on either side: nobody took over.
    EXPECT_EQ(DecideComplete(&held, CompleteOp{kCurrent, 200, "", 0}, c.t, kLimits).outcome,
              O::kCompleteOk);
    EXPECT_EQ(DecideRenew(&held, RenewOp{kCurrent, 0}, c.t, kLimits).outcome, O::kRenewOk);
  }
}

TEST(StateMachineTimeTest, RetentionEndBoundary) {
  const uint64_t end = kNow + 600'000;
  struct Case {
    uint64_t t;
    bool live;
  };
  const Case cases[] = {{end - 1, true}, {end, false}, {end + 1, false}};
  const Record completed = Completed(end);
  const Record timed_out = Held(kNow - 1'000, end);
  for (const Case& c : cases) {
    SCOPED_TRACE("t=E" + std::to_string(static_cast<int64_t>(c.t - end)));
    // COMPLETED until E, then ABSENT.
    const Decision look = DecideLookup(&completed, c.t);
    EXPECT_EQ(look.state, c.live ? K::kCompleted : K::kAbsent);
    const Decision r = DecideReserve(&completed, ReserveOp{kFpB, 0, 0}, c.t, kFresh, kLimits);
    const Decision same = DecideReserve(&completed, ReserveOp{kFpA, 0, 0}, c.t, kFresh, kLimits);
    const Decision comp =
        DecideComplete(&completed, CompleteOp{kCurrent, 200, "", 0}, c.t, kLimits);
    if (c.live) {
      EXPECT_EQ(r.outcome, O::kReserveMismatch);
      EXPECT_EQ(same.outcome, O::kReserveCompleted);
      EXPECT_TRUE(same.has_result);
      EXPECT_EQ(comp.outcome, O::kCompleteOk);
      EXPECT_EQ(comp.write, W::kNone);
    } else {
      // ABSENT: a fresh first acquisition with the new fingerprint.
      EXPECT_EQ(r.outcome, O::kReserveAcquired);
      EXPECT_EQ(r.record.attempt, 1u);
      EXPECT_EQ(r.record.fingerprint, kFpB);
      EXPECT_FALSE(r.record.completed);
      EXPECT_EQ(same.outcome, O::kReserveAcquired);
      EXPECT_EQ(comp.outcome, O::kCompleteNotFound);
      EXPECT_EQ(DecideRelease(&completed, kCurrent, c.t).outcome, O::kReleaseNotFound);
      EXPECT_EQ(DecideRenew(&completed, RenewOp{kCurrent, 0}, c.t, kLimits).outcome,
                O::kRenewNotFound);
      EXPECT_FALSE(DecidePurge(&completed, c.t).existed);
    }

    // A lease-expired record: a takeover until E, a first acquisition from E on.
    const Decision take = DecideReserve(&timed_out, ReserveOp{"", 0, 0}, c.t, kFresh, kLimits);
    ASSERT_EQ(take.outcome, O::kReserveAcquired);
    EXPECT_EQ(take.record.attempt, c.live ? 3u : 1u);
    EXPECT_EQ(take.record.fingerprint, c.live ? kFpA : "");
    EXPECT_EQ(DecideLookup(&timed_out, c.t).state, c.live ? K::kLeaseExpired : K::kAbsent);
    EXPECT_EQ(DecideComplete(&timed_out, CompleteOp{kCurrent, 200, "", 0}, c.t, kLimits).outcome,
              c.live ? O::kCompleteOk : O::kCompleteNotFound);
  }
}

TEST(StateMachineTimeTest, RetentionEndEqualsLeaseEnd) {
  const uint64_t end = kNow + 5'000;
  const Record held = Held(end, end);
  struct Case {
    uint64_t t;
    K state;
  };
  const Case cases[] = {{end - 1, K::kInProgress}, {end, K::kAbsent}, {end + 1, K::kAbsent}};
  for (const Case& c : cases) {
    SCOPED_TRACE("t=L=E" + std::to_string(static_cast<int64_t>(c.t - end)));
    EXPECT_EQ(DecideLookup(&held, c.t).state, c.state);
    const Decision r = DecideReserve(&held, ReserveOp{kFpB, 0, 0}, c.t, kFresh, kLimits);
    const Decision comp = DecideComplete(&held, CompleteOp{kCurrent, 200, "", 0}, c.t, kLimits);
    if (c.state == K::kInProgress) {
      EXPECT_EQ(r.outcome, O::kReserveMismatch);
      EXPECT_EQ(comp.outcome, O::kCompleteOk);
    } else {
      EXPECT_EQ(r.outcome, O::kReserveAcquired);
      EXPECT_EQ(r.record.attempt, 1u);
      EXPECT_EQ(r.record.fingerprint, kFpB);
      EXPECT_EQ(comp.outcome, O::kCompleteNotFound);
      EXPECT_EQ(DecideRenew(&held, RenewOp{kCurrent, 0}, c.t, kLimits).outcome, O::kRenewNotFound);
    }
  }
}

// ---------------------------------------------------------------------------
// Clamping and validation.

TEST(StateMachineLimitsTest, EffectiveLease) {
  EXPECT_EQ(EffectiveLeaseMs(0, kLimits), 30'000u);
  EXPECT_EQ(EffectiveLeaseMs(1, kLimits), 1u);
  EXPECT_EQ(EffectiveLeaseMs(30'001, kLimits), 30'001u);
  EXPECT_EQ(EffectiveLeaseMs(3'600'000, kLimits), 3'600'000u);
  EXPECT_EQ(EffectiveLeaseMs(3'600'001, kLimits), 3'600'000u);
  EXPECT_EQ(EffectiveLeaseMs(UINT32_MAX, kLimits), 3'600'000u);
  Limits custom;
  custom.default_lease_ms = 500;
  custom.max_lease_ms = 2'000;
  EXPECT_EQ(EffectiveLeaseMs(0, custom), 500u);
  EXPECT_EQ(EffectiveLeaseMs(5'000, custom), 2'000u);
}

TEST(StateMachineLimitsTest, EffectiveRetention) {
  const uint64_t day = 24ull * 3600 * 1000;
  EXPECT_EQ(EffectiveRetentionMs(0, kLimits), day);
  EXPECT_EQ(EffectiveRetentionMs(1, kLimits), kMinRetentionMs);
  EXPECT_EQ(kMinRetentionMs, 1'000u);
  EXPECT_EQ(EffectiveRetentionMs(999, kLimits), 1'000u);
  EXPECT_EQ(EffectiveRetentionMs(1'000, kLimits), 1'000u);
  EXPECT_EQ(EffectiveRetentionMs(1'001, kLimits), 1'001u);
  EXPECT_EQ(EffectiveRetentionMs(30 * day, kLimits), 30 * day);
  EXPECT_EQ(EffectiveRetentionMs(30 * day + 1, kLimits), 30 * day);
  EXPECT_EQ(EffectiveRetentionMs(UINT64_MAX, kLimits), 30 * day);
  Limits custom;
  custom.default_retention_ms = 5'000;
  custom.max_retention_ms = 10'000;
  EXPECT_EQ(EffectiveRetentionMs(0, custom), 5'000u);
  EXPECT_EQ(EffectiveRetentionMs(20'000, custom), 10'000u);
}

void ExpectInvalid(const Status& s, const std::string& field) {
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find(field), std::string::npos)
      << "'" << s.message() << "' does not name " << field;
}

TEST(StateMachineValidateTest, Address) {
  const std::string key(1, 'k');
  EXPECT_TRUE(ValidateAddress("", key, kLimits).ok());
  EXPECT_TRUE(ValidateAddress(std::string(128, 's'), key, kLimits).ok());
  ExpectInvalid(ValidateAddress(std::string(129, 's'), key, kLimits), "scope");
  ExpectInvalid(ValidateAddress("payments", "", kLimits), "key");
  EXPECT_TRUE(ValidateAddress("payments", std::string(256, 'k'), kLimits).ok());
  ExpectInvalid(ValidateAddress("payments", std::string(257, 'k'), kLimits), "key");
}

TEST(StateMachineValidateTest, Reserve) {
  EXPECT_TRUE(ValidateReserve("payments", "k", "", 0, kLimits).ok());
  EXPECT_TRUE(ValidateReserve("payments", "k", std::string(64, 'f'), 60'000, kLimits).ok());
  ExpectInvalid(ValidateReserve("payments", "k", std::string(65, 'f'), 0, kLimits), "fingerprint");
  ExpectInvalid(ValidateReserve("payments", "k", "", 60'001, kLimits), "wait_ms");
  ExpectInvalid(ValidateReserve(std::string(129, 's'), "k", "", 0, kLimits), "scope");
  ExpectInvalid(ValidateReserve("payments", "", "", 0, kLimits), "key");
  ExpectInvalid(ValidateReserve("payments", std::string(257, 'k'), "", 0, kLimits), "key");
}

TEST(StateMachineValidateTest, Complete) {
  EXPECT_TRUE(ValidateComplete("payments", "k", 0, kLimits).ok());
  EXPECT_TRUE(ValidateComplete("payments", "k", 256 * 1024, kLimits).ok());
  ExpectInvalid(ValidateComplete("payments", "k", 256 * 1024 + 1, kLimits), "result.body");
  ExpectInvalid(ValidateComplete(std::string(129, 's'), "k", 0, kLimits), "scope");
  ExpectInvalid(ValidateComplete("payments", "", 0, kLimits), "key");
  ExpectInvalid(ValidateComplete("payments", std::string(257, 'k'), 0, kLimits), "key");
}

}  // namespace
}  // namespace idem::storage
