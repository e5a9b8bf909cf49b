// run(): the entry point, like asyncio.run().
#pragma once

#include <utility>

#include "corio/spawn.hpp"

namespace corio {

/// Runs `main` on `loop` until it finishes; then cancels every task still
/// running and waits for them; returns main's value or rethrows its error.
template <class T>
T run(event_loop& loop, task<T> main) {
  join_handle<T> h = detail::spawn_into(*loop.owner_for_spawn(), loop, std::move(main), "main");
  loop.run_root(*h.get());
  return h.result();
}

/// Makes an event loop on this thread and runs `main` on it (see above).
///
/// \code
///   int main() {
///     return corio::run([]() -> corio::task<int> {
///       co_await corio::sleep(std::chrono::milliseconds(10));
///       co_return 0;
///     }());
///   }
/// \endcode
template <class T>
T run(task<T> main, loop_options options = {}) {
  event_loop loop(std::move(options));
  return run(loop, std::move(main));
}

}  // namespace corio
