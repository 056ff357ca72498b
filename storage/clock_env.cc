#include "storage/clock_env.h"

#include <rocksdb/system_clock.h>

namespace idem::storage {

namespace {

class WallClock final : public rocksdb::SystemClockWrapper {
 public:
  WallClock(const std::shared_ptr<rocksdb::SystemClock>& target, const Clock* clock)
      : SystemClockWrapper(target), clock_(clock) {}

  static const char* kClassName() { return "idem.WallClock"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::Status GetCurrentTime(int64_t* unix_time) override {
    *unix_time = static_cast<int64_t>(clock_->NowWallMs() / 1000);
    return rocksdb::Status::OK();
  }

 private:
  const Clock* clock_;
};

}  // namespace

ClockEnv::ClockEnv(rocksdb::Env* target, const Clock* clock,
                   std::shared_ptr<rocksdb::FileSystem> fs)
    : EnvWrapper(target), clock_(clock) {
  system_clock_ = std::make_shared<WallClock>(target->GetSystemClock(), clock);
  if (fs) file_system_ = std::move(fs);
}

rocksdb::Status ClockEnv::GetCurrentTime(int64_t* unix_time) {
  return system_clock_->GetCurrentTime(unix_time);
}

}  // namespace idem::storage
