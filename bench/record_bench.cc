// The record value codec (record.h) and the key codec (key_codec.h): run on
// every write (encode), every read (decode) and, for Peek, on every value the
// TTL compaction filter sees.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/bench_util.h"
#include "storage/key_codec.h"
#include "storage/record.h"

namespace idem::storage {
namespace {

constexpr uint64_t kNowMs = 1'700'000'000'000;

// A completed record with a 32-byte fingerprint and `body_bytes` of body.
Record Completed(size_t body_bytes) {
  Record r;
  r.token = (3ull << 32) | 98'765;
  r.attempt = 1;
  r.fingerprint = bench::RandomBytes(bench::kFingerprintBytes, 1);
  r.lease_expires_unix_ms = kNowMs + 30'000;
  r.expires_unix_ms = kNowMs + 86'400'000;
  r.completed = true;
  r.status = 201;
  r.body = bench::RandomBytes(body_bytes, 2);
  r.completed_unix_ms = kNowMs;
  return r;
}

// Into a reused buffer, as Batch::Put does. Arg: body bytes.
void BM_EncodeRecord(benchmark::State& state) {
  const Record r = Completed(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeRecord(r, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_EncodeRecord)->ArgName("body")->Arg(0)->Arg(100)->Arg(4096);

// Into a reused Record (its strings keep their capacity). Arg: body bytes.
void BM_DecodeRecord(benchmark::State& state) {
  const std::string value = EncodeRecord(Completed(static_cast<size_t>(state.range(0))));
  Record r;
  for (auto _ : state) {
    if (!DecodeRecord(value, &r).ok()) {
      state.SkipWithError("DecodeRecord failed");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(value.size()));
}
BENCHMARK(BM_DecodeRecord)->ArgName("body")->Arg(0)->Arg(100)->Arg(4096);

// Into a fresh Record each time, as Store::Get's callers do: the strings are
// allocated again.
void BM_DecodeRecordFresh(benchmark::State& state) {
  const std::string value = EncodeRecord(Completed(static_cast<size_t>(state.range(0))));
  for (auto _ : state) {
    Record r;
    if (!DecodeRecord(value, &r).ok()) {
      state.SkipWithError("DecodeRecord failed");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(value.size()));
}
BENCHMARK(BM_DecodeRecordFresh)->ArgName("body")->Arg(100)->Arg(4096);

void BM_PeekExpires(benchmark::State& state) {
  const std::string value = EncodeRecord(Completed(bench::kBodyBytes));
  uint64_t expires = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(PeekExpiresUnixMs(value, &expires));
    benchmark::DoNotOptimize(expires);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PeekExpires);

void BM_EncodeRecordKey(benchmark::State& state) {
  const std::string key = bench::HexKey(1);
  for (auto _ : state) {
    std::string encoded = EncodeRecordKey(bench::kTenant, bench::kScope, key);
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecordKey);

void BM_DecodeRecordKey(benchmark::State& state) {
  const std::string encoded = EncodeRecordKey(bench::kTenant, bench::kScope, bench::HexKey(1));
  std::string tenant, scope, key;
  for (auto _ : state) {
    if (!DecodeRecordKey(encoded, &tenant, &scope, &key)) {
      state.SkipWithError("DecodeRecordKey failed");
      break;
    }
    benchmark::DoNotOptimize(key.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRecordKey);

}  // namespace
}  // namespace idem::storage
