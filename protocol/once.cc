#include "protocol/once.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace idem::client {

namespace v1 = idem::v1;

namespace {

// Renews a lease every lease/3 on its own connection until stopped.
class Renewer {
 public:
  Renewer(const Options& options, std::string scope, std::string key, uint64_t token,
          uint32_t lease_ms)
      : client_(RenewOptions(options, lease_ms)),
        scope_(std::move(scope)),
        key_(std::move(key)),
        token_(token),
        lease_ms_(lease_ms),
        thread_([this] { Loop(); }) {}

  ~Renewer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  bool lost() const { return lost_; }

 private:
  // A renewal answered after the lease ran out is useless, and the Renewer's
  // destructor waits for the call in progress: bound both by the lease.
  static Options RenewOptions(Options options, uint32_t lease_ms) {
    const std::chrono::milliseconds bound(std::max<uint32_t>(lease_ms, 100));
    if (options.call_timeout.count() <= 0 || options.call_timeout > bound) {
      options.call_timeout = bound;
    }
    if (options.connect_timeout.count() <= 0 || options.connect_timeout > bound) {
      options.connect_timeout = bound;
    }
    return options;
  }

  void Loop() {
    const auto period = std::chrono::milliseconds(std::max<uint32_t>(lease_ms_ / 3, 1));
    // Connect now, so the first renewal is not late by a connect and Hello
    // (a failure here is retried by the first Renew).
    (void)client_.Connect();
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
      lock.unlock();
      auto r = client_.Renew(scope_, key_, token_, lease_ms_);
      if (r.ok() && r->outcome() != v1::RENEW_OK) lost_ = true;
      lock.lock();
      if (lost_) return;
    }
  }

  Client client_;
  std::string scope_, key_;
  uint64_t token_;
  uint32_t lease_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> lost_{false};
  std::thread thread_;  // last: starts after the fields it uses
};

OnceValue ValueOf(const v1::Result& r) { return OnceValue{r.status(), r.body()}; }

}  // namespace

StatusOr<OnceResult> Once(Client& client, std::string_view scope, std::string_view key,
                          const OnceOptions& options,
                          const std::function<StatusOr<OnceValue>()>& fn) {
  ReserveOptions ro;
  ro.fingerprint = options.fingerprint;
  ro.lease_ms = options.lease_ms;
  ro.retention_ms = options.retention_ms;
  ro.wait_ms = options.wait_ms;
  auto reserved = client.Reserve(scope, key, ro);
  if (!reserved.ok()) return reserved.status();
  switch (reserved->outcome()) {
    case v1::RESERVE_COMPLETED: return OnceResult{false, ValueOf(reserved->result())};
    case v1::RESERVE_MISMATCH:
      return Status::InvalidArgument(
          "fingerprint mismatch: this key was used with different request parameters");
    case v1::RESERVE_IN_PROGRESS:
      return Status::Unavailable("another attempt is still in progress; retry later");
    case v1::RESERVE_ACQUIRED: break;
    default: return Status::Internal("unexpected reserve outcome");
  }
  const uint64_t token = reserved->token();
  StatusOr<OnceValue> value = Status::Internal("fn did not run");
  {
    // Renew with the lease the server granted (it clamps lease_ms).
    const uint32_t lease_ms =
        reserved->lease_remaining_ms() > 0 ? reserved->lease_remaining_ms() : options.lease_ms;
    Renewer renewer(client.options(), std::string(scope), std::string(key), token, lease_ms);
    value = fn();
  }
  if (!value.ok()) {
    // Retriable failure: give the key back so a later caller runs fn again.
    auto released = client.Release(scope, key, token);
    if (!released.ok()) return released.status().WithContext("fn failed and release failed");
    return value.status();
  }
  auto completed =
      client.Complete(scope, key, token, value->status, value->body, options.retention_ms);
  if (!completed.ok()) {
    return completed.status().WithContext("fn ran but its result may not be stored");
  }
  switch (completed->outcome()) {
    case v1::COMPLETE_OK: return OnceResult{true, std::move(*value)};
    case v1::COMPLETE_ALREADY_COMPLETED:
      return Status::Internal("lease lost: another holder completed the key first");
    default:
      return Status::Internal("lease lost: the result was not stored (fn's effect happened)");
  }
}

}  // namespace idem::client
