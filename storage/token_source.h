// Fencing tokens: strictly rising per key, across restarts and crashes.
//
// A token is (epoch << 32) | counter. At Open the stored epoch is read,
// incremented and written back with a synced write *before any token is
// handed out*; the counter then starts at 1. So every token of this run is
// greater than every token of every earlier run, whichever of that run's
// grants reached the disk: a crash between writing and syncing a grant can
// lose the grant, never reuse its token. Records need no high-water mark of
// their own, and purge, release or expiry of a key cannot lower its next
// token. Tokens are never 0 (the epoch starts at 1). When a run's counter is
// exhausted, the epoch is bumped (synced) again before the next token.
#pragma once

#include <cstdint>
#include <memory>

#include "storage/store.h"
#include "util/status.h"

namespace idem::storage {

class TokenSource {
 public:
  // Bumps and syncs the epoch in `store` (which must outlive this).
  static Status Open(Store* store, std::unique_ptr<TokenSource>* out);

  // The token the next grant gets. Not thread-safe: one owner (the executor).
  uint64_t Peek() const { return (epoch_ << 32) | (counter_ + 1); }
  // Marks Peek() as granted. Fails only if a needed epoch bump cannot be made
  // durable; the caller must then grant nothing more (fail-stop).
  Status Consume();

  uint64_t epoch() const { return epoch_; }

  // For tests: make the counter `n` grants away from exhaustion.
  void SetCounterForTest(uint32_t counter) { counter_ = counter; }

 private:
  explicit TokenSource(Store* store) : store_(store) {}
  Status BumpEpoch();

  Store* store_;
  uint64_t epoch_ = 0;
  uint32_t counter_ = 0;  // the last counter value granted in this epoch
};

}  // namespace idem::storage
