// Fuzzing the request path: frames -> Request -> the real server::Executor
// (state machine, overlay, group commit, waiters) on a RocksDB store in a
// temporary directory -> encoded answers, each checked by fuzz/request_oracle.h.
//
// The input is a client's byte stream: frames of PROTOCOL.md section 1, each
// holding a Request (a frame over 64 KiB ends the input; a payload that is not
// a Request is skipped, as Connection answers it). At most 64 data ops run per
// input. The executor's clock is a FakeClock; requests come from three
// sessions (slot = the request's id % 3; slots 0 and 1 share a tenant, 2 has
// its own) and get ids 1, 2, ... in order. The ops Connection serves itself
// steer the run instead:
//   Ping   advances the clock by its payload, read as a little-endian integer
//          (modulo 2^36 ms), after answering everything pending;
//   Hello  toggles batching: while on, the io loop is not polled after each
//          request, so requests share a group-commit batch and read the overlay;
//   Stats  closes the session in slot id % 3 (DropSession) and opens a new one.
// Complete, Release and Renew with a token in 1..255 use the (token-1)-th
// token granted in this input instead (so the fuzzer can name real tokens).
// wait_ms in 1..max is raised to the max so no wait ends in real time during
// the input: at its end the executor is drained, which answers every waiter.
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz/request_oracle.h"
#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/session.h"
#include "storage/clock.h"
#include "storage/store.h"
#include "storage/token_source.h"

namespace idem::fuzz {
namespace {

namespace v1 = idem::v1;

constexpr uint32_t kMaxFrameBytes = 64 * 1024;
constexpr int kMaxRequests = 64;
constexpr int kSessions = 3;
constexpr uint64_t kMaxTokenAlias = 255;
constexpr uint64_t kAdvanceModulus = uint64_t{1} << 36;
constexpr uint64_t kBaseWallMs = 1'700'000'000'000;
// The shared store is wiped after this many inputs so it stays small.
constexpr uint64_t kInputsPerStore = 5000;
constexpr int kMaxDrainPolls = 10'000;

// Small limits, so the fuzzer reaches every boundary with short inputs.
storage::Limits FuzzLimits() {
  storage::Limits l;
  l.max_scope_bytes = 8;
  l.max_key_bytes = 16;
  l.max_fingerprint_bytes = 8;
  l.max_body_bytes = 64;
  l.default_lease_ms = 1000;
  l.max_lease_ms = 10'000;
  l.default_retention_ms = 5000;
  l.max_retention_ms = 60'000;
  l.max_wait_ms = 60'000;
  return l;
}

// One RocksDB store for the whole process (opening one per input would
// dominate the run time). Each input uses tenants of its own, so no input
// sees another's records.
class SharedStore {
 public:
  static SharedStore& Get() {
    static SharedStore* shared = new SharedStore();  // lives until exit
    return *shared;
  }

  storage::Store* store() { return store_.get(); }
  storage::TokenSource* tokens() { return tokens_.get(); }
  uint64_t* max_token() { return &max_token_; }

  // Starts an input: returns its tenants' common prefix.
  std::string NextInput() {
    if (++inputs_ % kInputsPerStore == 0) Reopen();
    return "fz" + std::to_string(inputs_) + "-";
  }

 private:
  SharedStore() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "idem-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp failed");
    dir_ = tmpl;
    Reopen();
    // After the first Open: RocksDB's statics created there must still be
    // alive when the store closes (exit handlers run in reverse order).
    std::atexit([] { SharedStore::Get().Remove(); });
  }

  void Reopen() {
    tokens_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_ + "/db");
    storage::StoreOptions o;
    o.path = dir_ + "/db";
    o.block_cache_bytes = 8 << 20;
    o.max_background_jobs = 1;
    Status s = storage::Store::Open(o, &store_clock_, &store_);
    if (!s.ok()) Fail("opening the store: " + s.ToString());
    s = storage::TokenSource::Open(store_.get(), &tokens_);
    if (!s.ok()) Fail("opening the token source: " + s.ToString());
    max_token_ = 0;  // a new store starts its tokens afresh
  }

  void Remove() {
    tokens_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Never advanced: the TTL filter must not drop what the runs' clocks
  // (which start here) still consider live.
  FakeClock store_clock_{kBaseWallMs};
  std::string dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::TokenSource> tokens_;
  uint64_t max_token_ = 0;
  uint64_t inputs_ = 0;
};

class FakeSession final : public server::Session {
 public:
  FakeSession(Oracle* oracle, std::string tenant) : oracle_(oracle) {
    principal_.tenant = std::move(tenant);
    principal_.role = server::Role::kAdmin;
  }
  // Every answer is checked, even after close: the model must see each change.
  void Deliver(std::string frame) override { oracle_->OnFrame(frame); }
  bool closed() const override { return closed_; }
  const server::Principal& principal() const override { return principal_; }
  void Close() { closed_ = true; }

 private:
  Oracle* oracle_;
  server::Principal principal_;
  bool closed_ = false;
};

// One input's run: a fresh executor (and io loop) over the shared store.
class Run {
 public:
  explicit Run(SharedStore& shared)
      : tenant_prefix_(shared.NextInput()), oracle_(FuzzLimits(), &clock_, shared.max_token()) {
    server::Executor::Options o;
    o.durability = server::Durability::kAsync;
    o.limits = FuzzLimits();
    o.max_waiters = 6;
    o.max_waiters_per_key = 3;
    executor_ = std::make_unique<server::Executor>(io_, shared.store(), shared.tokens(), &clock_,
                                                   &metrics_, o);
    for (int i = 0; i < kSessions; ++i) OpenSession(i);
  }

  // Runs every request of `stream`, then drains and checks the answers.
  void Execute(std::string_view stream) {
    protocol::FrameDecoder decoder(kMaxFrameBytes);
    decoder.Feed(stream);
    std::string_view payload;
    int handled = 0;
    while (handled < kMaxRequests &&
           decoder.Next(&payload) == protocol::FrameDecoder::Result::kFrame) {
      v1::Request req;
      if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) continue;
      if (Steer(req)) continue;
      Handle(&req);
      ++handled;
    }
    batching_ = false;
    io_.poll();
    Drain();
    oracle_.Finish();
  }

 private:
  void OpenSession(int slot) {
    sessions_[slot] =
        std::make_shared<FakeSession>(&oracle_, tenant_prefix_ + (slot == 2 ? "b" : "a"));
  }

  // The non-data ops: true when `req` was one.
  bool Steer(const v1::Request& req) {
    const int slot = static_cast<int>(req.id() % kSessions);
    switch (req.op_case()) {
      case v1::Request::kPing: {
        io_.poll();  // answers pending at the old time are decided at it
        uint64_t ms = 0;
        const std::string& p = req.ping().payload();
        for (size_t i = 0; i < p.size() && i < 8; ++i)
          ms |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
        clock_.Advance(ms % kAdvanceModulus);
        io_.poll();
        return true;
      }
      case v1::Request::kHello:
        batching_ = !batching_;
        if (!batching_) io_.poll();
        return true;
      case v1::Request::kStats:
        sessions_[slot]->Close();
        executor_->DropSession(sessions_[slot].get());
        oracle_.OnSessionClosed(slot);
        OpenSession(slot);
        return true;
      case v1::Request::OP_NOT_SET: return true;
      default: return false;
    }
  }

  void Handle(v1::Request* req) {
    const int slot = static_cast<int>(req->id() % kSessions);
    req->set_id(++next_id_);
    AliasToken(req);
    if (req->has_reserve()) {
      v1::Reserve* r = req->mutable_reserve();
      if (r->wait_ms() > 0 && r->wait_ms() <= FuzzLimits().max_wait_ms) {
        r->set_wait_ms(FuzzLimits().max_wait_ms);
      }
    }
    oracle_.OnRequest(*req, sessions_[slot]->principal().tenant, slot);
    executor_->Handle(sessions_[slot], *req, std::chrono::steady_clock::now());
    if (!batching_) io_.poll();
  }

  void AliasToken(v1::Request* req) {
    auto alias = [this](uint64_t t) {
      return t >= 1 && t <= kMaxTokenAlias ? oracle_.GrantedToken(t - 1) : t;
    };
    if (req->has_complete()) req->mutable_complete()->set_token(alias(req->complete().token()));
    if (req->has_release()) req->mutable_release()->set_token(alias(req->release().token()));
    if (req->has_renew()) req->mutable_renew()->set_token(alias(req->renew().token()));
  }

  void Drain() {
    bool done = false;
    executor_->Drain([&done] { done = true; });
    for (int i = 0; !done && i < kMaxDrainPolls; ++i) io_.poll();
    if (!done) Fail("the executor's drain never finished");
  }

  // Destroyed in reverse: sessions, executor (joins its sync thread), io
  // (dropping handlers not run), metrics, oracle, clock.
  FakeClock clock_{kBaseWallMs};
  std::string tenant_prefix_;
  Oracle oracle_;
  server::Metrics metrics_;
  boost::asio::io_context io_;
  // Keeps poll() from stopping the loop when it runs out of handlers.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::unique_ptr<server::Executor> executor_;
  std::array<std::shared_ptr<FakeSession>, kSessions> sessions_;
  bool batching_ = false;
  uint64_t next_id_ = 0;
};

}  // namespace
}  // namespace idem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  idem::fuzz::Run run(idem::fuzz::SharedStore::Get());
  run.Execute(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
