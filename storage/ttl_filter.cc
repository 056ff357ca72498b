#include "storage/ttl_filter.h"

#include "storage/key_codec.h"
#include "storage/record.h"

namespace idem::storage {

bool TtlCompactionFilter::Filter(int /*level*/, const rocksdb::Slice& key,
                                 const rocksdb::Slice& existing_value, std::string* /*new_value*/,
                                 bool* /*value_changed*/) const {
  if (key.empty() || key[0] != kRecordTag) return false;
  uint64_t expires = 0;
  if (!PeekExpiresUnixMs(std::string_view(existing_value.data(), existing_value.size()),
                         &expires)) {
    return false;
  }
  return expires <= clock_->NowWallMs();
}

}  // namespace idem::storage
