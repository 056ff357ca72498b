// idem-bench: load against idemd (or Redis, for comparison) over the real
// protocol, every answer checked. See BENCHMARKS.md.
//
//   idem-bench --workload flow --connections 50 --depth 1 --seconds 10
//   idem-bench --target redis --endpoint 127.0.0.1:6379 --workload reserve
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/runner.h"

namespace {

using idem::bench::RunConfig;
using idem::bench::Runner;
using idem::bench::RunStats;
using SteadyClock = std::chrono::steady_clock;

struct Flags {
  std::string target = "idem";
  std::string endpoint;
  std::string token;
  std::string workload = "reserve";
  int connections = 50;
  int depth = 1;
  int threads = 1;
  double seconds = 10;
  double rate = 0;
  uint64_t keys = 10'000;
  uint32_t lease_ms = 30'000;
  uint32_t wait_ms = 5'000;
  int hot_keys = 8;
  size_t body_bytes = 100;
  uint64_t total = 0;
  bool json = false;
  bool progress = false;
};

void AddFlags(CLI::App* app, Flags* f) {
  app->add_option("--target", f->target, "idem or redis")
      ->check(CLI::IsMember({"idem", "redis"}))
      ->capture_default_str();
  app->add_option("--endpoint", f->endpoint, "HOST:PORT (default 127.0.0.1:7420, redis :6379)");
  app->add_option("--token", f->token, "idem auth token (or IDEM_TOKEN)")->envname("IDEM_TOKEN");
  app->add_option("--workload", f->workload,
                  "reserve, flow, replay, contention, lookup-hit, lookup-miss")
      ->capture_default_str();
  app->add_option("--connections", f->connections, "connections in all")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app->add_option("--depth", f->depth, "requests in flight per connection")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--threads", f->threads, "client threads (connections are split)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app->add_option("--seconds", f->seconds, "measured duration")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app->add_option("--rate", f->rate, "open loop: offered ops/s in all (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app->add_option("--keys", f->keys, "replay/lookup-hit: keys populated first")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  app->add_option("--lease-ms", f->lease_ms, "lease of each reserve")->capture_default_str();
  app->add_option("--wait-ms", f->wait_ms, "contention: wait_ms of each reserve")
      ->capture_default_str();
  app->add_option("--hot-keys", f->hot_keys, "contention: keys contended at once")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--body-bytes", f->body_bytes, "result body size")->capture_default_str();
  app->add_option("--total", f->total, "stop after this many ops (0: run --seconds)")
      ->capture_default_str();
  app->add_flag("--json", f->json, "print one JSON object");
  app->add_flag("--progress", f->progress, "a progress line every second on stderr");
}

nlohmann::json Report(const Flags& f, const RunStats& s, double elapsed) {
  nlohmann::json j;
  j["target"] = f.target;
  j["workload"] = f.workload;
  j["connections"] = f.connections;
  j["depth"] = f.depth;
  j["rate"] = f.rate;
  j["seconds"] = elapsed;
  j["ops"] = s.ops;
  j["ops_per_sec"] = s.ops / elapsed;
  j["requests_per_sec"] = s.requests / elapsed;
  j["latency_us"] = {{"p50", s.latency.Percentile(50)}, {"p90", s.latency.Percentile(90)},
                     {"p99", s.latency.Percentile(99)}, {"p99_9", s.latency.Percentile(99.9)},
                     {"max", s.latency.max()},          {"mean", s.latency.mean()}};
  j["outcomes"] = s.outcomes;
  j["wrong"] = s.wrong;
  j["errors"] = s.errors;
  if (!s.first_problem.empty()) j["first_problem"] = s.first_problem;
  return j;
}

void PrintText(const nlohmann::json& j) {
  std::printf(
      "%s %s: %d connections x depth %d%s, %.1f s\n"
      "  ops/s %.0f (requests/s %.0f), ops %llu\n"
      "  latency us: p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
      j["target"].get<std::string>().c_str(), j["workload"].get<std::string>().c_str(),
      j["connections"].get<int>(), j["depth"].get<int>(),
      j["rate"].get<double>() > 0
          ? (" at " + std::to_string(j["rate"].get<int64_t>()) + "/s").c_str()
          : "",
      j["seconds"].get<double>(), j["ops_per_sec"].get<double>(),
      j["requests_per_sec"].get<double>(), (unsigned long long)j["ops"].get<uint64_t>(),
      (unsigned long long)j["latency_us"]["p50"].get<uint64_t>(),
      (unsigned long long)j["latency_us"]["p90"].get<uint64_t>(),
      (unsigned long long)j["latency_us"]["p99"].get<uint64_t>(),
      (unsigned long long)j["latency_us"]["p99_9"].get<uint64_t>(),
      (unsigned long long)j["latency_us"]["max"].get<uint64_t>());
  std::printf("  outcomes:");
  for (const auto& [name, n] : j["outcomes"].items()) {
    std::printf(" %s=%llu", name.c_str(), (unsigned long long)n.get<uint64_t>());
  }
  std::printf("\n  wrong %llu, errors %llu%s%s\n", (unsigned long long)j["wrong"].get<uint64_t>(),
              (unsigned long long)j["errors"].get<uint64_t>(),
              j.contains("first_problem") ? ": " : "",
              j.contains("first_problem") ? j["first_problem"].get<std::string>().c_str() : "");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"idem-bench: load for idemd (and Redis, side by side), every answer checked"};
  Flags f;
  AddFlags(&app, &f);
  CLI11_PARSE(app, argc, argv);

  RunConfig config;
  config.redis = f.target == "redis";
  config.target.endpoint =
      !f.endpoint.empty() ? f.endpoint : (config.redis ? "127.0.0.1:6379" : "127.0.0.1:7420");
  config.target.token = f.token;
  if (!idem::bench::ParseWorkload(f.workload, &config.workload)) {
    std::fprintf(stderr, "idem-bench: --workload %s is not a workload\n", f.workload.c_str());
    return 2;
  }
  if (f.connections < f.threads) f.threads = f.connections;
  config.depth = f.depth;
  config.lease_ms = f.lease_ms;
  config.wait_ms = f.wait_ms;
  config.hot_keys = f.hot_keys;
  config.body_bytes = f.body_bytes;
  config.total_ops = f.total;
  config.key_prefix =
      "b" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-";
  const bool populate = config.workload == idem::bench::Workload::kReplay ||
                        config.workload == idem::bench::Workload::kLookupHit;
  config.populated_keys = populate ? f.keys : 0;

  idem::bench::SharedCounters shared;
  std::vector<std::unique_ptr<Runner>> runners;
  for (int t = 0; t < f.threads; ++t) {
    RunConfig rc = config;
    rc.connections = f.connections / f.threads + (t < f.connections % f.threads ? 1 : 0);
    rc.rate = f.rate / f.threads;
    runners.push_back(std::make_unique<Runner>(rc, &shared, 1234 + t));
    idem::Status st = runners.back()->Connect();
    if (!st.ok()) {
      std::fprintf(stderr, "idem-bench: %s\n", st.ToString().c_str());
      return 3;
    }
  }
  if (populate) {
    idem::Status st = runners[0]->Populate(0, f.keys);
    if (!st.ok()) {
      std::fprintf(stderr, "idem-bench: populating: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  const auto start = SteadyClock::now();
  const auto until = start + std::chrono::milliseconds(static_cast<int64_t>(f.seconds * 1000));
  std::vector<std::thread> threads;
  for (auto& r : runners) threads.emplace_back([&r, until] { r->Run(until); });
  if (f.progress) {
    while (SteadyClock::now() < until) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const double t = std::chrono::duration<double>(SteadyClock::now() - start).count();
      std::fprintf(stderr, "[%5.1fs] %llu ops, %.0f ops/s\n", t,
                   (unsigned long long)shared.done.load(), shared.done.load() / t);
    }
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  RunStats total;
  for (auto& r : runners) total.Merge(r->stats());
  const nlohmann::json report = Report(f, total, elapsed);
  if (f.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    PrintText(report);
  }
  return total.wrong > 0 || total.errors > 0 ? 1 : 0;
}
