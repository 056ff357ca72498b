#include "server/record_cache.h"

namespace idem::server {

size_t RecordCache::Charge(const std::string& key, const storage::Record& record) {
  // The strings' bytes plus the map node and the record's fixed part.
  return key.size() + record.fingerprint.size() + record.body.size() + 192;
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
  Unlink(&it->second);
  PushFront(&it->second);
  return &it->second.record;
}

void RecordCache::Put(const std::string& key, const storage::Record& record) {
  if (capacity_ == 0 || record.body.size() > kMaxBodyBytes) return;
  auto [it, added] = map_.try_emplace(key);
  Entry& e = it->second;
  if (!added) {
    bytes_ -= e.charge;
    Unlink(&e);
  }
  e.record = record;
  e.key = &it->first;
  e.charge = Charge(it->first, e.record);
  bytes_ += e.charge;
  PushFront(&e);
  while (bytes_ > capacity_ && lru_.prev != &lru_) Remove(map_.find(*lru_.prev->key));
}

void RecordCache::Erase(const std::string& key) {
  auto it = map_.find(key);
  if (it != map_.end()) Remove(it);
}

void RecordCache::Clear() {
  map_.clear();
  lru_.next = lru_.prev = &lru_;
  bytes_ = 0;
}

void RecordCache::Unlink(Entry* e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
}

void RecordCache::PushFront(Entry* e) {
  e->prev = &lru_;
  e->next = lru_.next;
  lru_.next->prev = e;
  lru_.next = e;
}

void RecordCache::Remove(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.charge;
  Unlink(&it->second);
  map_.erase(it);
}

}  // namespace idem::server
