// Helpers shared by the unit tests: a virtual-clock loop that checks it is
// clean at the end, and small waiting helpers.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>

#include "corio/corio.hpp"

namespace corio_test {

/// One tick of the timer wheel: the virtual clock lands on the first tick at
/// or after a deadline, so a task wakes in [deadline, deadline + wheel_tick).
inline constexpr std::chrono::nanoseconds wheel_tick{1024};

/// The current loop's counters.
inline corio::loop_stats stats() {
  return corio::event_loop::current()->stats();
}

/// Runs `body()` (a coroutine returning a task) on a fresh virtual-clock loop.
/// When the body has returned, it must be the only live task and no timer may
/// be pending (checked before run()'s shutdown could hide a leftover task);
/// after the run, the loop must be empty.
template <class F>
void run_virtual(F body, corio::loop_options options = {}) {
  options.virtual_clock = true;
  corio::event_loop loop(options);
  corio::run(loop, [](F& b) -> corio::task<> {
    co_await b();
    const corio::loop_stats s = stats();
    EXPECT_EQ(s.live_tasks, 1U) << "a task was still running when the test body returned";
    EXPECT_EQ(s.pending_timers, 0U) << "a timer was still pending when the test body returned";
  }(body));
  const corio::loop_stats s = loop.stats();
  EXPECT_EQ(s.live_tasks, 0U) << "a task outlived the test";
  EXPECT_EQ(s.pending_timers, 0U) << "a timer outlived the test";
}

/// Lets the loop run (one wheel tick at a time) until the calling task is the
/// only live task, e.g. after dropping a generator whose children were
/// cancelled. Gives up after `max_ticks`.
inline corio::task<> settle(int max_ticks = 100000) {
  for (int i = 0; i < max_ticks && stats().live_tasks > 1; ++i)
    co_await corio::sleep(wheel_tick);
}

}  // namespace corio_test
