// Every operation and outcome of PROTOCOL.md section 2 over a real socket
// against the real idemd binary.
#include <gtest/gtest.h>

#include <thread>

#include "tests/server/daemon_fixture.h"

namespace idem::testutil {
namespace {

namespace v1 = idem::v1;

class DaemonOpsTest : public DaemonTest {};

TEST_F(DaemonOpsTest, AcquireCompleteReplay) {
  v1::Response r = client_.Call(ReserveReq(1, "payments", "a1b2", "fp", 10'000));
  ASSERT_EQ(r.id(), 1u);
  ASSERT_TRUE(r.has_reserve()) << r.DebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_EQ(r.reserve().attempt(), 1u);
  EXPECT_EQ(r.reserve().lease_remaining_ms(), 10'000u);
  EXPECT_GT(r.reserve().expires_unix_ms(), r.reserve().lease_expires_unix_ms());
  const uint64_t token = r.reserve().token();
  EXPECT_GT(token, 0u);

  r = client_.Call(ReserveReq(2, "payments", "a1b2", "fp"));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS);
  EXPECT_EQ(r.reserve().token(), 0u);  // never revealed to a duplicate
  EXPECT_GT(r.reserve().lease_remaining_ms(), 0u);

  r = client_.Call(CompleteReq(3, "payments", "a1b2", token, 201, "{\"charge\":\"ch_1\"}"));
  ASSERT_TRUE(r.has_complete()) << r.DebugString();
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK);
  EXPECT_EQ(r.complete().result().status(), 201);

  r = client_.Call(ReserveReq(4, "payments", "a1b2", "fp"));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED);
  EXPECT_EQ(r.reserve().result().status(), 201);
  EXPECT_EQ(r.reserve().result().body(), "{\"charge\":\"ch_1\"}");
  EXPECT_GT(r.reserve().result().completed_unix_ms(), 0u);

  // Repeating Complete with the same token: OK again, the first result stands.
  r = client_.Call(CompleteReq(5, "payments", "a1b2", token, 500, "other"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK);
  EXPECT_EQ(r.complete().result().body(), "{\"charge\":\"ch_1\"}");
  r = client_.Call(CompleteReq(6, "payments", "a1b2", token + 1, 500, "other"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_ALREADY_COMPLETED);

  r = client_.Call(LookupReq(7, "payments", "a1b2"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_COMPLETED);
  EXPECT_EQ(r.lookup().fingerprint(), "fp");
  EXPECT_EQ(r.lookup().result().status(), 201);
}

TEST_F(DaemonOpsTest, Mismatch) {
  v1::Response r = client_.Call(ReserveReq(1, "s", "k", "fp-1"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);
  r = client_.Call(ReserveReq(2, "s", "k", "fp-2", 0, /*wait_ms=*/5'000));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_MISMATCH);  // at once, even with wait_ms
  EXPECT_EQ(r.reserve().expires_unix_ms(), 0u);
}

TEST_F(DaemonOpsTest, ReleaseThenReacquireWithHigherToken) {
  v1::Response r = client_.Call(ReserveReq(1, "s", "k", "fp"));
  const uint64_t t1 = r.reserve().token();
  r = client_.Call(ReleaseReq(2, "s", "k", t1));
  EXPECT_EQ(r.release().outcome(), v1::RELEASE_OK);
  r = client_.Call(LookupReq(3, "s", "k"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_LEASE_EXPIRED);
  r = client_.Call(ReleaseReq(4, "s", "k", t1));
  EXPECT_EQ(r.release().outcome(), v1::RELEASE_LEASE_LOST);
  r = client_.Call(ReserveReq(5, "s", "k", "fp"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_GT(r.reserve().token(), t1);
  EXPECT_EQ(r.reserve().attempt(), 2u);
  r = client_.Call(CompleteReq(6, "s", "k", t1, 200, "late"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_LEASE_LOST);
  r = client_.Call(ReleaseReq(7, "s", "nope", 1));
  EXPECT_EQ(r.release().outcome(), v1::RELEASE_NOT_FOUND);
}

TEST_F(DaemonOpsTest, RenewExtendsTheLease) {
  v1::Response r = client_.Call(ReserveReq(1, "s", "k", "", 1'000));
  const uint64_t token = r.reserve().token();
  r = client_.Call(RenewReq(2, "s", "k", token, 60'000));
  ASSERT_EQ(r.renew().outcome(), v1::RENEW_OK);
  EXPECT_GT(r.renew().lease_remaining_ms(), 59'000u);
  r = client_.Call(RenewReq(3, "s", "k", token + 1, 60'000));
  EXPECT_EQ(r.renew().outcome(), v1::RENEW_LEASE_LOST);
  r = client_.Call(RenewReq(4, "s", "other", token, 60'000));
  EXPECT_EQ(r.renew().outcome(), v1::RENEW_NOT_FOUND);
  r = client_.Call(CompleteReq(5, "s", "k", token, 200, ""));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK);
  r = client_.Call(RenewReq(6, "s", "k", token, 60'000));
  EXPECT_EQ(r.renew().outcome(), v1::RENEW_ALREADY_COMPLETED);
}

TEST_F(DaemonOpsTest, LeaseExpiryTakeoverAndStaleComplete) {
  v1::Response r = client_.Call(ReserveReq(1, "s", "k", "fp", /*lease_ms=*/200));
  const uint64_t t1 = r.reserve().token();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the lease run out
  r = client_.Call(LookupReq(2, "s", "k"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_LEASE_EXPIRED);
  r = client_.Call(ReserveReq(3, "s", "k", "fp"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);
  EXPECT_GT(r.reserve().token(), t1);
  EXPECT_EQ(r.reserve().attempt(), 2u);
  r = client_.Call(CompleteReq(4, "s", "k", t1, 200, "stale"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_LEASE_LOST);
}

TEST_F(DaemonOpsTest, PurgeAndNotFound) {
  v1::Response r = client_.Call(PurgeReq(1, "s", "k"));
  EXPECT_FALSE(r.purge().existed());
  r = client_.Call(ReserveReq(2, "s", "k"));
  const uint64_t t1 = r.reserve().token();
  r = client_.Call(PurgeReq(3, "s", "k"));
  EXPECT_TRUE(r.purge().existed());
  r = client_.Call(CompleteReq(4, "s", "k", t1, 200, ""));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_NOT_FOUND);
  r = client_.Call(LookupReq(5, "s", "k"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_ABSENT);
  r = client_.Call(ReserveReq(6, "s", "k"));
  EXPECT_GT(r.reserve().token(), t1);
  EXPECT_EQ(r.reserve().attempt(), 1u);
}

// The server reuses one Lookup answer message: each answer must carry only
// its own key's fields, whatever the answer before it held.
TEST_F(DaemonOpsTest, LookupAnswersCarryNothingFromThePreviousOne) {
  v1::Response r = client_.Call(ReserveReq(1, "s", "done", "fp-done"));
  r = client_.Call(CompleteReq(2, "s", "done", r.reserve().token(), 201, "body of done"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK);
  r = client_.Call(ReserveReq(3, "s", "held", ""));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);

  r = client_.Call(LookupReq(4, "s", "done"));
  ASSERT_EQ(r.lookup().state(), v1::KEY_COMPLETED);
  EXPECT_EQ(r.lookup().fingerprint(), "fp-done");
  EXPECT_EQ(r.lookup().result().body(), "body of done");

  r = client_.Call(LookupReq(5, "s", "held"));
  EXPECT_EQ(r.id(), 5u);
  EXPECT_EQ(r.lookup().state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(r.lookup().fingerprint(), "");
  EXPECT_FALSE(r.lookup().has_result()) << r.DebugString();
  EXPECT_GT(r.lookup().lease_remaining_ms(), 0u);

  r = client_.Call(LookupReq(6, "s", "done"));  // the record cache answers now
  EXPECT_EQ(r.lookup().result().body(), "body of done");
  r = client_.Call(LookupReq(7, "s", "never"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_ABSENT);
  EXPECT_EQ(r.lookup().attempt(), 0u);
  EXPECT_EQ(r.lookup().expires_unix_ms(), 0u);
  EXPECT_FALSE(r.lookup().has_result()) << r.DebugString();
}

TEST_F(DaemonOpsTest, ScanPagesThroughOneScope) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_EQ(
        client_.Call(ReserveReq(i + 1, "s", "key" + std::to_string(100 + i))).reserve().outcome(),
        v1::RESERVE_ACQUIRED);
  }
  client_.Call(ReserveReq(99, "other", "key"));
  v1::Request scan;
  scan.set_id(100);
  scan.mutable_scan()->set_scope("s");
  scan.mutable_scan()->set_limit(10);
  std::vector<std::string> keys;
  for (int page = 0; page < 10; ++page) {
    v1::Response r = client_.Call(scan);
    ASSERT_TRUE(r.has_scan()) << r.DebugString();
    for (const auto& e : r.scan().entries()) {
      keys.push_back(e.key());
      EXPECT_EQ(e.state(), v1::KEY_IN_PROGRESS);
    }
    if (r.scan().next_cursor().empty()) break;
    scan.mutable_scan()->set_cursor(r.scan().next_cursor());
  }
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
}

TEST_F(DaemonOpsTest, PingAndStatsAndHello) {
  v1::Response r = client_.Call(PingReq(1, "hi"));
  EXPECT_EQ(r.ping().payload(), "hi");
  r = client_.Call(HelloReq(2, ""));
  ASSERT_TRUE(r.has_hello()) << r.DebugString();
  EXPECT_EQ(r.hello().tenant(), "default");
  EXPECT_EQ(r.hello().role(), v1::ROLE_ADMIN);
  EXPECT_EQ(r.hello().limits().max_key_bytes(), 256u);
  EXPECT_EQ(r.hello().limits().max_inflight(), 1024u);
  r = client_.Call(HelloReq(3, ""));
  EXPECT_EQ(r.error().code(), v1::ERROR_INVALID_ARGUMENT);  // a second Hello
  client_.Call(ReserveReq(4, "s", "k"));
  v1::Request stats;
  stats.set_id(5);
  stats.mutable_stats();
  r = client_.Call(stats);
  ASSERT_TRUE(r.has_stats());
  EXPECT_EQ(r.stats().server_version(), "0.1.0");
  EXPECT_EQ(r.stats().counters().at("reserve.acquired"), 1u);
  EXPECT_GE(r.stats().counters().at("wal.syncs"), 1u);
  EXPECT_EQ(r.stats().connections(), 1u);
}

}  // namespace
}  // namespace idem::testutil
