// Cancellation: waiters are unlinked at once, and nothing is lost.
#include <gtest/gtest.h>

#include <chrono>

#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

template <class F>
void run_virtual(F body) {
  corio::event_loop loop({.virtual_clock = true});
  corio::run(loop, body());
  const corio::loop_stats s = loop.stats();
  EXPECT_EQ(s.live_tasks, 0U) << "a task outlived the test";
  EXPECT_EQ(s.pending_timers, 0U) << "a timer outlived the test";
}

}  // namespace

TEST(Cancel, CancelledSleepRemovesItsTimerAtOnce) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<> { co_await corio::sleep(1h); }());
    co_await corio::yield_now();
    EXPECT_EQ(corio::event_loop::current()->stats().pending_timers, 1U);
    EXPECT_TRUE(h.cancel());
    EXPECT_EQ(corio::event_loop::current()->stats().pending_timers, 0U);
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_TRUE(h.cancelled());
  });
}

TEST(Cancel, TaskCancelledBeforeItStartsNeverRuns) {
  run_virtual([]() -> corio::task<> {
    bool ran = false;
    auto h = corio::spawn([](bool& r) -> corio::task<> {
      r = true;
      co_return;
    }(ran));
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_FALSE(ran);
  });
}

TEST(Cancel, SemaphorePermitHandedToCancelledWaiterPassesOn) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(0);
    int got = 0;
    auto waiter = [](corio::semaphore& s, int& g) -> corio::task<> {
      co_await s.acquire();
      ++g;
    };
    auto a = corio::spawn(waiter(sem, got));
    auto b = corio::spawn(waiter(sem, got));
    co_await corio::yield_now();
    EXPECT_EQ(sem.waiters(), 2U);
    sem.release();  // handed to a
    a.cancel();     // woken, then cancelled before it resumed
    EXPECT_THROW(co_await a, corio::cancelled_error);
    co_await b;  // the permit went on to b
    EXPECT_EQ(got, 1);
    EXPECT_EQ(sem.available(), 0U);
  });
}

TEST(Cancel, QueueItemHandedToCancelledPopperIsNotLost) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(4);
    auto popper = corio::spawn(
        [](corio::queue<int>& q) -> corio::task<int> { co_return co_await q.pop(); }(q));
    co_await corio::yield_now();
    co_await q.push(7);  // handed straight to the waiting popper
    popper.cancel();
    EXPECT_THROW(co_await popper, corio::cancelled_error);
    EXPECT_EQ(q.size(), 1U);
    EXPECT_EQ(*q.try_pop(), 7);
  });
}

TEST(Cancel, SlotGrantedToCancelledPusherPassesOn) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(0);
    auto p1 = corio::spawn([](corio::queue<int>& q) -> corio::task<> { co_await q.push(1); }(q));
    auto p2 = corio::spawn([](corio::queue<int>& q) -> corio::task<> { co_await q.push(2); }(q));
    co_await corio::yield_now();
    EXPECT_EQ(co_await q.pop(), 0);  // grants the slot to p1
    p1.cancel();                     // p1 never enqueues: the slot goes to p2
    EXPECT_THROW(co_await p1, corio::cancelled_error);
    co_await p2;
    EXPECT_EQ(co_await q.pop(), 2);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Cancel, TimeoutConvertsOnlyItsOwnDeadline) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    EXPECT_THROW(co_await corio::timeout(5ms, corio::sleep(1h)), corio::timeout_error);
    // Fires at the first wheel tick (1024 ns) at or after the deadline.
    EXPECT_GE(corio::now() - t0, 5ms);
    EXPECT_LT(corio::now() - t0, 5ms + 2us);
    // An outer cancel inside a timeout stays a cancellation.
    auto h =
        corio::spawn([]() -> corio::task<> { co_await corio::timeout(1h, corio::sleep(2h)); }());
    co_await corio::yield_now();
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
  });
}

TEST(Cancel, ShieldDefersCancellationToTheNextSuspension) {
  run_virtual([]() -> corio::task<> {
    bool finished_shielded = false;
    auto h = corio::spawn([](bool& f) -> corio::task<> {
      co_await corio::shield(corio::sleep(10ms));
      f = true;
      co_await corio::sleep(1ms);  // the deferred cancellation lands here
    }(finished_shielded));
    co_await corio::yield_now();
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_TRUE(finished_shielded);
  });
}

TEST(Cancel, TaskGroupFailureCancelsSiblingsAndBody) {
  run_virtual([]() -> corio::task<> {
    bool sibling_cancelled = false, body_cancelled = false;
    try {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.spawn([](bool& c) -> corio::task<> {
          try {
            co_await corio::sleep(1h);
          } catch (const corio::cancelled_error&) {
            c = true;
            throw;
          }
        }(sibling_cancelled));
        g.spawn([]() -> corio::task<> {
          co_await corio::sleep(1ms);
          throw std::runtime_error("boom");
        }());
        try {
          co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
          body_cancelled = true;
          throw;
        }
      });
      ADD_FAILURE() << "the group did not throw";
    } catch (const corio::task_group_error& e) {
      EXPECT_EQ(e.errors().size(), 1U);
    }
    EXPECT_TRUE(sibling_cancelled);
    EXPECT_TRUE(body_cancelled);
  });
}

TEST(Cancel, CancellingGatherCancelsAndAwaitsChildren) {
  run_virtual([]() -> corio::task<> {
    int cleaned = 0;
    auto child = [](int& c) -> corio::task<int> {
      bool cancelled = false;
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        cancelled = true;
      }
      if (cancelled) {
        co_await corio::sleep(1ms);  // cleanup that awaits
        ++c;
        throw corio::cancelled_error();
      }
      co_return 0;
    };
    std::vector<corio::task<int>> ts;
    for (int i = 0; i < 3; ++i)
      ts.push_back(child(cleaned));
    auto h = corio::spawn(corio::gather(std::move(ts)));
    co_await corio::yield_now();
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_EQ(cleaned, 3);  // every child finished its cleanup before gather returned
  });
}

TEST(Run, LeftoverTasksAreCancelledOnExit) {
  corio::event_loop loop({.virtual_clock = true});
  bool cancelled = false;
  corio::run(loop, [](bool& c) -> corio::task<> {
    corio::spawn([](bool& c) -> corio::task<> {
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        c = true;
        throw;
      }
    }(c));
    co_return;
  }(cancelled));
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(loop.stats().live_tasks, 0U);
}

TEST(Run, DeadlockIsReportedNotHung) {
  EXPECT_THROW(corio::run(
                   []() -> corio::task<> {
                     corio::event e;
                     co_await e.wait();
                   }(),
                   {.virtual_clock = true}),
               std::runtime_error);
}

// A scope's deadline moves as a server's does before each read: later
// costs no timer operation, earlier re-arms, `never` disarms, and a
// deadline that passed while the task was busy is withdrawn by a move.
namespace {

std::int64_t ns_from_now(std::chrono::nanoseconds d) {
  return corio::detail::current_loop().now_ns() + d.count();
}

// Sleeps `d` under the scope: true when the scope's deadline ended it.
corio::task<bool> sleep_under(corio::detail::scope_guard& scope, std::chrono::nanoseconds d) {
  bool timed_out = false;
  try {
    co_await corio::sleep(d);
  } catch (const corio::cancelled_error&) {
    if (!scope.timed_out()) throw;
    timed_out = true;
  }
  if (timed_out) scope.clear_timeout();
  co_return timed_out;
}

}  // namespace

TEST(Cancel, AMovedDeadlineCancelsAtItsLatestValue) {
  run_virtual([]() -> corio::task<> {
    const auto start = corio::now();
    corio::detail::scope_guard scope(ns_from_now(10s), true);
    EXPECT_EQ(corio::event_loop::current()->stats().pending_timers, 1U);
    // Later: only recorded; the timer fires at 10 s and re-arms at 30 s.
    scope.set_deadline(ns_from_now(30s));
    EXPECT_EQ(corio::event_loop::current()->stats().pending_timers, 1U);
    EXPECT_TRUE(co_await sleep_under(scope, 1h));
    EXPECT_GE(corio::now() - start, 30s);
    EXPECT_LT(corio::now() - start, 31s);
    // Earlier than the timer armed: re-armed at once.
    scope.set_deadline(ns_from_now(1h));
    scope.set_deadline(ns_from_now(2s));
    const auto second = corio::now();
    EXPECT_TRUE(co_await sleep_under(scope, 1h));
    EXPECT_GE(corio::now() - second, 2s);
    EXPECT_LT(corio::now() - second, 3s);
    // Never: the sleep runs out first.
    scope.set_deadline(corio::detail::scope_guard::never);
    EXPECT_FALSE(co_await sleep_under(scope, 5s));
  });
}

TEST(Cancel, ADeadlinePastWhileBusyIsWithdrawnWhenMovedAhead) {
  run_virtual([]() -> corio::task<> {
    corio::detail::scope_guard scope(ns_from_now(1s), true);
    // The deadline passes while the task is shielded: the timer fires and
    // leaves the request pending.
    co_await corio::shield(corio::sleep(2s));
    scope.set_deadline(ns_from_now(10s));
    EXPECT_FALSE(co_await sleep_under(scope, 5s)) << "a withdrawn deadline cancelled the sleep";
    // A deadline already past is delivered at the next suspension.
    scope.set_deadline(ns_from_now(-1s));
    EXPECT_TRUE(co_await sleep_under(scope, 5s));
    scope.set_deadline(corio::detail::scope_guard::never);
  });
}

TEST(Cancel, AMovedDeadlineNeverHidesACancellationFromOutside) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<> {
      corio::detail::scope_guard scope(ns_from_now(1s), true);
      for (;;) {
        scope.set_deadline(ns_from_now(1s));
        (void)co_await sleep_under(scope, 1h);
      }
    }());
    co_await corio::sleep(5500ms);  // five timeouts handled, then a cancel
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
  });
}
