// A gtest fixture that starts a real idemd per test (own data dir, free
// loopback ports) and connects one client.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testutil/daemon.h"
#include "tests/testutil/temp_dir.h"

namespace idem::testutil {

class DaemonTest : public ::testing::Test {
 protected:
  // Override to pass flags.
  virtual std::vector<std::string> Flags() { return {}; }

  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.Start(DataDir(), Flags(), &error)) << error;
    ASSERT_TRUE(client_.Connect(daemon_.port()));
  }

  std::string DataDir() const { return dir_.Sub("data"); }

  // Restarts the daemon on the same data dir after `signo`; reconnects.
  void Restart(int signo, int expected_status) {
    client_.Close();
    if (signo == 9) {
      daemon_.Kill();
    } else {
      ASSERT_EQ(daemon_.Stop(signo), expected_status) << daemon_.Log();
    }
    std::string error;
    ASSERT_TRUE(daemon_.Start(DataDir(), Flags(), &error)) << error;
    ASSERT_TRUE(client_.Connect(daemon_.port()));
  }

  uint64_t next_id_ = 1;
  TempDir dir_;
  Daemon daemon_;
  Client client_;
};

}  // namespace idem::testutil
