// The state machine's decisions on the paths every request takes: Reserve of
// an absent key (a grant), of a key in progress, of a completed key (a
// replay), and Complete by the lease holder. Pure functions: the cost is
// building the Decision (and the new Record when one is written).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/bench_util.h"
#include "storage/state_machine.h"

namespace idem::storage {
namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;
constexpr uint64_t kToken = (3ull << 32) | 98'765;

const std::string& Fingerprint() {
  static const std::string* fp = new std::string(bench::RandomBytes(bench::kFingerprintBytes, 1));
  return *fp;
}

Record InProgress() {
  Record r;
  r.token = kToken;
  r.attempt = 1;
  r.fingerprint = Fingerprint();
  r.lease_expires_unix_ms = kNowMs + 30'000;
  r.expires_unix_ms = kNowMs + 86'400'000;
  return r;
}

Record Completed(size_t body_bytes) {
  Record r = InProgress();
  r.completed = true;
  r.status = 201;
  r.body = bench::RandomBytes(body_bytes, 2);
  r.completed_unix_ms = kNowMs - 1'000;
  return r;
}

ReserveOp Reserve() {
  ReserveOp op;
  op.fingerprint = Fingerprint();
  op.lease_ms = 30'000;
  return op;
}

// Runs DecideReserve on `current` and checks the outcome once.
void RunReserve(benchmark::State& state, const Record* current, Outcome expected) {
  const Limits limits;
  const ReserveOp op = Reserve();
  uint64_t token = kToken;
  if (DecideReserve(current, op, kNowMs, token, limits).outcome != expected) {
    state.SkipWithError("unexpected outcome");
    return;
  }
  for (auto _ : state) {
    Decision d = DecideReserve(current, op, kNowMs, ++token, limits);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DecideReserveAbsent(benchmark::State& state) {
  RunReserve(state, nullptr, Outcome::kReserveAcquired);
}
BENCHMARK(BM_DecideReserveAbsent);

// An expired lease taken over: a grant that also reads the old record.
void BM_DecideReserveTakeover(benchmark::State& state) {
  Record r = InProgress();
  r.lease_expires_unix_ms = kNowMs - 1;
  RunReserve(state, &r, Outcome::kReserveAcquired);
}
BENCHMARK(BM_DecideReserveTakeover);

void BM_DecideReserveInProgress(benchmark::State& state) {
  const Record r = InProgress();
  RunReserve(state, &r, Outcome::kReserveInProgress);
}
BENCHMARK(BM_DecideReserveInProgress);

// The replay. The Decision only points at the stored result (no copy), so
// the body size should not matter. Arg: body bytes.
void BM_DecideReserveCompleted(benchmark::State& state) {
  const Record r = Completed(static_cast<size_t>(state.range(0)));
  RunReserve(state, &r, Outcome::kReserveCompleted);
}
BENCHMARK(BM_DecideReserveCompleted)->ArgName("body")->Arg(100)->Arg(4096);

// Complete by the holder: copies the record and the body into the Decision.
// Arg: body bytes.
void BM_DecideComplete(benchmark::State& state) {
  const Limits limits;
  const Record current = InProgress();
  const std::string body = bench::RandomBytes(static_cast<size_t>(state.range(0)), 3);
  CompleteOp op;
  op.token = kToken;
  op.status = 201;
  op.body = body;
  if (DecideComplete(&current, op, kNowMs, limits).outcome != Outcome::kCompleteOk) {
    state.SkipWithError("unexpected outcome");
    return;
  }
  for (auto _ : state) {
    Decision d = DecideComplete(&current, op, kNowMs, limits);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_DecideComplete)->ArgName("body")->Arg(0)->Arg(100)->Arg(4096);

// A retried Complete of an already completed record: no copy.
void BM_DecideCompleteRetry(benchmark::State& state) {
  const Limits limits;
  const Record current = Completed(bench::kBodyBytes);
  CompleteOp op;
  op.token = kToken;
  op.status = 201;
  op.body = current.body;
  for (auto _ : state) {
    Decision d = DecideComplete(&current, op, kNowMs, limits);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideCompleteRetry);

}  // namespace
}  // namespace idem::storage
