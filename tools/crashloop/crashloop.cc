#include "tools/crashloop/crashloop.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "protocol/client.h"
#include "tools/crashloop/process.h"
#include "tools/crashloop/workload.h"

namespace idem::crashloop {

namespace v1 = idem::v1;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxErrors = 20;

int64_t MsSince(SteadyClock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - t).count();
}

// One check after a restart: every key of the oracle looked up on the fresh
// daemon (in parallel), and results acknowledged in the cycle just ended also
// replayed through Reserve.
struct CheckResult {
  CheckCounts counts;
  std::vector<Violation> violations;
  std::vector<std::string> errors;
};

CheckResult CheckAgainstServer(const Oracle& oracle, const std::string& endpoint, int cycle,
                               int threads) {
  std::vector<const std::pair<const std::string, KeyHistory>*> entries;
  for (const auto& e : oracle.histories()) entries.push_back(&e);
  CheckResult total;
  std::mutex mu;
  std::vector<std::thread> pool;
  const size_t n_threads = static_cast<size_t>(std::max(1, threads));
  for (size_t t = 0; t < n_threads; ++t) {
    pool.emplace_back([&, t] {
      client::Options co;
      co.endpoint = endpoint;
      co.client_name = "idem-crashloop-check";
      co.connect_timeout = milliseconds(2000);
      co.call_timeout = milliseconds(5000);
      client::Client c(co);
      CheckResult mine;
      for (size_t i = t; i < entries.size(); i += n_threads) {
        const std::string& key = entries[i]->first;
        const KeyHistory& h = entries[i]->second;
        StatusOr<v1::LookupReply> r = Status::Unavailable("not tried");
        for (int attempt = 0; attempt < 3 && !r.ok(); ++attempt) {
          if (attempt > 0) std::this_thread::sleep_for(milliseconds(50));
          r = c.Lookup(kScope, key);
        }
        if (!r.ok()) {
          mine.errors.push_back("check after cycle " + std::to_string(cycle) + ": Lookup of " +
                                key + " failed: " + r.status().ToString());
          if (mine.errors.size() >= kMaxErrors) break;
          continue;
        }
        const size_t before = mine.violations.size();
        VerifyLookup(key, h, *r, cycle, &mine.violations, &mine.counts);
        if (mine.violations.size() != before || h.completions.empty() ||
            h.completions.front().cycle != cycle) {
          continue;
        }
        // The replay path too (read-only: the key is COMPLETED, immutable).
        const Completion& done = h.completions.front();
        client::ReserveOptions ro;
        ro.fingerprint = FingerprintFor(key, h.shared);
        ro.lease_ms = 1000;
        auto rr = c.Reserve(kScope, key, ro);
        if (!rr.ok()) {
          mine.errors.push_back("replay Reserve of " + key + " failed: " + rr.status().ToString());
        } else if (rr->outcome() != v1::RESERVE_COMPLETED || rr->result().body() != done.body ||
                   rr->result().status() != done.status) {
          mine.violations.push_back(
              {"wrong-replay", key,
               "after restart " + std::to_string(cycle) + ": Reserve answered " +
                   v1::ReserveOutcome_Name(rr->outcome()) + " status " +
                   std::to_string(rr->result().status()) + " body " +
                   Printable(rr->result().body()) + ", acknowledged status " +
                   std::to_string(done.status) + " body " + Printable(done.body)});
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      total.counts.keys += mine.counts.keys;
      total.counts.completes += mine.counts.completes;
      total.counts.acquisitions += mine.counts.acquisitions;
      for (auto& v : mine.violations) total.violations.push_back(std::move(v));
      for (auto& e : mine.errors) total.errors.push_back(std::move(e));
    });
  }
  for (auto& th : pool) th.join();
  return total;
}

class ViolationSet {
 public:
  explicit ViolationSet(Summary* s) : s_(s) {}
  // Adds the new ones; returns how many were new.
  size_t Add(std::vector<Violation> vs) {
    size_t added = 0;
    for (auto& v : vs) {
      if (!seen_.insert(v.kind + "\n" + v.key).second) continue;
      s_->violations.push_back(std::move(v));
      ++added;
    }
    return added;
  }

 private:
  Summary* s_;
  std::set<std::string> seen_;
};

}  // namespace

Summary RunCrashLoop(const Config& config) {
  Summary s;
  std::ostream* out = config.out;
  s.seed = config.seed;
  if (s.seed == 0) {
    s.seed = (std::random_device{}() ^
              static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count())) |
             1;
  }
  std::mt19937_64 rng(s.seed);
  const auto wall_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::ostringstream run_id;
  run_id << std::hex << wall_ms << "-" << (s.seed & 0xffff);

  std::string temp_root;
  s.data_dir = config.data_dir;
  if (s.data_dir.empty()) {
    temp_root = MakeTempDir("idem-crashloop");
    if (temp_root.empty()) {
      s.errors.push_back("cannot create a temporary directory");
      return s;
    }
    s.data_dir = temp_root + "/data";
    s.log_path = temp_root + "/idemd.log";
  } else {
    s.log_path = s.data_dir + ".idemd.log";
  }
  std::vector<std::string> args = {"--durability", config.durability};
  args.insert(args.end(), config.extra_idemd_args.begin(), config.extra_idemd_args.end());
  IdemdProcess idemd(config.idemd_path, s.data_dir, s.log_path, args);
  if (out) {
    *out << "idem-crashloop: seed " << s.seed << ", " << config.cycles << " cycles, "
         << config.clients << " clients, " << config.keys << " shared keys, durability "
         << config.durability << ", kill after " << config.min_run_ms << ".." << config.max_run_ms
         << " ms\n  data dir " << s.data_dir << ", idemd log " << s.log_path << std::endl;
  }
  std::string error;
  if (!idemd.Start(&error)) {
    s.errors.push_back("idemd did not start: " + error);
    if (!temp_root.empty()) RemoveTree(temp_root);  // the log is in the error
    return s;
  }

  Oracle oracle;
  SharedKeys shared(config.keys);
  ViolationSet violations(&s);
  const int lo = std::max(0, config.min_run_ms);
  const int hi = std::max(lo, config.max_run_ms);
  for (int cycle = 1; cycle <= config.cycles; ++cycle) {
    WorkloadOptions wo;
    wo.endpoint = idemd.endpoint();
    wo.clients = config.clients;
    wo.shared_keys = config.keys;
    wo.shared_fraction = config.keys > 0 ? config.shared_fraction : 0;
    wo.seed = s.seed;
    wo.cycle = cycle;
    wo.run_id = run_id.str();
    const auto resumes = oracle.UnfinishedFreshFlows();
    const size_t n_resumes = resumes.size();
    const int run_ms = std::uniform_int_distribution<int>(lo, hi)(rng);
    Workload load(wo, &oracle, &shared, resumes);
    load.Start();
    std::this_thread::sleep_for(milliseconds(run_ms));
    load.MarkKilled();
    idemd.Kill();
    load.Stop();
    const WorkloadStats& st = load.stats();

    const auto restart_start = SteadyClock::now();
    if (!idemd.Start(&error)) {
      s.errors.push_back("cycle " + std::to_string(cycle) +
                         ": restart after SIGKILL failed: " + error);
      break;
    }
    const int64_t restart_ms = MsSince(restart_start);
    if (config.before_check) config.before_check(cycle, &oracle);

    const auto check_start = SteadyClock::now();
    CheckResult check = CheckAgainstServer(oracle, idemd.endpoint(), cycle, config.check_threads);
    size_t found = violations.Add(oracle.TakeRecordedViolations());
    found += violations.Add(std::move(check.violations));
    found += violations.Add(oracle.CheckHistory());
    for (auto& e : check.errors) {
      if (s.errors.size() < kMaxErrors) s.errors.push_back(std::move(e));
    }
    s.errors_before_kill += st.errors_before_kill;
    for (const auto& e : st.error_samples) {
      if (s.error_samples.size() < kMaxErrors) s.error_samples.push_back(e);
    }
    s.completes_verified += check.counts.completes;
    s.acquisitions_verified += check.counts.acquisitions;
    s.cycles = cycle;
    if (out) {
      *out << "cycle " << cycle << "/" << config.cycles << ": killed after " << run_ms
           << " ms; acknowledged " << st.acquired << " ACQUIRED (" << st.takeovers
           << " takeovers), " << st.completed << " COMPLETE_OK (" << st.resumed << " of "
           << n_resumes << " resumed), " << st.released << " RELEASE_OK, " << st.replays
           << " replays, " << st.wait_timeouts << " waits timed out, " << st.lease_lost
           << " lease lost, " << st.errors << " calls failed after the kill, "
           << st.errors_before_kill << " before | restart " << restart_ms << " ms | checked "
           << check.counts.keys << " keys: " << check.counts.completes << " completes, "
           << check.counts.acquisitions << " acquisitions in " << MsSince(check_start) << " ms, "
           << found << " new violations" << std::endl;
    }
    if (!s.errors.empty()) break;
  }
  const int stop_status = idemd.running() ? idemd.Stop() : 0;
  if (stop_status != 0) {
    s.errors.push_back("graceful stop (SIGTERM) exit status " + std::to_string(stop_status) +
                       " (expected 0)");
  }
  s.acknowledged_completes = oracle.acknowledged_completions();
  s.acknowledged_acquisitions = oracle.acknowledged_acquisitions();
  s.keys = oracle.histories().size();
  if (!temp_root.empty() && s.ok(config.cycles)) RemoveTree(temp_root);
  return s;
}

void PrintSummary(const Config& config, const Summary& s, std::ostream& out) {
  out << "summary: seed " << s.seed << ", cycles " << s.cycles << "/" << config.cycles
      << ", durability " << config.durability << "\n"
      << "  verified over all checks: " << s.completes_verified
      << " acknowledged COMPLETE_OK read back byte for byte, " << s.acquisitions_verified
      << " acknowledged ACQUIRED present\n"
      << "  distinct acknowledged: " << s.acknowledged_completes << " COMPLETE_OK, "
      << s.acknowledged_acquisitions << " ACQUIRED, over " << s.keys << " keys\n"
      << "  violations: " << s.violations.size() << "\n";
  const size_t shown = std::min<size_t>(s.violations.size(), 50);
  for (size_t i = 0; i < shown; ++i) out << "  VIOLATION " << s.violations[i].ToString() << "\n";
  if (shown < s.violations.size()) out << "  ... " << s.violations.size() - shown << " more\n";
  if (s.errors_before_kill > 0) {
    out << "  note: " << s.errors_before_kill
        << " calls failed while idemd was up (not violations); first ones:\n";
    for (const auto& e : s.error_samples) out << "    " << e << "\n";
  }
  for (const auto& e : s.errors) out << "  ERROR " << e << "\n";
  std::error_code ec;
  if (!s.ok(config.cycles) && std::filesystem::exists(s.log_path, ec)) {
    out << "  kept for inspection: data dir " << s.data_dir << ", idemd log " << s.log_path << "\n";
  }
  out.flush();
}

}  // namespace idem::crashloop
