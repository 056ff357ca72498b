// Power loss (PROTOCOL.md section 2 "Durability"): the real Executor, with its
// group commit, over a Store on a file system that drops everything not yet
// synced when the power is cut (tests/testutil/power_cut_fs.h).
//
// Each cycle drives a payment flow (Reserve, then Complete with the granted
// token; some Reserves replayed) from a fake client session, over many io-loop
// turns so that many group-commit batches are written and synced, sometimes
// through a clean restart and with flushes and compactions in between. At a
// seeded random instant the file system is frozen (the cut): inside the delivery
// of an acknowledgement, between two requests, or inside the n-th file system
// operation of any thread (an open, a flush, a close...). Nothing written or
// synced after it becomes durable, and the client hears nothing more. The
// store is then closed, the cut applied to the files, and a fresh store opened
// on them. The oracle: every answer the client received survives --
//   * an ACQUIRED key is present, with the token the client was given;
//   * a COMPLETE_OK, or a COMPLETED replay, is there with the exact result;
//   * a key answered IN_PROGRESS is present;
//   * tokens granted after the restart are above every token the client saw.
//
// The negative controls run the same cycles with an executor that acknowledges
// before the WAL sync (Options::unsafe_ack_before_sync) and with
// --durability=async; the oracle must catch a lost acknowledged change, which
// proves the test can see one.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/session.h"
#include "storage/clock.h"
#include "storage/key_codec.h"
#include "storage/store.h"
#include "storage/token_source.h"
#include "tests/testutil/executor_harness.h"
#include "tests/testutil/power_cut_fs.h"
#include "tests/testutil/temp_dir.h"

namespace idem::server {
namespace {

namespace v1 = idem::v1;
using std::chrono::milliseconds;
using testutil::PowerCutFs;
using testutil::PowerCutStats;

constexpr char kTenant[] = "tenant";
constexpr char kScope[] = "payments";
constexpr int kCycles = 20;         // the real test
constexpr int kControlCycles = 10;  // each negative control
constexpr uint64_t kBaseSeed = 0x1de3'0000;
constexpr auto kCycleDeadline = std::chrono::seconds(20);
// An fs-op cut comes within the first kMaxFsOpCut mutations (a cycle makes
// some 40-300 before the other modes would strike: an append and a sync per
// batch, a few dozen per open, flush or close).
constexpr uint64_t kMaxFsOpCut = 200;
constexpr uint64_t kMaxEvents = 2000;

using Life = testutil::ExecutorLife;

// What the client was told before the cut.
struct Acknowledged {
  std::map<std::string, uint64_t> acquired;                          // key -> token
  std::map<std::string, std::pair<int32_t, std::string>> completed;  // key -> result
  std::set<std::string> in_progress;  // answered IN_PROGRESS to a replay
  uint64_t max_token = 0;
  uint64_t change_acks = 0;  // ACQUIRED and COMPLETE_OK answers
};

enum class CutMode {
  kAtAck,    // inside the delivery of the n-th ACQUIRED/COMPLETE_OK answer
  kAtEvent,  // between two requests handed to the executor (a sync may be in flight)
  kAtFsOp,   // right after the n-th write/sync/rename/... of any thread, from
             // the first open on: inside opens, flushes, compactions, closes
};
const char* ModeName(CutMode mode) {
  switch (mode) {
    case CutMode::kAtAck: return "at-ack";
    case CutMode::kAtEvent: return "at-event";
    case CutMode::kAtFsOp: return "at-fs-op";
  }
  return "?";
}

struct CycleResult {
  uint64_t checked = 0;  // acknowledged facts checked after the cut
  std::vector<std::string> violations;
  PowerCutStats cut;
  uint64_t requests = 0;
  uint64_t batches = 0;
  uint64_t change_acks = 0;
  uint64_t unacked_changes_lost = 0;  // in flight at the cut, and gone: the cut bit
  uint64_t fs_mutations = 0;          // through the power-cut file system, to the cut
  int lives = 0;
  CutMode mode = CutMode::kAtAck;
};

// The client: a payment flow with replays. Runs one cycle.
class Cycle {
 public:
  Cycle(std::string path, uint64_t seed, Executor::Options options, bool fs_op_cuts)
      : path_(std::move(path)),
        seed_(seed),
        rng_(seed),
        options_(std::move(options)),
        fs_op_cuts_(fs_op_cuts) {}

  CycleResult Run() {
    CycleResult result;
    result.mode = static_cast<CutMode>(rng_() % (fs_op_cuts_ ? 3 : 2));
    mode_ = result.mode;
    switch (mode_) {
      case CutMode::kAtAck: cut_at_ = 1 + rng_() % 150; break;
      case CutMode::kAtEvent: cut_at_ = 1 + rng_() % 400; break;
      case CutMode::kAtFsOp: cut_at_ = 1 + rng_() % kMaxFsOpCut; break;
    }
    result.lives = 1 + static_cast<int>(rng_() % 2);
    deadline_ = std::chrono::steady_clock::now() + kCycleDeadline;

    auto fs = std::make_shared<PowerCutFs>();
    std::unique_ptr<rocksdb::Env> env = testutil::NewPowerCutEnv(fs);
    fs_ = fs.get();
    if (mode_ == CutMode::kAtFsOp) fs->FreezeAfter(cut_at_);
    session_ = std::make_shared<testutil::FakeSession>(
        kTenant, [this](const v1::Response& r) { OnAnswer(r); });

    for (int life = 1; life <= result.lives && !HasFatalFailure(); ++life) {
      Life l(path_, env.get(), &clock_, options_);
      if (!l.status().ok()) {
        ADD_FAILURE() << "seed " << seed_ << ": opening: " << l.status().ToString();
        return result;
      }
      life_ = &l;
      if (life < result.lives) {
        // An earlier life ends with a clean shutdown (unless the cut comes
        // first); the files it leaves are the durable base of the next one.
        const uint64_t target = acked_.change_acks + 20 + rng_() % 60;
        Drive([&] { return acked_.change_acks >= target; });
        if (!PowerIsOff()) WaitForAnswers();
        if (!PowerIsOff()) l.Drain();
      } else {
        Drive([this] { return PowerIsOff(); });
      }
      result.batches += l.metrics().batch_records().count();
      life_ = nullptr;
      if (PowerIsOff()) {
        result.lives = life;
        break;
      }
    }
    result.requests = next_id_ - 1;
    result.change_acks = acked_.change_acks;
    if (!PowerIsOff()) {
      ADD_FAILURE() << "seed " << seed_ << ": the cut never happened";
      return result;
    }
    // The Life is gone (the store closed; nothing after the cut became
    // durable): apply the cut to the files, then look with a plain Env.
    result.fs_mutations = fs->mutations();
    rocksdb::IOStatus cs = fs->PowerCut(&result.cut);
    EXPECT_TRUE(cs.ok()) << cs.ToString();
    fs_ = nullptr;
    Check(&result);
    return result;
  }

 private:
  struct Pending {
    v1::Request::OpCase op;
    std::string key;
  };
  struct Payment {
    int32_t status = 0;
    std::string body;
  };

  static bool HasFatalFailure() { return ::testing::Test::HasFatalFailure(); }

  void Cut() { fs_->Freeze(); }
  // Whichever way the cut came (this thread, or the file system's own count).
  bool PowerIsOff() const { return fs_->frozen(); }

  // Runs io turns until `stop()`: each turn hands the executor a burst of
  // requests (what one read of the sockets brings), then runs the io loop's
  // ready handlers (the batch's Flush, a finished sync's answers).
  template <typename Stop>
  void Drive(Stop stop) {
    while (!PowerIsOff() && !stop()) {
      if (std::chrono::steady_clock::now() > deadline_) {
        ADD_FAILURE() << "seed " << seed_ << ": no progress before the deadline";
        return;
      }
      IssueBurst();
      if (PowerIsOff()) return;
      life_->io().poll();
      if (!PowerIsOff() && rng_() % 40 == 0) {
        // A flush and compaction now and then: SSTs, a new MANIFEST and WAL,
        // deleted WALs, all subject to the cut later.
        Status s = life_->store().CompactAll();
        EXPECT_TRUE(s.ok()) << s.ToString();
      }
      // Let syncs catch up when much is in flight, as a client would.
      while (!PowerIsOff() && pending_.size() > 96) life_->io().run_one_for(milliseconds(20));
    }
  }

  void WaitForAnswers() {
    while (!PowerIsOff() && !pending_.empty() && std::chrono::steady_clock::now() < deadline_) {
      life_->io().run_one_for(milliseconds(20));
    }
    EXPECT_TRUE(PowerIsOff() || pending_.empty()) << "seed " << seed_ << ": answers missing";
  }

  void IssueBurst() {
    const int n = 1 + static_cast<int>(rng_() % 24);
    for (int i = 0; i < n && !PowerIsOff(); ++i) {
      const uint64_t r = rng_() % 100;
      if (!to_complete_.empty() && r < 45) {
        const size_t at = rng_() % to_complete_.size();
        std::string key = std::move(to_complete_[at]);
        to_complete_[at] = std::move(to_complete_.back());
        to_complete_.pop_back();
        SendComplete(key);
      } else if (!keys_.empty() && r < 55) {
        SendReserve(keys_[rng_() % keys_.size()]);  // a replay
      } else {
        std::string key = "k" + std::to_string(keys_.size());
        Payment& p = payments_[key];
        p.status = 200 + static_cast<int32_t>(rng_() % 300);
        const size_t len = rng_() % 8 == 0 ? 4096 + rng_() % 16384 : rng_() % 512;
        p.body.resize(len);
        for (char& c : p.body) c = static_cast<char>(rng_());
        keys_.push_back(key);
        SendReserve(key);
      }
      ++events_;
      if (mode_ == CutMode::kAtEvent && events_ == cut_at_) Cut();
      // Should the file system's count not come (a quiet run), cut anyway.
      if (mode_ == CutMode::kAtFsOp && events_ == kMaxEvents) Cut();
    }
  }

  void SendReserve(const std::string& key) {
    v1::Request req;
    req.set_id(next_id_++);
    v1::Reserve* r = req.mutable_reserve();
    r->set_scope(kScope);
    r->set_key(key);
    r->set_fingerprint("fp-" + key);
    Send(req, key);
  }

  void SendComplete(const std::string& key) {
    v1::Request req;
    req.set_id(next_id_++);
    v1::Complete* c = req.mutable_complete();
    c->set_scope(kScope);
    c->set_key(key);
    c->set_token(acked_.acquired.at(key));
    c->mutable_result()->set_status(payments_[key].status);
    c->mutable_result()->set_body(payments_[key].body);
    Send(req, key);
  }

  void Send(const v1::Request& req, const std::string& key) {
    pending_[req.id()] = Pending{req.op_case(), key};
    sent_[key].insert(req.op_case());
    life_->executor().Handle(session_, req, std::chrono::steady_clock::now());
  }

  // Every answer that reaches the client before the cut is acknowledged.
  void OnAnswer(const v1::Response& resp) {
    if (PowerIsOff()) return;  // the power is off: this answer never left the machine
    auto it = pending_.find(resp.id());
    ASSERT_NE(it, pending_.end()) << "answer to an unknown request " << resp.id();
    const Pending p = it->second;
    pending_.erase(it);
    ASSERT_FALSE(resp.has_error())
        << "seed " << seed_ << " key " << p.key << ": " << resp.error().message();
    bool change = false;
    if (p.op == v1::Request::kReserve) {
      const v1::ReserveReply& r = resp.reserve();
      switch (r.outcome()) {
        case v1::RESERVE_ACQUIRED:
          ASSERT_EQ(acked_.acquired.count(p.key), 0u) << "acquired twice: " << p.key;
          acked_.acquired[p.key] = r.token();
          acked_.max_token = std::max(acked_.max_token, r.token());
          to_complete_.push_back(p.key);
          change = true;
          break;
        case v1::RESERVE_IN_PROGRESS: acked_.in_progress.insert(p.key); break;
        case v1::RESERVE_COMPLETED:
          acked_.completed[p.key] = {r.result().status(), r.result().body()};
          break;
        default: FAIL() << "unexpected reserve outcome " << r.outcome() << " for " << p.key;
      }
    } else {
      const v1::CompleteReply& c = resp.complete();
      ASSERT_EQ(c.outcome(), v1::COMPLETE_OK) << p.key;
      ASSERT_EQ(c.result().body(), payments_[p.key].body) << p.key;
      acked_.completed[p.key] = {c.result().status(), c.result().body()};
      change = true;
    }
    if (change && ++acked_.change_acks == cut_at_ && mode_ == CutMode::kAtAck) Cut();
  }

  // After the cut: the oracle.
  void Check(CycleResult* result) {
    auto& v = result->violations;
    auto violation = [&](const std::string& what) {
      v.push_back("seed " + std::to_string(seed_) + ": " + what);
    };
    // A fresh daemon over the same files, with the plain Env.
    Life l(path_, nullptr, &clock_, Executor::Options{});
    if (!l.status().ok()) {
      violation("the store does not open after the cut: " + l.status().ToString());
      return;
    }
    auto get = [&](const std::string& key, storage::Record* rec) {
      bool found = false;
      Status st = l.store().Get(storage::EncodeRecordKey(kTenant, kScope, key), rec, &found);
      EXPECT_TRUE(st.ok()) << st.ToString();
      return found;
    };
    for (const auto& [key, token] : acked_.acquired) {
      storage::Record rec;
      if (!get(key, &rec)) {
        violation("acknowledged ACQUIRED " + key + " is absent");
      } else if (rec.token != token) {
        violation("acknowledged ACQUIRED " + key + " has token " + std::to_string(rec.token) +
                  ", the client holds " + std::to_string(token));
      }
    }
    for (const auto& [key, res] : acked_.completed) {
      storage::Record rec;
      if (!get(key, &rec)) {
        violation("acknowledged completion of " + key + " is absent");
      } else if (!rec.completed) {
        violation("acknowledged completion of " + key + " is not completed");
      } else if (rec.status != res.first || rec.body != res.second) {
        violation("acknowledged completion of " + key + " has another result");
      }
    }
    for (const std::string& key : acked_.in_progress) {
      storage::Record rec;
      if (!get(key, &rec)) violation("key " + key + " answered IN_PROGRESS is absent");
    }
    result->checked =
        acked_.acquired.size() + acked_.completed.size() + acked_.in_progress.size() + 1;
    // How much in-flight work the cut destroyed (not a violation: never acknowledged).
    for (const auto& [key, ops] : sent_) {
      storage::Record rec;
      const bool found = get(key, &rec);
      if (ops.count(v1::Request::kReserve) && !acked_.acquired.count(key) && !found) {
        ++result->unacked_changes_lost;
      }
      if (ops.count(v1::Request::kComplete) && !acked_.completed.count(key) &&
          !(found && rec.completed)) {
        ++result->unacked_changes_lost;
      }
    }

    // Tokens: the fresh daemon grants above every token seen, and a surviving
    // lease can still be completed with the client's token.
    std::map<uint64_t, v1::Response> answers;
    auto session = std::make_shared<testutil::FakeSession>(
        kTenant, [&answers](const v1::Response& r) { answers.emplace(r.id(), r); });
    auto call = [&](v1::Request req) -> v1::Response {
      l.executor().Handle(session, req, std::chrono::steady_clock::now());
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!answers.count(req.id()) && std::chrono::steady_clock::now() < deadline) {
        l.io().run_one_for(milliseconds(20));
      }
      EXPECT_TRUE(answers.count(req.id())) << "no answer after the restart";
      return answers[req.id()];
    };
    v1::Request req;
    req.set_id(1);
    req.mutable_reserve()->set_scope(kScope);
    req.mutable_reserve()->set_key("after-the-cut");
    const v1::Response fresh = call(req);
    if (fresh.reserve().outcome() != v1::RESERVE_ACQUIRED) {
      violation("a fresh key is not ACQUIRED after the cut");
    } else if (fresh.reserve().token() <= acked_.max_token) {
      violation("token " + std::to_string(fresh.reserve().token()) +
                " after the cut is not above the acknowledged " + std::to_string(acked_.max_token));
    }
    for (const auto& [key, token] : acked_.acquired) {
      if (acked_.completed.count(key)) continue;
      storage::Record rec;
      if (!get(key, &rec) || rec.completed || rec.token != token) continue;
      req.Clear();
      req.set_id(2);
      v1::Complete* c = req.mutable_complete();
      c->set_scope(kScope);
      c->set_key(key);
      c->set_token(token);
      c->mutable_result()->set_body(payments_[key].body);
      const v1::Response done = call(req);
      if (done.complete().outcome() != v1::COMPLETE_OK) {
        violation("the acknowledged lease on " + key + " cannot be completed after the cut");
      }
      break;  // one is enough
    }
    l.Drain();
  }

  const std::string path_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  const Executor::Options options_;
  const bool fs_op_cuts_;
  FakeClock clock_;  // still: no lease or retention ends during a cycle
  std::chrono::steady_clock::time_point deadline_;

  PowerCutFs* fs_ = nullptr;
  Life* life_ = nullptr;
  std::shared_ptr<testutil::FakeSession> session_;
  CutMode mode_ = CutMode::kAtAck;
  uint64_t cut_at_ = 0;
  uint64_t events_ = 0;

  uint64_t next_id_ = 1;
  std::vector<std::string> keys_;
  std::map<std::string, Payment> payments_;
  std::map<std::string, std::set<v1::Request::OpCase>> sent_;
  std::map<uint64_t, Pending> pending_;
  std::vector<std::string> to_complete_;  // acquired, Complete not yet sent
  Acknowledged acked_;
};

struct Totals {
  int cycles = 0;
  int cycles_with_loss = 0;
  int ack_mode_cycles = 0;
  int ack_mode_cycles_with_loss = 0;
  uint64_t checked = 0;
  uint64_t change_acks = 0;
  uint64_t requests = 0;
  uint64_t batches = 0;
  uint64_t bytes_dropped = 0;
  uint64_t files_deleted = 0;
  uint64_t renames_undone = 0;
  uint64_t unacked_changes_lost = 0;
  std::vector<std::string> violations;
};

// `fs_op_cuts`: also cut inside file system operations. The negative controls
// leave those out: such a cut lands inside the batch's write or sync itself,
// before any early answer could be heard, so it cannot show that answer lost.
Totals RunCycles(const std::string& label, const Executor::Options& options, int cycles,
                 bool fs_op_cuts) {
  testutil::TempDir dir;
  Totals t;
  for (int i = 0; i < cycles && !::testing::Test::HasFatalFailure(); ++i) {
    const uint64_t seed = kBaseSeed + static_cast<uint64_t>(i);
    Cycle cycle(dir.Sub("cycle-" + std::to_string(i)), seed, options, fs_op_cuts);
    const CycleResult r = cycle.Run();
    ++t.cycles;
    t.checked += r.checked;
    t.change_acks += r.change_acks;
    t.requests += r.requests;
    t.batches += r.batches;
    t.bytes_dropped += r.cut.bytes_dropped;
    t.files_deleted += r.cut.files_deleted;
    t.renames_undone += r.cut.renames_undone;
    t.unacked_changes_lost += r.unacked_changes_lost;
    if (r.mode == CutMode::kAtAck) ++t.ack_mode_cycles;
    if (!r.violations.empty()) {
      ++t.cycles_with_loss;
      if (r.mode == CutMode::kAtAck) ++t.ack_mode_cycles_with_loss;
    }
    t.violations.insert(t.violations.end(), r.violations.begin(), r.violations.end());
    std::printf(
        "[%s] cycle %2d seed %#llx: %-8s cut after %llu fs ops, %d lives, %llu requests, "
        "%llu batches, %llu acks, %llu facts checked, cut dropped %llu bytes/%llu files/%llu "
        "renames, %llu unacked changes lost, %zu violations\n",
        label.c_str(), i, static_cast<unsigned long long>(seed), ModeName(r.mode),
        static_cast<unsigned long long>(r.fs_mutations), r.lives,
        static_cast<unsigned long long>(r.requests), static_cast<unsigned long long>(r.batches),
        static_cast<unsigned long long>(r.change_acks), static_cast<unsigned long long>(r.checked),
        static_cast<unsigned long long>(r.cut.bytes_dropped),
        static_cast<unsigned long long>(r.cut.files_deleted),
        static_cast<unsigned long long>(r.cut.renames_undone),
        static_cast<unsigned long long>(r.unacked_changes_lost), r.violations.size());
  }
  std::printf(
      "[%s] %d cycles, %llu requests, %llu batches, %llu acknowledged changes, %llu "
      "acknowledged facts checked, %d cycles lost an acknowledged change (%d of %d cut at an "
      "ack); the cuts dropped %llu bytes, %llu files, undid %llu renames, lost %llu unacked "
      "changes\n",
      label.c_str(), t.cycles, static_cast<unsigned long long>(t.requests),
      static_cast<unsigned long long>(t.batches), static_cast<unsigned long long>(t.change_acks),
      static_cast<unsigned long long>(t.checked), t.cycles_with_loss, t.ack_mode_cycles_with_loss,
      t.ack_mode_cycles, static_cast<unsigned long long>(t.bytes_dropped),
      static_cast<unsigned long long>(t.files_deleted),
      static_cast<unsigned long long>(t.renames_undone),
      static_cast<unsigned long long>(t.unacked_changes_lost));
  std::fflush(stdout);
  ::testing::Test::RecordProperty("cycles", t.cycles);
  ::testing::Test::RecordProperty("acknowledged_facts_checked", std::to_string(t.checked));
  ::testing::Test::RecordProperty("acknowledged_changes", std::to_string(t.change_acks));
  ::testing::Test::RecordProperty("cycles_with_lost_ack", t.cycles_with_loss);
  return t;
}

// The model itself, on plain files: what a cut keeps and what it drops.
class PowerCutFsTest : public ::testing::Test {
 protected:
  PowerCutFsTest() : fs_(std::make_shared<PowerCutFs>()) {}

  std::unique_ptr<rocksdb::FSWritableFile> Create(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    EXPECT_TRUE(fs_->NewWritableFile(dir_.Sub(name), rocksdb::FileOptions(), &f, nullptr).ok());
    return f;
  }
  static void Append(rocksdb::FSWritableFile* f, const std::string& data) {
    EXPECT_TRUE(f->Append(data, rocksdb::IOOptions(), nullptr).ok());
  }
  static void Sync(rocksdb::FSWritableFile* f) {
    EXPECT_TRUE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  }
  static void Close(rocksdb::FSWritableFile* f) {
    EXPECT_TRUE(f->Close(rocksdb::IOOptions(), nullptr).ok());
  }
  // A file that is durable: written, synced, and its directory synced.
  void Durable(const std::string& name, const std::string& data) {
    auto f = Create(name);
    Append(f.get(), data);
    Sync(f.get());
    Close(f.get());
    SyncDir();
  }
  void SyncDir() {
    std::unique_ptr<rocksdb::FSDirectory> d;
    ASSERT_TRUE(fs_->NewDirectory(dir_.path(), rocksdb::IOOptions(), &d, nullptr).ok());
    ASSERT_TRUE(d->Fsync(rocksdb::IOOptions(), nullptr).ok());
  }
  void Rename(const std::string& from, const std::string& to) {
    ASSERT_TRUE(fs_->RenameFile(dir_.Sub(from), dir_.Sub(to), rocksdb::IOOptions(), nullptr).ok());
  }
  // The contents of `name`, or "<absent>".
  std::string Read(const std::string& name) {
    std::string data;
    if (!rocksdb::ReadFileToString(fs_->target(), dir_.Sub(name), &data).ok()) return "<absent>";
    return data;
  }

  testutil::TempDir dir_;
  std::shared_ptr<PowerCutFs> fs_;
};

TEST_F(PowerCutFsTest, KeepsTheSyncedPrefixAndDirectoryEntries) {
  Durable("CURRENT", "MANIFEST-1\n");
  Durable("old-name", "kept");
  // Renamed, then the directory synced: kept.
  Durable("IDENTITY.tmp", "id");
  Rename("IDENTITY.tmp", "IDENTITY");
  // Synced, then more appended: the tail goes.
  auto wal = Create("wal");
  Append(wal.get(), "synced|");
  Sync(wal.get());
  Append(wal.get(), "unsynced");
  Close(wal.get());
  // Never synced, though its directory entry was: gone.
  auto never = Create("never");
  Append(never.get(), "data");
  SyncDir();
  Close(never.get());

  // After the last directory sync:
  // synced, but its directory entry is not durable: gone.
  auto fresh = Create("fresh");
  Append(fresh.get(), "data");
  Sync(fresh.get());
  Close(fresh.get());
  // CURRENT's way: a synced temp file renamed over a durable file, no
  // directory sync after: the old contents come back, the temp file never was.
  auto tmp = Create("CURRENT.dbtmp");
  Append(tmp.get(), "MANIFEST-2\n");
  Sync(tmp.get());
  Close(tmp.get());
  Rename("CURRENT.dbtmp", "CURRENT");
  // A durable file renamed: back under its old name.
  Rename("old-name", "new-name");

  PowerCutStats stats;
  ASSERT_TRUE(fs_->PowerCut(&stats).ok());
  EXPECT_EQ(Read("wal"), "synced|");
  EXPECT_EQ(Read("never"), "<absent>");
  EXPECT_EQ(Read("fresh"), "<absent>");
  EXPECT_EQ(Read("CURRENT"), "MANIFEST-1\n");
  EXPECT_EQ(Read("CURRENT.dbtmp"), "<absent>");
  EXPECT_EQ(Read("old-name"), "kept");
  EXPECT_EQ(Read("new-name"), "<absent>");
  EXPECT_EQ(Read("IDENTITY"), "id");
  EXPECT_EQ(Read("IDENTITY.tmp"), "<absent>");
  EXPECT_EQ(stats.bytes_dropped, std::string("unsynced").size() + std::string("data").size());
  EXPECT_EQ(stats.files_deleted, 2u);  // never, fresh
  EXPECT_EQ(stats.renames_undone, 2u);
}

TEST_F(PowerCutFsTest, NothingAfterTheFreezeBecomesDurable) {
  auto f = Create("log");
  SyncDir();
  Append(f.get(), "before|");
  Sync(f.get());
  Durable("victim", "still here");
  Durable("CURRENT", "MANIFEST-1\n");
  fs_->Freeze();
  // The process still sees everything it does...
  Append(f.get(), "after");
  Sync(f.get());
  Close(f.get());
  auto late = Create("late");
  Append(late.get(), "x");
  Sync(late.get());
  Close(late.get());
  auto tmp = Create("CURRENT.dbtmp");
  Append(tmp.get(), "MANIFEST-2\n");
  Sync(tmp.get());
  Close(tmp.get());
  Rename("CURRENT.dbtmp", "CURRENT");
  SyncDir();
  EXPECT_TRUE(fs_->DeleteFile(dir_.Sub("victim"), rocksdb::IOOptions(), nullptr).ok());
  Rename("log", "moved");
  EXPECT_EQ(Read("late"), "x");
  EXPECT_EQ(Read("moved"), "before|after");
  EXPECT_EQ(Read("CURRENT"), "MANIFEST-2\n");

  // ... and none of it survives the cut.
  ASSERT_TRUE(fs_->PowerCut().ok());
  EXPECT_EQ(Read("log"), "before|");
  EXPECT_EQ(Read("moved"), "<absent>");
  EXPECT_EQ(Read("late"), "<absent>");
  EXPECT_EQ(Read("victim"), "still here");
  EXPECT_EQ(Read("CURRENT"), "MANIFEST-1\n");
  EXPECT_EQ(Read("CURRENT.dbtmp"), "<absent>");
}

TEST(PowerLossTest, EveryAcknowledgedChangeSurvivesACut) {
  const Totals t = RunCycles("sync", Executor::Options{}, kCycles, /*fs_op_cuts=*/true);
  EXPECT_EQ(t.cycles, kCycles);
  for (const std::string& v : t.violations) ADD_FAILURE() << v;
  // Not vacuous: the cycles acknowledged work, and the cuts destroyed some.
  EXPECT_GT(t.change_acks, static_cast<uint64_t>(kCycles) * 10);
  EXPECT_GT(t.batches, static_cast<uint64_t>(kCycles) * 2);
  EXPECT_GT(t.bytes_dropped, 0u);
}

// The negative control: acknowledging before the sync must be caught.
TEST(PowerLossTest, AcknowledgingBeforeTheSyncIsCaught) {
  Executor::Options options;
  options.unsafe_ack_before_sync = true;
  const Totals t =
      RunCycles("unsafe-ack-before-sync", options, kControlCycles, /*fs_op_cuts=*/false);
  EXPECT_EQ(t.cycles, kControlCycles);
  EXPECT_GT(t.cycles_with_loss, 0) << "the power-cut model drops too little to see a loss";
  // A cut inside the delivery of an acknowledgement lands before its batch's
  // sync has even started: that batch is always lost.
  EXPECT_EQ(t.ack_mode_cycles_with_loss, t.ack_mode_cycles);
  if (!t.violations.empty()) std::printf("e.g. %s\n", t.violations.front().c_str());
}

// PROTOCOL.md: --durability=async survives a killed process, not a power loss.
TEST(PowerLossTest, AsyncDurabilityIsNotPowerLossSafe) {
  Executor::Options options;
  options.durability = Durability::kAsync;
  const Totals t = RunCycles("async", options, kControlCycles, /*fs_op_cuts=*/false);
  EXPECT_GT(t.cycles_with_loss, 0);
  EXPECT_EQ(t.ack_mode_cycles_with_loss, t.ack_mode_cycles);
}

}  // namespace
}  // namespace idem::server
