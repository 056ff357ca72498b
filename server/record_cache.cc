#include "server/record_cache.h"

namespace idem::server {

size_t RecordCache::Charge(const Entry& e) {
  // The strings' bytes plus the list and map nodes and the record's fixed part.
  return e.first.size() + e.second.fingerprint.size() + e.second.body.size() + 192;
}

bool RecordCache::Get(const std::string& key, storage::Record* out) {
  const storage::Record* found = Find(key);
  if (found == nullptr) return false;
  *out = *found;
  return true;
}

const storage::Record* RecordCache::Find(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

void RecordCache::Put(const std::string& key, const storage::Record& record) {
  if (capacity_ == 0 || record.body.size() > kMaxBodyBytes) return;
  Erase(key);
  lru_.emplace_front(key, record);
  map_.emplace(lru_.front().first, lru_.begin());
  bytes_ += Charge(lru_.front());
  while (bytes_ > capacity_ && !lru_.empty()) {
    const Entry& last = lru_.back();
    bytes_ -= Charge(last);
    map_.erase(last.first);
    lru_.pop_back();
  }
}

void RecordCache::Erase(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  bytes_ -= Charge(*it->second);
  auto node = it->second;
  map_.erase(it);
  lru_.erase(node);
}

void RecordCache::Clear() {
  map_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace idem::server
