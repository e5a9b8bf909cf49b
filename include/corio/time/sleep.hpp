// sleep, sleep_until, yield_now.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>
#include <utility>

#include "corio/detail/clock.hpp"
#include "corio/loop/detail/loop_core.hpp"

namespace corio {

namespace detail {

/// `d` in nanoseconds, saturated at the int64 range: `hours::max()` must
/// mean "never", not wrap round to the past (duration_cast overflows).
/// Integer durations cost one or two compares (sleep is a hot path).
template <class Rep, class Period>
[[nodiscard]] constexpr std::int64_t saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using limits = std::numeric_limits<std::int64_t>;
  using per_tick = std::ratio_divide<Period, std::nano>;  // ns per tick of d
  if constexpr (std::is_integral_v<Rep> && per_tick::den == 1) {
    constexpr std::int64_t bound = limits::max() / per_tick::num;
    const Rep c = d.count();
    if (std::cmp_greater(c, bound)) return limits::max();
    if (std::cmp_less(c, -bound)) return limits::min();
    return static_cast<std::int64_t>(c) * per_tick::num;
  } else {
    // Floating or sub-nanosecond ticks: compared in long double, whose
    // range holds every duration's.
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (ns >= static_cast<long double>(limits::max())) return limits::max();
    if (ns <= static_cast<long double>(limits::min())) return limits::min();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }
}

/// `base + delta`, saturated: a deadline far enough away is the end of time.
[[nodiscard]] constexpr std::int64_t saturating_add(std::int64_t base,
                                                    std::int64_t delta) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(base, delta, &sum))
    return delta > 0 ? std::numeric_limits<std::int64_t>::max()
                     : std::numeric_limits<std::int64_t>::min();
  return sum;
}

struct sleep_awaiter : waiter, timer_node {
  std::int64_t m_deadline_ns;
  explicit sleep_awaiter(std::int64_t deadline_ns) noexcept : m_deadline_ns(deadline_ns) {}
  static constexpr bool await_ready() noexcept { return false; }
  void on_abort() noexcept { current_loop().timers().cancel(*this); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    if (!park(*this, h, "sleep")) return false;
    m_fire = [](timer_node& t) noexcept { static_cast<sleep_awaiter&>(t).wake(); };
    m_when_ns = m_deadline_ns;
    current_loop().add_timer(*this);
    return true;
  }
  void await_resume() {
    finish();
    // Woken by its timer: how late it runs is the loop's lag.
    current_loop().note_sleep_resumed(m_deadline_ns);
  }
};

struct yield_awaiter : waiter {
  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    if (!park(*this, h, "yield_now")) return false;
    m_task->m_flags = (m_task->m_flags & ~tf_yield_odd) | tf_yielded |
                      (current_loop().odd_tick() ? tf_yield_odd : 0U);
    wake();
    return true;
  }
  void await_resume() { finish(); }
};

}  // namespace detail

/// Suspends the current task until the loop's clock reaches `deadline`.
/// Cancellation: the timer is removed at once.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(clock::time_point deadline) noexcept {
  return detail::sleep_awaiter(deadline.time_since_epoch().count());
}

/// Suspends the current task for `d` (at least one loop iteration, even for
/// zero), measured from the call: the clock is read afresh here, so however
/// long the current tick has run, the task never wakes early. Cancellation:
/// the timer is removed at once.
///
/// \code
///   co_await corio::sleep(std::chrono::milliseconds(5));
/// \endcode
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
  const std::int64_t ns = detail::saturating_ns(d);
  return detail::sleep_awaiter(
      detail::saturating_add(detail::current_loop().refresh_now_ns(), ns > 0 ? ns : 0));
}

/// Lets every other ready task run once, and the loop fire due timers and
/// look at I/O, before this one continues (asyncio's `sleep(0)`): the task
/// goes to the back of the ready queue and the loop ends its tick when it
/// comes up again. A cancellation pending is delivered here.
[[nodiscard]] inline detail::yield_awaiter yield_now() noexcept {
  return {};
}

/// The current loop's time (of this tick).
[[nodiscard]] inline clock::time_point now() noexcept {
  return clock::time_point(clock::duration(detail::current_loop().now_ns()));
}

}  // namespace corio
