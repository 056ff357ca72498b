// Executor: waiting reserves (PROTOCOL.md section 2, "Waiting").
//
// Each key with waiters has a FIFO and a timer at its lease end; each waiter
// has a deadline timer. Serving a queue runs the state machine for each
// waiter in arrival order against the key's current record: the first may
// acquire a free lease (then the rest see IN_PROGRESS and keep waiting), a
// completion answers everyone, a mismatch (possible after a purge) answers
// that waiter at once.
#include <spdlog/spdlog.h>

#include "server/executor.h"
#include "server/reply.h"

namespace idem::server {

namespace v1 = idem::v1;
using storage::Decision;
using storage::Outcome;

bool Executor::Enqueue(const std::shared_ptr<Session>& s, const v1::Request& req,
                       const std::string& rkey, TimePoint received) {
  auto [it, inserted] = waiters_.try_emplace(rkey);
  KeyWaiters& kw = it->second;
  if (total_waiters_ >= options_.max_waiters || kw.queue.size() >= options_.max_waiters_per_key) {
    if (kw.queue.empty()) waiters_.erase(it);
    const bool global = total_waiters_ >= options_.max_waiters;
    ReplyError(s, req.id(), v1::ERROR_RESOURCE_EXHAUSTED,
               global ? "too many waiting reserves on this server (max_waiters)"
                      : "too many waiting reserves on this key (max_waiters_per_key)",
               req.op_case(), received);
    return true;
  }
  const v1::Reserve& r = req.reserve();
  Waiter& w = kw.queue.emplace_back();
  w.session = s;
  w.id = req.id();
  w.serial = next_serial_++;
  w.fingerprint = r.fingerprint();
  w.lease_ms = r.lease_ms();
  w.retention_ms = r.retention_ms();
  w.received = received;
  w.deadline = std::make_unique<boost::asio::steady_timer>(io_);
  w.deadline->expires_after(std::chrono::milliseconds(r.wait_ms()));
  const uint64_t serial = w.serial;
  w.deadline->async_wait([this, rkey, serial](const boost::system::error_code& ec) {
    if (!ec) OnWaiterDeadline(rkey, serial);
  });
  ++total_waiters_;
  s->waiting_keys.push_back(rkey);
  if (!kw.lease_timer) {
    kw.lease_timer = std::make_unique<boost::asio::steady_timer>(io_);
    ReadResult cur;
    if (Read(rkey, &cur) && cur.record != nullptr) {
      ArmLeaseTimer(rkey, &kw, cur.record->lease_expires_unix_ms);
    }
  }
  return true;
}

void Executor::ArmLeaseTimer(const std::string& rkey, KeyWaiters* kw,
                             uint64_t lease_expires_unix_ms) {
  const uint64_t now = clock_->NowWallMs();
  const uint64_t delay = lease_expires_unix_ms > now ? lease_expires_unix_ms - now : 0;
  kw->lease_timer->expires_after(std::chrono::milliseconds(delay));
  kw->lease_timer->async_wait([this, rkey](const boost::system::error_code& ec) {
    if (!ec) ServeWaiters(rkey);
  });
}

void Executor::ServeWaiters(const std::string& rkey) {
  auto it = waiters_.find(rkey);
  if (it == waiters_.end()) return;
  KeyWaiters& kw = it->second;
  uint64_t lease_end = 0;
  while (!kw.queue.empty() && !failed_ && !disk_full_) {
    Waiter& w = kw.queue.front();
    if (w.session->closed()) {
      RemoveWaiter(rkey, kw.queue.begin());
      continue;
    }
    ReadResult cur;
    if (!Read(rkey, &cur)) break;
    if (storage::StateAt(cur.record, clock_->NowWallMs()) == storage::KeyState::kInProgress) {
      lease_end = cur.record->lease_expires_unix_ms;
      break;  // still held: everyone keeps waiting, in order
    }
    AnswerWaiter(rkey, &w, /*may_acquire=*/true);
    RemoveWaiter(rkey, kw.queue.begin());
  }
  it = waiters_.find(rkey);
  if (it == waiters_.end()) return;
  if (it->second.queue.empty()) {
    waiters_.erase(it);
  } else if (lease_end > 0) {
    ArmLeaseTimer(rkey, &it->second, lease_end);
  }
}

void Executor::AnswerWaiter(const std::string& rkey, Waiter* w, bool may_acquire) {
  ReadResult cur;
  if (!Read(rkey, &cur)) {
    return ReplyError(w->session, w->id, v1::ERROR_UNAVAILABLE, "storage read failed",
                      v1::Request::kReserve, w->received);
  }
  const uint64_t now = clock_->NowWallMs();
  const storage::ReserveOp op{w->fingerprint, w->lease_ms, w->retention_ms};
  Decision d = storage::DecideReserve(cur.record, op, now, tokens_->Peek(), options_.limits);
  if (!may_acquire && d.outcome == Outcome::kReserveAcquired) {
    // Shutdown or a deadline: report the state without granting anything.
    d = Decision();
    d.outcome = Outcome::kReserveInProgress;
    if (cur.record != nullptr) {
      d.attempt = cur.record->attempt;
      d.lease_expires_unix_ms = cur.record->lease_expires_unix_ms;
      d.expires_unix_ms = cur.record->expires_unix_ms;
    }
  }
  uint64_t seq = 0;
  if (!Commit(w->session, w->id, v1::Request::kReserve, w->received, rkey, d, cur.seq, &seq)) {
    return;
  }
  v1::Response resp;
  resp.set_id(w->id);
  FillReserveReply(d, cur.record, now, resp.mutable_reserve());
  Reply(w->session, &resp, seq, v1::Request::kReserve, w->received);
}

void Executor::OnWaiterDeadline(const std::string& rkey, uint64_t serial) {
  // A lease that ended at this instant goes to the first in line, first.
  ServeWaiters(rkey);
  auto it = waiters_.find(rkey);
  if (it == waiters_.end()) return;
  auto& queue = it->second.queue;
  for (auto w = queue.begin(); w != queue.end(); ++w) {
    if (w->serial != serial) continue;
    AnswerWaiter(rkey, &*w, /*may_acquire=*/false);
    RemoveWaiter(rkey, w);
    break;
  }
  it = waiters_.find(rkey);
  if (it != waiters_.end() && it->second.queue.empty()) waiters_.erase(it);
}

void Executor::RemoveWaiter(const std::string& rkey, std::list<Waiter>::iterator it) {
  auto kw = waiters_.find(rkey);
  if (it->deadline) it->deadline->cancel();
  auto& keys = it->session->waiting_keys;
  for (auto k = keys.begin(); k != keys.end(); ++k) {
    if (*k == rkey) {
      keys.erase(k);
      break;
    }
  }
  kw->second.queue.erase(it);
  --total_waiters_;
}

void Executor::DropSession(Session* session) {
  std::vector<std::string> keys;
  keys.swap(session->waiting_keys);
  for (const std::string& rkey : keys) {
    auto kw = waiters_.find(rkey);
    if (kw == waiters_.end()) continue;
    auto& queue = kw->second.queue;
    for (auto w = queue.begin(); w != queue.end();) {
      if (w->session.get() != session) {
        ++w;
        continue;
      }
      if (w->deadline) w->deadline->cancel();
      w = queue.erase(w);
      --total_waiters_;
    }
    if (queue.empty()) waiters_.erase(kw);
  }
}

void Executor::AnswerAllWaiters() {
  std::vector<std::string> keys;
  for (const auto& [rkey, kw] : waiters_) keys.push_back(rkey);
  for (const std::string& rkey : keys) {
    if (!failed_ && !disk_full_) ServeWaiters(rkey);
    auto it = waiters_.find(rkey);
    if (it == waiters_.end()) continue;
    while (!it->second.queue.empty()) {
      Waiter& w = it->second.queue.front();
      if (failed_) {
        ReplyError(w.session, w.id, v1::ERROR_UNAVAILABLE, "storage failed", v1::Request::kReserve,
                   w.received);
      } else if (disk_full_) {
        ReplyDiskFull(w.session, w.id, v1::Request::kReserve, w.received);
      } else if (!w.session->closed()) {
        AnswerWaiter(rkey, &w, /*may_acquire=*/false);
      }
      RemoveWaiter(rkey, it->second.queue.begin());
    }
    waiters_.erase(it);
  }
}

}  // namespace idem::server
