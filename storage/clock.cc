#include "storage/clock.h"

namespace idem {

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

uint64_t SystemClock::NowWallMs() const {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::chrono::steady_clock::time_point SystemClock::NowSteady() const {
  return std::chrono::steady_clock::now();
}

}  // namespace idem
