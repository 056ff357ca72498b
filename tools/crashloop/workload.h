// The crash loop's client load for one cycle: threads, each with its own
// connection, doing (a) the payment flow on fresh keys (Reserve, Complete
// with a body derived from key and token, now and then a replaying Reserve)
// and (b) contention on a few shared keys (waiting Reserves with short
// leases; complete or release; sometimes a holder stalls past its lease).
// Every acknowledged answer goes to the Oracle.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tools/crashloop/oracle.h"

namespace idem::crashloop {

inline constexpr char kScope[] = "crashloop";

struct WorkloadOptions {
  std::string endpoint;  // 127.0.0.1:PORT
  int clients = 16;
  int shared_keys = 8;  // 0: fresh keys only
  double shared_fraction = 0.3;
  uint64_t seed = 1;
  int cycle = 1;
  std::string run_id;  // makes keys unique to this run
  uint64_t retention_ms = 7ull * 24 * 3600 * 1000;
  uint32_t fresh_lease_ms = 120'000;
};

struct WorkloadStats {
  std::atomic<uint64_t> acquired{0};
  std::atomic<uint64_t> takeovers{0};  // shared acquisitions with attempt > 1
  std::atomic<uint64_t> completed{0};  // acknowledged COMPLETE_OK
  std::atomic<uint64_t> resumed{0};    // of which: a previous cycle's flow, same token
  std::atomic<uint64_t> released{0};
  std::atomic<uint64_t> replays{0};
  std::atomic<uint64_t> wait_timeouts{0};
  std::atomic<uint64_t> lease_lost{0};
  std::atomic<uint64_t> errors{0};  // failed calls after the kill (expected)
  // Failed calls while the daemon was meant to be up: not violations, but
  // reported (a sample of their messages below).
  std::atomic<uint64_t> errors_before_kill{0};
  std::mutex mu;
  std::vector<std::string> error_samples;  // GUARDED_BY(mu), at most 5
};

// The shared keys' current generation: a key seen completed is replaced by
// its next generation, so contention continues. Lives across cycles.
class SharedKeys {
 public:
  explicit SharedKeys(int n) : gens_(static_cast<size_t>(n > 0 ? n : 0)) {}
  int size() const { return static_cast<int>(gens_.size()); }
  uint32_t generation(int slot) const { return gens_[static_cast<size_t>(slot)].load(); }
  void Advance(int slot, uint32_t from) {
    gens_[static_cast<size_t>(slot)].compare_exchange_strong(from, from + 1);
  }

 private:
  std::vector<std::atomic<uint32_t>> gens_;
};

class Workload {
 public:
  // `resumes`: (key, token) of fresh flows acquired but not acknowledged
  // completed in earlier cycles; completed first, with the same token.
  Workload(WorkloadOptions options, Oracle* oracle, SharedKeys* shared,
           std::vector<std::pair<std::string, uint64_t>> resumes);
  ~Workload();  // Stop()s

  void Start();
  // Called just before the daemon is killed: later call failures are expected.
  void MarkKilled() { killed_ = true; }
  // Asks every thread to finish and joins them (each call is bounded).
  void Stop();
  const WorkloadStats& stats() const { return stats_; }

 private:
  void Run(int worker);

  WorkloadOptions options_;
  Oracle* oracle_;
  SharedKeys* shared_;
  std::vector<std::pair<std::string, uint64_t>> resumes_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> killed_{false};
  WorkloadStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace idem::crashloop
