#include "tools/crashloop/workload.h"

#include <chrono>
#include <random>

#include "protocol/client.h"

namespace idem::crashloop {

namespace v1 = idem::v1;

namespace {

using std::chrono::milliseconds;

std::string OutcomeName(v1::ReserveOutcome o) { return std::string(v1::ReserveOutcome_Name(o)); }
std::string OutcomeName(v1::CompleteOutcome o) { return std::string(v1::CompleteOutcome_Name(o)); }

// One client thread.
class Worker {
 public:
  Worker(const WorkloadOptions& o, int index, Oracle* oracle, SharedKeys* shared,
         WorkloadStats* stats, const std::atomic<bool>* stop, const std::atomic<bool>* killed)
      : o_(o),
        index_(index),
        oracle_(oracle),
        shared_(shared),
        stats_(stats),
        stop_(stop),
        killed_(killed),
        rng_(o.seed * 1'000'003 + static_cast<uint64_t>(o.cycle) * 7919 +
             static_cast<uint64_t>(index)),
        client_(ClientOptions(o, index)) {}

  void Resume(const std::string& key, uint64_t token) {
    if (CompleteFlow(key, token, /*shared=*/false, /*resumed=*/true) == Step::kFailed) Backoff();
  }

  // New flows start only while the daemon is up; a flow under way when it is
  // killed runs to its first failed call.
  void Loop() {
    while (!stop_->load() && !killed_->load()) {
      const bool shared = shared_->size() > 0 && Uniform(0, 999) < o_.shared_fraction * 1000;
      const Step s = shared ? SharedFlow() : FreshFlow();
      if (s == Step::kFailed) Backoff();
    }
  }

 private:
  enum class Step { kDone, kFailed };

  static client::Options ClientOptions(const WorkloadOptions& o, int index) {
    client::Options c;
    c.endpoint = o.endpoint;
    c.client_name = "idem-crashloop-" + std::to_string(index);
    c.connect_timeout = milliseconds(2000);
    c.call_timeout = milliseconds(5000);  // a waiting Reserve adds its wait_ms
    return c;
  }

  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  void Backoff() { std::this_thread::sleep_for(milliseconds(5 + Uniform(0, 10))); }
  void Sleep(uint64_t ms) { std::this_thread::sleep_for(milliseconds(ms)); }

  Step CallFailed(const char* op, const std::string& key, const Status& status) {
    if (killed_->load()) {
      ++stats_->errors;
      return Step::kFailed;
    }
    ++stats_->errors_before_kill;
    std::lock_guard<std::mutex> lock(stats_->mu);
    if (stats_->error_samples.size() < 5) {
      stats_->error_samples.push_back("cycle " + std::to_string(o_.cycle) + " " + op + " " + key +
                                      ": " + status.ToString());
    }
    return Step::kFailed;
  }

  void Violate(const char* kind, const std::string& key, const std::string& detail) {
    oracle_->RecordViolation({kind, key, "cycle " + std::to_string(o_.cycle) + ": " + detail});
  }

  // Reserve; an ACQUIRED answer is recorded. kFailed when no answer came.
  Step Reserve(const std::string& key, bool shared, uint32_t lease_ms, uint32_t wait_ms,
               v1::ReserveReply* reply) {
    client::ReserveOptions ro;
    ro.fingerprint = FingerprintFor(key, shared);
    ro.lease_ms = lease_ms;
    ro.retention_ms = o_.retention_ms;
    ro.wait_ms = wait_ms;
    const uint64_t send_seq = oracle_->NextSeq();
    auto r = client_.Reserve(kScope, key, ro);
    const uint64_t ack_seq = oracle_->NextSeq();
    if (!r.ok()) return CallFailed("Reserve", key, r.status());
    *reply = std::move(*r);
    if (reply->outcome() == v1::RESERVE_ACQUIRED) {
      Acquisition a;
      a.token = reply->token();
      a.attempt = reply->attempt();
      a.lease_expires_unix_ms = reply->lease_expires_unix_ms();
      a.lease_ms = lease_ms;
      a.send_seq = send_seq;
      a.ack_seq = ack_seq;
      a.cycle = o_.cycle;
      oracle_->RecordAcquired(key, shared, a);
      ++stats_->acquired;
      if (shared && a.attempt > 1) ++stats_->takeovers;
    } else if (reply->outcome() == v1::RESERVE_COMPLETED) {
      oracle_->RecordReplay(key, {reply->result().status(), reply->result().body(), o_.cycle,
                                  "Reserve (RESERVE_COMPLETED)"});
      ++stats_->replays;
    } else if (reply->outcome() == v1::RESERVE_MISMATCH) {
      Violate("mismatch", key, "Reserve with the key's only fingerprint answered RESERVE_MISMATCH");
    }
    return Step::kDone;
  }

  Step FreshFlow() {
    const std::string key = "f/" + o_.run_id + "/" + std::to_string(o_.cycle) + "/" +
                            std::to_string(index_) + "/" + std::to_string(next_++);
    v1::ReserveReply reply;
    if (Reserve(key, false, o_.fresh_lease_ms, 0, &reply) == Step::kFailed) return Step::kFailed;
    if (reply.outcome() != v1::RESERVE_ACQUIRED) {
      Violate("fresh-not-acquired", key,
              "first Reserve of a never-used key answered " + OutcomeName(reply.outcome()));
      return Step::kDone;
    }
    return CompleteFlow(key, reply.token(), false, false);
  }

  // Complete with the result derived from (key, token). For a fresh key the
  // token is ours alone, so anything but COMPLETE_OK is a violation.
  Step CompleteFlow(const std::string& key, uint64_t token, bool shared, bool resumed) {
    const std::string body = ResultBody(key, token);
    const int32_t status = ResultStatus(key, token);
    oracle_->RecordCompleteSent(key, token, status);
    auto r = client_.Complete(kScope, key, token, status, body, o_.retention_ms);
    const uint64_t ack_seq = oracle_->NextSeq();
    if (!r.ok()) return CallFailed("Complete", key, r.status());
    const auto outcome = r->outcome();
    if (outcome == v1::COMPLETE_OK) {
      oracle_->RecordCompleteOk(key, {token, status, body, ack_seq, o_.cycle});
      ++stats_->completed;
      if (resumed) ++stats_->resumed;
      if (r->result().body() != body || r->result().status() != status) {
        Violate("wrong-complete-result", key,
                "COMPLETE_OK for token " + std::to_string(token) + " returned status " +
                    std::to_string(r->result().status()) + " body " +
                    Printable(r->result().body()) + ", sent status " + std::to_string(status) +
                    " body " + Printable(body));
      }
      if (!shared && Uniform(0, 9) == 0) {  // the caller's retry: a replay
        v1::ReserveReply replay;
        if (Reserve(key, false, o_.fresh_lease_ms, 0, &replay) == Step::kFailed) {
          return Step::kFailed;
        }
        if (replay.outcome() != v1::RESERVE_COMPLETED) {
          Violate(
              "no-replay", key,
              "Reserve after acknowledged COMPLETE_OK answered " + OutcomeName(replay.outcome()));
        }
      }
      return Step::kDone;
    }
    if (outcome == v1::COMPLETE_ALREADY_COMPLETED) {
      oracle_->RecordReplay(key, {r->result().status(), r->result().body(), o_.cycle,
                                  "Complete (COMPLETE_ALREADY_COMPLETED)"});
      ++stats_->replays;
    }
    if (outcome == v1::COMPLETE_LEASE_LOST) ++stats_->lease_lost;
    if (!shared || outcome == v1::COMPLETE_NOT_FOUND) {
      Violate(resumed ? "resume-failed" : "complete-failed", key,
              "Complete with token " + std::to_string(token) + " (ACQUIRED acknowledged" +
                  (resumed ? " in an earlier cycle" : "") + ") answered " + OutcomeName(outcome));
    }
    return Step::kDone;
  }

  Step SharedFlow() {
    const int slot = static_cast<int>(Uniform(0, static_cast<uint64_t>(shared_->size() - 1)));
    const uint32_t gen = shared_->generation(slot);
    const std::string key =
        "s/" + o_.run_id + "/" + std::to_string(slot) + "/" + std::to_string(gen);
    const auto lease_ms = static_cast<uint32_t>(Uniform(20, 300));
    const auto wait_ms = static_cast<uint32_t>(Uniform(50, 1000));
    v1::ReserveReply reply;
    if (Reserve(key, true, lease_ms, wait_ms, &reply) == Step::kFailed) return Step::kFailed;
    switch (reply.outcome()) {
      case v1::RESERVE_ACQUIRED: break;
      case v1::RESERVE_IN_PROGRESS: ++stats_->wait_timeouts; return Step::kDone;
      case v1::RESERVE_COMPLETED: shared_->Advance(slot, gen); return Step::kDone;
      default: return Step::kDone;
    }
    const uint64_t token = reply.token();
    // Work: usually inside the lease, sometimes stalling past it (a takeover).
    Sleep(Uniform(0, 4) == 0 ? lease_ms + Uniform(0, 40) : Uniform(0, lease_ms / 2));
    if (Uniform(0, 99) < 15) {
      const Step s = CompleteFlow(key, token, true, false);
      if (s == Step::kDone) shared_->Advance(slot, gen);  // completed by us or another
      return s;
    }
    oracle_->RecordReleaseSent(key, token);
    auto r = client_.Release(kScope, key, token);
    if (!r.ok()) return CallFailed("Release", key, r.status());  // stays "release unknown"
    oracle_->RecordReleaseAnswered(key, token, r->outcome() == v1::RELEASE_OK);
    switch (r->outcome()) {
      case v1::RELEASE_OK: ++stats_->released; break;
      case v1::RELEASE_LEASE_LOST: ++stats_->lease_lost; break;
      case v1::RELEASE_ALREADY_COMPLETED: shared_->Advance(slot, gen); break;
      default:
        Violate("release-not-found", key,
                "Release of acknowledged token " + std::to_string(token) + " answered " +
                    v1::ReleaseOutcome_Name(r->outcome()));
    }
    return Step::kDone;
  }

  const WorkloadOptions& o_;
  const int index_;
  Oracle* oracle_;
  SharedKeys* shared_;
  WorkloadStats* stats_;
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* killed_;
  std::mt19937_64 rng_;
  client::Client client_;
  uint64_t next_ = 0;
};

}  // namespace

Workload::Workload(WorkloadOptions options, Oracle* oracle, SharedKeys* shared,
                   std::vector<std::pair<std::string, uint64_t>> resumes)
    : options_(std::move(options)),
      oracle_(oracle),
      shared_(shared),
      resumes_(std::move(resumes)) {}

Workload::~Workload() { Stop(); }

void Workload::Start() {
  for (int i = 0; i < options_.clients; ++i) threads_.emplace_back([this, i] { Run(i); });
}

void Workload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Workload::Run(int worker) {
  Worker w(options_, worker, oracle_, shared_, &stats_, &stop_, &killed_);
  // This worker's share of the earlier cycles' unfinished flows.
  for (size_t i = static_cast<size_t>(worker); i < resumes_.size() && !stop_.load();
       i += static_cast<size_t>(options_.clients)) {
    w.Resume(resumes_[i].first, resumes_[i].second);
  }
  w.Loop();
}

}  // namespace idem::crashloop
