// The loop's hooks table (loop/detail/loop_hooks.hpp): the loop calls each
// hook it was asked for, at the point its comment names, and none it was
// not asked for. Observation (src/observe) is one user of the table; these
// tests install their own.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "corio/loop/detail/loop_hooks.hpp"

using namespace std::chrono_literals;

namespace {

using corio::detail::task_base;

constexpr std::uint32_t k_all_events =
    corio::detail::hook_tick | corio::detail::hook_resume | corio::detail::hook_poll |
    corio::detail::hook_task_destroyed | corio::detail::hook_task_dropped |
    corio::detail::hook_sleep | corio::detail::hook_run | corio::detail::hook_blocking_call;

// Counts every call, and records the order of the run-level ones.
struct counting_hooks final : corio::detail::loop_hooks {
  explicit counting_hooks(std::uint32_t events) : loop_hooks(events) {}

  void tick_started() noexcept override { ++ticks; }
  void before_resume(task_base& t) noexcept override {
    ++resumed;
    in_resumption = &t;
  }
  void after_resume(task_base* t) override {
    if (t == nullptr) ++resumptions_that_ended_the_task;
    if (t != nullptr && t != in_resumption) ++mismatched;
    in_resumption = nullptr;
  }
  void before_poll() noexcept override { ++polls_started; }
  void after_poll() noexcept override { ++polls_ended; }
  void task_destroyed(task_base& /*t*/) noexcept override { ++destroyed; }
  void task_dropped(task_base& /*t*/, bool started) noexcept override {
    ++(started ? dropped_pending : dropped_unawaited);
  }
  void sleep_resumed(std::int64_t /*deadline_ns*/) noexcept override { ++sleeps; }
  void run_started() override { order.emplace_back("run_started"); }
  void main_done(std::size_t live) override {
    order.emplace_back("main_done");
    live_at_main_done = live;
  }
  void run_finished() noexcept override { order.emplace_back("run_finished"); }
  void blocking_call(const char* what) override { blocking.emplace_back(what); }

  int ticks = 0;
  int resumed = 0;
  int resumptions_that_ended_the_task = 0;
  int mismatched = 0;
  task_base* in_resumption = nullptr;
  int polls_started = 0;
  int polls_ended = 0;
  int destroyed = 0;
  int dropped_pending = 0;
  int dropped_unawaited = 0;
  int sleeps = 0;
  std::size_t live_at_main_done = 0;
  std::vector<std::string> order;
  std::vector<std::string> blocking;
};

corio::task<int> value(int v) {
  co_return v;
}

corio::task<> sleeper(std::chrono::milliseconds d) {
  co_await corio::sleep(d);
}

corio::task<> forever() {
  co_await corio::sleep(std::chrono::hours(1));
}

// Exercises every hooked event once or a known number of times.
corio::task<> workload() {
  co_await corio::spawn(sleeper(1ms));  // a sleep, a root destroyed
  co_await corio::spawn(value(1));
  { auto never_awaited = value(2); }  // dropped unawaited
  corio::detail::note_blocking_call("a blocking call");
  corio::spawn(forever(), "left running");  // alive when main ends
  co_return;
}

counting_hooks& install(corio::event_loop& loop, std::uint32_t events) {
  auto hooks = std::make_unique<counting_hooks>(events);
  counting_hooks& h = *hooks;
  corio::detail::install_hooks(loop, std::move(hooks));
  return h;
}

TEST(Hooks, TheLoopCallsEveryHookItWasAskedFor) {
  // The real clock: a poll that may block happens only when the loop waits.
  corio::event_loop loop({.stats = false});
  counting_hooks& h = install(loop, k_all_events);
  corio::run(loop, workload());

  EXPECT_EQ(h.order, (std::vector<std::string>{"run_started", "main_done", "run_finished"}));
  EXPECT_EQ(h.live_at_main_done, 1U) << "the task left running";
  const corio::loop_stats s = loop.stats();
  EXPECT_EQ(h.ticks, static_cast<int>(s.iterations));
  EXPECT_EQ(h.resumed, static_cast<int>(s.resumptions));
  EXPECT_EQ(h.mismatched, 0) << "after_resume got another task than before_resume";
  // The sleeper, value(1) and the one left running (cancelled at shutdown).
  // main's frame goes after run() has left the loop, with its handle.
  EXPECT_EQ(h.destroyed, 3);
  // Only the task left running had no handle, so only its frame went in its
  // own last resumption; the others went when their handles did.
  EXPECT_EQ(h.resumptions_that_ended_the_task, 1);
  EXPECT_EQ(h.sleeps, 1) << "the cancelled hour-long sleep did not resume as a sleep";
  EXPECT_EQ(h.dropped_unawaited, 1);
  EXPECT_EQ(h.dropped_pending, 0);
  EXPECT_GE(h.polls_started, 1) << "the 1 ms sleep had the loop wait in a poll";
  EXPECT_EQ(h.polls_started, h.polls_ended);
  EXPECT_EQ(h.blocking, (std::vector<std::string>{"a blocking call"}));
}

TEST(Hooks, NoHookIsCalledThatWasNotAskedFor) {
  corio::event_loop loop({.stats = false});
  counting_hooks& h = install(loop, corio::detail::hook_sleep);
  corio::run(loop, workload());
  EXPECT_EQ(h.sleeps, 1);
  EXPECT_EQ(h.ticks + h.resumed + h.polls_started + h.destroyed + h.dropped_unawaited, 0);
  EXPECT_TRUE(h.order.empty());
  EXPECT_TRUE(h.blocking.empty());
}

TEST(Hooks, RunKeepsHooksAlreadyInstalledInsteadOfObserving) {
  corio::event_loop loop({.virtual_clock = true});
  counting_hooks& h = install(loop, corio::detail::hook_run);
  corio::run(loop, value(3));
  corio::run(loop, value(4));  // a second run on the same loop reuses them
  EXPECT_EQ(h.order.size(), 6U);
  EXPECT_EQ(corio::timer_lag(loop).count(), 0U) << "no observer was attached";
}

}  // namespace
