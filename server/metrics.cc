#include "server/metrics.h"

#include <fmt/format.h>

namespace idem::server {

namespace {

using idem::v1::Request;

std::vector<double> LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 60};
}

std::vector<double> BatchBounds() {
  std::vector<double> b;
  for (double v = 1; v <= 8192; v *= 2) b.push_back(v);
  return b;
}

std::string FormatBound(double v) { return fmt::format("{}", v); }

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++buckets_[i];
  ++count_;
  sum_ += value;
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    *out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep,
                        FormatBound(bounds_[i]), cumulative);
  }
  cumulative += buckets_.back();
  *out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  *out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

double Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const double want = q * static_cast<double>(count_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    if (static_cast<double>(cumulative) >= want) return bounds_[i];
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

const char* OpLabel(Request::OpCase op) {
  switch (op) {
    case Request::kHello: return "hello";
    case Request::kPing: return "ping";
    case Request::kReserve: return "reserve";
    case Request::kComplete: return "complete";
    case Request::kRelease: return "release";
    case Request::kRenew: return "renew";
    case Request::kLookup: return "lookup";
    case Request::kPurge: return "purge";
    case Request::kScan: return "scan";
    case Request::kStats: return "stats";
    case Request::OP_NOT_SET: return "none";
  }
  return "none";
}

int OpIndex(Request::OpCase op) {
  const int n = static_cast<int>(op);
  return n >= 10 && n < 10 + kOpKinds - 1 ? n - 9 : 0;  // 0 is "none"
}

Metrics::Metrics()
    : batch_records_(BatchBounds()),
      wal_sync_seconds_(LatencyBounds()),
      latency_(kOpKinds, Histogram(LatencyBounds())) {}

void Metrics::CountError(idem::v1::ErrorCode code) {
  const int i = static_cast<int>(code);
  ++errors_[i >= 0 && i < static_cast<int>(errors_.size()) ? i : 0];
}

void Metrics::ObserveLatency(Request::OpCase op, double seconds) {
  latency_[OpIndex(op)].Observe(seconds);
}

void Metrics::CountConnectionClosed(const char* reason) { ++closes_[reason]; }

std::string Metrics::RenderPrometheus(const Gauges& g) const {
  std::string out;
  out.reserve(16 * 1024);
  Header(&out, "idem_operations_total", "counter", "Answered operations by op and outcome.");
  for (int i = 0; i < storage::kOutcomeCount; ++i) {
    const std::string name = storage::OutcomeName(static_cast<storage::Outcome>(i));
    const size_t dot = name.find('.');
    const std::string op = name.substr(0, dot);
    const std::string outcome = dot == std::string::npos ? "ok" : name.substr(dot + 1);
    if (op == "lookup") continue;
    out += fmt::format("idem_operations_total{{op=\"{}\",outcome=\"{}\"}} {}\n", op, outcome,
                       outcomes_[i]);
  }
  const char* states[] = {"", "absent", "in_progress", "lease_expired", "completed"};
  for (int s = 1; s <= 4; ++s) {
    out += fmt::format("idem_operations_total{{op=\"lookup\",outcome=\"{}\"}} {}\n", states[s],
                       lookup_states_[s]);
  }
  Header(&out, "idem_requests_total", "counter", "Requests received by op.");
  for (int i = 0; i < kOpKinds; ++i) {
    const auto op = static_cast<Request::OpCase>(i == 0 ? 0 : i + 9);
    out += fmt::format("idem_requests_total{{op=\"{}\"}} {}\n", OpLabel(op), requests_[i]);
  }
  Header(&out, "idem_errors_total", "counter", "Requests answered with an error, by code.");
  for (int i = 1; i < static_cast<int>(errors_.size()); ++i) {
    out += fmt::format("idem_errors_total{{code=\"{}\"}} {}\n",
                       idem::v1::ErrorCode_Name(static_cast<idem::v1::ErrorCode>(i)), errors_[i]);
  }
  Header(&out, "idem_connections", "gauge", "Open client connections.");
  out += fmt::format("idem_connections {}\n", g.connections);
  Header(&out, "idem_connections_accepted_total", "counter", "Connections accepted.");
  out += fmt::format("idem_connections_accepted_total {}\n", connections_accepted_);
  Header(&out, "idem_connections_rejected_total", "counter", "Connections over the cap.");
  out += fmt::format("idem_connections_rejected_total {}\n", connections_rejected_);
  Header(&out, "idem_connections_closed_total", "counter", "Connections closed, by reason.");
  for (const auto& [reason, n] : closes_) {
    out += fmt::format("idem_connections_closed_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  Header(&out, "idem_waiters", "gauge", "Reserve requests waiting on a key in progress.");
  out += fmt::format("idem_waiters {}\n", g.waiters);
  Header(&out, "idem_keys_estimate", "gauge", "RocksDB's estimate of stored keys.");
  out += fmt::format("idem_keys_estimate {}\n", g.keys_estimate);
  Header(&out, "idem_uptime_seconds", "gauge", "Seconds since start.");
  out += fmt::format("idem_uptime_seconds {:.3f}\n", g.uptime_seconds);
  Header(&out, "idem_healthy", "gauge", "1 while serving, 0 while draining, failed or disk full.");
  out += fmt::format("idem_healthy {}\n", g.healthy ? 1 : 0);
  Header(&out, "idem_disk_full", "gauge",
         "1 while changes are refused because the disk is full (it heals when space returns).");
  out += fmt::format("idem_disk_full {}\n", g.disk_full ? 1 : 0);
  Header(&out, "idem_batch_records", "histogram", "Changes per group-commit batch.");
  batch_records_.Render("idem_batch_records", "", &out);
  Header(&out, "idem_wal_sync_seconds", "histogram", "Duration of each WAL fdatasync.");
  wal_sync_seconds_.Render("idem_wal_sync_seconds", "", &out);
  Header(&out, "idem_request_duration_seconds", "histogram",
         "From a request's decoding to its answer being queued for the socket.");
  for (int i = 0; i < kOpKinds; ++i) {
    if (latency_[i].count() == 0) continue;
    const auto op = static_cast<Request::OpCase>(i == 0 ? 0 : i + 9);
    latency_[i].Render("idem_request_duration_seconds", fmt::format("op=\"{}\"", OpLabel(op)),
                       &out);
  }
  return out;
}

std::map<std::string, uint64_t> Metrics::Counters() const {
  std::map<std::string, uint64_t> c;
  for (int i = 0; i < storage::kOutcomeCount; ++i) {
    const auto outcome = static_cast<storage::Outcome>(i);
    if (outcome == storage::Outcome::kLookup) continue;
    c[storage::OutcomeName(outcome)] = outcomes_[i];
  }
  const char* states[] = {"", "absent", "in_progress", "lease_expired", "completed"};
  for (int s = 1; s <= 4; ++s) c[std::string("lookup.") + states[s]] = lookup_states_[s];
  for (int i = 1; i < static_cast<int>(errors_.size()); ++i) {
    std::string name =
        Lower(idem::v1::ErrorCode_Name(static_cast<idem::v1::ErrorCode>(i)).substr(6));
    c["errors." + name] = errors_[i];
  }
  c["batches"] = batches_;
  c["wal.syncs"] = wal_sync_seconds_.count();
  c["connections.accepted"] = connections_accepted_;
  c["connections.rejected"] = connections_rejected_;
  return c;
}

}  // namespace idem::server
