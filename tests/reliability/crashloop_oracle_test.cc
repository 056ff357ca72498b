// The crash loop's checker on hand-made histories: it must flag every kind of
// broken promise (so a clean crash loop means something), and must not flag
// what the protocol allows (takeover after expiry, acquisition after release).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tools/crashloop/oracle.h"

namespace idem::crashloop {
namespace {

namespace v1 = idem::v1;
using namespace std::string_literals;

Acquisition Acq(uint64_t token, uint32_t attempt, uint64_t grant, uint32_t lease_ms,
                uint64_t send_seq, uint64_t ack_seq, int cycle = 1) {
  Acquisition a;
  a.token = token;
  a.attempt = attempt;
  a.lease_expires_unix_ms = grant + lease_ms;
  a.lease_ms = lease_ms;
  a.send_seq = send_seq;
  a.ack_seq = ack_seq;
  a.cycle = cycle;
  return a;
}

std::vector<std::string> Kinds(const std::vector<Violation>& vs) {
  std::vector<std::string> kinds;
  for (const auto& v : vs) kinds.push_back(v.kind);
  return kinds;
}

std::vector<Violation> Check(const KeyHistory& h) {
  std::vector<Violation> out;
  CheckKeyHistory("k", h, &out);
  return out;
}

TEST(CrashLoopOracleTest, LegalHistoryHasNoViolation) {
  KeyHistory h;
  h.shared = true;
  // Takeover after expiry, then an acquisition right after a release, then a
  // completion; concurrent requests may be acknowledged in any order.
  h.acquisitions = {Acq(5, 1, 1000, 100, 1, 4), Acq(9, 2, 1100, 50, 2, 6),
                    Acq(12, 3, 1120, 100, 7, 9)};
  h.released = {9};
  h.completions = {{12, 201, ResultBody("k", 12), 11, 1}};
  h.attempted = {{12, 201}};
  h.replays = {{201, ResultBody("k", 12), 2, "Reserve"}};
  EXPECT_TRUE(Check(h).empty()) << Check(h).front().ToString();
}

TEST(CrashLoopOracleTest, TokenReuseAndNotRising) {
  KeyHistory h;
  h.acquisitions = {Acq(7, 1, 1000, 10, 1, 2), Acq(7, 2, 2000, 10, 3, 4, 2)};
  const auto kinds = Kinds(Check(h));
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "token-reuse"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "token-not-rising"), kinds.end());
}

TEST(CrashLoopOracleTest, LowerTokenAfterRestartIsCaught) {
  KeyHistory h;
  h.acquisitions = {Acq(40, 1, 1000, 10, 1, 2, 1), Acq(3, 2, 5000, 10, 10, 11, 2)};
  const auto kinds = Kinds(Check(h));
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "token-not-rising"), kinds.end());
}

TEST(CrashLoopOracleTest, OverlappingLeasesAreCaught) {
  KeyHistory h;
  // Token 2 granted at 1050 while token 1's lease runs until 1100.
  h.acquisitions = {Acq(1, 1, 1000, 100, 1, 2), Acq(2, 2, 1050, 100, 3, 4)};
  EXPECT_EQ(Kinds(Check(h)), std::vector<std::string>{"lease-overlap"});
  // Released (or a release whose answer was lost): allowed.
  h.released = {1};
  EXPECT_TRUE(Check(h).empty());
  h.released.clear();
  h.release_unknown = {1};
  EXPECT_TRUE(Check(h).empty());
  // Not released but an intermediate lease in between does not hide token 1.
  h.release_unknown.clear();
  h.acquisitions = {Acq(1, 1, 1000, 500, 1, 2), Acq(2, 2, 1100, 10, 3, 4),
                    Acq(3, 3, 1200, 10, 5, 6)};
  h.released = {2};
  EXPECT_FALSE(Check(h).empty());
}

TEST(CrashLoopOracleTest, AcquiredAfterCompleteAndTwoResults) {
  KeyHistory h;
  h.acquisitions = {Acq(1, 1, 1000, 10, 1, 2), Acq(2, 2, 2000, 10, 5, 6)};
  h.completions = {{1, 200, ResultBody("k", 1), 3, 1}, {2, 200, ResultBody("k", 2), 7, 1}};
  const auto kinds = Kinds(Check(h));
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "acquired-after-complete"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "two-results"), kinds.end());
}

TEST(CrashLoopOracleTest, WrongReplayIsCaught) {
  KeyHistory h;
  h.acquisitions = {Acq(1, 1, 1000, 10, 1, 2)};
  h.attempted = {{1, ResultStatus("k", 1)}};
  h.replays = {{ResultStatus("k", 1), "not what was sent", 1, "Reserve"}};
  EXPECT_EQ(Kinds(Check(h)), std::vector<std::string>{"wrong-replay"});
  h.replays = {{ResultStatus("k", 1), ResultBody("k", 1), 1, "Reserve"}};
  EXPECT_TRUE(Check(h).empty());  // an unacknowledged Complete that did happen
}

TEST(CrashLoopOracleTest, VerifyLookupAgainstServerState) {
  KeyHistory h;
  h.acquisitions = {Acq(3, 2, 1000, 10, 1, 2)};
  h.completions = {{3, 201, "body\0bytes"s, 3, 1}};
  std::vector<Violation> out;
  CheckCounts counts;

  v1::LookupReply absent;
  absent.set_state(v1::KEY_ABSENT);
  VerifyLookup("k", h, absent, 1, &out, &counts);
  EXPECT_EQ(Kinds(out), (std::vector<std::string>{"lost-complete", "lost-acquire"}));

  out.clear();
  v1::LookupReply other;
  other.set_state(v1::KEY_COMPLETED);
  other.set_attempt(2);
  other.mutable_result()->set_status(201);
  other.mutable_result()->set_body("body\0bytez"s);
  VerifyLookup("k", h, other, 1, &out, &counts);
  EXPECT_EQ(Kinds(out), std::vector<std::string>{"wrong-result"});

  out.clear();
  other.mutable_result()->set_body("body\0bytes"s);
  other.set_attempt(1);
  VerifyLookup("k", h, other, 1, &out, &counts);
  EXPECT_EQ(Kinds(out), std::vector<std::string>{"attempt-regressed"});

  out.clear();
  other.set_attempt(2);
  VerifyLookup("k", h, other, 1, &out, &counts);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(counts.completes, 4u);
  EXPECT_EQ(counts.acquisitions, 4u);

  // COMPLETED with a result no Complete ever carried.
  KeyHistory open;
  open.acquisitions = {Acq(8, 1, 1000, 10, 1, 2)};
  open.attempted = {{8, ResultStatus("k", 8)}};
  v1::LookupReply forged;
  forged.set_state(v1::KEY_COMPLETED);
  forged.set_attempt(1);
  forged.mutable_result()->set_status(ResultStatus("k", 8));
  forged.mutable_result()->set_body("forged");
  out.clear();
  VerifyLookup("k", open, forged, 1, &out, &counts);
  EXPECT_EQ(Kinds(out), std::vector<std::string>{"unknown-result"});
  forged.mutable_result()->set_body(ResultBody("k", 8));
  out.clear();
  VerifyLookup("k", open, forged, 1, &out, &counts);
  EXPECT_TRUE(out.empty());
}

TEST(CrashLoopOracleTest, ResultBodiesDependOnKeyAndToken) {
  EXPECT_EQ(ResultBody("a", 1), ResultBody("a", 1));
  EXPECT_NE(ResultBody("a", 1), ResultBody("a", 2));
  EXPECT_NE(ResultBody("a", 1), ResultBody("b", 1));
  EXPECT_NE(ResultBody("a", 1).find('\0'), std::string::npos);
}

}  // namespace
}  // namespace idem::crashloop
