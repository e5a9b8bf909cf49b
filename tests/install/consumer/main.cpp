// A program outside the tree, built against an installed corio.
#include <corio/corio.hpp>
#include <cstdio>

corio::task<int> amain() {
  co_await corio::sleep(std::chrono::milliseconds(1));
  co_return 42;
}

int main() {
  return corio::run(amain()) == 42 ? 0 : 1;
}
