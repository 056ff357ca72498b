// The executor: the one owner of record state. It runs each data operation
// through the state machine, batches the changes, and answers only what is
// durable (DESIGN.md "The hot path").
//
// Group commit: changes of one io-loop turn go into one WriteBatch. At the end
// of the turn (a posted Flush) the batch is written without sync and handed to
// the WAL-sync thread; the next batch accumulates meanwhile (a batch of at most
// kInlineSyncMaxRecords is synced on the io thread instead: cheaper at light
// load). At most one sync
// is in flight. The answers of batch k are delivered when sync k returns. An
// answer that only reads waits for the sync of the batch that last changed
// the record it read (tracked by the overlay), else goes out at once.
//
// Fail-stop: a failed write or sync answers everything pending with
// ERROR_UNAVAILABLE and every later data request too; nothing undurable is
// ever acknowledged.
//
// Disk full is the one storage failure that heals: a write or sync that fails
// with ENOSPC answers everything pending with ERROR_RESOURCE_EXHAUSTED and
// puts the executor in disk-full mode. There, every change is refused with
// ERROR_RESOURCE_EXHAUSTED (retry_after_ms set); reads are still served,
// except of the keys of the batch that failed (RocksDB may hold their
// undurable values) and Scans while there are such keys. Every
// kDiskProbeInterval the free space is checked; once kDiskResumeFreeBytes are
// free the store is reopened (Store::Reopen: a WAL replay and a synced
// write), after which everything it holds is durable and service resumes.
//
// Waiters: Reserve with wait_ms on a key IN_PROGRESS is held in a per-key FIFO.
// After every change to the key (complete, release, purge), at its lease end
// and at each waiter's deadline, the queue is served in arrival order through
// the state machine: so exactly one waiter acquires a freed lease, and all
// get the result of a completion.
//
// Thread-safety: everything runs on the io thread, except the WAL sync.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "protocol/idem.pb.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/record_cache.h"
#include "server/session.h"
#include "storage/clock.h"
#include "storage/state_machine.h"
#include "storage/store.h"
#include "storage/token_source.h"

namespace idem::server {

class Executor {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Disk-full mode: how often the free space is checked, how much must be free
  // to resume (RocksDB's memtable, 64 MiB, may be flushed at the reopen, plus
  // room), and the retry_after_ms hint of the changes refused meanwhile.
  static constexpr std::chrono::milliseconds kDiskProbeInterval{200};
  static constexpr uint64_t kDiskResumeFreeBytes = 80ull << 20;
  static constexpr uint32_t kDiskFullRetryAfterMs = 1000;
  // Batches of at most this many changes are synced on the io thread itself.
  static constexpr uint32_t kInlineSyncMaxRecords = 4;

  struct Options {
    Durability durability = Durability::kSync;
    storage::Limits limits;
    uint32_t max_waiters = 100'000;
    uint32_t max_waiters_per_key = 1'000;
    // The cache of durable records in front of store reads (record_cache.h).
    size_t record_cache_bytes = 32ull << 20;
    // TEST ONLY; never expose as a flag or config. Delivers each batch's
    // answers right after Write(sync=false), before its WAL sync: the negative
    // control of tests/server/power_loss_test.cc, which must then see a loss.
    bool unsafe_ack_before_sync = false;
  };

  Executor(boost::asio::io_context& io, storage::Store* store, storage::TokenSource* tokens,
           const Clock* clock, Metrics* metrics, Options options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs a Reserve, Complete, Release, Renew, Lookup, Purge or Scan for
  // `session` (authorization already checked). The answer is delivered to
  // the session now or after the sync it depends on.
  void Handle(const std::shared_ptr<Session>& session, const idem::v1::Request& request,
              TimePoint received);

  // Forgets the waiters of a closing session.
  void DropSession(Session* session);

  // Shutdown: answers every waiter with its key's current state, commits what
  // is pending, then calls `done` (on the io thread) once every answer given
  // is durable or failed. Later requests are answered ERROR_UNAVAILABLE.
  void Drain(std::function<void()> done);

  // Called (once) when storage fails.
  void set_on_failure(std::function<void(const Status&)> fn) { on_failure_ = std::move(fn); }

  bool failed() const { return failed_; }
  // In disk-full mode (see above).
  bool disk_full() const { return disk_full_; }
  uint32_t waiters() const { return total_waiters_; }

 private:
  struct Answer {
    std::shared_ptr<Session> session;
    uint64_t id;
    std::string frame;
    idem::v1::Request::OpCase op;
    TimePoint received;
  };
  // The latest value of a key changed by a batch not yet durable.
  struct Dirty {
    std::optional<storage::Record> record;  // nullopt: deleted
    uint64_t seq;                           // the batch that wrote it
  };
  struct Waiter {
    std::shared_ptr<Session> session;
    uint64_t id;      // the request's id
    uint64_t serial;  // unique per waiter
    std::string fingerprint;
    uint32_t lease_ms;
    uint64_t retention_ms;
    TimePoint received;
    std::unique_ptr<boost::asio::steady_timer> deadline;
  };
  struct KeyWaiters {
    std::list<Waiter> queue;
    std::unique_ptr<boost::asio::steady_timer> lease_timer;
  };
  // A record as read: points into the overlay or into `scratch` (or, when
  // `borrow` was set, into the record cache: valid only until the cache next
  // changes, so only for an operation that changes nothing).
  struct ReadResult {
    storage::Record scratch;
    const storage::Record* record = nullptr;
    uint64_t seq = 0;  // batch the value depends on; 0 when durable
    bool borrow = false;
  };

  // executor.cc: operations.
  void HandleReserve(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                     TimePoint received);
  void HandleComplete(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                      TimePoint received);
  void HandleRelease(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                     TimePoint received);
  void HandleRenew(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                   TimePoint received);
  void HandleLookup(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                    TimePoint received);
  void HandlePurge(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                   TimePoint received);
  void HandleScan(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
                  TimePoint received);
  bool Read(const std::string& rkey, ReadResult* out);
  // Answer INVALID_ARGUMENT / UNAVAILABLE and return false when the check or
  // the read fails.
  bool Valid(const std::shared_ptr<Session>& s, const idem::v1::Request& req, const Status& valid,
             TimePoint received);
  bool ReadFor(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
               const std::string& rkey, ReadResult* out, TimePoint received);
  // Persists the decision (batch + overlay) and returns the seq its answer
  // depends on (`read_seq` when it changes nothing).
  uint64_t Apply(const std::string& rkey, const storage::Decision& d, uint64_t read_seq);
  // Apply for a decision answered to `s`: false (and the error answered) when
  // the change cannot be made now (disk full, failed storage).
  bool Commit(const std::shared_ptr<Session>& s, uint64_t id, idem::v1::Request::OpCase op,
              TimePoint received, const std::string& rkey, const storage::Decision& d,
              uint64_t read_seq, uint64_t* seq);
  void ReplyDiskFull(const std::shared_ptr<Session>& s, uint64_t id, idem::v1::Request::OpCase op,
                     TimePoint received);
  void Reply(const std::shared_ptr<Session>& s, idem::v1::Response* response, uint64_t seq,
             idem::v1::Request::OpCase op, TimePoint received);
  void ReplyError(const std::shared_ptr<Session>& s, uint64_t id, idem::v1::ErrorCode code,
                  std::string_view message, idem::v1::Request::OpCase op, TimePoint received,
                  uint32_t retry_after_ms = 0);
  void Deliver(Answer answer);

  // commit.cc: group commit.
  void ScheduleFlush();
  void Flush();
  void OnSynced(uint64_t seq, Status status, double seconds);
  void Release(std::vector<Answer>* answers);
  // A failed write or sync: disk-full mode for ENOSPC, else fail-stop.
  void FailStop(const Status& status);
  void ScheduleDiskProbe();
  void ProbeDisk();
  void MaybeFinishDrain();

  // waiters.cc
  bool Enqueue(const std::shared_ptr<Session>& s, const idem::v1::Request& req,
               const std::string& rkey, TimePoint received);
  void ServeWaiters(const std::string& rkey);
  void ArmLeaseTimer(const std::string& rkey, KeyWaiters* kw, uint64_t lease_expires_unix_ms);
  void OnWaiterDeadline(const std::string& rkey, uint64_t serial);
  void AnswerWaiter(const std::string& rkey, Waiter* w, bool may_acquire);
  void RemoveWaiter(const std::string& rkey, std::list<Waiter>::iterator it);
  void AnswerAllWaiters();

  boost::asio::io_context& io_;
  storage::Store* store_;
  storage::TokenSource* tokens_;
  const Clock* clock_;
  Metrics* metrics_;
  Options options_;

  // Group commit state.
  storage::Batch batch_;
  std::vector<std::string> open_keys_;     // keys written by the open batch
  std::vector<std::string> syncing_keys_;  // keys written by the batch being synced
  std::vector<Answer> open_answers_;       // wait for the open batch
  std::vector<Answer> syncing_answers_;    // wait for the batch being synced
  // Lookup's key and answer, reused: once warm a Lookup that hits the record
  // cache allocates nothing for them (the answer is cleared, not destroyed).
  std::string lookup_key_;
  idem::v1::Response lookup_response_;
  std::unordered_map<std::string, Dirty> overlay_;
  // Durable records, in front of store reads; a key is erased whenever a
  // change to it is batched, and everything when storage fails or reopens.
  RecordCache cache_;
  uint64_t open_seq_ = 1;     // the batch accumulating
  uint64_t durable_seq_ = 0;  // every batch <= this is durable
  bool syncing_ = false;
  bool flush_scheduled_ = false;
  bool failed_ = false;
  bool disk_full_ = false;
  // Disk-full mode: keys of the batch whose sync failed (maybe in RocksDB
  // without being durable), not to be read until the disk recovers.
  std::unordered_set<std::string> suspect_keys_;
  boost::asio::steady_timer disk_probe_timer_{io_};
  uint64_t disk_probes_ = 0;
  bool draining_ = false;
  std::function<void()> drain_done_;
  std::function<void(const Status&)> on_failure_;
  boost::asio::thread_pool sync_thread_{1};

  // Waiters.
  std::unordered_map<std::string, KeyWaiters> waiters_;
  uint32_t total_waiters_ = 0;
  uint64_t next_serial_ = 1;
};

}  // namespace idem::server
