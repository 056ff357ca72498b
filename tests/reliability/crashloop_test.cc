// The crash loop against the real idemd: a few SIGKILL cycles under load must
// find no violation and verify a nonzero number of acknowledged operations;
// a corrupted expectation must be reported; the executable's flags work.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tools/crashloop/crashloop.h"
#include "tools/crashloop/process.h"

extern char** environ;

namespace idem::crashloop {
namespace {

using SteadyClock = std::chrono::steady_clock;

Config SmallConfig(int cycles, int clients, std::ostream* out) {
  Config c;
  c.idemd_path = IDEM_IDEMD_PATH;
  c.cycles = cycles;
  c.clients = clients;
  c.seed = 20240601;
  c.out = out;
  return c;
}

TEST(CrashLoopTest, ThreeCyclesEightClientsVerifyEverythingAcknowledged) {
  std::ostringstream log;
  Config config = SmallConfig(3, 8, &log);
  const auto start = SteadyClock::now();
  const Summary s = RunCrashLoop(config);
  PrintSummary(config, s, log);
  SCOPED_TRACE(log.str());
  EXPECT_TRUE(s.ok(3));
  EXPECT_EQ(s.cycles, 3);
  EXPECT_TRUE(s.violations.empty());
  EXPECT_TRUE(s.errors.empty());
  EXPECT_GT(s.completes_verified, 0u);
  EXPECT_GT(s.acquisitions_verified, 0u);
  EXPECT_GT(s.acknowledged_completes, 0u);
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(60));
  std::cout << log.str();
}

TEST(CrashLoopTest, CorruptedOracleIsReported) {
  std::ostringstream log;
  Config config = SmallConfig(2, 4, &log);
  config.min_run_ms = 200;
  config.max_run_ms = 300;
  std::string faked_key;
  config.before_check = [&](int cycle, Oracle* oracle) {
    if (cycle != 2) return;
    // A COMPLETE_OK that never happened, on a key nobody used.
    faked_key = "never-completed";
    oracle->InjectFakeCompleteOk(faked_key, 1, 200, "phantom", cycle);
  };
  const Summary s = RunCrashLoop(config);
  PrintSummary(config, s, log);
  SCOPED_TRACE(log.str());
  EXPECT_FALSE(s.ok(2));
  EXPECT_TRUE(s.errors.empty());
  bool caught = false;
  for (const auto& v : s.violations) {
    if (v.key == faked_key && v.kind == "lost-complete") caught = true;
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(s.violations.size(), 1u);
  RemoveTree(s.data_dir.substr(0, s.data_dir.rfind('/')));  // kept on failure
}

// Runs the executable with `args`, bounded; its exit status and output.
int RunTool(const std::vector<std::string>& args, std::string* output) {
  const std::string dir = MakeTempDir("idem-crashloop-cli");
  const std::string out_path = dir + "/out";
  std::vector<std::string> full = {IDEM_CRASHLOOP_PATH};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = -1;
  const auto deadline = SteadyClock::now() + std::chrono::seconds(45);
  while (true) {
    int ws = 0;
    if (waitpid(pid, &ws, WNOHANG) == pid) {
      status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      break;
    }
    if (SteadyClock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &ws, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = ss.str();
  RemoveTree(dir);
  return status;
}

TEST(CrashLoopTest, ExecutableFindsIdemdNextToItself) {
  std::string output;
  EXPECT_EQ(RunTool({"--cycles", "1", "--clients", "4", "--max-run-ms", "400", "--durability",
                     "async", "--seed", "7"},
                    &output),
            0)
      << output;
  EXPECT_NE(output.find("cycles 1/1"), std::string::npos) << output;
  EXPECT_NE(output.find("violations: 0"), std::string::npos) << output;

  EXPECT_EQ(RunTool({"--durability", "maybe"}, &output), 2) << output;
  EXPECT_EQ(RunTool({"--idemd", "/nonexistent/idemd", "--cycles", "1"}, &output), 1) << output;
}

}  // namespace
}  // namespace idem::crashloop
