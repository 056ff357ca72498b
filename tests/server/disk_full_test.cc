// Disk full (PROTOCOL.md section 3: ERROR_RESOURCE_EXHAUSTED "disk full"): the
// real Executor and Store over a file system that answers ENOSPC on demand.
// While the disk is full no change is acknowledged, durable reads go on, and
// once space returns the service resumes by itself, with nothing acknowledged
// lost. Any other I/O error stays fail-stop.
//
// The real binary on a size-limited tmpfs is tested in daemon_disk_full_test.cc.
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "protocol/idem.pb.h"
#include "storage/key_codec.h"
#include "tests/testutil/executor_harness.h"
#include "tests/testutil/power_cut_fs.h"
#include "tests/testutil/temp_dir.h"

namespace idem::server {
namespace {

namespace v1 = idem::v1;
using std::chrono::milliseconds;

constexpr char kTenant[] = "tenant";
constexpr char kScope[] = "payments";

// What the file system does to writes and syncs.
enum class Fault {
  kNone,
  kNoSpace,        // every append, sync and new file: ENOSPC
  kNoSpaceOnSync,  // appends work, syncs fail with ENOSPC (a write that
                   // reached RocksDB's memtable but not the disk)
  kIOError,        // every append, sync and new file: EIO
};

class FaultyFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyFile(std::unique_ptr<rocksdb::FSWritableFile> file, const std::atomic<Fault>* fault)
      : FSWritableFileOwnerWrapper(std::move(file)), fault_(fault) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = OnWrite(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = OnWrite(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = OnSync(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(o, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = OnSync(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(o, dbg);
  }

 private:
  rocksdb::IOStatus OnWrite() const {
    switch (fault_->load()) {
      case Fault::kNoSpace: return rocksdb::IOStatus::NoSpace("injected ENOSPC");
      case Fault::kIOError: return rocksdb::IOStatus::IOError("injected EIO");
      default: return rocksdb::IOStatus::OK();
    }
  }
  rocksdb::IOStatus OnSync() const {
    if (fault_->load() == Fault::kNoSpaceOnSync) {
      return rocksdb::IOStatus::NoSpace("injected ENOSPC at sync");
    }
    return OnWrite();
  }

  const std::atomic<Fault>* fault_;
};

class FaultyFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFs(std::shared_ptr<rocksdb::FileSystem> target)
      : FileSystemWrapper(std::move(target)) {}
  const char* Name() const override { return "idem.FaultyFs"; }

  void set(Fault fault) { fault_ = fault; }

  // RocksDB's SstFileManager looks here before it recovers from ENOSPC.
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                 uint64_t* free, rocksdb::IODebugContext* dbg) override {
    if (fault_.load() == Fault::kNone) return target()->GetFreeSpace(path, o, free, dbg);
    *free = 0;
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* out,
                                    rocksdb::IODebugContext* dbg) override {
    const Fault f = fault_.load();
    if (f == Fault::kNoSpace) return rocksdb::IOStatus::NoSpace("injected ENOSPC at create");
    if (f == Fault::kIOError) return rocksdb::IOStatus::IOError("injected EIO at create");
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, o, &file, dbg);
    if (s.ok()) *out = std::make_unique<FaultyFile>(std::move(file), &fault_);
    return s;
  }

 private:
  std::atomic<Fault> fault_{Fault::kNone};
};

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Faults on top of a disk that can lose power (what was not synced).
    power_ = std::make_shared<testutil::PowerCutFs>();
    fs_ = std::make_shared<FaultyFs>(power_);
    env_ = rocksdb::NewCompositeEnv(fs_);
    Open();
  }
  void TearDown() override {
    fs_->set(Fault::kNone);
    life_.reset();
  }

  void Open() {
    life_ = std::make_unique<testutil::ExecutorLife>(dir_.path(), env_.get(), &clock_,
                                                     Executor::Options{});
    ASSERT_TRUE(life_->status().ok()) << life_->status().ToString();
    session_ = std::make_shared<testutil::FakeSession>(
        kTenant, [this](const v1::Response& r) { answers_[r.id()] = r; });
  }

  // Hands `req` to the executor (with a fresh id) and returns its id.
  uint64_t Send(v1::Request req) {
    req.set_id(next_id_++);
    life_->executor().Handle(session_, req, std::chrono::steady_clock::now());
    return req.id();
  }
  v1::Response Await(uint64_t id, milliseconds timeout = milliseconds(10'000)) {
    const bool got = life_->RunUntil([&] { return answers_.count(id) > 0; }, timeout);
    EXPECT_TRUE(got) << "no answer to request " << id;
    return got ? answers_[id] : v1::Response();
  }
  v1::Response Call(v1::Request req) { return Await(Send(std::move(req))); }

  static v1::Request Reserve(const std::string& key, uint32_t wait_ms = 0) {
    v1::Request req;
    auto* r = req.mutable_reserve();
    r->set_scope(kScope);
    r->set_key(key);
    r->set_lease_ms(60'000);
    r->set_wait_ms(wait_ms);
    return req;
  }
  static v1::Request Complete(const std::string& key, uint64_t token, const std::string& body) {
    v1::Request req;
    auto* c = req.mutable_complete();
    c->set_scope(kScope);
    c->set_key(key);
    c->set_token(token);
    c->mutable_result()->set_status(200);
    c->mutable_result()->set_body(body);
    return req;
  }
  static v1::Request Lookup(const std::string& key) {
    v1::Request req;
    req.mutable_lookup()->set_scope(kScope);
    req.mutable_lookup()->set_key(key);
    return req;
  }
  static v1::Request Scan() {
    v1::Request req;
    req.mutable_scan()->set_scope(kScope);
    return req;
  }

  // Acquires and completes `key`; returns the token.
  uint64_t Pay(const std::string& key, const std::string& body) {
    v1::Response r = Call(Reserve(key));
    EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
    const uint64_t token = r.reserve().token();
    r = Call(Complete(key, token, body));
    EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();
    return token;
  }

  static void ExpectDiskFull(const v1::Response& r) {
    ASSERT_TRUE(r.has_error()) << "a change was answered while the disk is full: "
                               << r.DebugString();
    EXPECT_EQ(r.error().code(), v1::ERROR_RESOURCE_EXHAUSTED) << r.DebugString();
    EXPECT_NE(r.error().message().find("disk full"), std::string::npos) << r.error().message();
    EXPECT_GT(r.error().retry_after_ms(), 0u);
  }

  // Waits for the disk probe to see the space back.
  bool WaitRecovered() {
    return life_->RunUntil([this] { return !life_->executor().disk_full(); }, milliseconds(15'000));
  }

  // The record of `key` as a fresh store (plain file system) reads it.
  static bool ReadBack(storage::Store* store, const std::string& key, storage::Record* rec) {
    bool found = false;
    Status st = store->Get(storage::EncodeRecordKey(kTenant, kScope, key), rec, &found);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return found;
  }

  testutil::TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<testutil::PowerCutFs> power_;
  std::shared_ptr<FaultyFs> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<testutil::ExecutorLife> life_;
  std::shared_ptr<testutil::FakeSession> session_;
  std::map<uint64_t, v1::Response> answers_;
  uint64_t next_id_ = 1;
};

TEST_F(DiskFullTest, RefusesChangesServesDurableReadsAndResumesWhenSpaceReturns) {
  Pay("paid", "receipt-1");
  v1::Response held = Call(Reserve("held"));
  ASSERT_EQ(held.reserve().outcome(), v1::RESERVE_ACQUIRED);
  const uint64_t held_token = held.reserve().token();
  ASSERT_FALSE(life_->executor().disk_full());

  fs_->set(Fault::kNoSpace);
  // The change that meets the full disk, and every change after it.
  ExpectDiskFull(Call(Reserve("new-1")));
  EXPECT_TRUE(life_->executor().disk_full());
  ExpectDiskFull(Call(Reserve("new-2")));
  ExpectDiskFull(Call(Complete("held", held_token, "x")));
  // A waiting reserve would end in a grant: refused too, at once.
  ExpectDiskFull(Call(Reserve("paid-elsewhere", /*wait_ms=*/5000)));

  // Durable reads go on.
  v1::Response r = Call(Lookup("paid"));
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.lookup().state(), v1::KEY_COMPLETED);
  EXPECT_EQ(r.lookup().result().body(), "receipt-1");
  r = Call(Reserve("paid"));
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED);
  EXPECT_EQ(r.reserve().result().body(), "receipt-1");
  r = Call(Lookup("new-1"));
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.lookup().state(), v1::KEY_ABSENT);
  // The write failed before RocksDB took the batch: nothing suspect, scans go on.
  r = Call(Scan());
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.scan().entries_size(), 2);

  // Still full after several probes: still refusing.
  life_->RunUntil([] { return false; }, 3 * Executor::kDiskProbeInterval);
  EXPECT_TRUE(life_->executor().disk_full());
  ExpectDiskFull(Call(Reserve("new-3")));

  fs_->set(Fault::kNone);
  ASSERT_TRUE(WaitRecovered()) << "service did not resume after space returned";
  r = Call(Reserve("new-1"));
  ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_ACQUIRED) << r.DebugString();
  EXPECT_GT(r.reserve().token(), held_token);
  r = Call(Complete("new-1", r.reserve().token(), "receipt-2"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();

  // Everything acknowledged is on disk.
  life_->Drain();
  life_.reset();
  testutil::ExecutorLife fresh(dir_.path(), nullptr, &clock_, Executor::Options{});
  ASSERT_TRUE(fresh.status().ok()) << fresh.status().ToString();
  storage::Record rec;
  ASSERT_TRUE(ReadBack(&fresh.store(), "paid", &rec));
  EXPECT_EQ(rec.body, "receipt-1");
  ASSERT_TRUE(ReadBack(&fresh.store(), "new-1", &rec));
  EXPECT_TRUE(rec.completed);
  EXPECT_EQ(rec.body, "receipt-2");
  EXPECT_FALSE(ReadBack(&fresh.store(), "new-2", &rec));
  ASSERT_TRUE(ReadBack(&fresh.store(), "held", &rec));
  EXPECT_FALSE(rec.completed);
}

TEST_F(DiskFullTest, AFailedSyncHidesItsBatchUntilRecoveredThenItIsDurable) {
  Pay("paid", "receipt-1");
  fs_->set(Fault::kNoSpaceOnSync);
  // Written to RocksDB, but its sync fails: not acknowledged...
  ExpectDiskFull(Call(Reserve("maybe")));
  ASSERT_TRUE(life_->executor().disk_full());
  // ...and not revealed either, by a lookup, a reserve or a scan.
  ExpectDiskFull(Call(Lookup("maybe")));
  ExpectDiskFull(Call(Reserve("maybe")));
  ExpectDiskFull(Call(Scan()));
  v1::Response r = Call(Lookup("paid"));
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.lookup().state(), v1::KEY_COMPLETED);

  fs_->set(Fault::kNone);
  ASSERT_TRUE(WaitRecovered());
  // Whatever a read shows now is durable: here the lease the client never
  // heard about (like a timed-out request, it may have taken effect).
  r = Call(Lookup("maybe"));
  ASSERT_FALSE(r.has_error()) << r.DebugString();
  const bool shown = r.lookup().state() == v1::KEY_IN_PROGRESS;
  EXPECT_TRUE(shown || r.lookup().state() == v1::KEY_ABSENT) << r.DebugString();
  r = Call(Scan());
  ASSERT_FALSE(r.has_error()) << r.DebugString();

  // Cut the power right after that read: what it showed must be on disk.
  power_->Freeze();
  life_.reset();
  ASSERT_TRUE(power_->PowerCut(nullptr).ok());
  testutil::ExecutorLife fresh(dir_.path(), nullptr, &clock_, Executor::Options{});
  ASSERT_TRUE(fresh.status().ok()) << fresh.status().ToString();
  storage::Record rec;
  EXPECT_EQ(ReadBack(&fresh.store(), "maybe", &rec), shown);
}

TEST_F(DiskFullTest, WaitersAreAnsweredWhenTheDiskFills) {
  v1::Response held = Call(Reserve("held"));
  ASSERT_EQ(held.reserve().outcome(), v1::RESERVE_ACQUIRED);
  const uint64_t waiter = Send(Reserve("held", /*wait_ms=*/30'000));
  life_->RunUntil([] { return false; }, milliseconds(50));
  ASSERT_EQ(life_->executor().waiters(), 1u);

  fs_->set(Fault::kNoSpace);
  ExpectDiskFull(Call(Reserve("other")));
  // The waiter is not left hanging for 30 s: it hears at once.
  ExpectDiskFull(Await(waiter, milliseconds(1000)));
  EXPECT_EQ(life_->executor().waiters(), 0u);
  fs_->set(Fault::kNone);
  ASSERT_TRUE(WaitRecovered());
  // The holder's lease survived and can complete.
  v1::Response r = Call(Complete("held", held.reserve().token(), "done"));
  EXPECT_EQ(r.complete().outcome(), v1::COMPLETE_OK) << r.DebugString();
}

TEST_F(DiskFullTest, OtherIoErrorsStayFailStop) {
  Pay("paid", "receipt-1");
  fs_->set(Fault::kIOError);
  v1::Response r = Call(Reserve("new"));
  ASSERT_TRUE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.error().code(), v1::ERROR_UNAVAILABLE);
  EXPECT_TRUE(life_->executor().failed());
  EXPECT_FALSE(life_->executor().disk_full());
  fs_->set(Fault::kNone);
  // No probe, no recovery: the operator restarts it.
  life_->RunUntil([] { return false; }, 3 * Executor::kDiskProbeInterval);
  r = Call(Lookup("paid"));
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code(), v1::ERROR_UNAVAILABLE);
  r = Call(Reserve("new"));
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().code(), v1::ERROR_UNAVAILABLE);
}

}  // namespace
}  // namespace idem::server
