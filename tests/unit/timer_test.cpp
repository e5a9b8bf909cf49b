// Timers on the virtual clock: sleep, sleep_until, yield_now, now, and the
// deadline combinators (timeout, timeout_at, move_on_after).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "corio/corio.hpp"
#include "corio/loop/detail/timer_wheel.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;
using corio_test::wheel_tick;

namespace {

using ns = std::chrono::nanoseconds;

// Sleeps `d`, checks it woke in [d, d + tick) after `t0`, and records `d`.
corio::task<> sleep_and_record(ns d, corio::clock::time_point t0, std::vector<ns>& woke) {
  co_await corio::sleep(d);
  EXPECT_GE(corio::now() - t0, d);
  EXPECT_LT(corio::now() - t0, d + wheel_tick);
  woke.push_back(d);
}

corio::task<int> value_after(ns d, int v) {
  co_await corio::sleep(d);
  co_return v;
}

}  // namespace

TEST(Timer, NowDoesNotMoveWithoutSleeping) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    for (int i = 0; i < 10; ++i)
      co_await corio::yield_now();
    EXPECT_EQ(corio::now(), t0);
    co_await corio::sleep(1s);
    EXPECT_GE(corio::now() - t0, 1s);
    EXPECT_LT(corio::now() - t0, 1s + wheel_tick);
  });
}

TEST(Timer, ManyTimersFireInDeadlineOrder) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<ns> woke;
    std::vector<corio::join_handle<>> hs;
    constexpr int n = 64;
    for (int i = 0; i < n; ++i) {
      const int ms = (i * 37) % n + 1;  // a permutation of 1..n: spawn order is not deadline order
      hs.push_back(corio::spawn(sleep_and_record(std::chrono::milliseconds(ms), t0, woke)));
    }
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);  // the sleepers have not started yet
    co_await corio::yield_now();
    EXPECT_EQ(corio_test::stats().pending_timers, static_cast<std::size_t>(n));
    for (auto& h : hs)
      co_await h;
    std::vector<ns> expected;
    for (int ms = 1; ms <= n; ++ms)
      expected.push_back(std::chrono::milliseconds(ms));
    EXPECT_EQ(woke, expected);
  });
}

TEST(Timer, EqualDeadlinesAllFireInTheSameTick) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<int> woke;
    std::vector<corio::clock::time_point> at;
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 8; ++i) {
      hs.push_back(corio::spawn([](int i, std::vector<int>& woke,
                                   std::vector<corio::clock::time_point>& at) -> corio::task<> {
        co_await corio::sleep(5ms);
        woke.push_back(i);
        at.push_back(corio::now());
      }(i, woke, at)));
    }
    // A later timer must not fire before any of the equal ones.
    co_await corio::sleep(5ms + 2 * wheel_tick);
    EXPECT_EQ(woke.size(), 8U);
    for (auto& h : hs)
      co_await h;
    // The order among equal deadlines is unspecified (test builds shuffle it).
    std::sort(woke.begin(), woke.end());
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    for (const auto& t : at) {
      EXPECT_EQ(t, at.front());
      EXPECT_GE(t - t0, 5ms);
      EXPECT_LT(t - t0, 5ms + wheel_tick);
    }
  });
}

TEST(Timer, SleepZeroSuspendsButBarelyMovesTheClock) {
  run_virtual([]() -> corio::task<> {
    int other_ran = 0;
    auto h = corio::spawn([](int& r) -> corio::task<> {
      ++r;
      co_return;
    }(other_ran));
    const auto fired = corio_test::stats().timers_fired;
    const auto t0 = corio::now();
    co_await corio::sleep(0ms);
    EXPECT_EQ(other_ran, 1);  // it suspended: the ready task ran first
    EXPECT_EQ(corio_test::stats().timers_fired, fired + 1);
    EXPECT_LT(corio::now() - t0, wheel_tick + 1ns);
    co_await corio::sleep(-5ms);  // a negative duration is zero
    EXPECT_LT(corio::now() - t0, 2 * wheel_tick + 1ns);
    co_await h;
  });
}

TEST(Timer, YieldNowLetsReadyTasksRunWithoutTime) {
  run_virtual([]() -> corio::task<> {
    int steps = 0;
    auto h = corio::spawn([](int& s) -> corio::task<> {
      for (int i = 0; i < 3; ++i) {
        ++s;
        co_await corio::yield_now();
      }
    }(steps));
    const auto t0 = corio::now();
    EXPECT_EQ(steps, 0);
    co_await corio::yield_now();
    EXPECT_EQ(steps, 1);
    co_await corio::yield_now();
    EXPECT_EQ(steps, 2);
    co_await h;
    EXPECT_EQ(steps, 3);
    EXPECT_EQ(corio::now(), t0);
    EXPECT_EQ(corio_test::stats().timers_fired, 0U);
  });
}

// A task that yields between chunks of work lets due timers fire and I/O be
// looked at between them (asyncio's sleep(0)): each yield ends the loop's
// tick, where it used to run the yielder again up to the tick's budget
// (256 resumptions) before the timers were looked at.
TEST(Timer, EachYieldNowEndsTheTickSoTimersAreLookedAt) {
  run_virtual([]() -> corio::task<> {
    const std::uint64_t before = corio_test::stats().iterations;
    for (int i = 0; i < 100; ++i)
      co_await corio::yield_now();
    EXPECT_GE(corio_test::stats().iterations - before, 100U);
  });
}

TEST(Timer, SleepUntilPastOrPresentDeadlineReturnsInTheNextTick) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    co_await corio::sleep_until(t0 - 1h);
    EXPECT_LT(corio::now() - t0, wheel_tick);
    co_await corio::sleep_until(t0 + 250ms);
    EXPECT_GE(corio::now(), t0 + 250ms);
    EXPECT_LT(corio::now(), t0 + 250ms + wheel_tick);
  });
}

// Deadlines from microseconds to months land on every level of the wheel;
// each must fire at its own tick, in order.
TEST(Timer, LongSleepsUseUpperWheelLevels) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<ns> durations{3us, 700us, 5ms, 300ms, 20s,      61s,
                              2h,  25h,   72h, 240h,  24h * 45, 24h * 50};
    std::vector<ns> spawn_order(durations.rbegin(), durations.rend());
    std::vector<ns> woke;
    std::vector<corio::join_handle<>> hs;
    for (ns d : spawn_order)
      hs.push_back(corio::spawn(sleep_and_record(d, t0, woke)));
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(woke, durations);
  });
}

TEST(Timer, OneLongSleepFiresAtItsDeadline) {
  run_virtual([]() -> corio::task<> {
    std::vector<ns> woke;
    for (ns d : std::vector<ns>{1h, 24h, 24h * 7, 24h * 30}) {
      co_await sleep_and_record(d, corio::now(), woke);
    }
    EXPECT_EQ(woke.size(), 4U);
  });
}

// A sleep longer than the wheel's span is parked and re-placed; a sleep
// across a top-level window boundary lands in a wrapped top slot. Both fire
// at their own tick. The geometry comes from the wheel so that the test keeps
// probing its edges if the slot width changes.
TEST(Timer, SleepBeyondTheWheelSpanOrAcrossItsTopWindow) {
  using wheel = corio::detail::timer_wheel;
  static constexpr std::int64_t window_ns =
      std::int64_t{1} << (wheel::tick_shift + wheel::slot_bits * wheel::levels);
  static constexpr std::int64_t top_slot_ns = window_ns >> wheel::slot_bits;
  run_virtual([]() -> corio::task<> {
    std::vector<ns> woke;
    co_await sleep_and_record(ns(window_ns) + 24h, corio::now(), woke);  // beyond the span
    const std::int64_t now_ns = corio::now().time_since_epoch().count();
    const std::int64_t boundary = (now_ns / window_ns + 1) * window_ns;
    co_await corio::sleep_until(corio::clock::time_point(ns(boundary - 1'000'000)));
    co_await sleep_and_record(2h, corio::now(), woke);  // crosses the boundary
    EXPECT_EQ(woke.size(), 2U);

    // Many sleepers in flight across the next boundary, mixed with ones that
    // end before it, still wake in deadline order.
    const std::int64_t next = (corio::now().time_since_epoch().count() / window_ns + 1) * window_ns;
    co_await corio::sleep_until(corio::clock::time_point(ns(next - 3'600'000'000'000)));
    const auto t0 = corio::now();
    std::vector<ns> durations{1ms,
                              59min,
                              61min,
                              25h,
                              ns(top_slot_ns) - 1h,
                              ns(top_slot_ns) + 2h,
                              ns(window_ns) - 2h,
                              ns(window_ns) + 2h,
                              ns(window_ns) * 2};
    woke.clear();
    std::vector<corio::join_handle<>> hs;
    for (auto it = durations.rbegin(); it != durations.rend(); ++it)
      hs.push_back(corio::spawn(sleep_and_record(*it, t0, woke)));
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(woke, durations);
  });
}

TEST(Timer, CancelledSleepsLeaveTheOthersIntact) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<ns> woke;
    std::vector<corio::join_handle<>> hs;
    for (int i = 1; i <= 10; ++i)
      hs.push_back(corio::spawn(sleep_and_record(std::chrono::milliseconds(10 * i), t0, woke)));
    co_await corio::yield_now();
    EXPECT_EQ(corio_test::stats().pending_timers, 10U);
    for (int i = 0; i < 10; i += 2)
      EXPECT_TRUE(hs[i].cancel());
    EXPECT_EQ(corio_test::stats().pending_timers, 5U);  // removed at once, not when due
    for (int i = 0; i < 10; ++i) {
      if (i % 2 == 0) {
        EXPECT_THROW(co_await hs[i], corio::cancelled_error);
        EXPECT_TRUE(hs[i].cancelled());
      } else {
        co_await hs[i];
      }
    }
    EXPECT_EQ(woke, (std::vector<ns>{20ms, 40ms, 60ms, 80ms, 100ms}));
    EXPECT_EQ(corio_test::stats().timers_fired, 5U);
  });
}

TEST(Timeout, ValueWhenTheAwaitableFinishesFirst) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    EXPECT_EQ(co_await corio::timeout(10ms, value_after(3ms, 7)), 7);
    EXPECT_LT(corio::now() - t0, 3ms + wheel_tick);
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);  // the deadline timer is gone
    EXPECT_EQ(co_await corio::timeout_at(corio::now() + 10ms, value_after(3ms, 8)), 8);
    EXPECT_EQ(co_await corio::timeout(0ms, []() -> corio::task<int> { co_return 9; }()), 9);
  });
}

TEST(Timeout, TimeoutErrorWhenTheDeadlinePasses) {
  run_virtual([]() -> corio::task<> {
    auto t0 = corio::now();
    EXPECT_THROW(co_await corio::timeout(3ms, value_after(10ms, 1)), corio::timeout_error);
    EXPECT_GE(corio::now() - t0, 3ms);
    EXPECT_LT(corio::now() - t0, 3ms + wheel_tick);
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);  // the inner sleep's timer is gone
    t0 = corio::now();
    EXPECT_THROW(co_await corio::timeout_at(t0 + 4ms, value_after(10ms, 1)), corio::timeout_error);
    EXPECT_GE(corio::now() - t0, 4ms);
    EXPECT_LT(corio::now() - t0, 4ms + wheel_tick);
    // A deadline already passed: delivered at the first suspension.
    t0 = corio::now();
    EXPECT_THROW(co_await corio::timeout_at(t0 - 1s, value_after(10ms, 1)), corio::timeout_error);
    EXPECT_EQ(corio::now(), t0);
  });
}

TEST(Timeout, MoveOnAfterGivesValueOrNullopt) {
  run_virtual([]() -> corio::task<> {
    std::optional<int> a = co_await corio::move_on_after(10ms, value_after(1ms, 5));
    EXPECT_EQ(a, std::optional<int>(5));
    const auto t0 = corio::now();
    std::optional<int> b = co_await corio::move_on_after(2ms, value_after(1h, 6));
    EXPECT_FALSE(b.has_value());
    EXPECT_LT(corio::now() - t0, 2ms + wheel_tick);
    bool done = co_await corio::move_on_after(10ms, corio::sleep(1ms));
    EXPECT_TRUE(done);
    done = co_await corio::move_on_after(1ms, corio::sleep(10ms));
    EXPECT_FALSE(done);
  });
}

TEST(Timeout, ErrorsOfTheAwaitablePassThrough) {
  run_virtual([]() -> corio::task<> {
    auto fails = []() -> corio::task<int> {
      co_await corio::sleep(1ms);
      throw std::logic_error("inner");
    };
    EXPECT_THROW(co_await corio::timeout(1h, fails()), std::logic_error);
    EXPECT_THROW(co_await corio::move_on_after(1h, fails()), std::logic_error);
  });
}

TEST(Timeout, NestedInnerFiresFirst) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool inner_done = true;
    int v = co_await corio::timeout(1h, [](bool& d) -> corio::task<int> {
      d = co_await corio::move_on_after(5ms, corio::sleep(1h));
      co_await corio::sleep(1ms);  // the outer scope is still fine
      co_return 3;
    }(inner_done));
    EXPECT_EQ(v, 3);
    EXPECT_FALSE(inner_done);
    EXPECT_GE(corio::now() - t0, 6ms);
    EXPECT_LT(corio::now() - t0, 6ms + 2 * wheel_tick);
    // The inner timeout_error is the inner scope's: the outer passes it on.
    EXPECT_THROW(co_await corio::timeout(1h, corio::timeout(1ms, corio::sleep(1h))),
                 corio::timeout_error);
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);
  });
}

TEST(Timeout, NestedOuterFiresFirst) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool inner_saw_timeout = false, inner_saw_cancel = false;
    std::optional<int> r =
        co_await corio::move_on_after(5ms, [](bool& to, bool& ca) -> corio::task<int> {
          try {
            co_await corio::timeout(1h, corio::sleep(2h));
          } catch (const corio::timeout_error&) {
            to = true;
          } catch (const corio::cancelled_error&) {
            ca = true;
            throw;
          }
          co_return 1;
        }(inner_saw_timeout, inner_saw_cancel));
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(inner_saw_timeout);  // the inner scope did not convert the outer deadline
    EXPECT_TRUE(inner_saw_cancel);
    EXPECT_GE(corio::now() - t0, 5ms);
    EXPECT_LT(corio::now() - t0, 5ms + wheel_tick);
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);
  });
}

TEST(Timeout, OuterCancelIsNotATimeout) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<bool> {
      co_return co_await corio::move_on_after(1h, corio::sleep(2h));
    }());
    co_await corio::yield_now();
    EXPECT_EQ(corio_test::stats().pending_timers, 2U);  // deadline + sleep
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);
  });
}

// Slack rounding (real clock only): never early, late by less than
// min(slack, distance / 1024), and short sleeps are left exact.
TEST(TimerSlack, RoundingIsBoundedAndNeverEarly) {
  using corio::detail::round_up_by_slack;
  constexpr std::int64_t slack = 500'000;
  const std::int64_t now = 123'456'789'012;
  EXPECT_EQ(round_up_by_slack(now + 1'000'000, now, slack),
            now + 1'000'000);  // 1 ms: < 1 tick of slack
  EXPECT_EQ(round_up_by_slack(now + 5, now, slack), now + 5);
  EXPECT_EQ(round_up_by_slack(now - 5, now, slack), now - 5);  // already due
  for (std::int64_t d :
       {3'000'000LL, 10'000'000LL, 100'000'000LL, 1'000'000'000LL, 86'400'000'000'000LL}) {
    for (std::int64_t jitter : {0LL, 1LL, 777LL, 65'537LL}) {
      const std::int64_t when = now + d + jitter;
      const std::int64_t rounded = round_up_by_slack(when, now, slack);
      EXPECT_GE(rounded, when);
      EXPECT_LT(rounded - when, std::min(slack, (d + jitter) >> 10)) << d << " " << jitter;
    }
  }
  // Timers due close together far ahead share one deadline: at 1 s the
  // grain is 2^18 ns, so anything within 100 us before a grain edge joins it.
  const std::int64_t edge = round_up_by_slack(now + 1'000'000'000, now, slack);
  EXPECT_EQ(round_up_by_slack(edge - 100'000, now, slack), edge);
  EXPECT_EQ(round_up_by_slack(edge - 1, now, slack), edge);
}
