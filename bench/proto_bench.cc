// Protobuf encode and decode of the Request and Response of every op, with
// realistic field sizes (32-byte keys and fingerprints, 100-byte bodies, a
// full 100-entry Scan page). Serialize writes into a reused string; Parse
// reads into a reused message with ParseFromArray, as the server does.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/bench_util.h"
#include "protocol/idem.pb.h"

namespace idem::v1 {
namespace {

constexpr uint64_t kId = 1'234'567;
constexpr uint64_t kToken = (3ull << 32) | 98'765;
constexpr uint64_t kNowMs = 1'700'000'000'000;
constexpr int kScanEntries = 100;  // a full page at the default limit

std::string Key() { return bench::HexKey(7); }
std::string Fingerprint() { return bench::RandomBytes(bench::kFingerprintBytes, 8); }

void FillResult(Result* r) {
  r->set_status(201);
  r->set_body(bench::RandomBytes(bench::kBodyBytes, 9));
  r->set_completed_unix_ms(kNowMs);
}

// ---- Requests ----

Request Base() {
  Request req;
  req.set_id(kId);
  return req;
}

template <typename Op>
void Address(Op* op) {
  op->set_scope(std::string(bench::kScope));
  op->set_key(Key());
}

Request HelloRequest() {
  Request req = Base();
  Hello* h = req.mutable_hello();
  h->set_protocol_version(1);
  h->set_token(bench::HexKey(1));
  h->set_client_name("orders-service");
  return req;
}

Request PingRequest() {
  Request req = Base();
  req.mutable_ping()->set_payload(bench::RandomBytes(16, 2));
  return req;
}

Request ReserveRequest() {
  Request req = Base();
  Reserve* r = req.mutable_reserve();
  Address(r);
  r->set_fingerprint(Fingerprint());
  r->set_lease_ms(30'000);
  r->set_retention_ms(86'400'000);
  r->set_wait_ms(5'000);
  return req;
}

Request CompleteRequest() {
  Request req = Base();
  Complete* c = req.mutable_complete();
  Address(c);
  c->set_token(kToken);
  FillResult(c->mutable_result());
  c->mutable_result()->clear_completed_unix_ms();  // ignored on input
  c->set_retention_ms(86'400'000);
  return req;
}

Request ReleaseRequest() {
  Request req = Base();
  Address(req.mutable_release());
  req.mutable_release()->set_token(kToken);
  return req;
}

Request RenewRequest() {
  Request req = Base();
  Address(req.mutable_renew());
  req.mutable_renew()->set_token(kToken);
  req.mutable_renew()->set_lease_ms(30'000);
  return req;
}

Request LookupRequest() {
  Request req = Base();
  Address(req.mutable_lookup());
  return req;
}

Request PurgeRequest() {
  Request req = Base();
  Address(req.mutable_purge());
  return req;
}

Request ScanRequest() {
  Request req = Base();
  Scan* s = req.mutable_scan();
  s->set_scope(std::string(bench::kScope));
  s->set_prefix("order-");
  s->set_cursor(bench::RandomBytes(48, 3));
  s->set_limit(kScanEntries);
  return req;
}

Request StatsRequest() {
  Request req = Base();
  req.mutable_stats();
  return req;
}

// ---- Responses ----

Response BaseReply() {
  Response resp;
  resp.set_id(kId);
  return resp;
}

Response HelloResponse() {
  Response resp = BaseReply();
  HelloReply* h = resp.mutable_hello();
  h->set_protocol_version(1);
  h->set_server_version("0.1.0");
  h->set_tenant(std::string(bench::kTenant));
  h->set_role(ROLE_WRITE);
  Limits* l = h->mutable_limits();
  l->set_max_frame_bytes(512 * 1024);
  l->set_max_scope_bytes(128);
  l->set_max_key_bytes(256);
  l->set_max_fingerprint_bytes(64);
  l->set_max_body_bytes(256 * 1024);
  l->set_default_lease_ms(30'000);
  l->set_max_lease_ms(3'600'000);
  l->set_default_retention_ms(86'400'000);
  l->set_max_retention_ms(30ull * 86'400'000);
  l->set_max_wait_ms(60'000);
  l->set_max_inflight(64);
  return resp;
}

Response PingResponse() {
  Response resp = BaseReply();
  resp.mutable_ping()->set_payload(bench::RandomBytes(16, 2));
  return resp;
}

// The common case: a fresh key was acquired.
Response ReserveAcquiredResponse() {
  Response resp = BaseReply();
  ReserveReply* r = resp.mutable_reserve();
  r->set_outcome(RESERVE_ACQUIRED);
  r->set_token(kToken);
  r->set_attempt(1);
  r->set_lease_expires_unix_ms(kNowMs + 30'000);
  r->set_lease_remaining_ms(30'000);
  r->set_expires_unix_ms(kNowMs + 86'400'000);
  return resp;
}

// The replay: a retry of a completed request gets the stored result.
Response ReserveCompletedResponse() {
  Response resp = BaseReply();
  ReserveReply* r = resp.mutable_reserve();
  r->set_outcome(RESERVE_COMPLETED);
  FillResult(r->mutable_result());
  r->set_expires_unix_ms(kNowMs + 86'400'000);
  return resp;
}

Response CompleteResponse() {
  Response resp = BaseReply();
  CompleteReply* c = resp.mutable_complete();
  c->set_outcome(COMPLETE_OK);
  FillResult(c->mutable_result());
  c->set_expires_unix_ms(kNowMs + 86'400'000);
  return resp;
}

Response ReleaseResponse() {
  Response resp = BaseReply();
  resp.mutable_release()->set_outcome(RELEASE_OK);
  return resp;
}

Response RenewResponse() {
  Response resp = BaseReply();
  RenewReply* r = resp.mutable_renew();
  r->set_outcome(RENEW_OK);
  r->set_lease_expires_unix_ms(kNowMs + 30'000);
  r->set_lease_remaining_ms(30'000);
  return resp;
}

Response LookupResponse() {
  Response resp = BaseReply();
  LookupReply* l = resp.mutable_lookup();
  l->set_state(KEY_COMPLETED);
  l->set_attempt(1);
  FillResult(l->mutable_result());
  l->set_expires_unix_ms(kNowMs + 86'400'000);
  l->set_fingerprint(Fingerprint());
  return resp;
}

Response PurgeResponse() {
  Response resp = BaseReply();
  resp.mutable_purge()->set_existed(true);
  return resp;
}

Response ScanResponse() {
  Response resp = BaseReply();
  ScanReply* s = resp.mutable_scan();
  for (int i = 0; i < kScanEntries; ++i) {
    ScanEntry* e = s->add_entries();
    e->set_scope(std::string(bench::kScope));
    e->set_key(bench::HexKey(static_cast<uint64_t>(i)));
    e->set_state(KEY_COMPLETED);
    e->set_attempt(1);
    e->set_expires_unix_ms(kNowMs + 86'400'000);
    e->set_body_bytes(bench::kBodyBytes);
    e->set_status(200);
  }
  s->set_next_cursor(bench::RandomBytes(48, 3));
  return resp;
}

Response StatsResponse() {
  Response resp = BaseReply();
  StatsReply* s = resp.mutable_stats();
  s->set_server_version("0.1.0");
  s->set_uptime_ms(86'400'000);
  s->set_keys_estimate(12'345'678);
  s->set_connections(40);
  s->set_waiters(3);
  // One counter per outcome and a few more, as the daemon reports.
  const char* names[] = {"reserve.acquired",
                         "reserve.in_progress",
                         "reserve.completed",
                         "reserve.mismatch",
                         "complete.ok",
                         "complete.lease_lost",
                         "complete.not_found",
                         "complete.already_completed",
                         "release.ok",
                         "release.lease_lost",
                         "renew.ok",
                         "renew.lease_lost",
                         "lookup",
                         "purge",
                         "wal.syncs",
                         "requests.rejected",
                         "connections.accepted",
                         "frames.too_large"};
  uint64_t n = 1;
  for (const char* name : names) (*s->mutable_counters())[name] = (n *= 7);
  return resp;
}

// ---- Benchmarks ----

// The message is built inside (not at registration, during static
// initialization) so no generated code runs before main.
template <typename Message>
void BM_Serialize(benchmark::State& state, Message (*make)()) {
  const Message msg = make();
  std::string out;
  for (auto _ : state) {
    if (!msg.SerializeToString(&out)) {
      state.SkipWithError("SerializeToString failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}

template <typename Message>
void BM_Parse(benchmark::State& state, Message (*make)()) {
  const std::string wire = make().SerializeAsString();
  Message msg;
  for (auto _ : state) {
    if (!msg.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
      state.SkipWithError("ParseFromArray failed");
      break;
    }
    benchmark::DoNotOptimize(&msg);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}

template <typename Message>
struct Case {
  const char* name;
  Message (*make)();
};

constexpr Case<Request> kRequests[] = {
    {"hello", HelloRequest},       {"ping", PingRequest},       {"reserve", ReserveRequest},
    {"complete", CompleteRequest}, {"release", ReleaseRequest}, {"renew", RenewRequest},
    {"lookup", LookupRequest},     {"purge", PurgeRequest},     {"scan", ScanRequest},
    {"stats", StatsRequest},
};

constexpr Case<Response> kResponses[] = {
    {"hello", HelloResponse},
    {"ping", PingResponse},
    {"reserve_acquired", ReserveAcquiredResponse},
    {"reserve_completed", ReserveCompletedResponse},
    {"complete", CompleteResponse},
    {"release", ReleaseResponse},
    {"renew", RenewResponse},
    {"lookup", LookupResponse},
    {"purge", PurgeResponse},
    {"scan100", ScanResponse},
    {"stats", StatsResponse},
};

template <typename Message, size_t N>
void Register(const char* kind, const Case<Message> (&cases)[N]) {
  for (const Case<Message>& c : cases) {
    benchmark::RegisterBenchmark(("BM_Serialize" + std::string(kind) + "/" + c.name).c_str(),
                                 BM_Serialize<Message>, c.make);
    benchmark::RegisterBenchmark(("BM_Parse" + std::string(kind) + "/" + c.name).c_str(),
                                 BM_Parse<Message>, c.make);
  }
}

bool RegisterAll() {
  Register("Request", kRequests);
  Register("Response", kResponses);
  return true;
}

[[maybe_unused]] const bool kRegistered = RegisterAll();

}  // namespace
}  // namespace idem::v1
