// idem-bench (early version): closed-loop load against idemd over the real
// protocol. connections x depth requests in flight; every answer checked.
//
//   idem-bench --endpoint 127.0.0.1:7420 --connections 50 --depth 1 --seconds 10 --workload reserve
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/async_connection.h"

namespace {

namespace v1 = idem::v1;
using SteadyClock = std::chrono::steady_clock;

// Log-linear latency histogram in microseconds (~1% resolution).
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(64 * 128, 0) {}
  void Record(uint64_t us) {
    ++counts_[Index(us)];
    ++total_;
    max_ = std::max(max_, us);
  }
  uint64_t Percentile(double p) const {
    const uint64_t want = static_cast<uint64_t>(std::ceil(p / 100.0 * total_));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= want && counts_[i] > 0) return Upper(i);
    }
    return max_;
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

 private:
  static size_t Index(uint64_t v) {
    if (v < 128) return v;
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - 6;
    return static_cast<size_t>((shift + 1) * 64 + ((v >> shift) & 63));
  }
  static uint64_t Upper(size_t i) {
    if (i < 128) return i;
    const size_t shift = i / 64 - 1;
    return ((64 + i % 64 + 1) << shift) - 1;
  }
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

struct Args {
  std::string endpoint = "127.0.0.1:7420";
  int connections = 50;
  int depth = 1;
  double seconds = 10;
  std::string workload = "reserve";
};

struct Run {
  Args args;
  boost::asio::io_context io;
  std::vector<std::shared_ptr<idem::client::AsyncConnection>> conns;
  LatencyHistogram latency;
  uint64_t ok = 0, wrong = 0, errors = 0;
  uint64_t next_key = 0;
  std::string prefix;
  bool stopping = false;

  void Issue(const std::shared_ptr<idem::client::AsyncConnection>& c) {
    if (stopping || !c->connected()) return;
    v1::Request req;
    auto* r = req.mutable_reserve();
    r->set_scope("bench");
    r->set_key(prefix + std::to_string(next_key++));
    const auto start = SteadyClock::now();
    c->Call(
        std::move(req),
        [this, c, start](const idem::Status& st, v1::Response* resp) {
          const auto us =
              std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start)
                  .count();
          if (!st.ok() || resp->has_error()) {
            ++errors;
          } else if (resp->reserve().outcome() != v1::RESERVE_ACQUIRED) {
            ++wrong;
          } else {
            ++ok;
            latency.Record(static_cast<uint64_t>(us));
          }
          Issue(c);
        },
        std::chrono::milliseconds(0));
  }
};

}  // namespace

int main(int argc, char** argv) {
  Run run;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--endpoint")
      run.args.endpoint = value;
    else if (flag == "--connections")
      run.args.connections = std::stoi(value);
    else if (flag == "--depth")
      run.args.depth = std::stoi(value);
    else if (flag == "--seconds")
      run.args.seconds = std::stod(value);
    else if (flag == "--workload")
      run.args.workload = value;
    else {
      std::fprintf(stderr, "idem-bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  run.prefix =
      "k" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-";
  idem::client::Options options;
  options.endpoint = run.args.endpoint;
  int connected = 0;
  for (int i = 0; i < run.args.connections; ++i) {
    auto c = idem::client::AsyncConnection::Create(run.io, options);
    run.conns.push_back(c);
    c->Connect([&, c](const idem::Status& st) {
      if (!st.ok()) {
        std::fprintf(stderr, "connect: %s\n", st.ToString().c_str());
        return;
      }
      ++connected;
      for (int d = 0; d < run.args.depth; ++d) run.Issue(c);
    });
  }
  boost::asio::steady_timer timer(run.io);
  const auto start = SteadyClock::now();
  timer.expires_after(std::chrono::milliseconds(static_cast<int64_t>(run.args.seconds * 1000)));
  timer.async_wait([&](const boost::system::error_code&) {
    run.stopping = true;
    run.io.stop();
  });
  run.io.run();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  std::printf(
      "workload=%s connections=%d depth=%d seconds=%.1f ops=%llu ops/s=%.0f "
      "p50=%lluus p90=%lluus p99=%lluus p99.9=%lluus max=%lluus wrong=%llu errors=%llu\n",
      run.args.workload.c_str(), connected, run.args.depth, elapsed, (unsigned long long)run.ok,
      run.ok / elapsed, (unsigned long long)run.latency.Percentile(50),
      (unsigned long long)run.latency.Percentile(90),
      (unsigned long long)run.latency.Percentile(99),
      (unsigned long long)run.latency.Percentile(99.9), (unsigned long long)run.latency.max(),
      (unsigned long long)run.wrong, (unsigned long long)run.errors);
  return run.wrong > 0 || run.errors > 0 ? 1 : 0;
}
