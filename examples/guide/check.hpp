// The guide's examples check their own results: a wrong one ends the
// program with a message and a non-zero status, with or without NDEBUG
// (assert would vanish in a release build).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace guide {

inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "guide example: check failed: %s\n", what);
  std::exit(1);
}

}  // namespace guide
