// Black-box tests of idemctl: a real idemd, the idemctl binary run as a child
// process, its stdout, stderr and exit status checked.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/daemon.h"
#include "tests/testutil/temp_dir.h"

extern char** environ;

namespace idem::testutil {
namespace {

using Json = nlohmann::json;

struct Output {
  int code = -1;  // exit status; -1: killed after the timeout
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The parent's environment without IDEM_*, plus `extra` ("NAME=value").
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("IDEM_", 0) != 0) env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Runs idemctl with `args` (stdin /dev/null) for at most 20 s.
Output Idemctl(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  const TempDir dir;
  const std::string out = dir.Sub("out"), err = dir.Sub("err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  args.insert(args.begin(), IDEM_IDEMCTL_PATH);
  std::vector<std::string> envs = ChildEnv(env);
  pid_t pid = -1;
  Output run;
  if (posix_spawn(&pid, args[0].c_str(), &fa, nullptr, Pointers(args).data(),
                  Pointers(envs).data()) != 0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return run;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  run.code = pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Slurp(out);
  run.err = Slurp(err);
  return run;
}

std::string Base64Decode(const std::string& in) {
  static const std::string kChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(kChars.find(c));
    bits += 6;
    if (bits >= 8) out.push_back(static_cast<char>((acc >> (bits -= 8)) & 0xFF));
  }
  return out;
}

// Nothing a terminal could act on: no byte < 0x20 but '\n', no DEL.
bool TerminalSafe(const std::string& text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\n') || c == 0x7F) return false;
  }
  return true;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class IdemctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    daemon_ = new Daemon();
    std::string error;
    if (!daemon_->Start(dir_->Sub("data"), {"--backup-dir", dir_->Sub("backups")}, &error)) {
      start_error_ = new std::string(error);
    }
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete dir_;
    delete start_error_;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    scope_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(daemon_->port()); }

  // idemctl against the suite's daemon.
  Output Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--endpoint", Endpoint(), "--admin-endpoint",
                               "127.0.0.1:" + std::to_string(daemon_->admin_port())});
    return Idemctl(std::move(args));
  }

  // idemctl -o json; the parsed object (exit status in *code).
  Json CtlJson(std::vector<std::string> args, int* code) {
    args.insert(args.begin(), {"-o", "json"});
    const Output r = Ctl(std::move(args));
    *code = r.code;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
    return Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  // Reserves `key` in this test's scope; its token.
  uint64_t Acquire(const std::string& key) {
    int code = 0;
    const Json j = CtlJson({"reserve", scope_, key}, &code);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(j.value("outcome", ""), "RESERVE_ACQUIRED");
    return j.value("token", uint64_t{0});
  }

  static TempDir* dir_;
  static Daemon* daemon_;
  static std::string* start_error_;
  std::string scope_;
};

TempDir* IdemctlTest::dir_ = nullptr;
Daemon* IdemctlTest::daemon_ = nullptr;
std::string* IdemctlTest::start_error_ = nullptr;

TEST_F(IdemctlTest, PingAndHealth) {
  Output r = Ctl({"ping"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("latency_ms: ", 0), 0u) << r.out;
  int code = -1;
  Json j = CtlJson({"ping"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(j["latency_ms"].is_number());
  j = CtlJson({"health"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["server_version"], "0.1.0");
  EXPECT_TRUE(j["uptime_ms"].is_number_unsigned());
  EXPECT_GE(j["latency_ms"].get<double>(), 0.0);
  EXPECT_EQ(j["tenant"], "default");
  EXPECT_EQ(j["role"], "ROLE_ADMIN");
  r = Ctl({"health"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("server_version: 0.1.0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uptime_ms:"), std::string::npos);
}

TEST_F(IdemctlTest, ReserveAcquiredCarriesEveryField) {
  int code = -1;
  const int64_t before = NowMs();
  const Json j = CtlJson({"reserve", scope_, "k", "--fingerprint", "fp", "--lease-ms", "10000",
                          "--retention-ms", "60000"},
                         &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["outcome"], "RESERVE_ACQUIRED");
  EXPECT_GT(j["token"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["attempt"], 1);
  EXPECT_NEAR(j["lease_expires_unix_ms"].get<double>(), before + 10000, 5000);
  EXPECT_GT(j["lease_remaining_ms"].get<uint32_t>(), 5000u);
  EXPECT_LE(j["lease_remaining_ms"].get<uint32_t>(), 10000u);
  EXPECT_NEAR(j["expires_unix_ms"].get<double>(), before + 60000, 5000);
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_EQ(j.size(), 7u) << j.dump();
  // Table: aligned "field: value" lines, the token in full.
  const Output r = Ctl({"reserve", scope_, "k2"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("outcome:               RESERVE_ACQUIRED\ntoken:                 ", 0), 0u)
      << r.out;
}

TEST_F(IdemctlTest, ReserveTwiceIsInProgressAndExitsOne) {
  Acquire("k");
  Output r = Ctl({"reserve", scope_, "k"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("outcome:               RESERVE_IN_PROGRESS\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("token:"), std::string::npos) << "zero fields are left out of tables";
  int code = -1;
  const auto start = std::chrono::steady_clock::now();
  const Json j = CtlJson({"reserve", scope_, "k", "--wait-ms", "200"}, &code);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(190));
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["outcome"], "RESERVE_IN_PROGRESS");
  EXPECT_EQ(j["token"], 0);
  EXPECT_EQ(j["attempt"], 1);
  EXPECT_GT(j["lease_remaining_ms"].get<uint32_t>(), 0u);
  // A different fingerprint: MISMATCH, exit 1.
  Acquire("fp-key");
  EXPECT_EQ(Ctl({"reserve", scope_, "m", "--fingerprint", "a"}).code, 0);
  r = Ctl({"reserve", scope_, "m", "--fingerprint", "b"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "outcome: RESERVE_MISMATCH\n");
}

TEST_F(IdemctlTest, CompleteThenReplayIsSuccess) {
  const uint64_t token = Acquire("k");
  const std::string t = std::to_string(token);
  int code = -1;
  Json j = CtlJson({"complete", scope_, "k", t, "--status", "201", "--body", "{\"id\":7}"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["outcome"], "COMPLETE_OK");
  EXPECT_EQ(j["result"]["status"], 201);
  EXPECT_EQ(Base64Decode(j["result"]["body"]), "{\"id\":7}");
  EXPECT_GT(j["result"]["completed_unix_ms"].get<uint64_t>(), 0u);
  EXPECT_GT(j["expires_unix_ms"].get<uint64_t>(), 0u);
  // The replay: exit 0 with the stored result.
  j = CtlJson({"reserve", scope_, "k"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["outcome"], "RESERVE_COMPLETED");
  EXPECT_EQ(j["result"]["status"], 201);
  EXPECT_EQ(Base64Decode(j["result"]["body"]), "{\"id\":7}");
  // The same Complete again is OK; another token is ALREADY_COMPLETED.
  EXPECT_EQ(Ctl({"complete", scope_, "k", t}).code, 0);
  const Output r = Ctl({"complete", scope_, "k", std::to_string(token + 1)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("COMPLETE_ALREADY_COMPLETED"), std::string::npos);
  EXPECT_NE(r.out.find("result.status:            201\n"), std::string::npos) << r.out;
}

TEST_F(IdemctlTest, StaleTokensGetNegativeOutcomes) {
  const std::string t1 = std::to_string(Acquire("k"));
  EXPECT_EQ(Ctl({"release", scope_, "k", t1}).out, "outcome: RELEASE_OK\n");
  int code = -1;
  Json j = CtlJson({"reserve", scope_, "k"}, &code);
  EXPECT_EQ(j["attempt"], 2);
  const std::string t2 = std::to_string(j["token"].get<uint64_t>());
  for (const char* op : {"complete", "release", "renew"}) {
    const Output r = Ctl({op, scope_, "k", t1});
    EXPECT_EQ(r.code, 1) << op << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("_LEASE_LOST"), std::string::npos) << r.out;
  }
  j = CtlJson({"renew", scope_, "k", t2, "--lease-ms", "20000"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["outcome"], "RENEW_OK");
  EXPECT_NEAR(j["lease_expires_unix_ms"].get<double>(), NowMs() + 20000, 5000);
  EXPECT_GT(j["lease_remaining_ms"].get<uint32_t>(), 10000u);
  for (const char* op : {"complete", "release", "renew"}) {
    const Output r = Ctl({op, scope_, "absent", t2});
    EXPECT_EQ(r.code, 1) << op;
    EXPECT_NE(r.out.find("_NOT_FOUND"), std::string::npos) << r.out;
  }
}

TEST_F(IdemctlTest, BinaryBodyIsEscapedInTablesAndExactInJson) {
  static constexpr char kBody[] = "a\0b\x1b[31m\x07\\\r\n\x7f\xff\xc3\xa9\xc2\x9b end\0";
  const std::string body(kBody, sizeof(kBody) - 1);
  const std::string file = dir_->Sub(scope_ + ".body");
  std::ofstream(file, std::ios::binary) << body;
  const std::string key = "k\x1b]0;title\x07";
  const std::string t = std::to_string(Acquire(key));
  Output r = Ctl({"complete", scope_, key, t, "--body-file", file});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(TerminalSafe(r.out)) << r.out;
  EXPECT_NE(r.out.find("a\\x00b\\x1b[31m\\x07\\\\\\x0d\\x0a\\x7f\\xff\xc3\xa9\\xc2\\x9b end\\x00"),
            std::string::npos)
      << r.out;
  r = Ctl({"lookup", scope_, key});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(TerminalSafe(r.out)) << r.out;
  int code = -1;
  const Json j = CtlJson({"lookup", scope_, key}, &code);
  EXPECT_EQ(Base64Decode(j["result"]["body"]), body);
  r = Ctl({"scan", scope_});
  EXPECT_TRUE(TerminalSafe(r.out)) << r.out;
  EXPECT_NE(r.out.find("k\\x1b]0;title\\x07"), std::string::npos) << r.out;
}

TEST_F(IdemctlTest, LookupShowsStateAndExitsOneWhenAbsent) {
  Output r = Ctl({"lookup", scope_, "nope"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "state: KEY_ABSENT\n");
  EXPECT_EQ(Ctl({"reserve", scope_, "k", "--fingerprint", "f\x01p", "--lease-ms", "9000"}).code, 0);
  int code = -1;
  const Json j = CtlJson({"lookup", scope_, "k"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["state"], "KEY_IN_PROGRESS");
  EXPECT_EQ(j["attempt"], 1);
  EXPECT_NEAR(j["lease_expires_unix_ms"].get<double>(), NowMs() + 9000, 5000);
  EXPECT_GT(j["lease_remaining_ms"].get<uint32_t>(), 0u);
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_GT(j["expires_unix_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(Base64Decode(j["fingerprint"]), "f\x01p");
  EXPECT_FALSE(j.contains("token"));
}

TEST_F(IdemctlTest, PurgeExitsOneWhenNothingExisted) {
  Acquire("k");
  EXPECT_EQ(Ctl({"purge", scope_, "k"}).out, "existed: true\n");
  const Output r = Ctl({"purge", scope_, "k"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "existed: false\n");
  int code = -1;
  EXPECT_EQ(CtlJson({"purge", scope_, "k"}, &code), Json({{"existed", false}}));
}

TEST_F(IdemctlTest, ScanFollowsCursors) {
  Client c;
  ASSERT_TRUE(c.Connect(daemon_->port()));
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) {
    keys.push_back((i < 10 ? "k0" : "k") + std::to_string(i));
    ASSERT_TRUE(c.Call(ReserveReq(i + 1, scope_, keys.back())).has_reserve());
  }
  int code = -1;
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    const Json j = CtlJson({"scan", scope_, "--limit", "7", "--cursor", cursor}, &code);
    ASSERT_EQ(code, 0);
    EXPECT_LE(j["entries"].size(), 7u);
    for (const auto& e : j["entries"]) seen.push_back(Base64Decode(e["key"]));
    cursor = j["next_cursor"];
    if (cursor.empty()) break;
  }
  EXPECT_EQ(seen, keys);
  Json all = CtlJson({"scan", scope_, "--limit", "7", "--all"}, &code);
  EXPECT_EQ(code, 0);
  ASSERT_EQ(all["entries"].size(), 30u);
  EXPECT_EQ(all["next_cursor"], "");
  const Json& e = all["entries"][29];
  EXPECT_EQ(Base64Decode(e["scope"]), scope_);
  EXPECT_EQ(e["state"], "KEY_IN_PROGRESS");
  EXPECT_EQ(e["attempt"], 1);
  for (const char* f : {"lease_expires_unix_ms", "expires_unix_ms", "body_bytes", "status"}) {
    EXPECT_TRUE(e[f].is_number()) << f;
  }
  Output r = Ctl({"scan", scope_, "--limit", "7", "--all", "--prefix", "k1"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 11) << r.out;  // header + 10
  EXPECT_EQ(r.out.rfind("SCOPE  ", 0), 0u) << r.out;
  r = Ctl({"scan", scope_, "--limit", "7"});
  EXPECT_NE(r.out.find("\nnext_cursor: "), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"scan", scope_, "--cursor", "not base64!"}).code, 2);
  // --all-scopes lists this scope and another one.
  ASSERT_TRUE(c.Call(ReserveReq(99, scope_ + "-other", "x")).has_reserve());
  all = CtlJson({"scan", "--all-scopes", "--all", "--limit", "1000"}, &code);
  int mine = 0;
  for (const auto& entry : all["entries"]) {
    mine += Base64Decode(entry["scope"]).rfind(scope_, 0) == 0;
  }
  EXPECT_EQ(mine, 31);
}

TEST_F(IdemctlTest, Stats) {
  int code = -1;
  const Json j = CtlJson({"stats"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["server_version"], "0.1.0");
  for (const char* f : {"uptime_ms", "keys_estimate", "connections", "waiters"}) {
    EXPECT_TRUE(j[f].is_number_unsigned()) << f;
  }
  EXPECT_TRUE(j["counters"]["reserve.acquired"].is_number_unsigned()) << j.dump();
  const Output r = Ctl({"stats"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\nCOUNTER  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nreserve.acquired  "), std::string::npos) << r.out;
}

TEST_F(IdemctlTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"--bogus", "ping"},
      {},
      {"reserve", "s"},
      {"-o", "yaml", "ping"},
      {"reserve", "s", "k", "--lease-ms", "-1"},
      {"complete", "s", "k", "1", "--body", "x", "--body-file", "/dev/null"},
      {"complete", "s", "k", "1", "--body-file", "/nonexistent/file"},
      {"release", "s", "k", "0x10"},
      {"--endpoint", "nocolon", "ping"},
      {"--timeout", "0", "ping"},
      {"scan", "s", "--all-scopes"},
  };
  for (const auto& args : bad) {
    const Output r = Idemctl(args);
    EXPECT_EQ(r.code, 2) << testing::PrintToString(args) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
    EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;
  }
  Output r = Idemctl({"reserve", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("RESERVE_COMPLETED (a replay"), std::string::npos) << r.out;
  for (const char* sub : {"ping", "health", "complete", "release", "renew", "lookup", "purge",
                          "scan", "stats", "backup"}) {
    EXPECT_EQ(Idemctl({sub, "--help"}).code, 0) << sub;
  }
}

TEST_F(IdemctlTest, UnreachableServerExitsThree) {
  Output r = Idemctl({"--endpoint", "127.0.0.1:1", "lookup", "s", "k"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("connecting to 127.0.0.1:1"), std::string::npos) << r.err;
  // IDEM_ENDPOINT is the default; the flag wins over it.
  EXPECT_EQ(Idemctl({"ping"}, {"IDEM_ENDPOINT=127.0.0.1:1"}).code, 3);
  EXPECT_EQ(Idemctl({"ping"}, {"IDEM_ENDPOINT=" + Endpoint()}).code, 0);
  EXPECT_EQ(Idemctl({"--endpoint", Endpoint(), "ping"}, {"IDEM_ENDPOINT=127.0.0.1:1"}).code, 0);
  r = Idemctl({"--admin-endpoint", "127.0.0.1:1", "backup", "b"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(IdemctlTest, ReadRoleIsDeniedWritesAndTokenIsNeverPrinted) {
  // `printf %s TOKEN | sha256sum`, as in daemon_security_test.cc.
  const std::string auth = dir_->Sub(scope_ + ".toml");
  std::ofstream(auth) << "[[tokens]]\ntoken_sha256 = "
                         "\"3c266553b622ae69bfca43308579811940ea663fedbec63a574b5f4cfb3ffaa6\"\n"
                         "tenant = \"tenant-a\"\nrole = \"read\"\n";
  Daemon d;
  std::string error;
  ASSERT_TRUE(d.Start(dir_->Sub(scope_), {"--auth-file", auth, "--admin-listen", "off"}, &error))
      << error;
  const std::string ep = "127.0.0.1:" + std::to_string(d.port());
  Output r = Idemctl({"--endpoint", ep, "--token", "tok-a-read", "reserve", "s", "k"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("ERROR_PERMISSION_DENIED: "), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.find("tok-a-read"), std::string::npos);
  r = Idemctl({"--endpoint", ep, "-o", "json", "health"}, {"IDEM_TOKEN=tok-a-read"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["role"], "ROLE_READ");
  EXPECT_EQ(r.out.find("tok-a-read"), std::string::npos);
  EXPECT_EQ(Idemctl({"--endpoint", ep, "lookup", "s", "k"}, {"IDEM_TOKEN=tok-a-read"}).code, 1);
  r = Idemctl({"--endpoint", ep, "--token", "wrong", "lookup", "s", "k"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("ERROR_UNAUTHENTICATED: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("wrong"), std::string::npos) << r.err;
}

TEST_F(IdemctlTest, BackupRestoresIntoASecondDaemon) {
  const std::string t = std::to_string(Acquire("k"));
  ASSERT_EQ(Ctl({"complete", scope_, "k", t, "--status", "202", "--body", "done"}).code, 0);
  Output r = Ctl({"backup", scope_});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string path = dir_->Sub("backups") + "/" + scope_;
  EXPECT_EQ(r.out, path + "\n");
  r = Ctl({"backup", scope_});  // exists already
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("HTTP 409: "), std::string::npos) << r.err;
  int code = -1;
  EXPECT_EQ(CtlJson({"backup", scope_ + "-2"}, &code)["path"], path + "-2");
  EXPECT_EQ(code, 0);
  Daemon restored;
  std::string error;
  ASSERT_TRUE(restored.Start(path, {"--admin-listen", "off"}, &error)) << error;
  const Json j = Json::parse(Idemctl({"--endpoint", "127.0.0.1:" + std::to_string(restored.port()),
                                      "-o", "json", "lookup", scope_, "k"})
                                 .out);
  EXPECT_EQ(j["state"], "KEY_COMPLETED");
  EXPECT_EQ(j["result"]["status"], 202);
  EXPECT_EQ(Base64Decode(j["result"]["body"]), "done");
}

}  // namespace
}  // namespace idem::testutil
