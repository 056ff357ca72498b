// Test helpers: a fresh temporary directory per test, removed afterwards.
#pragma once

#include <string>

namespace idem::testutil {

// Creates a unique directory under $TMPDIR (or /tmp) named after the running
// test; removes it and everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace idem::testutil
