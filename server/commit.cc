// Executor: group commit (DESIGN.md "The hot path").
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "protocol/frame_codec.h"
#include "server/executor.h"
#include "server/reply.h"

namespace idem::server {

namespace v1 = idem::v1;

namespace {

struct TimedStatus {
  Status status;
  double seconds;  // for idem_wal_sync_seconds
};

// One WAL sync (fdatasync), timed.
TimedStatus TimedSync(storage::Store* store) {
  const auto start = std::chrono::steady_clock::now();
  Status status = store->SyncWal();
  return {std::move(status),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

}  // namespace

void Executor::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Posted: runs after the handlers already queued in this turn of the io
  // loop, so every request read in the turn joins the batch.
  boost::asio::post(io_, [this] { Flush(); });
}

void Executor::Flush() {
  flush_scheduled_ = false;
  if (failed_ || disk_full_ || syncing_ || batch_.count() == 0) {
    MaybeFinishDrain();
    return;  // a sync in flight calls Flush again when it returns
  }
  const uint32_t records = batch_.count();
  Status s = store_->Write(&batch_, /*sync=*/false);
  batch_.Clear();
  if (!s.ok()) return FailStop(s);
  metrics_->ObserveBatch(records);
  const uint64_t seq = open_seq_++;
  syncing_keys_.swap(open_keys_);
  open_keys_.clear();
  syncing_answers_.swap(open_answers_);
  open_answers_.clear();
  // TEST ONLY (Options::unsafe_ack_before_sync): acknowledge before the sync.
  if (options_.unsafe_ack_before_sync) Release(&syncing_answers_);

  if (options_.durability == Durability::kAsync) {
    // In the OS's hands: survives a killed process, not a power cut.
    return OnSynced(seq, Status::OK(), 0);
  }
  if (records <= kInlineSyncMaxRecords) {
    // A small batch (light load): fdatasync right here, as Redis does. The
    // hand-off to the sync thread and back costs two thread wake-ups (~25 us
    // of a ~115 us one-connection Reserve, BENCHMARKS.md); it pays only when
    // a next batch can build up during the sync.
    const TimedStatus synced = TimedSync(store_);
    return OnSynced(seq, synced.status, synced.seconds);
  }
  syncing_ = true;
  boost::asio::post(sync_thread_, [this, seq] {
    const TimedStatus synced = TimedSync(store_);
    boost::asio::post(io_, [this, seq, synced] { OnSynced(seq, synced.status, synced.seconds); });
  });
}

void Executor::OnSynced(uint64_t seq, Status status, double seconds) {
  syncing_ = false;
  if (failed_ || disk_full_) return MaybeFinishDrain();
  if (!status.ok()) return FailStop(status);
  if (options_.durability == Durability::kSync) metrics_->ObserveWalSync(seconds);
  durable_seq_ = seq;
  // Durable now: read from the store (not moved into the record cache: under
  // a high write rate its churn cost more than the reads it saved, BENCHMARKS.md).
  for (const std::string& key : syncing_keys_) {
    auto it = overlay_.find(key);
    if (it != overlay_.end() && it->second.seq <= seq) overlay_.erase(it);
  }
  syncing_keys_.clear();
  Release(&syncing_answers_);
  // The next batch accumulated while this one synced: commit it now.
  if (batch_.count() > 0) {
    Flush();
  } else {
    MaybeFinishDrain();
  }
}

void Executor::Release(std::vector<Answer>* answers) {
  std::vector<Answer> ready;
  ready.swap(*answers);
  for (Answer& a : ready) Deliver(std::move(a));
}

void Executor::FailStop(const Status& status) {
  if (failed_ || disk_full_) return;
  // ENOSPC (RocksDB's NoSpace) heals when space returns; anything else is for good.
  const bool full = status.IsResourceExhausted();
  if (full) {
    disk_full_ = true;
    spdlog::error("disk full, refusing changes until space returns: {}", status.ToString());
    // The batch being synced is in RocksDB's memtable, maybe not on disk.
    suspect_keys_.insert(syncing_keys_.begin(), syncing_keys_.end());
  } else {
    failed_ = true;
    spdlog::critical("storage failed, no longer accepting requests: {}", status.ToString());
  }
  batch_.Clear();
  overlay_.clear();
  cache_.Clear();
  open_keys_.clear();
  syncing_keys_.clear();
  for (auto* pending : {&syncing_answers_, &open_answers_}) {
    std::vector<Answer> failed;
    failed.swap(*pending);
    for (Answer& a : failed) {
      v1::Response resp;
      resp.set_id(a.id);
      if (full) {
        SetError(&resp, v1::ERROR_RESOURCE_EXHAUSTED, "disk full: this change was not made durable",
                 kDiskFullRetryAfterMs);
      } else {
        SetError(&resp, v1::ERROR_UNAVAILABLE, "storage failed before this change was durable");
      }
      metrics_->CountError(resp.error().code());
      a.frame.clear();
      (void)protocol::AppendFrame(&a.frame, resp);
      Deliver(std::move(a));
    }
  }
  AnswerAllWaiters();
  if (full) {
    ScheduleDiskProbe();
  } else if (on_failure_) {
    on_failure_(status);
  }
  MaybeFinishDrain();
}

void Executor::ScheduleDiskProbe() {
  disk_probe_timer_.expires_after(kDiskProbeInterval);
  disk_probe_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && disk_full_) ProbeDisk();
  });
}

void Executor::ProbeDisk() {
  ++disk_probes_;
  uint64_t free = 0;
  Status st = store_->FreeBytes(&free);
  if (st.ok() && free < kDiskResumeFreeBytes) {
    st = Status::ResourceExhausted(
        fmt::format("{} MiB free, waiting for {} MiB", free >> 20, kDiskResumeFreeBytes >> 20));
  }
  // On the io thread, which it blocks meanwhile: a rare, bounded pause, and
  // reads could not use the store while it reopens anyway.
  if (st.ok()) st = store_->Reopen();
  if (st.IsResourceExhausted()) {
    // At the first probe, then every ~minute: the state is also on /health.
    if (disk_probes_ % 300 == 1) spdlog::warn("disk still full: {}", st.ToString());
    return ScheduleDiskProbe();
  }
  disk_full_ = false;
  suspect_keys_.clear();
  cache_.Clear();  // the reopened store may hold the failed batch, now durable
  if (!st.ok()) return FailStop(st);
  spdlog::info("disk space returned ({} MiB free after {} probes): accepting changes again",
               free >> 20, disk_probes_);
  disk_probes_ = 0;
}

void Executor::Drain(std::function<void()> done) {
  draining_ = true;
  drain_done_ = std::move(done);
  AnswerAllWaiters();
  Flush();
}

void Executor::MaybeFinishDrain() {
  if (!draining_ || !drain_done_ || syncing_) return;
  if (!failed_ && batch_.count() > 0) return;
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  boost::asio::post(io_, std::move(done));
}

}  // namespace idem::server
