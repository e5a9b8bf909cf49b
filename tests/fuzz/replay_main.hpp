// The replay main of the fuzz targets (tests/fuzz/*_fuzz.cpp) when they are
// built without libFuzzer: replays every file under the given paths, then
// `mutations` deterministic mutations of them (byte flips, inserted
// specials, cuts, splices), so the gcc ASan and TSan builds run the same
// checks on the same inputs every time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace corio_fuzz {

/// `specials`: the bytes that mutations insert (the format's delimiters).
inline int replay_main(int argc, char** argv, const char* name, void (*one_input)(std::string_view),
                       std::string_view specials) {
  std::vector<std::string> seeds;
  long mutations = 200000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) {
      mutations = std::strtol(argv[++i], nullptr, 10);
      continue;
    }
    const std::filesystem::path p(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        files.push_back(e.path());
    } else {
      files.push_back(p);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "usage: %s [--mutations N] CORPUS...\n", argv[0]);
    return 2;
  }
  for (const std::string& s : seeds)
    one_input(s);
  std::mt19937 rng(12345);
  for (long m = 0; m < mutations; ++m) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 5) {
        case 0:
          if (at < s.size()) s[at] = static_cast<char>(rng());
          break;
        case 1:
          s.insert(at, 1, specials[rng() % specials.size()]);
          break;
        case 2:
          s.resize(at);
          break;
        case 3: {
          const std::string& other = seeds[rng() % seeds.size()];
          s.insert(at, other.substr(rng() % (other.size() + 1)));
          break;
        }
        default:
          if (at < s.size()) s.erase(at, 1 + rng() % 8);
          break;
      }
    }
    one_input(s);
  }
  std::printf("%s: %zu seeds and %ld mutations checked\n", name, seeds.size(), mutations);
  return 0;
}

}  // namespace corio_fuzz

/// The entry points of a fuzz target: libFuzzer's, and (without
/// CORIO_LIBFUZZER) the replay main with the format's `specials`.
#ifdef CORIO_LIBFUZZER
#define CORIO_FUZZ_TARGET(name, one_input, specials)                                  \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    one_input(std::string_view(reinterpret_cast<const char*>(data), size));           \
    return 0;                                                                         \
  }
#else
#define CORIO_FUZZ_TARGET(name, one_input, specials)                                  \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    one_input(std::string_view(reinterpret_cast<const char*>(data), size));           \
    return 0;                                                                         \
  }                                                                                   \
  int main(int argc, char** argv) {                                                   \
    return corio_fuzz::replay_main(argc, argv, name, one_input,                       \
                                   std::string_view(specials, sizeof(specials) - 1)); \
  }
#endif
