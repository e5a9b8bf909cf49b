// A program outside the tree, built against an installed corio (found with
// CMake's find_package or with pkg-config). Prints the headers' version so
// that the test can compare it with the package's.
#include <corio/corio.hpp>
#include <cstdio>

corio::task<int> amain() {
  co_await corio::sleep(std::chrono::milliseconds(1));
  co_return 42;
}

int main() {
  if (corio::run(amain()) != 42) return 1;
  std::printf("%s\n", corio::version_string);
  return 0;
}
