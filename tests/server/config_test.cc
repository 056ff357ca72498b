#include "server/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/testutil/temp_dir.h"

namespace idem::server {
namespace {

// Sets an environment variable for one test, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class ConfigTest : public ::testing::Test {
 protected:
  // ParseConfig over {"idemd", args...}.
  Status Parse(const std::vector<std::string>& args) {
    std::vector<const char*> argv = {"idemd"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    return ParseConfig(static_cast<int>(argv.size()), argv.data(), &config_, &action_, &output_);
  }

  // Expects InvalidArgument whose message contains every one of `parts`.
  void ExpectError(const std::vector<std::string>& args, const std::vector<std::string>& parts) {
    SCOPED_TRACE(::testing::PrintToString(args));
    Status s = Parse(args);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
    for (const std::string& part : parts)
      EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = dir_.Sub(name);
    std::ofstream(path) << text;
    return path;
  }

  testutil::TempDir dir_;
  Config config_;
  ParseAction action_ = ParseAction::kRun;
  std::string output_;
};

void ExpectSameLimits(const storage::Limits& a, const storage::Limits& b) {
  EXPECT_EQ(a.max_scope_bytes, b.max_scope_bytes);
  EXPECT_EQ(a.max_key_bytes, b.max_key_bytes);
  EXPECT_EQ(a.max_fingerprint_bytes, b.max_fingerprint_bytes);
  EXPECT_EQ(a.max_body_bytes, b.max_body_bytes);
  EXPECT_EQ(a.default_lease_ms, b.default_lease_ms);
  EXPECT_EQ(a.max_lease_ms, b.max_lease_ms);
  EXPECT_EQ(a.default_retention_ms, b.default_retention_ms);
  EXPECT_EQ(a.max_retention_ms, b.max_retention_ms);
  EXPECT_EQ(a.max_wait_ms, b.max_wait_ms);
}

void ExpectSameConfig(const Config& a, const Config& b) {
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.admin_listen, b.admin_listen);
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.backup_dir, b.backup_dir);
  EXPECT_EQ(a.durability, b.durability);
  EXPECT_EQ(a.auth_file, b.auth_file);
  EXPECT_EQ(a.allow_insecure, b.allow_insecure);
  EXPECT_EQ(a.config_file, b.config_file);
  EXPECT_EQ(a.log_format, b.log_format);
  EXPECT_EQ(a.log_level, b.log_level);
  ExpectSameLimits(a.limits, b.limits);
  EXPECT_EQ(a.max_frame_bytes, b.max_frame_bytes);
  EXPECT_EQ(a.preauth_max_frame_bytes, b.preauth_max_frame_bytes);
  EXPECT_EQ(a.max_inflight, b.max_inflight);
  EXPECT_EQ(a.max_connections, b.max_connections);
  EXPECT_EQ(a.max_output_bytes, b.max_output_bytes);
  EXPECT_EQ(a.idle_timeout_ms, b.idle_timeout_ms);
  EXPECT_EQ(a.frame_timeout_ms, b.frame_timeout_ms);
  EXPECT_EQ(a.max_malformed_frames, b.max_malformed_frames);
  EXPECT_EQ(a.max_failed_hellos, b.max_failed_hellos);
  EXPECT_EQ(a.max_waiters, b.max_waiters);
  EXPECT_EQ(a.max_waiters_per_key, b.max_waiters_per_key);
  EXPECT_EQ(a.block_cache_bytes, b.block_cache_bytes);
  EXPECT_EQ(a.periodic_compaction_seconds, b.periodic_compaction_seconds);
  EXPECT_EQ(a.compaction_check_interval_ms, b.compaction_check_interval_ms);
}

TEST_F(ConfigTest, NoFlagsGiveTheDefaults) {
  config_.data_dir = "stale";  // ParseConfig starts from Config{}, not from *config
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(action_, ParseAction::kRun);
  EXPECT_TRUE(output_.empty());
  ExpectSameConfig(config_, Config{});
}

TEST_F(ConfigTest, BackupDirDefaultsAndOverrides) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.backup_dir, "./idem-backups");
  ASSERT_TRUE(Parse({"--backup-dir", "/srv/idem/backups"}).ok());
  EXPECT_EQ(config_.backup_dir, "/srv/idem/backups");
  {
    ScopedEnv env("IDEM_BACKUP_DIR", "/from/env");
    ASSERT_TRUE(Parse({}).ok());
    EXPECT_EQ(config_.backup_dir, "/from/env");
  }
  ASSERT_TRUE(Parse({"--config", WriteFile("idemd.toml", "backup_dir = \"/from/file\"\n")}).ok());
  EXPECT_EQ(config_.backup_dir, "/from/file");
  ExpectError({"--backup-dir", ""}, {"--backup-dir"});
  ASSERT_TRUE(Parse({"--help"}).ok());
  EXPECT_NE(output_.find("--backup-dir"), std::string::npos) << output_;
  EXPECT_NE(output_.find("./idem-backups"), std::string::npos) << output_;
}

TEST_F(ConfigTest, ServerFlagsSetTheirFields) {
  ASSERT_TRUE(Parse({"--listen", "localhost:0", "--admin-listen", "off", "--data-dir", "/d",
                     "--durability", "async", "--auth-file", "/a.toml", "--allow-insecure",
                     "--log-format", "json", "--log-level", "debug"})
                  .ok());
  EXPECT_EQ(config_.listen, "localhost:0");
  EXPECT_EQ(config_.admin_listen, "off");
  EXPECT_EQ(config_.data_dir, "/d");
  EXPECT_EQ(config_.durability, Durability::kAsync);
  EXPECT_EQ(config_.auth_file, "/a.toml");
  EXPECT_TRUE(config_.allow_insecure);
  EXPECT_EQ(config_.log_format, LogFormat::kJson);
  EXPECT_EQ(config_.log_level, "debug");
}

TEST_F(ConfigTest, RecordLimitFlagsSetTheirFields) {
  ASSERT_TRUE(Parse({"--max-scope-bytes=10", "--max-key-bytes=11", "--max-fingerprint-bytes=12",
                     "--max-body-bytes=13", "--default-lease-ms=14", "--max-lease-ms=15",
                     "--default-retention-ms=1600", "--max-retention-ms=1700", "--max-wait-ms=18"})
                  .ok());
  const storage::Limits& l = config_.limits;
  EXPECT_EQ(l.max_scope_bytes, 10u);
  EXPECT_EQ(l.max_key_bytes, 11u);
  EXPECT_EQ(l.max_fingerprint_bytes, 12u);
  EXPECT_EQ(l.max_body_bytes, 13u);
  EXPECT_EQ(l.default_lease_ms, 14u);
  EXPECT_EQ(l.max_lease_ms, 15u);
  EXPECT_EQ(l.default_retention_ms, 1600u);
  EXPECT_EQ(l.max_retention_ms, 1700u);
  EXPECT_EQ(l.max_wait_ms, 18u);
}

TEST_F(ConfigTest, ConnectionFlagsSetTheirFields) {
  ASSERT_TRUE(
      Parse({"--max-frame-bytes", "2048", "--preauth-max-frame-bytes", "512", "--max-inflight", "3",
             "--max-connections", "4", "--max-output-bytes", "5000000000", "--idle-timeout-ms", "6",
             "--frame-timeout-ms", "7", "--max-malformed-frames", "8", "--max-failed-hellos", "9"})
          .ok());
  EXPECT_EQ(config_.max_frame_bytes, 2048u);
  EXPECT_EQ(config_.preauth_max_frame_bytes, 512u);
  EXPECT_EQ(config_.max_inflight, 3u);
  EXPECT_EQ(config_.max_connections, 4u);
  EXPECT_EQ(config_.max_output_bytes, 5'000'000'000u);
  EXPECT_EQ(config_.idle_timeout_ms, 6u);
  EXPECT_EQ(config_.frame_timeout_ms, 7u);
  EXPECT_EQ(config_.max_malformed_frames, 8u);
  EXPECT_EQ(config_.max_failed_hellos, 9u);
}

TEST_F(ConfigTest, ResourceFlagsSetTheirFields) {
  ASSERT_TRUE(
      Parse({"--max-waiters", "20", "--max-waiters-per-key", "2", "--block-cache-bytes", "0",
             "--periodic-compaction-seconds", "0", "--compaction-check-interval-ms", "5"})
          .ok());
  EXPECT_EQ(config_.max_waiters, 20u);
  EXPECT_EQ(config_.max_waiters_per_key, 2u);
  EXPECT_EQ(config_.block_cache_bytes, 0u);
  EXPECT_EQ(config_.periodic_compaction_seconds, 0u);
  EXPECT_EQ(config_.compaction_check_interval_ms, 5u);
}

TEST_F(ConfigTest, WalPrefillIsOffOrAReasonableStep) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.wal_prefill_bytes, 1u << 20);
  ASSERT_TRUE(Parse({"--wal-prefill-bytes", "0"}).ok());
  EXPECT_EQ(config_.wal_prefill_bytes, 0u);
  ASSERT_TRUE(Parse({"--wal-prefill-bytes", "4194304"}).ok());
  EXPECT_EQ(config_.wal_prefill_bytes, 4u << 20);
  ExpectError({"--wal-prefill-bytes", "4096"},
              {"--wal-prefill-bytes 4096 is out of range", "65536"});
  ExpectError({"--wal-prefill-bytes", "2147483648"}, {"--wal-prefill-bytes"});
}

TEST_F(ConfigTest, RepeatedFlagTakesTheLast) {
  ASSERT_TRUE(Parse({"--max-key-bytes", "10", "--max-key-bytes", "20"}).ok());
  EXPECT_EQ(config_.limits.max_key_bytes, 20u);
}

TEST_F(ConfigTest, ConfigFileAcceptsDashAndUnderscoreKeys) {
  const std::string path = WriteFile("idemd.toml",
                                     "max_key_bytes = 300\n"
                                     "\"max-scope-bytes\" = 40\n"
                                     "data-dir = \"/from/file\"\n"
                                     "durability = \"async\"\n"
                                     "allow_insecure = true\n"
                                     "max_output_bytes = \"1234\"\n");
  ASSERT_TRUE(Parse({"--config", path}).ok());
  EXPECT_EQ(config_.config_file, path);
  EXPECT_EQ(config_.limits.max_key_bytes, 300u);
  EXPECT_EQ(config_.limits.max_scope_bytes, 40u);
  EXPECT_EQ(config_.data_dir, "/from/file");
  EXPECT_EQ(config_.durability, Durability::kAsync);
  EXPECT_TRUE(config_.allow_insecure);
  EXPECT_EQ(config_.max_output_bytes, 1234u);
  EXPECT_EQ(config_.limits.max_fingerprint_bytes, Config{}.limits.max_fingerprint_bytes);
}

TEST_F(ConfigTest, ConfigFileErrorsNameTheKeyAndFile) {
  struct Case {
    std::string toml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"max_key_byte = 3\n", "unknown setting \"max_key_byte\""},
      {"max_key_bytes = 3\nmax-key-bytes = 4\n", "set twice"},
      {"max_key_bytes = 2.5\n", "\"max_key_bytes\" must be a string, an integer or a boolean"},
      {"[server]\nlisten = \"127.0.0.1:1\"\n", "unknown setting \"server\""},
      {"config = \"/other.toml\"\n", "\"config\" cannot be set"},
      {"version = true\n", "unknown setting \"version\""},
      {"max_key_bytes = \"many\"\n", "--max-key-bytes"},
      {"max_key_bytes = -1\n", "--max-key-bytes"},
      {"max_key_bytes = \n", "line 1"},
  };
  for (const Case& c : cases) {
    const std::string path = WriteFile("bad.toml", c.toml);
    ExpectError({"--config", path}, {"config file " + path, c.expected});
  }
}

TEST_F(ConfigTest, MissingConfigFileIsAnError) {
  const std::string path = dir_.Sub("absent.toml");
  ExpectError({"--config", path}, {"config file " + path});
}

TEST_F(ConfigTest, ConfigFileValuesAreValidated) {
  const std::string path = WriteFile("idemd.toml", "max_key_bytes = 0\n");
  ExpectError({"--config", path}, {"--max-key-bytes 0"});
}

TEST_F(ConfigTest, EnvironmentSetsSettings) {
  ScopedEnv dir("IDEM_DATA_DIR", "/from/env");
  ScopedEnv key("IDEM_MAX_KEY_BYTES", "77");
  ScopedEnv insecure("IDEM_ALLOW_INSECURE", "true");
  ScopedEnv durability("IDEM_DURABILITY", "async");
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.data_dir, "/from/env");
  EXPECT_EQ(config_.limits.max_key_bytes, 77u);
  EXPECT_TRUE(config_.allow_insecure);
  EXPECT_EQ(config_.durability, Durability::kAsync);
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  ScopedEnv key("IDEM_MAX_KEY_BYTES", "lots");
  ExpectError({}, {"--max-key-bytes"});
}

TEST_F(ConfigTest, FlagBeatsEnvironmentBeatsFile) {
  const std::string path = WriteFile("idemd.toml", "max_key_bytes = 100\nmax_scope_bytes = 10\n");
  ASSERT_TRUE(Parse({"--config", path}).ok());
  EXPECT_EQ(config_.limits.max_key_bytes, 100u);
  {
    ScopedEnv key("IDEM_MAX_KEY_BYTES", "200");
    ASSERT_TRUE(Parse({"--config", path}).ok());
    EXPECT_EQ(config_.limits.max_key_bytes, 200u);
    EXPECT_EQ(config_.limits.max_scope_bytes, 10u);
    ASSERT_TRUE(Parse({"--config", path, "--max-key-bytes", "300"}).ok());
    EXPECT_EQ(config_.limits.max_key_bytes, 300u);
    EXPECT_EQ(config_.limits.max_scope_bytes, 10u);
  }
}

TEST_F(ConfigTest, EnvironmentCanNameTheConfigFile) {
  const std::string path = WriteFile("idemd.toml", "max_key_bytes = 100\n");
  ScopedEnv config("IDEM_CONFIG", path.c_str());
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.limits.max_key_bytes, 100u);
}

TEST_F(ConfigTest, ValidationErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--durability", "fast"}, "--durability \"fast\""},
      {{"--log-format", "xml"}, "--log-format \"xml\""},
      {{"--log-level", "loud"}, "--log-level \"loud\""},
      {{"--listen", "127.0.0.1"}, "--listen \"127.0.0.1\""},
      {{"--listen", "127.0.0.1:70000"}, "--listen"},
      {{"--admin-listen", "nowhere"}, "--admin-listen \"nowhere\""},
      {{"--data-dir", ""}, "--data-dir"},
      {{"--max-key-bytes", "0"}, "--max-key-bytes 0"},
      {{"--max-frame-bytes", "1023"}, "--max-frame-bytes 1023"},
      {{"--preauth-max-frame-bytes", "10"}, "--preauth-max-frame-bytes 10"},
      {{"--max-lease-ms", "0"}, "--max-lease-ms 0"},
      {{"--default-lease-ms", "0"}, "--default-lease-ms 0"},
      {{"--default-lease-ms", "5000", "--max-lease-ms", "4000"}, "--default-lease-ms 5000"},
      {{"--default-retention-ms", "999"}, "--default-retention-ms 999"},
      {{"--max-retention-ms", "999"}, "--max-retention-ms 999"},
      {{"--default-retention-ms", "5000", "--max-retention-ms", "4000"},
       "--default-retention-ms 5000 is above --max-retention-ms 4000"},
      {{"--max-inflight", "0"}, "--max-inflight 0"},
      {{"--max-connections", "0"}, "--max-connections 0"},
      {{"--max-output-bytes", "0"}, "--max-output-bytes 0"},
      {{"--idle-timeout-ms", "0"}, "--idle-timeout-ms 0"},
      {{"--frame-timeout-ms", "0"}, "--frame-timeout-ms 0"},
      {{"--max-malformed-frames", "0"}, "--max-malformed-frames 0"},
      {{"--max-failed-hellos", "0"}, "--max-failed-hellos 0"},
      {{"--compaction-check-interval-ms", "0"}, "--compaction-check-interval-ms 0"},
  };
  for (const Case& c : cases) ExpectError(c.args, {c.expected});
}

TEST_F(ConfigTest, UnparsableValuesAreErrors) {
  ExpectError({"--max-key-bytes", "abc"}, {"--max-key-bytes"});
  ExpectError({"--max-key-bytes", "12abc"}, {"--max-key-bytes"});
  ExpectError({"--max-key-bytes", "-1"}, {"--max-key-bytes"});
  ExpectError({"--max-key-bytes", "4294967296"}, {"--max-key-bytes"});
  ExpectError({"--max-key-bytes"}, {"--max-key-bytes"});
  ExpectError({"--no-such-flag"}, {"--no-such-flag"});
  ExpectError({"stray"}, {"stray"});
}

TEST_F(ConfigTest, NonLoopbackNeedsAuthOrAllowInsecure) {
  ExpectError({"--listen", "0.0.0.0:7420"}, {"--listen 0.0.0.0:7420 is not a loopback address",
                                             "--auth-file", "--allow-insecure"});
  EXPECT_TRUE(Parse({"--listen", "0.0.0.0:7420", "--allow-insecure"}).ok());
  EXPECT_TRUE(Parse({"--listen", "0.0.0.0:7420", "--auth-file", "/a.toml"}).ok());
  EXPECT_TRUE(Parse({"--listen", "[::1]:7420"}).ok());
  ExpectError({"--listen", "[::]:7420"}, {"--listen [::]:7420"});
}

TEST_F(ConfigTest, NonLoopbackAdminNeedsAllowInsecureEvenWithAuth) {
  ExpectError({"--admin-listen", "0.0.0.0:7421"}, {"--admin-listen 0.0.0.0:7421"});
  ExpectError({"--admin-listen", "0.0.0.0:7421", "--auth-file", "/a.toml"},
              {"--admin-listen 0.0.0.0:7421", "--allow-insecure"});
  EXPECT_TRUE(Parse({"--admin-listen", "0.0.0.0:7421", "--allow-insecure"}).ok());
  EXPECT_TRUE(
      Parse({"--listen", "10.0.0.1:7420", "--auth-file", "/a.toml", "--admin-listen", "off"}).ok());
}

TEST_F(ConfigTest, HelpNamesFlagsAndDefaults) {
  ASSERT_TRUE(Parse({"--help"}).ok());
  EXPECT_EQ(action_, ParseAction::kPrintAndExit);
  EXPECT_NE(output_.find("idemd"), std::string::npos);
  const size_t flag = output_.find("--max-key-bytes");
  ASSERT_NE(flag, std::string::npos) << output_;
  const std::string line = output_.substr(flag, output_.find('\n', flag) - flag);
  EXPECT_NE(line.find("256"), std::string::npos) << line;
  EXPECT_NE(output_.find("127.0.0.1:7420"), std::string::npos);
  EXPECT_NE(output_.find("IDEM_MAX_KEY_BYTES"), std::string::npos);
}

TEST_F(ConfigTest, VersionPrintsTheVersion) {
  ASSERT_TRUE(Parse({"--version"}).ok());
  EXPECT_EQ(action_, ParseAction::kPrintAndExit);
  EXPECT_EQ(output_, "idemd 0.1.0\n");
}

TEST_F(ConfigTest, ErrorLeavesConfigUntouched) {
  config_.data_dir = "kept";
  ASSERT_FALSE(Parse({"--data-dir", "/new", "--max-key-bytes", "0"}).ok());
  EXPECT_EQ(config_.data_dir, "kept");
}

TEST_F(ConfigTest, ParseHostPortAcceptsHostAndPort) {
  struct Case {
    std::string text;
    std::string host;
    uint16_t port;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1:7420", "127.0.0.1", 7420},
                                         {"localhost:0", "localhost", 0},
                                         {"[::1]:7420", "::1", 7420},
                                         {"0.0.0.0:1", "0.0.0.0", 1},
                                         {"example.com:65535", "example.com", 65535}}) {
    HostPort hp;
    ASSERT_TRUE(ParseHostPort("--listen", c.text, &hp).ok()) << c.text;
    EXPECT_EQ(hp.host, c.host);
    EXPECT_EQ(hp.port, c.port);
  }
}

TEST_F(ConfigTest, ParseHostPortRejectsMalformedAddresses) {
  for (const char* text : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999999",
                           "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1: 80", ":7420", "[]:7420",
                           "[::1]", "[::1]7420", "[::1:7420", "::1:7420", ""}) {
    HostPort hp;
    Status s = ParseHostPort("--listen", text, &hp);
    EXPECT_TRUE(s.IsInvalidArgument()) << text;
    EXPECT_EQ(s.message().rfind("--listen", 0), 0u) << s.message();
  }
}

TEST_F(ConfigTest, IsLoopbackHostCases) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "localhost",
                           "LocalHost", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "128.0.0.1", "10.0.0.1", "::", "::2", "example.com", "",
                           "localhost.example.com", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0x", 11)));
}

}  // namespace
}  // namespace idem::server
