// Time (storage/clock.h, SteadyWallClock): a jump of the system clock while
// the server runs must not let two holders overlap, nor the TTL filter drop a
// record whose lease is running. The real Executor and Store over a fake
// clock whose wall time jumps while its steady time does not; the negative
// control runs the same steps on the raw wall clock and must see the overlap.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "protocol/idem.pb.h"
#include "storage/clock.h"
#include "storage/key_codec.h"
#include "tests/testutil/executor_harness.h"
#include "tests/testutil/temp_dir.h"

namespace idem::server {
namespace {

namespace v1 = idem::v1;
using std::chrono::milliseconds;

constexpr uint32_t kLeaseMs = 10'000;
constexpr uint64_t kHour = 3'600'000;

class ClockJumpTest : public ::testing::Test {
 protected:
  // Opens the executor over `clock` (the fake one, or a SteadyWallClock on it).
  void Open(const Clock* clock) {
    life_ =
        std::make_unique<testutil::ExecutorLife>(dir_.path(), nullptr, clock, Executor::Options{});
    ASSERT_TRUE(life_->status().ok()) << life_->status().ToString();
    session_ = std::make_shared<testutil::FakeSession>(
        "t", [this](const v1::Response& r) { answers_[r.id()] = r; });
  }

  v1::Response Call(v1::Request req) {
    const uint64_t id = next_id_++;
    req.set_id(id);
    life_->executor().Handle(session_, req, std::chrono::steady_clock::now());
    EXPECT_TRUE(life_->RunUntil([&] { return answers_.count(id) > 0; }, milliseconds(10'000)));
    return answers_[id];
  }
  v1::Response Reserve(const std::string& key) {
    v1::Request req;
    req.mutable_reserve()->set_scope("s");
    req.mutable_reserve()->set_key(key);
    req.mutable_reserve()->set_lease_ms(kLeaseMs);
    return Call(req);
  }
  bool Present(const std::string& key) {
    storage::Record rec;
    bool found = false;
    EXPECT_TRUE(life_->store().Get(storage::EncodeRecordKey("t", "s", key), &rec, &found).ok());
    return found;
  }

  // Acquires "k", jumps the wall clock two days forward (past the lease and
  // the default one-day retention), compacts (the TTL filter runs), and asks
  // again. Returns the second answer's outcome.
  v1::ReserveOutcome SecondReserveAfterForwardJump() {
    v1::Response first = Reserve("k");
    EXPECT_EQ(first.reserve().outcome(), v1::RESERVE_ACQUIRED);
    fake_.Advance(1000);
    fake_.SetWallMs(fake_.NowWallMs() + 48 * kHour);
    EXPECT_TRUE(life_->store().CompactAll().ok());
    return Reserve("k").reserve().outcome();
  }

  testutil::TempDir dir_;
  FakeClock fake_;
  std::unique_ptr<testutil::ExecutorLife> life_;
  std::shared_ptr<testutil::FakeSession> session_;
  std::map<uint64_t, v1::Response> answers_;
  uint64_t next_id_ = 1;
};

TEST_F(ClockJumpTest, ForwardJumpNeitherEndsALeaseNorLetsTheFilterDropIt) {
  SteadyWallClock clock(&fake_);
  Open(&clock);
  EXPECT_EQ(SecondReserveAfterForwardJump(), v1::RESERVE_IN_PROGRESS);
  EXPECT_TRUE(Present("k"));
  // The lease ends when its 10 s have passed on the steady clock, not before.
  fake_.Advance(kLeaseMs - 1000 - 1);
  EXPECT_EQ(Reserve("k").reserve().outcome(), v1::RESERVE_IN_PROGRESS);
  fake_.Advance(1);
  EXPECT_EQ(Reserve("k").reserve().outcome(), v1::RESERVE_ACQUIRED);
}

TEST_F(ClockJumpTest, BackwardJumpDoesNotStretchALease) {
  SteadyWallClock clock(&fake_);
  Open(&clock);
  ASSERT_EQ(Reserve("k").reserve().outcome(), v1::RESERVE_ACQUIRED);
  fake_.SetWallMs(fake_.NowWallMs() - kHour);
  fake_.Advance(kLeaseMs);
  EXPECT_EQ(Reserve("k").reserve().outcome(), v1::RESERVE_ACQUIRED);
}

TEST_F(ClockJumpTest, TimesOnTheWireStayOnTheServersScale) {
  SteadyWallClock clock(&fake_);
  Open(&clock);
  const uint64_t before = fake_.NowWallMs();
  fake_.SetWallMs(before + kHour);
  v1::Response r = Reserve("k");
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED);
  // Expiries are reported on the clock the server judges by, and the
  // relative field clients should use is exactly the lease.
  EXPECT_EQ(r.reserve().lease_expires_unix_ms(), before + kLeaseMs);
  EXPECT_EQ(r.reserve().lease_remaining_ms(), kLeaseMs);
}

// Negative control: judged on the raw wall clock, the same jump lets
// compaction drop the running lease's record and hands the key to a second
// holder while the first one's 10 s are not over.
TEST_F(ClockJumpTest, ControlOnTheRawWallClockTheJumpMakesTwoHolders) {
  Open(&fake_);
  v1::Response first = Reserve("k");
  ASSERT_EQ(first.reserve().outcome(), v1::RESERVE_ACQUIRED);
  fake_.Advance(1000);
  fake_.SetWallMs(fake_.NowWallMs() + 48 * kHour);
  ASSERT_TRUE(life_->store().CompactAll().ok());
  EXPECT_FALSE(Present("k"));
  EXPECT_EQ(Reserve("k").reserve().outcome(), v1::RESERVE_ACQUIRED);
}

TEST(SteadyWallClock, FollowsSteadyTimeNotWallJumps) {
  FakeClock fake;
  SteadyWallClock clock(&fake);
  const uint64_t start = fake.NowWallMs();
  EXPECT_EQ(clock.NowWallMs(), start);
  fake.SetWallMs(start - kHour);
  EXPECT_EQ(clock.NowWallMs(), start);
  fake.Advance(250);
  EXPECT_EQ(clock.NowWallMs(), start + 250);
  fake.SetWallMs(start + kHour);
  EXPECT_EQ(clock.NowWallMs(), start + 250);
  EXPECT_EQ(clock.NowSteady(), fake.NowSteady());
}

}  // namespace
}  // namespace idem::server
