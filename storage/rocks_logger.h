// RocksDB's info log, sent to idem's log (spdlog) instead of a LOG file in the
// data directory. Why: a LOG file shares the data disk, and when that disk is
// full this RocksDB build (assertions on) aborts the process inside its
// logger's error path; and operators get one log stream. RocksDB's INFO and
// HEADER lines (options, flush and compaction stats) become debug lines,
// WARN stays warn, ERROR and FATAL become error.
#pragma once

#include <rocksdb/env.h>

#include <memory>

namespace idem::storage {

std::shared_ptr<rocksdb::Logger> NewSpdlogRocksLogger();

}  // namespace idem::storage
