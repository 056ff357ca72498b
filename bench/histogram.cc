#include "bench/histogram.h"

#include <algorithm>
#include <cmath>

namespace idem::bench {

namespace {
constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
constexpr uint64_t kSub = 1u << kSubBits;
}  // namespace

Histogram::Histogram() : buckets_((64 - kSubBits + 1) * kSub, 0) {}

size_t Histogram::Index(uint64_t v) {
  if (v < 2 * kSub) return static_cast<size_t>(v);
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - kSubBits;
  return static_cast<size_t>((shift + 1) * kSub + ((v >> shift) & (kSub - 1)));
}

uint64_t Histogram::UpperBound(size_t index) {
  if (index < 2 * kSub) return index;
  const size_t shift = index / kSub - 1;
  return ((kSub + index % kSub + 1) << shift) - 1;
}

void Histogram::Record(uint64_t micros) {
  ++buckets_[std::min(Index(micros), buckets_.size() - 1)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  const auto want = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= std::max<uint64_t>(want, 1)) return std::min(UpperBound(i), max_);
  }
  return max_;
}

}  // namespace idem::bench
