// Waiting reserves, many connections on one key, pipelining and backpressure
// (PROTOCOL.md sections 1 and 2) over real sockets against the real idemd.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/daemon_fixture.h"

namespace idem::testutil {
namespace {

namespace v1 = idem::v1;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kAnswerBound{5'000};  // an answer that is due must arrive within this
constexpr milliseconds kQuiet{200};          // "has not answered (yet)" window

v1::Request StatsReq(uint64_t id) {
  v1::Request r;
  r.set_id(id);
  r.mutable_stats();
  return r;
}

// The next answer on `c`, or a Response carrying a "no answer" error.
v1::Response Next(Client& c, milliseconds timeout = kAnswerBound) {
  v1::Response r;
  if (!c.Receive(&r, timeout)) {
    r.Clear();
    r.mutable_error()->set_code(v1::ERROR_UNSPECIFIED);
    r.mutable_error()->set_message("test client: no answer within the bound");
  }
  return r;
}

// True when `c` gets no answer within `window`.
::testing::AssertionResult Silent(Client& c, milliseconds window = kQuiet) {
  v1::Response r;
  if (c.Receive(&r, window)) {
    return ::testing::AssertionFailure() << "unexpected answer: " << r.ShortDebugString();
  }
  return ::testing::AssertionSuccess();
}

// Indices of the clients whose sockets become readable within `timeout`
// (only meaningful before anything was received on them: the client buffers).
std::vector<size_t> Readable(const std::vector<Client*>& clients, milliseconds timeout) {
  std::vector<pollfd> fds;
  fds.reserve(clients.size());
  for (Client* c : clients) fds.push_back(pollfd{c->fd(), POLLIN, 0});
  std::vector<size_t> ready;
  if (poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) <= 0) return ready;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents != 0) ready.push_back(i);
  }
  return ready;
}

class DaemonWaitTest : public DaemonTest {
 protected:
  std::unique_ptr<Client> Connect() {
    auto c = std::make_unique<Client>();
    EXPECT_TRUE(c->Connect(daemon_.port()));
    return c;
  }

  std::vector<std::unique_ptr<Client>> ConnectMany(size_t n) {
    std::vector<std::unique_ptr<Client>> clients;
    for (size_t i = 0; i < n; ++i) clients.push_back(Connect());
    return clients;
  }

  // Polls Stats on client_ (which has nothing else in flight) until the
  // server holds exactly `n` waiters; bounded. Used to know the arrival
  // order of waiters sent on different connections.
  ::testing::AssertionResult WaitForWaiters(uint32_t n) {
    const auto deadline = Clock::now() + kAnswerBound;
    while (true) {
      const v1::Response r = client_.Call(StatsReq(next_id_++));
      if (!r.has_stats()) {
        return ::testing::AssertionFailure() << "Stats failed: " << r.ShortDebugString();
      }
      if (r.stats().waiters() == n) return ::testing::AssertionSuccess();
      if (Clock::now() > deadline) {
        return ::testing::AssertionFailure()
               << "the server holds " << r.stats().waiters() << " waiters, expected " << n;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
  }

  // client_ reserves (scope "s", `key`) and returns the token.
  uint64_t Hold(const std::string& key, uint32_t lease_ms = 60'000) {
    const v1::Response r = client_.Call(ReserveReq(next_id_++, "s", key, "", lease_ms));
    EXPECT_TRUE(r.has_reserve()) << r.ShortDebugString();
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
    EXPECT_GT(r.reserve().token(), 0u);
    return r.reserve().token();
  }

  // Sends a waiting Reserve for (scope "s", `key`) on `c`, then waits until
  // the server counts it (`waiters_after` in all).
  void SendWaiter(Client& c, uint64_t id, const std::string& key, uint32_t wait_ms,
                  uint32_t waiters_after) {
    ASSERT_TRUE(c.Send(ReserveReq(id, "s", key, "", 0, wait_ms)));
    ASSERT_TRUE(WaitForWaiters(waiters_after));
  }
};

// --- many connections on one key -------------------------------------------

TEST_F(DaemonWaitTest, TwoHundredConcurrentReservesOneAcquires) {
  constexpr size_t kClients = 200;
  auto clients = ConnectMany(kClients);
  std::vector<std::string> frames(kClients);
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->connected());
    ASSERT_TRUE(protocol::AppendFrame(&frames[i], ReserveReq(i + 1, "s", "hot", "fp")));
  }
  for (size_t i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i]->SendRaw(frames[i]));

  int acquired = 0;
  int in_progress = 0;
  for (size_t i = 0; i < kClients; ++i) {
    const v1::Response r = Next(*clients[i]);
    ASSERT_EQ(r.id(), i + 1) << r.ShortDebugString();
    ASSERT_TRUE(r.has_reserve()) << r.ShortDebugString();
    if (r.reserve().outcome() == v1::RESERVE_ACQUIRED) {
      ++acquired;
      EXPECT_GT(r.reserve().token(), 0u);
      EXPECT_EQ(r.reserve().attempt(), 1u);
    } else {
      EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS) << r.ShortDebugString();
      EXPECT_EQ(r.reserve().token(), 0u);
      EXPECT_GT(r.reserve().lease_remaining_ms(), 0u);
      ++in_progress;
    }
  }
  EXPECT_EQ(acquired, 1);
  EXPECT_EQ(in_progress, 199);
  const v1::Response l = client_.Call(LookupReq(next_id_++, "s", "hot"));
  EXPECT_EQ(l.lookup().state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(l.lookup().attempt(), 1u);
}

TEST_F(DaemonWaitTest, TwoHundredConcurrentWaitersAllGetTheCompletion) {
  constexpr size_t kClients = 200;
  auto clients = ConnectMany(kClients);
  std::vector<std::string> frames(kClients);
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->connected());
    ASSERT_TRUE(protocol::AppendFrame(
        &frames[i], ReserveReq(i + 1, "s", "hot", "fp", 60'000, /*wait_ms=*/20'000)));
  }
  for (size_t i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i]->SendRaw(frames[i]));

  // Exactly one is answered (ACQUIRED); everyone else is held.
  std::vector<Client*> raw;
  for (auto& c : clients) raw.push_back(c.get());
  const std::vector<size_t> first = Readable(raw, kAnswerBound);
  ASSERT_EQ(first.size(), 1u) << "connections answered at once: " << first.size();
  const size_t holder = first[0];
  const v1::Response acq = Next(*clients[holder]);
  ASSERT_EQ(acq.id(), holder + 1) << acq.ShortDebugString();
  ASSERT_EQ(acq.reserve().outcome(), v1::RESERVE_ACQUIRED) << acq.ShortDebugString();
  std::vector<Client*> others;
  for (size_t i = 0; i < kClients; ++i) {
    if (i != holder) others.push_back(clients[i].get());
  }
  EXPECT_TRUE(Readable(others, kQuiet).empty()) << "a waiter was answered before the holder acted";
  ASSERT_TRUE(WaitForWaiters(199));

  const v1::Response done = clients[holder]->Call(
      CompleteReq(1000, "s", "hot", acq.reserve().token(), 201, "{\"charge\":\"ch_9\"}"));
  ASSERT_EQ(done.complete().outcome(), v1::COMPLETE_OK) << done.ShortDebugString();

  int completed = 0;
  for (size_t i = 0; i < kClients; ++i) {
    if (i == holder) continue;
    const v1::Response r = Next(*clients[i]);
    ASSERT_EQ(r.id(), i + 1) << r.ShortDebugString();
    ASSERT_TRUE(r.has_reserve()) << r.ShortDebugString();
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
    EXPECT_EQ(r.reserve().token(), 0u);
    EXPECT_EQ(r.reserve().result().status(), 201);
    EXPECT_EQ(r.reserve().result().body(), "{\"charge\":\"ch_9\"}");
    if (r.reserve().outcome() == v1::RESERVE_COMPLETED) ++completed;
  }
  EXPECT_EQ(completed, 199);
  EXPECT_TRUE(WaitForWaiters(0));
  const v1::Response l = client_.Call(LookupReq(next_id_++, "s", "hot"));
  EXPECT_EQ(l.lookup().state(), v1::KEY_COMPLETED);
  EXPECT_EQ(l.lookup().attempt(), 1u);  // nobody else ever acquired
}

// --- what frees a lease hands it to exactly one waiter, in arrival order ----

TEST_F(DaemonWaitTest, ReleaseHandsTheLeaseToWaitersInArrivalOrder) {
  const uint64_t t0 = Hold("k");
  auto w1 = Connect();
  auto w2 = Connect();
  auto w3 = Connect();
  SendWaiter(*w1, 11, "k", 10'000, 1);
  SendWaiter(*w2, 22, "k", 10'000, 2);
  SendWaiter(*w3, 33, "k", 10'000, 3);
  EXPECT_TRUE(Silent(*w1, milliseconds(50)));

  v1::Response r = client_.Call(ReleaseReq(next_id_++, "s", "k", t0));
  ASSERT_EQ(r.release().outcome(), v1::RELEASE_OK) << r.ShortDebugString();
  r = Next(*w1);
  ASSERT_EQ(r.id(), 11u) << r.ShortDebugString();
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 2u);
  const uint64_t t1 = r.reserve().token();
  EXPECT_GT(t1, t0);
  EXPECT_TRUE(Silent(*w2));
  EXPECT_TRUE(Silent(*w3, milliseconds(10)));

  r = w1->Call(ReleaseReq(12, "s", "k", t1));
  ASSERT_EQ(r.release().outcome(), v1::RELEASE_OK) << r.ShortDebugString();
  r = Next(*w2);
  ASSERT_EQ(r.id(), 22u) << r.ShortDebugString();
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 3u);
  const uint64_t t2 = r.reserve().token();
  EXPECT_GT(t2, t1);
  EXPECT_TRUE(Silent(*w3));

  r = w2->Call(CompleteReq(23, "s", "k", t2, 200, "third time"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  r = Next(*w3);
  ASSERT_EQ(r.id(), 33u) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().result().status(), 200);
  EXPECT_EQ(r.reserve().result().body(), "third time");
  EXPECT_TRUE(WaitForWaiters(0));
}

TEST_F(DaemonWaitTest, LeaseExpiryHandsTheLeaseToTheFirstWaiterOnly) {
  const uint64_t t0 = Hold("k", /*lease_ms=*/500);
  auto w1 = Connect();
  auto w2 = Connect();
  SendWaiter(*w1, 1, "k", 10'000, 1);
  SendWaiter(*w2, 2, "k", 10'000, 2);

  v1::Response r = Next(*w1);
  ASSERT_EQ(r.id(), 1u) << r.ShortDebugString();
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 2u);
  const uint64_t t1 = r.reserve().token();
  EXPECT_GT(t1, t0);
  EXPECT_TRUE(Silent(*w2));  // keeps waiting for the new holder (default lease: 30 s)

  r = client_.Call(CompleteReq(next_id_++, "s", "k", t0, 200, "stale"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_LEASE_LOST) << r.ShortDebugString();
  EXPECT_TRUE(Silent(*w2, milliseconds(50)));

  r = w1->Call(CompleteReq(3, "s", "k", t1, 202, "took over"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  r = Next(*w2);
  ASSERT_EQ(r.id(), 2u) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().result().status(), 202);
  EXPECT_EQ(r.reserve().result().body(), "took over");
}

// The holder renews to a short lease while a waiter waits: the waiter gets the
// lease when that shorter lease expires, not only at its own deadline.
TEST_F(DaemonWaitTest, LeaseShortenedByRenewStillWakesTheWaiterAtExpiry) {
  const uint64_t t0 = Hold("k", /*lease_ms=*/60'000);
  auto w = Connect();
  SendWaiter(*w, 1, "k", /*wait_ms=*/20'000, 1);
  v1::Response r = client_.Call(RenewReq(next_id_++, "s", "k", t0, 300));
  ASSERT_EQ(r.renew().outcome(), v1::RENEW_OK) << r.ShortDebugString();
  EXPECT_LE(r.renew().lease_remaining_ms(), 300u);

  r = Next(*w);  // the lease ends ~300 ms from now; bounded at 5 s, far below wait_ms
  ASSERT_EQ(r.id(), 1u) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 2u);
  EXPECT_GT(r.reserve().token(), t0);
}

TEST_F(DaemonWaitTest, PurgeHandsTheKeyToTheFirstWaiter) {
  const uint64_t t0 = Hold("k");
  auto w1 = Connect();
  auto w2 = Connect();
  SendWaiter(*w1, 1, "k", 10'000, 1);
  SendWaiter(*w2, 2, "k", 10'000, 2);

  v1::Response r = client_.Call(PurgeReq(next_id_++, "s", "k"));
  ASSERT_TRUE(r.purge().existed()) << r.ShortDebugString();
  r = Next(*w1);
  ASSERT_EQ(r.id(), 1u) << r.ShortDebugString();
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 1u);  // a new record
  const uint64_t t1 = r.reserve().token();
  EXPECT_GT(t1, t0);
  EXPECT_TRUE(Silent(*w2));

  r = client_.Call(LookupReq(next_id_++, "s", "k"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(r.lookup().attempt(), 1u);
  r = w1->Call(ReleaseReq(3, "s", "k", t1));
  ASSERT_EQ(r.release().outcome(), v1::RELEASE_OK) << r.ShortDebugString();
  r = Next(*w2);
  ASSERT_EQ(r.id(), 2u) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 2u);
  EXPECT_GT(r.reserve().token(), t1);
}

TEST_F(DaemonWaitTest, DeadlineAnswersInProgress) {
  Hold("k", /*lease_ms=*/60'000);
  auto w = Connect();
  // Not SendWaiter: its Stats polling could outlast the 300 ms on a slow box.
  ASSERT_TRUE(w->Send(ReserveReq(7, "s", "k", "", 0, /*wait_ms=*/300)));
  const v1::Response r = Next(*w);
  ASSERT_EQ(r.id(), 7u) << r.ShortDebugString();
  ASSERT_TRUE(r.has_reserve()) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS);
  EXPECT_EQ(r.reserve().token(), 0u);
  EXPECT_EQ(r.reserve().attempt(), 1u);
  EXPECT_GT(r.reserve().lease_remaining_ms(), 0u);
  EXPECT_TRUE(WaitForWaiters(0));
  // The holder was not disturbed.
  const v1::Response l = client_.Call(LookupReq(next_id_++, "s", "k"));
  EXPECT_EQ(l.lookup().state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(l.lookup().attempt(), 1u);
}

TEST_F(DaemonWaitTest, ClosedWaiterDoesNotAcquire) {
  const uint64_t t0 = Hold("k");
  auto a = Connect();
  auto b = Connect();
  SendWaiter(*a, 1, "k", 6'000, 1);
  SendWaiter(*b, 2, "k", 6'000, 2);
  a->Close();
  EXPECT_TRUE(WaitForWaiters(1));  // the server forgot A's waiter

  v1::Response r = client_.Call(ReleaseReq(next_id_++, "s", "k", t0));
  ASSERT_EQ(r.release().outcome(), v1::RELEASE_OK) << r.ShortDebugString();
  r = Next(*b);
  ASSERT_EQ(r.id(), 2u) << r.ShortDebugString();
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().attempt(), 2u);  // A's dead connection never acquired
  EXPECT_GT(r.reserve().token(), t0);
  r = client_.Call(LookupReq(next_id_++, "s", "k"));
  EXPECT_EQ(r.lookup().state(), v1::KEY_IN_PROGRESS);
  EXPECT_EQ(r.lookup().attempt(), 2u);
}

TEST_F(DaemonWaitTest, ShutdownAnswersHeldWaitersWithTheKeyState) {
  Hold("k", /*lease_ms=*/60'000);
  auto w = Connect();
  SendWaiter(*w, 5, "k", /*wait_ms=*/20'000, 1);
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.Log();
  const v1::Response r = Next(*w);
  ASSERT_EQ(r.id(), 5u) << r.ShortDebugString();
  ASSERT_TRUE(r.has_reserve()) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS);
  EXPECT_EQ(r.reserve().token(), 0u);
}

// --- waiter limits -----------------------------------------------------------

class DaemonWaitPerKeyLimitTest : public DaemonWaitTest {
 protected:
  std::vector<std::string> Flags() override { return {"--max-waiters-per-key", "2"}; }
};

TEST_F(DaemonWaitPerKeyLimitTest, ThirdWaiterOnAKeyIsResourceExhausted) {
  const uint64_t t0 = Hold("k");
  Hold("other");
  auto w1 = Connect();
  auto w2 = Connect();
  auto w3 = Connect();
  SendWaiter(*w1, 1, "k", 10'000, 1);
  SendWaiter(*w2, 2, "k", 10'000, 2);

  v1::Response r = w3->Call(ReserveReq(3, "s", "k", "", 0, 10'000));
  EXPECT_EQ(r.id(), 3u);
  ASSERT_TRUE(r.has_error()) << r.ShortDebugString();
  EXPECT_EQ(r.error().code(), v1::ERROR_RESOURCE_EXHAUSTED) << r.ShortDebugString();
  EXPECT_FALSE(r.has_reserve());
  // Without wait_ms nothing is queued, so the limit does not apply.
  r = w3->Call(ReserveReq(4, "s", "k"));
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_IN_PROGRESS) << r.ShortDebugString();
  // The limit is per key: another key still takes a waiter.
  SendWaiter(*w3, 5, "other", 10'000, 3);

  r = client_.Call(CompleteReq(next_id_++, "s", "k", t0, 200, "ok"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  for (Client* w : {w1.get(), w2.get()}) {
    r = Next(*w);
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
    EXPECT_EQ(r.reserve().result().body(), "ok");
  }
  EXPECT_TRUE(Silent(*w3, milliseconds(50)));
  EXPECT_TRUE(WaitForWaiters(1));
}

class DaemonWaitGlobalLimitTest : public DaemonWaitTest {
 protected:
  // --max-waiters-per-key must not exceed --max-waiters (the daemon checks).
  std::vector<std::string> Flags() override {
    return {"--max-waiters", "3", "--max-waiters-per-key", "2"};
  }
};

TEST_F(DaemonWaitGlobalLimitTest, FourthWaiterAcrossKeysIsResourceExhausted) {
  const uint64_t ta = Hold("a");
  const uint64_t tb = Hold("b");
  const uint64_t tc = Hold("c");
  auto w1 = Connect();
  auto w2 = Connect();
  auto w3 = Connect();
  auto w4 = Connect();
  SendWaiter(*w1, 1, "a", 10'000, 1);
  SendWaiter(*w2, 2, "a", 10'000, 2);
  SendWaiter(*w3, 3, "b", 10'000, 3);

  v1::Response r = w4->Call(ReserveReq(4, "s", "c", "", 0, 10'000));
  EXPECT_EQ(r.id(), 4u);
  ASSERT_TRUE(r.has_error()) << r.ShortDebugString();
  EXPECT_EQ(r.error().code(), v1::ERROR_RESOURCE_EXHAUSTED) << r.ShortDebugString();

  // Serving one frees a slot.
  r = client_.Call(CompleteReq(next_id_++, "s", "b", tb, 200, "b"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  r = Next(*w3);
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
  SendWaiter(*w4, 5, "c", 10'000, 3);

  for (const auto& [key, token] : {std::pair<std::string, uint64_t>{"a", ta}, {"c", tc}}) {
    r = client_.Call(CompleteReq(next_id_++, "s", key, token, 200, key));
    ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  }
  for (Client* w : {w1.get(), w2.get(), w4.get()}) {
    r = Next(*w);
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
  }
  EXPECT_TRUE(WaitForWaiters(0));
}

// --- pipelining and backpressure --------------------------------------------

class DaemonPipelineTest : public DaemonWaitTest {};

TEST_F(DaemonPipelineTest, ThousandPipelinedRequestsAreEachAnsweredOnce) {
  constexpr uint64_t kRequests = 1000;
  auto key = [](uint64_t i) { return "k" + std::to_string(i); };
  std::string wire;
  for (uint64_t id = 1; id <= kRequests; ++id) {
    v1::Request req;
    switch (id % 4) {
      case 1: req = ReserveReq(id, "pipe", key(id), "", 60'000); break;
      case 2: req = LookupReq(id, "pipe", key(id - 1)); break;  // reserved just before
      case 3: req = PingReq(id, "payload-" + std::to_string(id)); break;
      default: req = LookupReq(id, "pipe", "never-" + std::to_string(id)); break;
    }
    ASSERT_TRUE(protocol::AppendFrame(&wire, req));
  }
  ASSERT_TRUE(client_.SendRaw(wire));

  std::map<uint64_t, v1::Response> answers;
  for (uint64_t n = 0; n < kRequests; ++n) {
    v1::Response r;
    ASSERT_TRUE(client_.Receive(&r, kAnswerBound)) << "got " << n << " answers";
    ASSERT_TRUE(r.id() >= 1 && r.id() <= kRequests) << r.ShortDebugString();
    ASSERT_TRUE(answers.emplace(r.id(), r).second) << "answered twice: " << r.ShortDebugString();
  }
  EXPECT_TRUE(Silent(client_, milliseconds(100)));  // nothing extra
  for (uint64_t id = 1; id <= kRequests; ++id) {
    const v1::Response& r = answers[id];
    ASSERT_FALSE(r.has_error()) << r.ShortDebugString();
    switch (id % 4) {
      case 1:
        ASSERT_TRUE(r.has_reserve()) << r.ShortDebugString();
        EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << id;
        EXPECT_EQ(r.reserve().attempt(), 1u) << id;
        EXPECT_GT(r.reserve().token(), 0u) << id;
        break;
      case 2:
        ASSERT_TRUE(r.has_lookup()) << r.ShortDebugString();
        EXPECT_EQ(r.lookup().state(), v1::KEY_IN_PROGRESS) << id;
        EXPECT_EQ(r.lookup().attempt(), 1u) << id;
        break;
      case 3:
        ASSERT_TRUE(r.has_ping()) << r.ShortDebugString();
        EXPECT_EQ(r.ping().payload(), "payload-" + std::to_string(id));
        break;
      default:
        ASSERT_TRUE(r.has_lookup()) << r.ShortDebugString();
        EXPECT_EQ(r.lookup().state(), v1::KEY_ABSENT) << id;
        break;
    }
  }
}

TEST_F(DaemonPipelineTest, WaitingReserveDoesNotHoldBackLaterAnswers) {
  const uint64_t t0 = Hold("held");
  auto c = Connect();
  std::string wire;
  ASSERT_TRUE(protocol::AppendFrame(&wire, ReserveReq(1, "s", "held", "", 0, 5'000)));
  ASSERT_TRUE(protocol::AppendFrame(&wire, PingReq(2, "pong?")));
  ASSERT_TRUE(protocol::AppendFrame(&wire, ReserveReq(3, "s", "free")));
  ASSERT_TRUE(c->SendRaw(wire));

  std::map<uint64_t, v1::Response> early;
  for (int n = 0; n < 2; ++n) {
    const v1::Response r = Next(*c);
    ASSERT_NE(r.id(), 1u) << "the waiting Reserve was answered first: " << r.ShortDebugString();
    early.emplace(r.id(), r);
  }
  ASSERT_EQ(early.count(2), 1u);
  EXPECT_EQ(early[2].ping().payload(), "pong?");
  ASSERT_EQ(early.count(3), 1u);
  EXPECT_EQ(early[3].reserve().outcome(), v1::RESERVE_ACQUIRED) << early[3].ShortDebugString();
  EXPECT_TRUE(WaitForWaiters(1));

  v1::Response r = client_.Call(CompleteReq(next_id_++, "s", "held", t0, 200, "done"));
  ASSERT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.ShortDebugString();
  r = Next(*c);
  ASSERT_EQ(r.id(), 1u) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << r.ShortDebugString();
  EXPECT_EQ(r.reserve().result().body(), "done");
}

class DaemonPipelineBackpressureTest : public DaemonWaitTest {
 protected:
  std::vector<std::string> Flags() override { return {"--max-inflight", "4"}; }
};

TEST_F(DaemonPipelineBackpressureTest, FullConnectionStopsReadingUntilAnswersDrain) {
  Hold("held", /*lease_ms=*/60'000);
  auto c = Connect();
  std::string wire;
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_TRUE(protocol::AppendFrame(&wire, ReserveReq(id, "s", "held", "", 0, 3'000)));
  }
  ASSERT_TRUE(protocol::AppendFrame(&wire, PingReq(5, "after")));
  ASSERT_TRUE(c->SendRaw(wire));

  ASSERT_TRUE(WaitForWaiters(4));
  EXPECT_TRUE(Silent(*c, milliseconds(300)));  // the Ping is not even read
  // Other connections are not affected.
  const v1::Response other = client_.Call(PingReq(next_id_++, "x"));
  EXPECT_EQ(other.ping().payload(), "x") << other.ShortDebugString();

  std::map<uint64_t, v1::Response> answers;
  for (int n = 0; n < 5; ++n) {
    const v1::Response r = Next(*c);  // the waiters time out after 3 s
    ASSERT_GE(r.id(), 1u) << r.ShortDebugString();
    ASSERT_LE(r.id(), 5u) << r.ShortDebugString();
    if (n == 0) {
      EXPECT_NE(r.id(), 5u) << "the Ping was answered before any waiter";
    }
    ASSERT_TRUE(answers.emplace(r.id(), r).second) << "answered twice: " << r.ShortDebugString();
  }
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_FALSE(answers[id].has_error()) << answers[id].ShortDebugString();
    EXPECT_EQ(answers[id].reserve().outcome(), v1::RESERVE_IN_PROGRESS)
        << answers[id].ShortDebugString();
  }
  ASSERT_FALSE(answers[5].has_error()) << answers[5].ShortDebugString();
  EXPECT_EQ(answers[5].ping().payload(), "after");
  // The connection still serves.
  const v1::Response again = c->Call(PingReq(6, "again"));
  EXPECT_EQ(again.id(), 6u);
  EXPECT_EQ(again.ping().payload(), "again");
}

}  // namespace
}  // namespace idem::testutil
