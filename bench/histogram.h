// A log-linear latency histogram in the HDR style: values in microseconds,
// 64 sub-buckets per power of two (under 1.6% relative error), fixed memory,
// mergeable. Not thread-safe; one per thread, merged at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace idem::bench {

class Histogram {
 public:
  Histogram();
  void Record(uint64_t micros);
  void Merge(const Histogram& other);
  // The smallest recorded-bucket upper bound covering `percent` of values.
  uint64_t Percentile(double percent) const;
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }

 private:
  static size_t Index(uint64_t v);
  static uint64_t UpperBound(size_t index);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace idem::bench
