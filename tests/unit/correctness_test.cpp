// Regressions for the defects an independent acceptance suite found (issue
// 16): each test failed before its fix. The numbers are the items.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;
using corio_test::stats;

namespace {

corio::task<int> value_after(std::chrono::nanoseconds d, int v) {
  co_await corio::sleep(d);
  co_return v;
}

corio::task<> nap(std::chrono::nanoseconds d) {
  co_await corio::sleep(d);
}

corio::task<int> fail_after(std::chrono::nanoseconds d) {
  co_await corio::sleep(d);
  throw std::runtime_error("failed on purpose");
}

// Awaits `h`; true when the task ended by a cancellation.
template <class T>
corio::task<bool> ends_cancelled(corio::join_handle<T>& h) {
  try {
    (void)co_await h;
  } catch (const corio::cancelled_error&) {
    co_return true;
  }
  co_return false;
}

// 1. A timeout that expires in the tick of the sleep it cuts short.
corio::task<> timeout_in_the_sleeps_tick() {
  const bool completed = co_await corio::move_on_after(5ms, corio::sleep(5ms));
  (void)completed;  // either may win the tick; what matters is the count
  EXPECT_EQ(stats().pending_timers, 0U);
  auto h = corio::spawn(nap(10ms));
  co_await h;
  EXPECT_EQ(stats().pending_timers, 0U);
}

}  // namespace

TEST(Correctness, TimeoutInTheSleepsTickLosesNoTimerVirtual) {
  run_virtual(timeout_in_the_sleeps_tick);
}

TEST(Correctness, TimeoutInTheSleepsTickLosesNoTimerRealClock) {
  corio::run(timeout_in_the_sleeps_tick());
}

TEST(Correctness, TimerWheelCountsAnExpiredTimerCancelledBeforeItFired) {
  corio::detail::timer_wheel wheel;
  wheel.reset(0);
  corio::detail::timer_node a;
  corio::detail::timer_node b;
  a.m_when_ns = b.m_when_ns = 5'000'000;
  wheel.insert(a);
  wheel.insert(b);
  wheel.advance(6'000'000);
  ASSERT_EQ(wheel.size(), 2U);  // expired, not yet fired
  corio::detail::timer_node* first = wheel.pop_expired();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(wheel.size(), 1U);
  wheel.cancel(first == &a ? b : a);  // the first one's fire cancels the other
  EXPECT_EQ(wheel.size(), 0U);
  EXPECT_EQ(wheel.pop_expired(), nullptr);
  EXPECT_EQ(wheel.next_deadline_ns(), -1);
}

// 2. An outside cancel that arrives while a timed-out body cleans up.
TEST(Correctness, CancelDuringATimedOutBodysCleanupIsNotLost) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<> {
      co_await corio::move_on_after(
          10ms, corio::with_task_group([](corio::task_group& g) -> corio::task<> {
            g.spawn(corio::shield(corio::sleep(20ms)));
            co_await corio::sleep(1h);
          }));
      co_await corio::sleep(1h);
    }());
    co_await corio::sleep(15ms);
    const auto t0 = corio::now();
    h.cancel();
    EXPECT_TRUE(co_await ends_cancelled(h));
    EXPECT_LT(corio::now() - t0, 1s) << "the task ran on after its cancellation";
  });
}

TEST(Correctness, TimeoutStillConvertsItsOwnDeadlineAfterACleanup) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    const auto r = co_await corio::move_on_after(
        10ms, corio::with_task_group([](corio::task_group& g) -> corio::task<int> {
          g.spawn(corio::shield(corio::sleep(20ms)));
          co_await corio::sleep(1h);
          co_return 1;
        }));
    EXPECT_FALSE(r.has_value());
    EXPECT_GE(corio::now() - t0, 20ms);  // the shielded child was awaited
  });
}

// 2, the rarer variant: a child failing in the cleanup that an outside
// cancel started does not turn the cancellation into a task_group_error,
// and its failure is reported rather than lost.
TEST(Correctness, AFailureDuringCancelCleanupDoesNotReplaceTheCancel) {
  std::vector<std::string> reports;
  run_virtual(
      []() -> corio::task<> {
        auto h = corio::spawn([]() -> corio::task<> {
          co_await corio::with_task_group([](corio::task_group& g) -> corio::task<> {
            g.spawn(corio::with_task_group([](corio::task_group& inner) -> corio::task<> {
              inner.spawn([]() -> corio::task<> {
                bool cancelled = false;
                try {
                  co_await corio::sleep(1h);
                } catch (const corio::cancelled_error&) {
                  cancelled = true;
                }
                if (cancelled) throw std::runtime_error("cleanup failed");
              }());
              co_await corio::sleep(1h);
            }));
            co_await corio::sleep(1h);
          });
          co_await corio::sleep(1h);
        }());
        co_await corio::sleep(1ms);
        h.cancel();
        EXPECT_TRUE(co_await ends_cancelled(h));
      },
      {.report = [&reports](const std::string& m) { reports.push_back(m); }});
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports.front().find("cleanup failed"), std::string::npos) << reports.front();
}

// 3. run() returns once a cancelled offload's job has come back.
TEST(Correctness, RunReturnsAfterACancelledOffloadFinishes) {
  for (auto backend : {corio::io_backend_kind::epoll, corio::io_backend_kind::uring}) {
    corio::thread_pool pool(1);
    bool timed_out = false;
    corio::run(
        [](corio::thread_pool& p, bool& timed_out) -> corio::task<> {
          const auto r = co_await corio::move_on_after(10ms, corio::offload(p, [] {
                                                         std::this_thread::sleep_for(100ms);
                                                         return 1;
                                                       }));
          timed_out = !r.has_value();
        }(pool, timed_out),
        {.backend = backend});
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(pool.stats().completed, 1U) << "run() returned before the job came back";
  }
}

// 4. queue(1) never holds two items, even while a hand-over is undone.
TEST(Correctness, QueueNeverExceedsItsCapacity) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    auto popper = corio::spawn(
        [](corio::queue<int>& q) -> corio::task<int> { co_return co_await q.pop(); }(q));
    co_await corio::yield_now();  // the popper waits
    co_await q.push(1);           // handed straight to the popper
    EXPECT_TRUE(q.full()) << "the item in flight to the popper must count";
    EXPECT_FALSE(q.try_push(2));
    auto pusher = corio::spawn(
        [](corio::queue<int>& q) -> corio::task<> { co_await q.push(2); }(q));  // waits for room
    popper.cancel();  // before it resumed: 1 goes back
    EXPECT_TRUE(co_await ends_cancelled(popper));
    EXPECT_LE(q.size(), 1U);
    EXPECT_EQ(co_await q.pop(), 1);
    EXPECT_EQ(co_await q.pop(), 2);
    co_await pusher;
    EXPECT_TRUE(q.empty());
  });
}

// Two poppers handed items and both cancelled before they resumed: the
// items come back in the order they were pushed, and a bounded queue still
// never holds more than its capacity.
TEST(Correctness, ItemsGivenBackByCancelledPoppersKeepTheirOrder) {
  for (std::size_t capacity : {std::size_t{2}, std::size_t{0}}) {
    run_virtual([capacity]() -> corio::task<> {
      corio::queue<int> q(capacity);
      auto pop = [](corio::queue<int>& q) -> corio::task<int> { co_return co_await q.pop(); };
      auto p1 = corio::spawn(pop(q));
      auto p2 = corio::spawn(pop(q));
      co_await corio::yield_now();  // both wait
      co_await q.push(1);           // handed to p1, which has not resumed
      co_await q.push(2);           // handed to p2
      const bool stored = q.try_push(3);
      EXPECT_EQ(stored, capacity == 0) << "the two items in transit fill a queue of 2";
      p1.cancel();
      p2.cancel();
      for (auto* h : {&p1, &p2}) {
        try {
          (void)co_await *h;
        } catch (const corio::cancelled_error&) {
        }
      }
      if (capacity != 0) {
        EXPECT_LE(q.size(), capacity);
      }
      EXPECT_EQ(co_await q.pop(), 1);
      if (!stored) co_await q.push(3);  // room again
      EXPECT_EQ(co_await q.pop(), 2);
      EXPECT_EQ(co_await q.pop(), 3);
    });
  }
}

// 5. A child spawned into a group that is already cancelling starts cancelled.
TEST(Correctness, ChildSpawnedAfterGroupCancelIsCancelled) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool child_ran = false;
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.cancel();
      g.spawn([](bool& ran) -> corio::task<> {
        ran = true;
        co_await corio::sleep(1h);
      }(child_ran));
      co_return;
    });
    EXPECT_FALSE(child_ran) << "a child of a cancelled group must start cancelled";
    EXPECT_LT(corio::now() - t0, 1s);
  });
}

TEST(Correctness, ChildSpawnedAfterTheFirstFailureIsCancelled) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool failed = false;
    try {
      co_await corio::with_task_group([](corio::task_group& g) -> corio::task<> {
        g.spawn(fail_after(1ms));
        bool cancelled = false;
        try {
          co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
          cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        g.spawn(nap(1h));
      });
    } catch (const corio::task_group_error&) {
      failed = true;
    }
    EXPECT_TRUE(failed);
    EXPECT_LT(corio::now() - t0, 1s);
  });
}

// 6. as_completed yields a failure at its turn and goes on.
TEST(Correctness, AsCompletedGoesOnAfterAFailure) {
  run_virtual([]() -> corio::task<> {
    std::vector<corio::task<int>> tasks;
    tasks.push_back(value_after(30ms, 3));
    tasks.push_back(fail_after(10ms));
    tasks.push_back(value_after(20ms, 2));
    auto results = corio::as_completed(std::move(tasks));
    std::vector<std::string> seen;
    for (;;) {
      std::optional<int> r;
      try {
        r = co_await results.next();
      } catch (const std::runtime_error& e) {
        seen.emplace_back(e.what());
        continue;
      }
      if (!r) break;
      seen.push_back(std::to_string(*r));
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"failed on purpose", "2", "3"}));
  });
}

TEST(Correctness, AsCompletedCancelledConsumerAwaitsItsTasks) {
  run_virtual([]() -> corio::task<> {
    auto consumer = corio::spawn([]() -> corio::task<> {
      std::vector<corio::task<int>> tasks;
      tasks.push_back(corio::shield(value_after(20ms, 1)));
      tasks.push_back(value_after(1h, 2));
      auto results = corio::as_completed(std::move(tasks));
      while (co_await results.next()) {
      }
    }());
    co_await corio::sleep(5ms);
    consumer.cancel();
    EXPECT_TRUE(co_await ends_cancelled(consumer));
    EXPECT_EQ(stats().live_tasks, 1U) << "as_completed left its tasks running";
  });
}

// 7. A result can be taken once; a second await is a clear error.
TEST(Correctness, SecondAwaitOfAJoinHandleIsALogicError) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<std::string> { co_return std::string(100, 'x'); }());
    const std::string first = co_await h;
    EXPECT_EQ(first, std::string(100, 'x'));
    bool threw = false;
    try {
      (void)co_await h;
    } catch (const std::logic_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw) << "a second await must not give a moved-from value";
    EXPECT_THROW((void)h.result(), std::logic_error);
  });
}

TEST(Correctness, TwoAwaitersOfOneHandle) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn([]() -> corio::task<std::vector<int>> {
      co_await corio::sleep(1ms);
      co_return std::vector<int>{1, 2, 3};
    }());
    auto waiter = [](corio::join_handle<std::vector<int>>& h) -> corio::task<int> {
      try {
        co_return static_cast<int>((co_await h).size());
      } catch (const std::logic_error&) {
        co_return -1;
      }
    };
    auto a = corio::spawn(waiter(h));
    auto b = corio::spawn(waiter(h));
    const int ra = co_await a;
    const int rb = co_await b;
    EXPECT_EQ(ra + rb, 2) << "one gets the vector, the other a logic_error";
    EXPECT_TRUE((ra == 3 && rb == -1) || (ra == -1 && rb == 3));
  });
}

TEST(Correctness, ErrorsAndVoidResultsCanBeAwaitedAgain) {
  run_virtual([]() -> corio::task<> {
    auto v = corio::spawn(nap(1ms));
    co_await v;
    co_await v;  // nothing was moved out
    auto f = corio::spawn(fail_after(1ms));
    for (int i = 0; i < 2; ++i) {
      bool threw = false;
      try {
        (void)co_await f;
      } catch (const std::runtime_error&) {
        threw = true;
      }
      EXPECT_TRUE(threw);
    }
  });
}

// 8. The variadic gather starts its tasks in argument order.
TEST(Correctness, VariadicGatherStartsInArgumentOrder) {
  run_virtual(
      []() -> corio::task<> {
        std::vector<int> started;
        auto record = [](std::vector<int>& s, int i) -> corio::task<int> {
          s.push_back(i);
          co_return i;
        };
        auto r = co_await corio::gather(record(started, 1), record(started, 2), record(started, 3));
        EXPECT_EQ(r, std::make_tuple(1, 2, 3));
        EXPECT_EQ(started, (std::vector<int>{1, 2, 3}));
      },
      {.shuffle = false});
}

// 9. Unlocking an unlocked mutex is an error, and leaves the mutex whole.
TEST(Correctness, StrayMutexUnlockThrowsAndCorruptsNothing) {
  run_virtual([]() -> corio::task<> {
    corio::mutex m;
    EXPECT_THROW(m.unlock(), std::logic_error);
    EXPECT_TRUE(m.try_lock());
    EXPECT_FALSE(m.try_lock());
    EXPECT_TRUE(m.locked());
    m.unlock();
    EXPECT_FALSE(m.locked());
    EXPECT_THROW(m.unlock(), std::logic_error);
    co_return;
  });
}

TEST(Correctness, BoundedSemaphoreRefusesAReleaseAboveItsBound) {
  run_virtual([]() -> corio::task<> {
    corio::bounded_semaphore s(2);
    EXPECT_THROW(s.release(), std::logic_error);
    co_await s.acquire();
    s.release();
    EXPECT_EQ(s.available(), 2U);
    EXPECT_THROW(s.release(), std::logic_error);
    EXPECT_EQ(s.available(), 2U);
  });
}

// 10. Deadlines saturate instead of overflowing.
TEST(Correctness, HugeDurationsSaturate) {
  run_virtual([]() -> corio::task<> {
    EXPECT_TRUE(co_await corio::move_on_after(std::chrono::nanoseconds::max(), corio::sleep(1ms)));
    EXPECT_TRUE(co_await corio::move_on_after(std::chrono::hours::max(), corio::sleep(1ms)));
    EXPECT_EQ(co_await corio::timeout(std::chrono::seconds::max(), value_after(1ms, 4)), 4);
    EXPECT_FALSE(co_await corio::move_on_after(1ms, corio::sleep(std::chrono::hours::max())));
    EXPECT_FALSE(
        co_await corio::move_on_after(1ms, corio::sleep_until(corio::clock::time_point::max())));
    EXPECT_FALSE(co_await corio::move_on_after(1ms, corio::sleep(std::chrono::nanoseconds::max())));
  });
}

// 11. map_bounded owns a range passed as a temporary.
TEST(Correctness, MapBoundedOwnsATemporaryRange) {
  run_virtual([]() -> corio::task<> {
    auto t = corio::map_bounded(
        std::vector<std::string>{"a", "bb", "ccc", std::string(64, 'd')},
        [](const std::string& s) -> corio::task<std::size_t> {
          co_await corio::sleep(1ms);
          co_return s.size();
        },
        2);
    std::vector<std::string> overwrite(8, std::string(64, 'z'));  // reuse the freed stack
    const auto sizes = co_await std::move(t);
    EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3, 64}));
    EXPECT_EQ(overwrite.size(), 8U);
  });
}

// Deep synchronous chains run in constant stack, in the release and ASan
// builds (see CMakeLists.txt's note on ASan). TSan instruments every
// function's exit, which no flag short of losing its stack traces undoes,
// so under TSan the same code runs at a depth its stack holds.
#if defined(__SANITIZE_THREAD__)
constexpr int k_deep = 10'000;
#else
constexpr int k_deep = 200'000;
#endif

TEST(Correctness, DeepSynchronousAwaitsDoNotGrowTheStack) {
  run_virtual([]() -> corio::task<> {
    constexpr int n = k_deep;
    auto one = []() -> corio::task<int> { co_return 1; };
    int sum = 0;
    for (int i = 0; i < n; ++i)
      sum += co_await one();
    EXPECT_EQ(sum, n);
    struct chain {
      static corio::task<int> depth(int k) {
        if (k == 0) co_return 0;
        co_return 1 + co_await depth(k - 1);
      }
    };
    EXPECT_EQ(co_await chain::depth(n / 2), n / 2);
    auto numbers = [](int count) -> corio::async_generator<int> {
      for (int i = 0; i < count; ++i)
        co_yield i;
    };
    auto g = numbers(n);
    long long total = 0;
    while (auto v = co_await g.next())
      total += *v;
    EXPECT_EQ(total, static_cast<long long>(n) * (n - 1) / 2);
    corio::channel<int> ch(16);
    std::thread producer([&ch] {
      for (int i = 0; i < n; ++i)
        ch.send_blocking(1);
      ch.close();
    });
    int received = 0;
    try {
      for (;;)
        received += co_await ch.receive();
    } catch (const corio::channel_closed&) {
    }
    producer.join();
    EXPECT_EQ(received, n);
  });
}

// Shuffling is a loop option: off means FIFO, whatever the environment.
TEST(Correctness, ShuffleOffMeansFifo) {
  const char* before = std::getenv("CORIO_SHUFFLE");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("CORIO_SHUFFLE", "1", 1);
  std::vector<int> order;
  run_virtual(
      [&]() -> corio::task<> {
        std::vector<corio::join_handle<>> hs;
        hs.reserve(100);
        for (int i = 0; i < 100; ++i)
          hs.push_back(corio::spawn([](std::vector<int>& o, int i) -> corio::task<> {
            o.push_back(i);
            co_return;
          }(order, i)));
        for (auto& h : hs)
          co_await h;
      },
      {.shuffle = false});
  if (before != nullptr) {
    ::setenv("CORIO_SHUFFLE", saved.c_str(), 1);
  } else {
    ::unsetenv("CORIO_SHUFFLE");
  }
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(order[static_cast<std::size_t>(i)], i);
}

// API gaps the acceptance suite met.

TEST(Correctness, WaitingForAHandleWithADeadlineDoesNotCancelIt) {
  run_virtual([]() -> corio::task<> {
    auto h = corio::spawn(value_after(20ms, 7));
    EXPECT_FALSE(co_await corio::move_on_after(10ms, h.wait()));
    EXPECT_FALSE(h.cancel_requested());
    EXPECT_FALSE(h.done());
    EXPECT_TRUE(co_await corio::move_on_after(20ms, h.wait()));
    EXPECT_EQ(h.result(), 7);
  });
}

TEST(Correctness, ATaskCanAskWhetherItIsBeingCancelled) {
  run_virtual([]() -> corio::task<> {
    bool before = true;
    bool in_cleanup = false;
    auto h = corio::spawn([](bool& before, bool& in_cleanup) -> corio::task<> {
      before = corio::cancel_requested();
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        in_cleanup = corio::cancel_requested();
        throw;
      }
    }(before, in_cleanup));
    co_await corio::sleep(1ms);
    EXPECT_FALSE(corio::cancel_requested());
    h.cancel();
    try {
      co_await h;
    } catch (const corio::cancelled_error&) {
    }
    EXPECT_FALSE(before);
    EXPECT_TRUE(in_cleanup);
  });
}

TEST(Correctness, VirtualClockStartsAtAFixedOrigin) {
  corio::clock::time_point first{};
  corio::clock::time_point second{};
  corio::run(
      [](auto& t) -> corio::task<> {
        t = corio::now();
        co_return;
      }(first),
      {.virtual_clock = true});
  corio::run(
      [](auto& t) -> corio::task<> {
        t = corio::now();
        co_return;
      }(second),
      {.virtual_clock = true});
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, corio::loop_options{}.virtual_start);
  const auto origin = corio::clock::time_point(123456789ns);
  corio::clock::time_point third{};
  corio::run(
      [](auto& t) -> corio::task<> {
        t = corio::now();
        co_return;
      }(third),
      {.virtual_clock = true, .virtual_start = origin});
  EXPECT_EQ(third, origin);
}

TEST(Correctness, AWorkGuardHoldsTheLoopOpenUntilItsPostsHaveRun) {
  // The guard is released on the posting thread right after its last post:
  // the loop must run the post, never see a false deadlock.
  for (int round = 0; round < 200; ++round) {
    int got = 0;
    corio::run([](int& got) -> corio::task<> {
      corio::event ready;
      std::thread t([guard = corio::event_loop::current()->keep_alive(), &ready, &got]() mutable {
        guard.post([&ready, &got] {
          got = 1;
          ready.set();
        });
        guard.reset();
      });
      co_await ready.wait();
      t.join();
    }(got));
    ASSERT_EQ(got, 1);
  }
}

TEST(Correctness, OnCancelRunsAsyncCleanupThenRethrows) {
  run_virtual([]() -> corio::task<> {
    std::vector<std::string> log;
    auto h = corio::spawn([](std::vector<std::string>& log) -> corio::task<> {
      co_await corio::on_cancel(corio::sleep(1h), [&log]() -> corio::task<> {
        co_await corio::sleep(5ms);  // awaiting in cleanup is allowed here
        log.emplace_back("cleaned up");
      });
      log.emplace_back("not reached");
    }(log));
    co_await corio::sleep(1ms);
    h.cancel();
    EXPECT_TRUE(co_await ends_cancelled(h));
    EXPECT_EQ(log, (std::vector<std::string>{"cleaned up"}));
  });
}
