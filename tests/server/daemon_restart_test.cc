// Restarts, crashes, graceful shutdown, the admin HTTP port and the command
// line of the real idemd binary (PROTOCOL.md sections 2 "Durability", 3 and 6;
// DESIGN.md "Running it").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/server/daemon_fixture.h"

namespace idem::testutil {
namespace {

namespace v1 = idem::v1;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kLongLeaseMs = 600'000;  // outlives every test here

// ---------------------------------------------------------------------------
// Small helpers.

v1::Request StatsReq(uint64_t id) {
  v1::Request r;
  r.set_id(id);
  r.mutable_stats();
  return r;
}

// Polls `done` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// Distinct result bodies, binary ones with NUL and high bytes included.
std::string BodyFor(int i) {
  if (i == 0) return "";  // an empty body is a result too
  std::string body = "body-" + std::to_string(i);
  body.push_back('\0');
  const int extra = i == 1 ? 100'000 : 16 + i * 7;
  for (int j = 0; j < extra; ++j) body.push_back(static_cast<char>((i * 31 + j * 17) & 0xff));
  body.push_back('\0');
  return body;
}

// The payment flow's result for `key`: derived from it, with binary bytes.
std::string LoadBodyFor(const std::string& key) {
  std::string body = "{\"charge\":\"" + key + "\"}";
  body.push_back('\0');
  for (char c : key) body.push_back(static_cast<char>(~c));
  body.append(key.size() % 13, '\xff');
  return body;
}

std::string Printable(const std::string& bytes, size_t max = 64) {
  std::ostringstream out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out << c;
    } else {
      static const char kHex[] = "0123456789abcdef";
      out << "\\x" << kHex[c >> 4] << kHex[c & 15];
    }
  }
  if (bytes.size() > max) out << "...(" << bytes.size() << " bytes)";
  return out.str();
}

// Sends `requests` pipelined (at most `window` unanswered at a time) and
// collects the answers by id. False, with *error, if the connection fails.
bool CallPipelined(Client* client, const std::vector<v1::Request>& requests,
                   std::map<uint64_t, v1::Response>* answers, std::string* error,
                   size_t window = 256) {
  size_t sent = 0;
  size_t received = 0;
  while (received < requests.size()) {
    while (sent < requests.size() && sent - received < window) {
      if (!client->Send(requests[sent])) {
        *error = "send failed at request " + std::to_string(sent);
        return false;
      }
      ++sent;
    }
    v1::Response r;
    if (!client->Receive(&r, std::chrono::seconds(20))) {
      *error =
          "no answer after " + std::to_string(received) + " of " + std::to_string(requests.size());
      return false;
    }
    (*answers)[r.id()] = std::move(r);
    ++received;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Prometheus text exposition (format 0.0.4), parsed strictly.

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, ...
  std::vector<std::string> errors;           // what does not conform
};

bool ParseValue(const std::string& text, double* value) {
  if (text == "+Inf" || text == "Inf") {
    *value = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *value = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    *value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtod(text.c_str(), &end);
  return errno == 0 && end == text.c_str() + text.size();
}

bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The family a sample belongs to (its # TYPE name), or "" if none declared.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name) > 0) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (!HasSuffix(name, suffix)) continue;
    const std::string base = name.substr(0, name.size() - std::string(suffix).size());
    auto it = types.find(base);
    if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
  }
  return "";
}

std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string key = name + "{";
  for (const auto& [k, v] : labels) key += k + "=\"" + v + "\",";
  return key + "}";
}

Exposition ParseExposition(const std::string& text) {
  static const std::regex kSampleRe(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([^ ]+)( -?[0-9]+)?$)");
  static const std::regex kLabelsRe(
      R"re(^\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*,?)?\}$)re");
  static const std::regex kLabelRe(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)")re");
  static const std::regex kTypeRe(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kHelpRe(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?$)");

  Exposition e;
  if (text.empty() || text.back() != '\n') e.errors.push_back("does not end with a newline");
  std::set<std::string> families_with_samples;
  std::set<std::string> series;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = "line " + std::to_string(number) + " '" + line + "': ";
    if (line.empty()) continue;
    std::smatch m;
    if (line[0] == '#') {
      if (line.rfind("# TYPE", 0) == 0) {
        if (!std::regex_match(line, m, kTypeRe)) {
          e.errors.push_back(where + "malformed # TYPE");
          continue;
        }
        const std::string family = m[1];
        if (e.types.count(family) > 0) e.errors.push_back(where + "second # TYPE for " + family);
        if (families_with_samples.count(family) > 0) {
          e.errors.push_back(where + "# TYPE after samples of " + family);
        }
        e.types[family] = m[2];
      } else if (line.rfind("# HELP", 0) == 0 && !std::regex_match(line, kHelpRe)) {
        e.errors.push_back(where + "malformed # HELP");
      }
      continue;
    }
    if (!std::regex_match(line, m, kSampleRe)) {
      e.errors.push_back(where + "not 'name{labels} value' or 'name value'");
      continue;
    }
    Sample s;
    s.name = m[1];
    const std::string labels = m[2];
    if (!labels.empty()) {
      if (!std::regex_match(labels, kLabelsRe)) {
        e.errors.push_back(where + "malformed labels");
        continue;
      }
      for (auto it = std::sregex_iterator(labels.begin(), labels.end(), kLabelRe);
           it != std::sregex_iterator(); ++it) {
        if (!s.labels.emplace((*it)[1], (*it)[2]).second) {
          e.errors.push_back(where + "label repeated");
        }
      }
    }
    if (!ParseValue(m[3], &s.value)) {
      e.errors.push_back(where + "value is not a number");
      continue;
    }
    const std::string family = FamilyOf(s.name, e.types);
    if (family.empty()) {
      e.errors.push_back(where + "sample without a preceding # TYPE");
    } else {
      families_with_samples.insert(family);
    }
    if (!series.insert(SeriesKey(s.name, s.labels)).second) {
      e.errors.push_back(where + "the same series twice");
    }
    e.samples.push_back(std::move(s));
  }

  // Histograms: per label set (without le), buckets in increasing le with
  // non-decreasing counts, ending with +Inf equal to _count; _sum present.
  for (const auto& [family, type] : e.types) {
    if (type != "histogram") continue;
    struct Series {
      std::vector<std::pair<double, double>> buckets;  // (le, count) in order
      bool has_sum = false;
      bool has_count = false;
      double count = 0;
    };
    std::map<std::string, Series> by_labels;
    for (const Sample& s : e.samples) {
      if (FamilyOf(s.name, e.types) != family) continue;
      std::map<std::string, std::string> rest = s.labels;
      rest.erase("le");
      Series& series_of = by_labels[SeriesKey("", rest)];
      if (s.name == family + "_bucket") {
        auto le = s.labels.find("le");
        double bound = 0;
        if (le == s.labels.end() || !ParseValue(le->second, &bound)) {
          e.errors.push_back(family + ": a bucket without a numeric le");
          continue;
        }
        series_of.buckets.emplace_back(bound, s.value);
      } else if (s.name == family + "_sum") {
        series_of.has_sum = true;
      } else if (s.name == family + "_count") {
        series_of.has_count = true;
        series_of.count = s.value;
      } else if (s.name == family) {
        e.errors.push_back(family + ": a histogram sample without _bucket/_sum/_count");
      }
    }
    if (by_labels.empty()) continue;  // declared, no series yet (allowed)
    for (const auto& [labels, s] : by_labels) {
      const std::string what = family + labels;
      if (s.buckets.empty()) {
        e.errors.push_back(what + ": no buckets");
        continue;
      }
      for (size_t i = 1; i < s.buckets.size(); ++i) {
        if (!(s.buckets[i].first > s.buckets[i - 1].first)) {
          e.errors.push_back(what + ": le not increasing at bucket " + std::to_string(i));
        }
        if (s.buckets[i].second < s.buckets[i - 1].second) {
          e.errors.push_back(
              what + ": bucket counts decrease at le=" + std::to_string(s.buckets[i].first));
        }
      }
      if (s.buckets.back().first != std::numeric_limits<double>::infinity()) {
        e.errors.push_back(what + ": no +Inf bucket last");
      }
      if (!s.has_sum) e.errors.push_back(what + ": no _sum");
      if (!s.has_count) {
        e.errors.push_back(what + ": no _count");
      } else if (s.buckets.back().second != s.count) {
        e.errors.push_back(what + ": +Inf bucket " + std::to_string(s.buckets.back().second) +
                           " != _count " + std::to_string(s.count));
      }
    }
  }
  return e;
}

// The value of one series; NaN if absent.
double ValueOf(const Exposition& e, const std::string& name,
               const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& s : e.samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// GET /metrics, parsed; a failed GET is a test failure.
Exposition FetchMetrics(uint16_t admin_port) {
  std::string body;
  const int status = HttpGet(admin_port, "/metrics", &body);
  EXPECT_EQ(status, 200) << body;
  Exposition e = ParseExposition(body);
  EXPECT_TRUE(e.errors.empty()) << Join(e.errors) << "---\n" << body;
  return e;
}

const std::map<std::string, std::string> kReserveAcquired = {{"op", "reserve"},
                                                             {"outcome", "acquired"}};
const std::map<std::string, std::string> kReserveCompleted = {{"op", "reserve"},
                                                              {"outcome", "completed"}};

// ---------------------------------------------------------------------------
// The payment flow under load, for the crash tests.

struct LoadResult {
  std::map<std::string, std::string> completed;  // acknowledged COMPLETE_OK: key -> body
  std::map<std::string, uint64_t> acquired;      // every ACQUIRED: key -> token
  std::vector<std::string> unexpected;           // answers a live daemon must not give
  std::string stopped_by;
};

// Reserve a fresh key, complete it with a body derived from the key; repeat
// until the connection breaks, `stop` is set or 20 s pass.
void RunPaymentFlow(uint16_t port, int thread, const std::atomic<bool>* stop, LoadResult* out) {
  Client client;
  if (!client.Connect(port)) {
    out->stopped_by = "connect failed";
    return;
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  uint64_t id = 1;
  for (int i = 0;; ++i) {
    if (stop->load()) {
      out->stopped_by = "stop flag";
      return;
    }
    if (SteadyClock::now() > deadline) {
      out->stopped_by = "deadline";
      return;
    }
    const std::string key = "pay-" + std::to_string(thread) + "-" + std::to_string(i);
    v1::Response r;
    if (!client.Send(ReserveReq(id++, "load", key, "", 60'000)) ||
        !client.Receive(&r, std::chrono::seconds(10))) {
      out->stopped_by = "connection broke at reserve";
      return;
    }
    if (!r.has_reserve() || r.reserve().outcome() != v1::RESERVE_ACQUIRED) {
      out->unexpected.push_back("reserve " + key + ": " + r.ShortDebugString());
      out->stopped_by = "unexpected answer";
      return;
    }
    out->acquired[key] = r.reserve().token();
    const std::string body = LoadBodyFor(key);
    if (!client.Send(CompleteReq(id++, "load", key, r.reserve().token(), 201, body)) ||
        !client.Receive(&r, std::chrono::seconds(10))) {
      out->stopped_by = "connection broke at complete";
      return;
    }
    if (!r.has_complete() || r.complete().outcome() != v1::COMPLETE_OK ||
        r.complete().result().body() != body) {
      out->unexpected.push_back("complete " + key + ": " + r.ShortDebugString());
      out->stopped_by = "unexpected answer";
      return;
    }
    out->completed[key] = body;
  }
}

// ---------------------------------------------------------------------------
// Restarts.

class DaemonRestartTest : public DaemonTest {
 protected:
  // Like the fixture's Restart(), but it reads the new daemon's port from the
  // new part of its log: Daemon::Start keeps the previous run's port_ and
  // returns at once when started a second time (tests/testutil/daemon.cc).
  void RestartDaemon(int signo, int expected_status) {
    client_.Close();
    if (signo == SIGKILL) {
      daemon_.Kill();
    } else {
      ASSERT_EQ(daemon_.Stop(signo), expected_status) << daemon_.Log();
    }
    StartAgain();
  }

  // Starts the stopped daemon on the same data dir; reconnects client_.
  void StartAgain() {
    const size_t offset = daemon_.Log().size();
    std::string error;
    ASSERT_TRUE(daemon_.Start(DataDir(), Flags(), &error)) << error;
    static const std::regex kPortRe(R"(idemd \S+ listening on \S+:(\d+))");
    uint16_t port = 0;
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string log = daemon_.Log().substr(offset);
          std::smatch m;
          if (!std::regex_search(log, m, kPortRe)) return false;
          port = static_cast<uint16_t>(std::stoi(m[1]));
          return true;
        },
        milliseconds(20'000)))
        << "the restarted daemon did not log its port: " << daemon_.Log();
    port_ = port;
    ASSERT_TRUE(client_.Connect(port_)) << daemon_.Log();
  }

  // The protocol port of the running daemon.
  uint16_t Port() const { return port_ != 0 ? port_ : daemon_.port(); }

  uint16_t port_ = 0;

  // Test 2 and 3: SIGKILL while 8 clients run the payment flow, restart, and
  // check that nothing acknowledged was lost and no lease was granted twice.
  void KillUnderLoadAndVerify(const std::string& mode);
};

TEST_F(DaemonRestartTest, SigtermKeepsCompletedResultsLeasesAndTokenOrder) {
  constexpr int kCompleted = 50;
  constexpr int kInProgress = 5;
  uint64_t max_token = 0;
  std::vector<uint64_t> in_progress_tokens;
  for (int i = 0; i < kCompleted; ++i) {
    const std::string key = "done-" + std::to_string(i);
    v1::Response r = client_.Call(ReserveReq(next_id_++, "restart", key, "fp-" + key, 60'000));
    ASSERT_TRUE(r.has_reserve()) << r.DebugString();
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << key;
    const uint64_t token = r.reserve().token();
    max_token = std::max(max_token, token);
    r = client_.Call(CompleteReq(next_id_++, "restart", key, token, 200 + i, BodyFor(i)));
    ASSERT_TRUE(r.has_complete()) << r.DebugString();
    ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << key;
  }
  for (int i = 0; i < kInProgress; ++i) {
    const std::string key = "held-" + std::to_string(i);
    v1::Response r = client_.Call(ReserveReq(next_id_++, "restart", key, "", kLongLeaseMs));
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
    in_progress_tokens.push_back(r.reserve().token());
    max_token = std::max(max_token, r.reserve().token());
  }

  RestartDaemon(SIGTERM, 0);
  if (HasFatalFailure()) return;

  for (int i = 0; i < kCompleted; ++i) {
    const std::string key = "done-" + std::to_string(i);
    v1::Response r = client_.Call(ReserveReq(next_id_++, "restart", key, "fp-" + key));
    ASSERT_TRUE(r.has_reserve()) << r.DebugString();
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << key;
    EXPECT_EQ(r.reserve().result().status(), 200 + i) << key;
    EXPECT_TRUE(r.reserve().result().body() == BodyFor(i))
        << key << ": replayed " << Printable(r.reserve().result().body()) << ", stored "
        << Printable(BodyFor(i));
    EXPECT_GT(r.reserve().result().completed_unix_ms(), 0u);
  }
  for (int i = 0; i < kInProgress; ++i) {
    const std::string key = "held-" + std::to_string(i);
    v1::Response r = client_.Call(ReserveReq(next_id_++, "restart", key));
    ASSERT_TRUE(r.has_reserve()) << r.DebugString();
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS) << key;
    EXPECT_GT(r.reserve().lease_remaining_ms(), kLongLeaseMs - 60'000) << key;
    EXPECT_EQ(r.reserve().attempt(), 1u) << key;
  }

  // A reservation after a purge gets a token above every earlier one.
  v1::Response r = client_.Call(PurgeReq(next_id_++, "restart", "done-0"));
  ASSERT_TRUE(r.has_purge()) << r.DebugString();
  EXPECT_TRUE(r.purge().existed());
  r = client_.Call(ReserveReq(next_id_++, "restart", "done-0"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  EXPECT_GT(r.reserve().token(), max_token);

  // The holder of a lease keeps it across the restart: it can release it, and
  // the next reservation of the released key gets a higher token.
  r = client_.Call(ReleaseReq(next_id_++, "restart", "held-0", in_progress_tokens[0]));
  ASSERT_TRUE(r.has_release()) << r.DebugString();
  EXPECT_EQ(r.release().outcome(), v1::RELEASE_OK);
  r = client_.Call(ReserveReq(next_id_++, "restart", "held-0"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  EXPECT_GT(r.reserve().token(), max_token);
  EXPECT_EQ(r.reserve().attempt(), 2u);
  // ... and can complete it.
  r = client_.Call(CompleteReq(next_id_++, "restart", "held-1", in_progress_tokens[1], 200, "ok"));
  ASSERT_TRUE(r.has_complete()) << r.DebugString();
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK);

  // A key never seen before also gets a token above the pre-restart ones
  // (DESIGN.md: one durable high-water mark).
  r = client_.Call(ReserveReq(next_id_++, "restart", "fresh-after-restart"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  EXPECT_GT(r.reserve().token(), max_token);
}

TEST_F(DaemonRestartTest, SigintAlsoStopsGracefully) {
  v1::Response r = client_.Call(ReserveReq(next_id_++, "s", "k"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  r = client_.Call(CompleteReq(next_id_++, "s", "k", r.reserve().token(), 200, "int"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();
  RestartDaemon(SIGINT, 0);
  if (HasFatalFailure()) return;
  r = client_.Call(ReserveReq(next_id_++, "s", "k"));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.DebugString();
  EXPECT_EQ(r.reserve().result().body(), "int");
}

void DaemonRestartTest::KillUnderLoadAndVerify(const std::string& mode) {
  // Leases held across the crash, which nobody may take over after it.
  constexpr int kHeld = 20;
  uint64_t max_token = 0;
  for (int i = 0; i < kHeld; ++i) {
    v1::Response r =
        client_.Call(ReserveReq(next_id_++, "held", "h-" + std::to_string(i), "", kLongLeaseMs));
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
    max_token = std::max(max_token, r.reserve().token());
  }

  constexpr int kThreads = 8;
  std::atomic<bool> stop{false};
  std::vector<LoadResult> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(RunPaymentFlow, Port(), t, &stop, &results[t]);
  }
  std::this_thread::sleep_for(milliseconds(1000));
  daemon_.Kill();  // SIGKILL while the clients run
  stop = true;
  for (auto& t : threads) t.join();

  std::map<std::string, std::string> completed;
  std::map<std::string, uint64_t> acquired;
  for (const LoadResult& r : results) {
    for (const auto& u : r.unexpected) ADD_FAILURE() << "before the kill: " << u;
    completed.insert(r.completed.begin(), r.completed.end());
    acquired.insert(r.acquired.begin(), r.acquired.end());
    for (const auto& [key, token] : r.acquired) max_token = std::max(max_token, token);
  }
  ASSERT_GT(completed.size(), 0u) << "no completion was acknowledged before the kill";
  std::vector<std::string> open;  // acquired, completion not acknowledged
  for (const auto& [key, token] : acquired) {
    if (completed.count(key) == 0) open.push_back(key);
  }

  RestartDaemon(SIGKILL, 0);
  if (HasFatalFailure()) return;

  // Every acknowledged completion replays its exact body.
  std::vector<v1::Request> replays;
  std::map<uint64_t, std::string> key_of;
  for (const auto& [key, body] : completed) {
    key_of[next_id_] = key;
    replays.push_back(ReserveReq(next_id_++, "load", key, "", 60'000));
  }
  std::map<uint64_t, v1::Response> answers;
  std::string error;
  ASSERT_TRUE(CallPipelined(&client_, replays, &answers, &error)) << error;
  size_t verified = 0;
  size_t reported = 0;
  for (const auto& [id, key] : key_of) {
    const v1::Response& r = answers[id];
    const std::string& body = completed[key];
    if (r.has_reserve() && r.reserve().outcome() == v1::RESERVE_COMPLETED &&
        r.reserve().result().status() == 201 && r.reserve().result().body() == body) {
      ++verified;
    } else if (++reported <= 10) {
      ADD_FAILURE() << "acknowledged completion of " << key
                    << " lost or changed after SIGKILL: " << Printable(r.ShortDebugString(), 300);
    }
  }
  EXPECT_EQ(verified, completed.size());

  // Acquired but not (acknowledged) completed: still there, and still held
  // (lease 60 s) or completed: never granted to a second holder.
  size_t open_ok = 0;
  for (const std::string& key : open) {
    v1::Response r = client_.Call(LookupReq(next_id_++, "load", key));
    ASSERT_TRUE(r.has_lookup()) << r.DebugString();
    EXPECT_NE(r.lookup().state(), v1::KEY_ABSENT) << key << " was acquired before the kill";
    r = client_.Call(ReserveReq(next_id_++, "load", key, "", 60'000));
    ASSERT_TRUE(r.has_reserve()) << r.DebugString();
    EXPECT_NE(r.reserve().outcome(), v1::RESERVE_ACQUIRED)
        << key << " was granted to a second holder: " << r.ShortDebugString();
    if (r.reserve().outcome() == v1::RESERVE_COMPLETED) {
      EXPECT_EQ(r.reserve().result().body(), LoadBodyFor(key));
    }
    if (r.reserve().outcome() != v1::RESERVE_ACQUIRED) ++open_ok;
  }
  for (int i = 0; i < kHeld; ++i) {
    v1::Response r = client_.Call(ReserveReq(next_id_++, "held", "h-" + std::to_string(i)));
    ASSERT_TRUE(r.has_reserve()) << r.DebugString();
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS)
        << "h-" << i << " (lease " << kLongLeaseMs
        << " ms) after SIGKILL: " << r.ShortDebugString();
  }

  // New acquisitions get tokens above every token seen before the crash.
  for (int i = 0; i < 5; ++i) {
    v1::Response r = client_.Call(ReserveReq(next_id_++, "after", "k-" + std::to_string(i)));
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
    EXPECT_GT(r.reserve().token(), max_token);
  }
  const std::string purged = completed.begin()->first;
  v1::Response r = client_.Call(PurgeReq(next_id_++, "load", purged));
  EXPECT_TRUE(r.has_purge() && r.purge().existed()) << r.DebugString();
  r = client_.Call(ReserveReq(next_id_++, "load", purged));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  EXPECT_GT(r.reserve().token(), max_token);

  std::ostringstream summary;
  summary << "[" << mode << "] SIGKILL under load: " << acquired.size() << " acquired, "
          << completed.size() << " completions acknowledged, " << verified
          << " verified after restart; " << open.size()
          << " acquired-not-acknowledged still held or completed: " << open_ok << "; " << kHeld
          << " long leases kept";
  std::cout << summary.str() << std::endl;
  RecordProperty("acknowledged_completions", static_cast<int>(completed.size()));
  RecordProperty("verified_completions", static_cast<int>(verified));
  RecordProperty("acquired_not_completed", static_cast<int>(open.size()));
}

TEST_F(DaemonRestartTest, SigkillUnderLoadLosesNothingAcknowledged) {
  KillUnderLoadAndVerify("sync");
}

class DaemonRestartAsyncTest : public DaemonRestartTest {
 protected:
  std::vector<std::string> Flags() override { return {"--durability", "async"}; }
};

TEST_F(DaemonRestartAsyncTest, SigkillUnderLoadLosesNothingAcknowledged) {
  KillUnderLoadAndVerify("async");
}

TEST_F(DaemonRestartTest, GracefulShutdownAnswersWaiters) {
  v1::Response r = client_.Call(ReserveReq(next_id_++, "w", "k", "", kLongLeaseMs));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  const uint64_t token = r.reserve().token();

  Client waiter;
  ASSERT_TRUE(waiter.Connect(Port()));
  ASSERT_TRUE(waiter.Send(ReserveReq(77, "w", "k", "", 0, /*wait_ms=*/20'000)));
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Response s = client_.Call(StatsReq(next_id_++));
        return s.has_stats() && s.stats().waiters() == 1;
      },
      milliseconds(5000)))
      << "the waiter never queued";

  const auto start = SteadyClock::now();
  ASSERT_EQ(kill(daemon_.pid(), SIGTERM), 0);
  v1::Response answer;
  ASSERT_TRUE(waiter.Receive(&answer, std::chrono::seconds(5)))
      << "the waiter was not answered at shutdown";
  EXPECT_EQ(answer.id(), 77u);
  ASSERT_TRUE(answer.has_reserve()) << answer.DebugString();
  EXPECT_EQ(answer.reserve().outcome(), v1::RESERVE_IN_PROGRESS);
  EXPECT_EQ(answer.reserve().token(), 0u);
  EXPECT_GT(answer.reserve().lease_remaining_ms(), 0u);
  EXPECT_TRUE(waiter.WaitClosed(std::chrono::seconds(5)))
      << "the connection stayed open after shutdown";
  // Stop(0) sends no signal (a second SIGTERM would exit at once): it waits.
  EXPECT_EQ(daemon_.Stop(0, std::chrono::seconds(10)), 0) << daemon_.Log();
  const auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  EXPECT_LT(took.count(), 4000) << "graceful shutdown took " << took.count() << " ms";

  // The waiter did not take the lease over: the holder still has it.
  StartAgain();
  if (HasFatalFailure()) return;
  r = client_.Call(ReserveReq(next_id_++, "w", "k"));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS) << r.DebugString();
  r = client_.Call(CompleteReq(next_id_++, "w", "k", token, 200, "done"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();
}

// ---------------------------------------------------------------------------
// The admin HTTP port.

class DaemonAdminTest : public DaemonTest {};

TEST_F(DaemonAdminTest, HealthIs200WhileServingAnd503WhileDraining) {
  std::string body;
  ASSERT_EQ(HttpGet(daemon_.admin_port(), "/health", &body), 200) << body;
  Exposition e = FetchMetrics(daemon_.admin_port());
  EXPECT_EQ(ValueOf(e, "idem_healthy"), 1.0);

  // To hold the drain open, a client that stops reading is owed ~16 MB of
  // answers (64 replays of a 250 KB result): more than the socket buffers
  // hold, less than --max-output-bytes (32 MiB). The daemon then waits for it
  // (up to its drain grace) with /health still served.
  const std::string big(250'000, 'x');
  v1::Response r = client_.Call(ReserveReq(next_id_++, "s", "big"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  r = client_.Call(CompleteReq(next_id_++, "s", "big", r.reserve().token(), 200, big));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();
  const double replays_before =
      ValueOf(FetchMetrics(daemon_.admin_port()), "idem_operations_total", kReserveCompleted);
  Client slow;
  ASSERT_TRUE(slow.Connect(daemon_.port()));
  const int small = 16 * 1024;
  setsockopt(slow.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  constexpr int kReplays = 64;
  for (int i = 0; i < kReplays; ++i) ASSERT_TRUE(slow.Send(ReserveReq(1000 + i, "s", "big")));
  ASSERT_TRUE(WaitFor(
      [&] {
        return ValueOf(FetchMetrics(daemon_.admin_port()), "idem_operations_total",
                       kReserveCompleted) >= replays_before + kReplays;
      },
      milliseconds(10'000)))
      << "the daemon did not answer the pipelined replays";
  ASSERT_EQ(HttpGet(daemon_.admin_port(), "/health", &body), 200) << body;

  ASSERT_EQ(kill(daemon_.pid(), SIGTERM), 0);
  int status = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = HttpGet(daemon_.admin_port(), "/health", &body);
        return status != 200;
      },
      milliseconds(3000)))
      << "/health stayed 200 after SIGTERM";
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(body, "draining\n");
  std::string metrics;
  if (HttpGet(daemon_.admin_port(), "/metrics", &metrics) == 200) {
    Exposition drained = ParseExposition(metrics);
    EXPECT_TRUE(drained.errors.empty()) << Join(drained.errors);
    EXPECT_EQ(ValueOf(drained, "idem_healthy"), 0.0);
  } else {
    ADD_FAILURE() << "/metrics not served while draining";
  }

  // Letting go of the stuck connection ends the drain: exit 0, promptly.
  const auto start = SteadyClock::now();
  slow.Close();
  client_.Close();
  EXPECT_EQ(daemon_.Stop(0, std::chrono::seconds(10)), 0) << daemon_.Log();
  const auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  EXPECT_LT(took.count(), 4000) << "exit took " << took.count() << " ms after the client left";
}

TEST_F(DaemonAdminTest, MetricsAreValidPrometheusTextAndMove) {
  Exposition before = FetchMetrics(daemon_.admin_port());
  for (const char* name : {"idem_operations_total", "idem_connections", "idem_healthy",
                           "idem_batch_records", "idem_wal_sync_seconds", "idem_waiters"}) {
    EXPECT_EQ(before.types.count(name), 1u) << name << " has no # TYPE";
  }
  EXPECT_EQ(before.types["idem_operations_total"], "counter");
  EXPECT_EQ(before.types["idem_connections"], "gauge");
  EXPECT_EQ(before.types["idem_batch_records"], "histogram");
  EXPECT_EQ(before.types["idem_wal_sync_seconds"], "histogram");
  EXPECT_EQ(ValueOf(before, "idem_healthy"), 1.0);
  const double acquired0 = ValueOf(before, "idem_operations_total", kReserveAcquired);
  const double syncs0 = ValueOf(before, "idem_wal_sync_seconds_count");
  const double batches0 = ValueOf(before, "idem_batch_records_count");
  ASSERT_FALSE(std::isnan(acquired0)) << "no idem_operations_total{op=\"reserve\",...acquired}";
  ASSERT_FALSE(std::isnan(syncs0)) << "no idem_wal_sync_seconds_count";
  ASSERT_FALSE(std::isnan(batches0)) << "no idem_batch_records_count";

  constexpr int kFresh = 7;
  for (int i = 0; i < kFresh; ++i) {
    v1::Response r = client_.Call(ReserveReq(next_id_++, "m", "fresh-" + std::to_string(i)));
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  }
  // Other outcomes must not count as acquired.
  v1::Response r = client_.Call(ReserveReq(next_id_++, "m", "fresh-0"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS) << r.DebugString();
  r = client_.Call(LookupReq(next_id_++, "m", "fresh-1"));
  ASSERT_TRUE(r.has_lookup()) << r.DebugString();

  Exposition after = FetchMetrics(daemon_.admin_port());
  EXPECT_EQ(ValueOf(after, "idem_operations_total", kReserveAcquired), acquired0 + kFresh);
  EXPECT_GT(ValueOf(after, "idem_wal_sync_seconds_count"), syncs0);
  EXPECT_GT(ValueOf(after, "idem_batch_records_count"), batches0);
  EXPECT_GE(ValueOf(after, "idem_batch_records_sum"), kFresh);
  EXPECT_GE(
      ValueOf(after, "idem_operations_total", {{"op", "reserve"}, {"outcome", "in_progress"}}),
      1.0);

  // idem_connections follows the open client connections.
  EXPECT_GE(ValueOf(after, "idem_connections"), 1.0);
  std::vector<std::unique_ptr<Client>> more;
  for (int i = 0; i < 3; ++i) {
    more.push_back(std::make_unique<Client>());
    ASSERT_TRUE(more.back()->Connect(daemon_.port()));
    v1::Response pong = more.back()->Call(PingReq(1, "p"));  // accepted for sure
    ASSERT_TRUE(pong.has_ping()) << pong.DebugString();
  }
  Exposition four = FetchMetrics(daemon_.admin_port());
  EXPECT_GE(ValueOf(four, "idem_connections"), 4.0);
  for (auto& c : more) c->Close();
  EXPECT_TRUE(WaitFor(
      [&] { return ValueOf(FetchMetrics(daemon_.admin_port()), "idem_connections") <= 1.0; },
      milliseconds(5000)))
      << "idem_connections did not fall back after closing 3 connections";
}

// ---------------------------------------------------------------------------
// The command line (PROTOCOL.md section 6): usage errors exit 2 with one line.

class DaemonCliTest : public ::testing::Test {
 protected:
  // Runs idemd with `args` (plus a data dir and loopback ports unless given)
  // and returns its exit status.
  int Run(std::vector<std::string> args, std::string* output) {
    auto has = [&](const std::string& flag) {
      return std::find(args.begin(), args.end(), flag) != args.end();
    };
    if (!has("--data-dir")) args.insert(args.end(), {"--data-dir", dir_.Sub("data")});
    if (!has("--listen")) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    if (!has("--admin-listen")) args.insert(args.end(), {"--admin-listen", "off"});
    return RunIdemd(args, output, std::chrono::seconds(15));
  }

  TempDir dir_;
};

::testing::AssertionResult IsOneLineNaming(const std::string& output, const std::string& needle) {
  const auto newlines = std::count(output.begin(), output.end(), '\n');
  if (newlines != 1 || output.empty() || output.back() != '\n') {
    return ::testing::AssertionFailure()
           << "not exactly one line (" << newlines << " newlines): [" << output << "]";
  }
  if (output.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << "does not mention " << needle << ": " << output;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(DaemonCliTest, HelpExitsZeroAndListsTheLimits) {
  std::string out;
  EXPECT_EQ(Run({"--help"}, &out), 0) << out;
  EXPECT_NE(out.find("--max-key-bytes"), std::string::npos) << out;
  EXPECT_NE(out.find("--durability"), std::string::npos) << out;
}

TEST_F(DaemonCliTest, UnknownFlag) {
  std::string out;
  EXPECT_EQ(Run({"--bogus-flag"}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, "--bogus-flag"));
}

TEST_F(DaemonCliTest, BadDurability) {
  std::string out;
  EXPECT_EQ(Run({"--durability", "maybe"}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, "--durability"));
}

TEST_F(DaemonCliTest, NonLoopbackListenWithoutAuth) {
  std::string out;
  EXPECT_EQ(Run({"--listen", "0.0.0.0:0"}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, "loopback"));
  EXPECT_NE(out.find("--listen"), std::string::npos) << out;
}

TEST_F(DaemonCliTest, DataDirThatIsARegularFile) {
  const std::string file = dir_.Sub("not-a-dir");
  std::ofstream(file) << "plain file\n";
  std::string out;
  EXPECT_EQ(Run({"--data-dir", file}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, file));
  // A data dir below a regular file cannot be created either.
  const std::string below = file + "/data";
  EXPECT_EQ(Run({"--data-dir", below}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, below));
}

TEST_F(DaemonCliTest, ZeroMaxKeyBytes) {
  std::string out;
  EXPECT_EQ(Run({"--max-key-bytes", "0"}, &out), 2) << out;
  EXPECT_TRUE(IsOneLineNaming(out, "--max-key-bytes"));
}

}  // namespace
}  // namespace idem::testutil
