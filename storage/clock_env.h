// A RocksDB Env whose wall clock (GetCurrentTime, used for SST creation times
// and so for periodic compaction) is idem's Clock. With the real clock this
// changes nothing; with a FakeClock, tests can age files without sleeping.
// The database's files go through `fs` when given, else through target's.
// Internal to storage/.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <memory>

#include "storage/clock.h"

namespace idem::storage {

class ClockEnv final : public rocksdb::EnvWrapper {
 public:
  ClockEnv(rocksdb::Env* target, const Clock* clock,
           std::shared_ptr<rocksdb::FileSystem> fs = nullptr);

  static const char* kClassName() { return "idem.ClockEnv"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::Status GetCurrentTime(int64_t* unix_time) override;

 private:
  const Clock* clock_;
};

}  // namespace idem::storage
