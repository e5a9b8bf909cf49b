// The real clock: sleeps never end early, whatever the tick did before.
// These tests assert lower bounds only, which a slow machine cannot break.
#include <gtest/gtest.h>

#include <chrono>

#include "corio/corio.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

void spin_for(std::chrono::nanoseconds d) {
  const auto end = steady::now() + d;
  while (steady::now() < end) {
  }
}

}  // namespace

TEST(RealClock, SleepAfterALongTickStillWaitsTheFullDuration) {
  corio::event_loop loop;
  const auto slept = corio::run(loop, []() -> corio::task<steady::duration> {
    // The tick's cached time is now 5 ms old; the sleep must not start there.
    spin_for(5ms);
    const auto t0 = steady::now();
    co_await corio::sleep(2ms);
    co_return steady::now() - t0;
  }());
  EXPECT_GE(slept, 2ms);
}

TEST(RealClock, SpawnedSleepersStartedInALongTickWaitTheirFullDuration) {
  corio::event_loop loop;
  corio::run(loop, []() -> corio::task<> {
    std::vector<corio::join_handle<steady::duration>> hs;
    for (int i = 0; i < 100; ++i) {
      hs.push_back(corio::spawn([]() -> corio::task<steady::duration> {
        const auto t0 = steady::now();
        co_await corio::sleep(1ms);
        co_return steady::now() - t0;
      }()));
      spin_for(20us);  // this task keeps the tick busy while the others wait to start
    }
    for (auto& h : hs)
      EXPECT_GE(co_await h, 1ms);
  }());
  EXPECT_EQ(loop.stats().live_tasks, 0U);
  EXPECT_EQ(loop.stats().pending_timers, 0U);
}

TEST(RealClock, TimerSlackZeroAndDefaultBothNeverFireEarly) {
  for (auto slack : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(250us)}) {
    corio::event_loop loop({.timer_slack = slack});
    const auto slept = corio::run(loop, []() -> corio::task<steady::duration> {
      const auto t0 = steady::now();
      co_await corio::sleep(300us);
      co_return steady::now() - t0;
    }());
    EXPECT_GE(slept, 300us) << "slack " << slack.count() << " ns";
  }
}
