// run(): the entry point, like asyncio.run().
#pragma once

#include <utility>

#include "corio/loop/event_loop.hpp"
#include "corio/task/spawn.hpp"

namespace corio {

namespace detail {
/// Installs observation on `loop` as its options ask (src/observe), once.
void attach_observer(event_loop& loop);
}  // namespace detail

/// Runs `main` on `loop` until it finishes; then cancels every task still
/// running and waits for them; returns main's value or rethrows its error.
template <class T>
T run(event_loop& loop, task<T> main) {
  detail::attach_observer(loop);
  detail::loop_core& core = detail::core_of(loop);
  join_handle<T> h = detail::spawn_into(*core.owner_for_spawn(), core, std::move(main), "main");
  detail::run_main(loop, *h.get());
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
