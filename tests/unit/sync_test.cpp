// Sync primitives: semaphore, mutex, event, condition_variable. Counts, try_
// variants, and FIFO fairness (waiters are served in arrival order).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

// Spawns `make(i)` for i = 0..n-1, one at a time, letting each park before
// the next arrives, so arrival order is 0, 1, 2, ... whatever the scheduler.
template <class Make>
corio::task<std::vector<corio::join_handle<>>> arrive_in_order(int n, Make make) {
  std::vector<corio::join_handle<>> hs;
  for (int i = 0; i < n; ++i) {
    hs.push_back(corio::spawn(make(i)));
    co_await corio::yield_now();
  }
  co_return hs;
}

corio::task<> join_all(std::vector<corio::join_handle<>>& hs) {
  for (auto& h : hs)
    co_await h;
}

}  // namespace

// ---- semaphore ----

TEST(Semaphore, CountsAndTryAcquire) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(2);
    EXPECT_EQ(sem.available(), 2U);
    EXPECT_TRUE(sem.try_acquire());
    co_await sem.acquire();  // a free permit: no wait
    EXPECT_EQ(sem.available(), 0U);
    EXPECT_FALSE(sem.try_acquire());
    sem.release();
    EXPECT_EQ(sem.available(), 1U);
    sem.release(3);
    EXPECT_EQ(sem.available(), 4U);
    EXPECT_EQ(sem.waiters(), 0U);
  });
}

TEST(Semaphore, WaitersAcquireInArrivalOrder) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(0);
    std::vector<int> got;
    auto hs = co_await arrive_in_order(5, [&](int i) {
      return [](corio::semaphore& s, std::vector<int>& got, int i) -> corio::task<> {
        co_await s.acquire();
        got.push_back(i);
      }(sem, got, i);
    });
    EXPECT_EQ(sem.waiters(), 5U);
    for (int i = 0; i < 5; ++i) {
      sem.release();
      EXPECT_EQ(sem.available(), 0U);  // handed over, not counted
      co_await corio::yield_now();
      EXPECT_EQ(got.size(), static_cast<std::size_t>(i + 1));
      EXPECT_EQ(got.back(), i);
    }
    co_await join_all(hs);
    EXPECT_EQ(sem.available(), 0U);
  });
}

TEST(Semaphore, NewcomerCannotOvertakeAWokenWaiter) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(0);
    bool a_got = false;
    auto a = corio::spawn([](corio::semaphore& s, bool& g) -> corio::task<> {
      co_await s.acquire();
      g = true;
    }(sem, a_got));
    co_await corio::yield_now();
    sem.release();                    // handed to a, which has not run yet
    EXPECT_FALSE(sem.try_acquire());  // so the permit is not free
    co_await a;
    EXPECT_TRUE(a_got);
    EXPECT_EQ(sem.available(), 0U);
  });
}

TEST(Semaphore, ReleaseManyServesWaitersThenCounts) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(0);
    int got = 0;
    auto hs = co_await arrive_in_order(2, [&](int) {
      return [](corio::semaphore& s, int& g) -> corio::task<> {
        co_await s.acquire();
        ++g;
      }(sem, got);
    });
    sem.release(5);
    EXPECT_EQ(sem.available(), 3U);
    co_await join_all(hs);
    EXPECT_EQ(got, 2);
    EXPECT_EQ(sem.available(), 3U);
  });
}

TEST(Semaphore, GuardReleasesAtScopeEndOrEarly) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(2);
    {
      auto g1 = co_await sem.acquire_guard();
      EXPECT_EQ(sem.available(), 1U);
      {
        auto g2 = co_await sem.acquire_guard();
        EXPECT_EQ(sem.available(), 0U);
        auto moved = std::move(g2);
        EXPECT_EQ(sem.available(), 0U);
      }
      EXPECT_EQ(sem.available(), 1U);
      g1.release();
      EXPECT_EQ(sem.available(), 2U);
    }
    EXPECT_EQ(sem.available(), 2U);  // released once, not twice
  });
}

TEST(Semaphore, LimitsConcurrency) {
  run_virtual([]() -> corio::task<> {
    corio::semaphore sem(3);
    int inside = 0, max_inside = 0;
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 10; ++i) {
      hs.push_back(corio::spawn([](corio::semaphore& s, int& in, int& mx) -> corio::task<> {
        auto g = co_await s.acquire_guard();
        mx = std::max(mx, ++in);
        co_await corio::sleep(1ms);
        --in;
      }(sem, inside, max_inside)));
    }
    const auto t0 = corio::now();
    co_await join_all(hs);
    EXPECT_EQ(max_inside, 3);
    EXPECT_GE(corio::now() - t0, 4ms);  // ceil(10 / 3) rounds of 1 ms
    EXPECT_EQ(sem.available(), 3U);
  });
}

// ---- mutex ----

TEST(Mutex, TryLockAndLocked) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    EXPECT_FALSE(mu.locked());
    EXPECT_TRUE(mu.try_lock());
    EXPECT_TRUE(mu.locked());
    EXPECT_FALSE(mu.try_lock());
    mu.unlock();
    EXPECT_FALSE(mu.locked());
    co_await mu.lock();
    EXPECT_TRUE(mu.locked());
    mu.unlock();
    {
      auto g = co_await mu.scoped_lock();
      EXPECT_TRUE(mu.locked());
    }
    EXPECT_FALSE(mu.locked());
  });
}

TEST(Mutex, ExcludesAcrossAwaitsInArrivalOrder) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    co_await mu.lock();
    int inside = 0, max_inside = 0;
    std::vector<int> order;
    auto hs = co_await arrive_in_order(5, [&](int i) {
      return
          [](corio::mutex& m, int& in, int& mx, std::vector<int>& order, int i) -> corio::task<> {
            auto g = co_await m.scoped_lock();
            mx = std::max(mx, ++in);
            order.push_back(i);
            co_await corio::sleep(1ms);
            co_await corio::yield_now();
            --in;
          }(mu, inside, max_inside, order, i);
    });
    EXPECT_TRUE(order.empty());
    const auto t0 = corio::now();
    mu.unlock();
    co_await join_all(hs);
    EXPECT_EQ(max_inside, 1);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_GE(corio::now() - t0, 5ms);
    EXPECT_FALSE(mu.locked());
  });
}

TEST(Mutex, ScopedLockUnlocksWhenTheBodyThrows) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    auto body = [](corio::mutex& m) -> corio::task<> {
      auto g = co_await m.scoped_lock();
      co_await corio::sleep(1ms);
      throw std::runtime_error("x");
    };
    EXPECT_THROW(co_await body(mu), std::runtime_error);
    EXPECT_FALSE(mu.locked());
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// ---- event ----

TEST(Event, SetWakesEveryWaiterAndLaterWaitsPass) {
  run_virtual([]() -> corio::task<> {
    corio::event ev;
    EXPECT_FALSE(ev.is_set());
    int woke = 0;
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 3; ++i) {
      hs.push_back(corio::spawn([](corio::event& e, int& w) -> corio::task<> {
        co_await e.wait();
        ++w;
      }(ev, woke)));
    }
    co_await corio::sleep(1h);
    EXPECT_EQ(woke, 0);
    ev.set();
    EXPECT_TRUE(ev.is_set());
    co_await join_all(hs);
    EXPECT_EQ(woke, 3);
    const auto t0 = corio::now();
    co_await ev.wait();  // set: passes at once
    EXPECT_EQ(corio::now(), t0);
    ev.set();  // idempotent
    EXPECT_TRUE(ev.is_set());
  });
}

TEST(Event, ClearMakesWaitersWaitAgain) {
  run_virtual([]() -> corio::task<> {
    corio::event ev;
    ev.set();
    ev.clear();
    EXPECT_FALSE(ev.is_set());
    bool woke = false;
    auto h = corio::spawn([](corio::event& e, bool& w) -> corio::task<> {
      co_await e.wait();
      w = true;
    }(ev, woke));
    co_await corio::sleep(10ms);
    EXPECT_FALSE(woke);
    ev.set();
    co_await h;
    EXPECT_TRUE(woke);
  });
}

// ---- condition_variable ----

TEST(ConditionVariable, WaitReleasesAndReacquiresTheMutex) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    corio::condition_variable cv;
    bool returned = false, held_on_return = false;
    auto h = corio::spawn(
        [](corio::mutex& m, corio::condition_variable& cv, bool& r, bool& held) -> corio::task<> {
          co_await m.lock();
          co_await cv.wait(m);
          r = true;
          held = m.locked();
          m.unlock();
        }(mu, cv, returned, held_on_return));
    co_await corio::yield_now();
    EXPECT_EQ(cv.waiters(), 1U);
    EXPECT_FALSE(mu.locked());  // released while waiting
    EXPECT_TRUE(mu.try_lock());
    cv.notify_one();
    co_await corio::sleep(1ms);
    EXPECT_FALSE(returned);  // notified, but needs the mutex back
    mu.unlock();
    co_await h;
    EXPECT_TRUE(returned);
    EXPECT_TRUE(held_on_return);
    EXPECT_FALSE(mu.locked());
  });
}

TEST(ConditionVariable, NotifyOneWakesInArrivalOrder) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    corio::condition_variable cv;
    std::vector<int> woke;
    auto hs = co_await arrive_in_order(4, [&](int i) {
      return [](corio::mutex& m, corio::condition_variable& cv, std::vector<int>& w,
                int i) -> corio::task<> {
        auto g = co_await m.scoped_lock();
        co_await cv.wait(m);
        w.push_back(i);
      }(mu, cv, woke, i);
    });
    EXPECT_EQ(cv.waiters(), 4U);
    for (int i = 0; i < 4; ++i) {
      cv.notify_one();
      co_await corio::sleep(1ms);
      EXPECT_EQ(woke.size(), static_cast<std::size_t>(i + 1));
      EXPECT_EQ(woke.back(), i);
    }
    co_await join_all(hs);
    EXPECT_EQ(cv.waiters(), 0U);
  });
}

TEST(ConditionVariable, NotifyAllWakesEveryWaiterAndIsNotRemembered) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    corio::condition_variable cv;
    cv.notify_all();  // nobody waits: lost, like asyncio.Condition
    cv.notify_one();
    int woke = 0;
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 3; ++i) {
      hs.push_back(
          corio::spawn([](corio::mutex& m, corio::condition_variable& cv, int& w) -> corio::task<> {
            auto g = co_await m.scoped_lock();
            co_await cv.wait(m);
            ++w;
          }(mu, cv, woke)));
    }
    co_await corio::sleep(1ms);
    EXPECT_EQ(woke, 0);
    EXPECT_EQ(cv.waiters(), 3U);
    cv.notify_all();
    EXPECT_EQ(cv.waiters(), 0U);
    co_await join_all(hs);
    EXPECT_EQ(woke, 3);
  });
}

TEST(ConditionVariable, PredicateWaitReturnsOnlyWhenTrue) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    corio::condition_variable cv;
    int value = 0;
    int seen = -1;
    auto h = corio::spawn(
        [](corio::mutex& m, corio::condition_variable& cv, int& v, int& seen) -> corio::task<> {
          auto g = co_await m.scoped_lock();
          co_await cv.wait(m, [&] { return v >= 3; });
          seen = v;
        }(mu, cv, value, seen));
    for (int i = 1; i <= 3; ++i) {
      co_await corio::sleep(1ms);
      EXPECT_EQ(seen, -1);
      EXPECT_EQ(cv.waiters(), 1U);  // woken for i - 1 < 3, waiting again
      auto g = co_await mu.scoped_lock();
      value = i;
      cv.notify_all();
    }
    co_await h;
    EXPECT_EQ(seen, 3);
  });
}

TEST(ConditionVariable, CancelledWaiterReacquiresTheMutexBeforeThrowing) {
  run_virtual([]() -> corio::task<> {
    corio::mutex mu;
    corio::condition_variable cv;
    auto h = corio::spawn([](corio::mutex& m, corio::condition_variable& cv) -> corio::task<> {
      auto g = co_await m.scoped_lock();
      co_await cv.wait(m);
    }(mu, cv));
    co_await corio::yield_now();
    co_await mu.lock();
    h.cancel();
    EXPECT_EQ(cv.waiters(), 0U);  // unlinked at once
    co_await corio::sleep(1ms);
    EXPECT_FALSE(h.done());  // still waiting (shielded) for the mutex
    mu.unlock();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_FALSE(mu.locked());
  });
}
