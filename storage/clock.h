// Time as idem sees it. Wall milliseconds (Unix epoch) are what is persisted in
// records and sent on the wire; steady time drives timers and timeouts and never
// jumps. Everything that needs time takes a Clock*, so tests use FakeClock and
// never sleep.
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
