// idem-bench's load loop: one Runner per thread, each with its own
// io_context and connections. Closed loop keeps `depth` requests in flight
// per connection; open loop (rate > 0) sends at fixed intended times and
// measures latency from the intended time, so a stall cannot hide behind
// requests that were never sent (coordinated omission).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/target.h"

namespace idem::bench {

enum class Workload { kReserve, kFlow, kReplay, kContention, kLookupHit, kLookupMiss };
bool ParseWorkload(const std::string& name, Workload* out);

struct RunConfig {
  bool redis = false;
  TargetOptions target;
  Workload workload = Workload::kReserve;
  int connections = 50;  // per runner
  int depth = 1;
  double rate = 0;  // per runner, ops/s; 0 = closed loop
  uint32_t lease_ms = 30'000;
  uint32_t wait_ms = 5'000;  // contention
  int hot_keys = 8;          // contention: keys shared at once
  size_t body_bytes = 100;
  std::string key_prefix;       // unique per run
  uint64_t populated_keys = 0;  // replay / lookup-hit: keys pop-0..N-1 exist
  uint64_t total_ops = 0;       // stop after this many correct ops in all (0: by time)
};

struct RunStats {
  Histogram latency;
  std::map<std::string, uint64_t> outcomes;
  uint64_t ops = 0;
  uint64_t requests = 0;
  uint64_t wrong = 0;
  uint64_t errors = 0;
  std::string first_problem;
  void Merge(const RunStats& other);
};

// Keys shared by every runner: fresh-key sequence, progress count.
struct SharedCounters {
  std::atomic<uint64_t> next_key{0};
  std::atomic<uint64_t> done{0};
};

class Runner {
 public:
  Runner(const RunConfig& config, SharedCounters* shared, uint64_t seed);
  ~Runner();

  // Connects every connection (runs the io loop until done).
  Status Connect();
  // Completes `flows` reserve+complete flows on keys pop-<first..first+flows).
  Status Populate(uint64_t first, uint64_t flows);
  // Runs the workload until `until`.
  void Run(std::chrono::steady_clock::time_point until);

  const RunStats& stats() const { return stats_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Conn {
    std::unique_ptr<Target> target;
    int inflight = 0;
    std::deque<TimePoint> backlog;  // open loop: intended times not yet sent
  };

  void Fill(Conn* c);
  void StartOp(Conn* c, TimePoint intended);
  void Finish(Conn* c, TimePoint intended, const Reply& last, bool correct);
  void Tick();
  std::string FreshKey();
  std::string PopulatedKey();
  std::string Body(const std::string& key) const;
  void Flow(Conn* c, const std::string& key, std::function<void(const Reply&, bool)> done);

  RunConfig config_;
  SharedCounters* shared_;
  std::mt19937_64 rng_;
  boost::asio::io_context io_;
  boost::asio::steady_timer timer_{io_};
  std::vector<Conn> conns_;
  RunStats stats_;
  bool stopping_ = false;
  TimePoint start_;
  uint64_t scheduled_ = 0;  // open loop: ops scheduled so far
  size_t next_conn_ = 0;
};

}  // namespace idem::bench
