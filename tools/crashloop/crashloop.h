// The crash loop: start idemd, load it with many clients, SIGKILL it at a
// random moment, restart it on the same data directory, and check the oracle
// of everything it acknowledged; repeat.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "tools/crashloop/oracle.h"

namespace idem::crashloop {

struct Config {
  std::string idemd_path;  // required
  std::string data_dir;    // empty: a fresh temporary directory (removed on success)
  int cycles = 5;
  int clients = 16;
  int min_run_ms = 200;  // the kill comes at a uniform moment in [min, max]
  int max_run_ms = 1500;
  uint64_t seed = 0;  // 0: pick one (printed)
  std::string durability = "sync";
  int keys = 8;  // shared keys under contention (0: none)
  double shared_fraction = 0.3;
  int check_threads = 8;
  std::vector<std::string> extra_idemd_args;
  std::ostream* out = nullptr;  // progress and summary; null: quiet
  // Test hook: runs after each restart, before the check (corrupts the
  // oracle's expectations to prove the checker can fail).
  std::function<void(int cycle, Oracle* oracle)> before_check;
};

struct Summary {
  uint64_t seed = 0;
  int cycles = 0;                       // cycles completed (kill, restart, check)
  uint64_t completes_verified = 0;      // acknowledged COMPLETE_OKs read back, summed over checks
  uint64_t acquisitions_verified = 0;   // acknowledged ACQUIREDs found present, summed over checks
  uint64_t acknowledged_completes = 0;  // distinct, at the end
  uint64_t acknowledged_acquisitions = 0;  // distinct, at the end
  uint64_t keys = 0;
  std::vector<Violation> violations;  // distinct (kind, key)
  uint64_t errors_before_kill = 0;    // calls that failed while idemd was up
  std::vector<std::string> error_samples;
  std::vector<std::string> errors;  // the run itself failed (daemon did not start, ...)
  std::string data_dir;
  std::string log_path;
  bool ok(int want_cycles) const {
    return violations.empty() && errors.empty() && cycles == want_cycles;
  }
};

Summary RunCrashLoop(const Config& config);

// Prints the summary lines.
void PrintSummary(const Config& config, const Summary& s, std::ostream& out);

}  // namespace idem::crashloop
