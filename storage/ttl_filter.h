// The RocksDB compaction filter that drops records whose retention has ended.
#pragma once

#include <rocksdb/compaction_filter.h>

#include "storage/clock.h"

namespace idem::storage {

// Removes record values whose expires_unix_ms <= the clock's wall time; keeps
// meta keys and anything it cannot read (never drop what we do not
// understand). Thread-safe: one instance serves all compactions.
//
// Why removal cannot resurrect an older version of the same key: RocksDB turns
// a removed Put into a deletion marker while older versions may still exist
// below it, so a newer short-retention record that expires hides an older
// long-retention one for good (tested in store_test.cc).
class TtlCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit TtlCompactionFilter(const Clock* clock) : clock_(clock) {}

  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;
  const char* Name() const override { return "idem.TtlCompactionFilter"; }

 private:
  const Clock* clock_;
};

}  // namespace idem::storage
