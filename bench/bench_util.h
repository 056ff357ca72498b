// Helpers shared by the micro-benchmarks in bench/: a temporary directory and
// deterministic test data of the sizes idem sees in production. Header-only,
// no gtest, no idem library.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace idem::bench {

// Realistic field sizes: a UUID-like idempotency key, a SHA-256 request
// fingerprint, a small JSON reply body.
inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kFingerprintBytes = 32;
inline constexpr size_t kBodyBytes = 100;
inline constexpr std::string_view kTenant = "acme";
inline constexpr std::string_view kScope = "payments-api";

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on
// destruction. A benchmark cannot run without it, so failing to create it
// prints why and aborts.
class TempDir {
 public:
  explicit TempDir(std::string_view name) {
    const char* base = getenv("TMPDIR");
    std::string templ = (base != nullptr && *base != '\0') ? base : "/tmp";
    templ += "/idem-bench-";
    templ += name;
    templ += "-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::fprintf(stderr, "bench: mkdtemp(%s): %s\n", templ.c_str(), std::strerror(errno));
      std::abort();
    }
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// splitmix64: a cheap, well-mixed deterministic sequence.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// `n` lowercase hex digits derived from `seed`: distinct seeds give distinct
// keys spread uniformly over the key space (as UUID keys are).
inline std::string HexKey(uint64_t seed, size_t n = kKeyBytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) bits = Mix(seed * 0x100 + i / 16);
    out[i] = kHex[bits & 0xf];
    bits >>= 4;
  }
  return out;
}

// `n` arbitrary bytes (all 256 values occur) derived from `seed`.
inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) bits = Mix(seed * 0x10000 + i / 8);
    out[i] = static_cast<char>(bits & 0xff);
    bits >>= 8;
  }
  return out;
}

}  // namespace idem::bench
