// Time as idem sees it. Wall milliseconds (Unix epoch) are what is persisted in
// records and sent on the wire; steady time drives timers and timeouts and never
// jumps. The server judges leases on SteadyWallClock (below). Everything that needs time takes a
// Clock*, so tests use FakeClock and never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace idem {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. May jump when the system clock is set.
  virtual uint64_t NowWallMs() const = 0;
  // Monotonic time for timers.
  virtual std::chrono::steady_clock::time_point NowSteady() const = 0;
};

// The real clocks. Thread-safe. Default() is a process-wide instance.
class SystemClock final : public Clock {
 public:
  static SystemClock* Default();
  uint64_t NowWallMs() const override;
  std::chrono::steady_clock::time_point NowSteady() const override;
};

// The rule for time within one server run (README "Time"): lease and
// retention ends are judged on this clock, never on the raw system clock. Its
// wall time is the base clock's wall time read once, at construction, and
// then advanced by the base's steady clock: a jump of the system clock while
// the server runs (forwards or backwards) moves nothing, so it can neither end
// a lease early (two holders) nor stretch one. The persisted Unix ms are on
// this scale; a restart re-reads the system clock, so a jump takes effect
// only across a restart (where fencing tokens still reject the old holder).
// Thread-safe.
class SteadyWallClock final : public Clock {
 public:
  explicit SteadyWallClock(const Clock* base)
      : base_(base), wall_at_start_ms_(base->NowWallMs()), steady_at_start_(base->NowSteady()) {}

  uint64_t NowWallMs() const override {
    const auto elapsed = base_->NowSteady() - steady_at_start_;
    return wall_at_start_ms_ +
           static_cast<uint64_t>(
               std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  }
  std::chrono::steady_clock::time_point NowSteady() const override { return base_->NowSteady(); }

 private:
  const Clock* base_;
  const uint64_t wall_at_start_ms_;
  const std::chrono::steady_clock::time_point steady_at_start_;
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(uint64_t wall_ms = 1'700'000'000'000) : wall_ms_(wall_ms) {}

  uint64_t NowWallMs() const override { return wall_ms_.load(); }
  std::chrono::steady_clock::time_point NowSteady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(steady_ms_.load()));
  }

  // Moves both clocks forward.
  void Advance(uint64_t ms) {
    wall_ms_ += ms;
    steady_ms_ += ms;
  }
  // Sets the wall clock only (a clock jump, forwards or backwards).
  void SetWallMs(uint64_t ms) { wall_ms_ = ms; }

 private:
  std::atomic<uint64_t> wall_ms_;
  std::atomic<uint64_t> steady_ms_{1'000'000};
};

}  // namespace idem
