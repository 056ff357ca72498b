// A bounded LRU cache of durable records, in front of RocksDB point reads.
// Profiling showed a RocksDB Get (memtable skiplist walk, block cache) to be
// about half of a Lookup's user-space instructions (BENCHMARKS.md); a hit
// here is a hash lookup and a copy.
//
// What it holds: only values as they are on stable storage (the executor
// fills it from store reads of keys with no change pending, and erases a key
// whenever a change to it is batched). Records whose result body is larger
// than kMaxBodyBytes are not kept. Expired records may stay until evicted;
// judging expiry is the state machine's job.
//
// Thread-compatible: used by the executor's io thread only.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

#include "storage/record.h"

namespace idem::server {

class RecordCache {
 public:
  static constexpr size_t kMaxBodyBytes = 4096;

  // capacity_bytes 0 disables the cache.
  explicit RecordCache(size_t capacity_bytes) : capacity_(capacity_bytes) {
    lru_.next = lru_.prev = &lru_;
  }
  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  // Copies the cached record of `key` into *out; false on a miss.
  bool Get(const std::string& key, storage::Record* out);
  // The cached record of `key`, or null: valid until the cache next changes
  // (Put, Erase, Clear).
  const storage::Record* Find(const std::string& key);
  void Put(const std::string& key, const storage::Record& record);
  void Erase(const std::string& key);
  void Clear();

  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }

 private:
  // One allocation per entry: the map's node holds the key, the record and
  // the links of the recency list (map nodes do not move).
  struct Entry {
    storage::Record record;
    const std::string* key = nullptr;  // the map node's key
    Entry* prev = nullptr;
    Entry* next = nullptr;
    size_t charge = 0;
  };
  static size_t Charge(const std::string& key, const storage::Record& record);
  void Unlink(Entry* e);
  void PushFront(Entry* e);
  void Remove(std::unordered_map<std::string, Entry>::iterator it);

  size_t capacity_;
  size_t bytes_ = 0;
  Entry lru_;  // sentinel of the circular recency list: next is the most recent
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace idem::server
