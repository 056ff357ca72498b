// A RocksDB Env whose wall clock (GetCurrentTime, used for SST creation times
// and so for periodic compaction) is idem's Clock. With the real clock this
// changes nothing; with a FakeClock, tests can age files without sleeping.
// Internal to storage/.
#pragma once

#include <rocksdb/env.h>

#include "storage/clock.h"

namespace idem::storage {

class ClockEnv final : public rocksdb::EnvWrapper {
 public:
  ClockEnv(rocksdb::Env* target, const Clock* clock);

  static const char* kClassName() { return "idem.ClockEnv"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::Status GetCurrentTime(int64_t* unix_time) override;

 private:
  const Clock* clock_;
};

}  // namespace idem::storage
