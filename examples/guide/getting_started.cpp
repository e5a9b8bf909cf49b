// The guide's first program (docs/guide/getting_started.md).
//! [first]
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

// A task is a coroutine that returns corio::task<T>; it starts when awaited.
corio::task<int> fetch(int id) {
  co_await corio::sleep(1ms * id);  // stands in for real I/O
  co_return id * 10;
}

corio::task<int> amain() {
  auto a = corio::spawn(fetch(3), "fetch 3");  // runs concurrently from here on
  const int b = co_await fetch(2);             // runs inside this task
  const int a_value = co_await a;              // waits for the spawned task
  co_return a_value + b;
}
//! [first]

#include "check.hpp"

//! [main]
int main() {
  const int total = corio::run(amain());  // a loop on this thread, until amain() returns
  std::printf("total = %d\n", total);
  guide::check(total == 50, "fetch(3) + fetch(2) is 50");
}
//! [main]
