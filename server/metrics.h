// idemd's counters and histograms, rendered in the Prometheus text format
// (version 0.0.4) for GET /metrics and as a map for the Stats op.
//
// Not thread-safe: every update and every render happens on the executor's
// io thread (the WAL-sync thread hands its timings back to that thread).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/idem.pb.h"
#include "storage/state_machine.h"

namespace idem::server {

// A cumulative histogram with fixed upper bounds (seconds or counts).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket/_sum/_count lines of metric `name` with `labels`
  // (already formatted, e.g. `op="reserve"`, or empty).
  void Render(const std::string& name, const std::string& labels, std::string* out) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // The smallest bound whose bucket holds at least `q` of the observations.
  double Quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;  // non-cumulative; the last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The request kinds metrics are kept for (one per Request op, plus "none").
inline constexpr int kOpKinds = 11;
const char* OpLabel(idem::v1::Request::OpCase op);
int OpIndex(idem::v1::Request::OpCase op);

class Metrics {
 public:
  Metrics();

  void CountOutcome(storage::Outcome outcome) { ++outcomes_[static_cast<int>(outcome)]; }
  void CountLookupState(storage::KeyState state) { ++lookup_states_[static_cast<int>(state)]; }
  void CountError(idem::v1::ErrorCode code);
  void CountRequest(idem::v1::Request::OpCase op) { ++requests_[OpIndex(op)]; }
  void ObserveLatency(idem::v1::Request::OpCase op, double seconds);
  void ObserveBatch(uint32_t records) {
    batch_records_.Observe(records);
    ++batches_;
  }
  void ObserveWalSync(double seconds) { wal_sync_seconds_.Observe(seconds); }
  void CountConnectionAccepted() { ++connections_accepted_; }
  void CountConnectionRejected() { ++connections_rejected_; }
  void CountConnectionClosed(const char* reason);

  // Values read at render time.
  struct Gauges {
    uint32_t connections = 0;
    uint32_t waiters = 0;
    uint64_t keys_estimate = 0;
    double uptime_seconds = 0;
    bool healthy = true;
    bool disk_full = false;
  };
  std::string RenderPrometheus(const Gauges& gauges) const;
  // "reserve.acquired" -> count, "wal.syncs", "batches", "errors.invalid_argument", ...
  std::map<std::string, uint64_t> Counters() const;

  const Histogram& batch_records() const { return batch_records_; }

 private:
  std::array<uint64_t, storage::kOutcomeCount> outcomes_{};
  std::array<uint64_t, 5> lookup_states_{};
  std::array<uint64_t, 10> errors_{};
  std::array<uint64_t, kOpKinds> requests_{};
  std::map<std::string, uint64_t> closes_;
  uint64_t connections_accepted_ = 0;
  uint64_t connections_rejected_ = 0;
  uint64_t batches_ = 0;
  Histogram batch_records_;
  Histogram wal_sync_seconds_;
  std::vector<Histogram> latency_;  // by op index
};

}  // namespace idem::server
