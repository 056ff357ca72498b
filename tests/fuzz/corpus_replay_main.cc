// Replays a fuzz target's corpus as an ordinary test (no libFuzzer, any
// compiler): runs LLVMFuzzerTestOneInput over every file of IDEM_CORPUS_DIR
// (fuzz/corpus/TARGET: the seeds and the regression inputs of fixed crashes),
// or over the files and directories given as arguments. A failing input
// aborts, as under the fuzzer; an empty corpus fails too (a wrong path must
// not pass).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

void Collect(const fs::path& path, std::vector<fs::path>* files) {
  if (fs::is_directory(path)) {
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(path)) {
      if (e.is_regular_file()) files->push_back(e.path());
    }
  } else {
    files->push_back(path);
  }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> roots;
  for (int i = 1; i < argc; ++i) roots.emplace_back(argv[i]);
  if (roots.empty()) roots.emplace_back(IDEM_CORPUS_DIR);
  std::vector<fs::path> files;
  for (const fs::path& root : roots) {
    if (!fs::exists(root)) {
      std::fprintf(stderr, "corpus replay: %s does not exist\n", root.c_str());
      return 1;
    }
    Collect(root, &files);
  }
  std::sort(files.begin(), files.end());  // a stable order, for reproducible runs
  for (const fs::path& f : files) {
    const std::string data = ReadFile(f);
    std::fprintf(stderr, "corpus replay: %s (%zu bytes)\n", f.c_str(), data.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::printf("corpus replay: %zu inputs ran without a failure\n", files.size());
  if (files.empty()) {
    std::fprintf(stderr, "corpus replay: no inputs found\n");
    return 1;
  }
  return 0;
}
