// runtime: an event loop per core (corio::run for every core).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/exec/cross_loop.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/run.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// How a runtime runs.
struct runtime_options {
  /// Event loops, one thread each; 0: one per CPU this process may run on
  /// (its affinity mask, as `nproc` counts).
  std::size_t threads = 0;
  /// Pins loop i's thread to the i-th CPU this process may run on.
  bool pin = false;
  /// Every loop's options (the clock, debug mode, statistics).
  loop_options loop{};
  /// With more than one loop, each loop's `loop_options::idle_spin`: how
  /// long an idle loop watches for messages from the others before it
  /// blocks, so that hand-offs between busy loops cost no system call.
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(50);
};

/// A set of event loops, one per thread (per core by default), that a
/// program's tasks share: tasks, timers and sync primitives stay on the
/// loop they were made on and cost no atomics; work crosses loops through
/// explicit messages (submit_to, spawn_on, invoke_on_all, and the
/// thread-safe channel). `run(main)` runs `main` on loop 0 (this thread),
/// the other loops on threads of their own; when `main` ends, each loop
/// cancels and drains its tasks, calls still crossing between loops are
/// answered, and the threads end before run returns.
///
/// \code
///   corio::runtime rt({.threads = 4});
///   int total = rt.run([]() -> corio::task<int> {
///     int sum = 0;
///     for (std::size_t i = 0; i < corio::loop_count(); ++i)
///       sum += co_await corio::submit_to(i, [] { return work_here(); });
///     co_return sum;
///   }());
/// \endcode
class runtime {
 public:
  /// Sizes a runtime with `options` (0 threads: one per CPU this process
  /// may run on). Starts nothing: the loops and their threads exist only
  /// during run().
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// The number of loops.
  [[nodiscard]] std::size_t size() const noexcept { return m_threads; }

  /// Runs `main` to completion on loop 0 (this thread) with the other
  /// loops running; returns its value or rethrows its error. Once per
  /// runtime: a second call, or a call on a thread that runs a loop,
  /// throws std::logic_error.
  template <class T>
  T run(task<T> main) {
    if constexpr (std::is_void_v<T>) {
      run_loops([&main](event_loop& loop, detail::runtime_state& rt) {
        corio::run(loop, stops(rt, std::move(main)));
      });
    } else {
      std::optional<T> value;
      run_loops([&main, &value](event_loop& loop, detail::runtime_state& rt) {
        value.emplace(corio::run(loop, stops(rt, std::move(main))));
      });
      return std::move(*value);
    }
  }

 private:
  // `main`, then the runtime's stop, however main ends.
  template <class T>
  static task<T> stops(detail::runtime_state& rt, task<T> main) {
    detail::call_result<T> out;
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(main);
        out.m_value.emplace(true);
      } else {
        out.m_value.emplace(co_await std::move(main));
      }
    } catch (...) {
      out.m_error = std::current_exception();
    }
    rt.stop();
    co_return out.take();
  }

  // Makes the loops and their threads, runs `body` on loop 0 (this
  // thread), and joins the threads, however body ends.
  void run_loops(const std::function<void(event_loop&, detail::runtime_state&)>& body);

  runtime_options m_options;
  std::size_t m_threads;
  bool m_ran = false;
};

/// Runs `main` on a runtime of `options.threads` loops (see runtime):
/// corio::run for every core.
///
/// \code
///   int main() {
///     return corio::run(serve_everything(), corio::runtime_options{.threads = 4});
///   }
/// \endcode
template <class T>
T run(task<T> main, runtime_options options) {
  runtime rt(std::move(options));
  return rt.run(std::move(main));
}

}  // namespace corio
