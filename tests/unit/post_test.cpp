// post() from other threads: every callback runs once, on the loop's
// thread, whether the loop sleeps (eventfd wake-up) or is busy.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "corio/corio.hpp"

namespace {

constexpr int k_threads = 4;
constexpr int k_posts = 2000;

/// Posts k_threads * k_posts callbacks from other threads while the loop's
/// main task does `wait_style`, and checks that each ran once on the loop.
template <class Wait>
void post_from_threads(Wait wait_style) {
  corio::event_loop loop;
  const std::thread::id loop_thread = std::this_thread::get_id();
  int ran = 0;  // touched only on the loop's thread
  bool wrong_thread = false;
  corio::event all_ran;
  // Held until the last callback ran: the loop must wait for the threads.
  corio::work_guard guard = loop.keep_alive();
  std::vector<std::thread> threads;
  corio::run(loop, [&]() -> corio::task<> {
    for (int t = 0; t < k_threads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < k_posts; ++i) {
          loop.post([&] {
            if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
            if (++ran == k_threads * k_posts) {
              guard.reset();
              all_ran.set();
            }
          });
        }
      });
    }
    co_await wait_style(all_ran);
  }());
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ran, k_threads * k_posts);
  EXPECT_FALSE(wrong_thread);
  EXPECT_EQ(loop.stats().live_tasks, 0U);
}

}  // namespace

TEST(Post, CallbacksFromOtherThreadsWakeASleepingLoop) {
  post_from_threads([](corio::event& e) -> corio::task<> { co_await e.wait(); });
}

TEST(Post, CallbacksFromOtherThreadsReachABusyLoop) {
  post_from_threads([](corio::event& e) -> corio::task<> {
    while (!e.is_set())
      co_await corio::yield_now();
  });
}

// Loops on threads that do not synchronise with each other, one after the
// other: the second loop's io_uring is often mapped where the first one's
// was. liburing maps rings with raw system calls that ThreadSanitizer does
// not see, so without the backend's annotation a TSan build reports the
// new ring's first writes as a race with the old ring's (a make test run
// did, on Offload.LoopsOnSeveralThreadsShareOnePool). In other builds this
// only checks that such loops work.
TEST(Post, LoopsOnUnsynchronisedThreadsOneAfterAnother) {
  std::atomic<int> finished{0};  // relaxed only: no happens-before for TSan
  int ran[2] = {0, 0};
  std::thread first([&] {
    corio::run([](int& r) -> corio::task<> {
      co_await corio::yield_now();
      r = 1;
    }(ran[0]));
    finished.store(1, std::memory_order_relaxed);
  });
  std::thread second([&] {
    while (finished.load(std::memory_order_relaxed) == 0)
      std::this_thread::yield();
    corio::run([](int& r) -> corio::task<> {
      co_await corio::yield_now();
      r = 1;
    }(ran[1]));
  });
  first.join();
  second.join();
  EXPECT_EQ(ran[0] + ran[1], 2);
}
