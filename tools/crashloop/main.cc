// idem-crashloop: SIGKILLs idemd at random moments under a payment-flow load
// and checks, after every restart, everything it acknowledged. Exit 0 only
// when no violation was found (1: violations or a failed run; 2: bad flags).
#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/crashloop/crashloop.h"
#include "tools/crashloop/process.h"

int main(int argc, char** argv) {
  idem::crashloop::Config config;
  config.idemd_path = idem::crashloop::SelfDir() + "/idemd";
  CLI::App app{"idem-crashloop: crash-loop reliability check of idemd"};
  app.add_option("--idemd", config.idemd_path, "The idemd binary (default: next to this one)");
  app.add_option("--data-dir", config.data_dir, "Data directory (default: a fresh temp dir)");
  app.add_option("--cycles", config.cycles, "Kill/restart/check cycles")
      ->check(CLI::PositiveNumber);
  app.add_option("--clients", config.clients, "Client connections (threads)")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-run-ms", config.min_run_ms, "Earliest kill moment in a cycle")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-run-ms", config.max_run_ms, "Latest kill moment in a cycle")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", config.seed, "Random seed (0: pick one; it is printed)");
  app.add_option("--durability", config.durability, "idemd --durability")
      ->check(CLI::IsMember({"sync", "async"}));
  app.add_option("--keys", config.keys, "Shared keys under contention (waiting reserves)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--check-threads", config.check_threads, "Connections used by each check")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (config.max_run_ms < config.min_run_ms) {
    std::cerr << "idem-crashloop: --max-run-ms must be >= --min-run-ms\n";
    return 2;
  }
  config.out = &std::cout;
  const auto summary = idem::crashloop::RunCrashLoop(config);
  idem::crashloop::PrintSummary(config, summary, std::cout);
  return summary.ok(config.cycles) ? 0 : 1;
}
