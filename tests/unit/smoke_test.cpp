#include <gtest/gtest.h>

#include <chrono>

#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

corio::task<int> add(int a, int b) {
  co_return a + b;
}

corio::task<int> sleeper() {
  co_await corio::sleep(10ms);
  co_return 7;
}

}  // namespace

TEST(Smoke, RunsNestedTasksAndSleeps) {
  int v = corio::run(
      []() -> corio::task<int> {
        int a = co_await add(1, 2);
        auto h = corio::spawn(sleeper());
        int b = co_await h;
        co_return a + b;
      }(),
      {.virtual_clock = true});
  EXPECT_EQ(v, 10);
}

namespace {
corio::async_generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i) {
    if (i % 3 == 0) co_await corio::sleep(1ms);
    co_yield i;
  }
}
corio::task<int> twice(int x) {
  co_await corio::sleep(std::chrono::milliseconds(x));
  co_return 2 * x;
}
}  // namespace

TEST(Smoke, EverythingCompilesAndRuns) {
  corio::run(
      []() -> corio::task<> {
        corio::queue<int> q(1);
        auto prod = corio::spawn([](corio::queue<int>& q) -> corio::task<> {
          for (int i = 0; i < 5; ++i)
            co_await q.push(i);
          q.close();
        }(q));
        int s = 0;
        try {
          for (;;)
            s += co_await q.pop();
        } catch (const corio::queue_closed&) {
        }
        EXPECT_EQ(s, 10);
        co_await prod;

        auto g = count_to(6);
        int gs = 0;
        while (auto v = co_await g.next())
          gs += *v;
        EXPECT_EQ(gs, 15);

        std::vector<corio::task<int>> ts;
        for (int i = 1; i <= 3; ++i)
          ts.push_back(twice(i));
        auto r = co_await corio::gather(std::move(ts));
        EXPECT_EQ(r, (std::vector<int>{2, 4, 6}));

        auto [a, b] = co_await corio::gather(twice(1), twice(2));
        EXPECT_EQ(a + b, 6);

        std::vector<int> in{1, 2, 3, 4, 5};
        auto m = co_await corio::map_bounded(in, twice, 2);
        EXPECT_EQ(m, (std::vector<int>{2, 4, 6, 8, 10}));

        auto t = co_await corio::move_on_after(2ms, twice(5));
        EXPECT_FALSE(t.has_value());
        bool timed_out = false;
        try {
          co_await corio::timeout(2ms, twice(5));
        } catch (const corio::timeout_error&) {
          timed_out = true;
        }
        EXPECT_TRUE(timed_out);

        int v = co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<int> {
          g.spawn(twice(3));
          co_return 1;
        });
        EXPECT_EQ(v, 1);

        std::vector<corio::task<int>> ws;
        ws.push_back(twice(30));
        ws.push_back(twice(10));
        auto w = co_await corio::wait_any(std::move(ws));
        EXPECT_EQ(w.index, 1U);
        EXPECT_EQ(w.value, 20);

        std::vector<corio::task<int>> cs;
        cs.push_back(twice(30));
        cs.push_back(twice(10));
        auto ac = corio::as_completed(std::move(cs));
        std::vector<int> order;
        while (auto x = co_await ac.next())
          order.push_back(*x);
        EXPECT_EQ(order, (std::vector<int>{20, 60}));

        corio::semaphore sem(1);
        corio::mutex mu;
        corio::event ev;
        corio::condition_variable cv;
        co_await sem.acquire();
        sem.release();
        { auto g2 = co_await mu.scoped_lock(); }
        ev.set();
        co_await ev.wait();
        (void)cv;
        auto batches = co_await corio::map_batched(in, 2, [](std::span<int> s) -> corio::task<int> {
          int t = 0;
          for (int x : s)
            t += x;
          co_return t;
        });
        EXPECT_EQ(batches, (std::vector<int>{3, 7, 5}));
      }(),
      {.virtual_clock = true});
}
