// channel<T> across threads and loops: order, MPMC without loss or
// duplicates, close with waiters on both sides (tasks and threads), and
// cancellation of waiting tasks (also racing with senders on other threads);
// the spinning_mutex under it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "corio/corio.hpp"
#include "corio/sync/detail/spinning_mutex.hpp"

using namespace std::chrono_literals;

namespace {

TEST(Channel, AThreadFeedsATaskInOrderThenCloses) {
  corio::channel<int> ch(8);
  std::thread producer([&] {
    for (int i = 0; i < 10000; ++i)
      ch.send_blocking(i);
    ch.close();
  });
  std::vector<int> got;
  bool closed = false;
  corio::run([](corio::channel<int>& ch, std::vector<int>& got, bool& closed) -> corio::task<> {
    try {
      for (;;)
        got.push_back(co_await ch.receive());
    } catch (const corio::channel_closed&) {
      closed = true;
    }
  }(ch, got, closed));
  producer.join();
  std::vector<int> want(10000);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(closed);
}

TEST(Channel, ATaskFeedsAThread) {
  corio::channel<int> ch(4);
  std::int64_t sum = 0;
  int count = 0;
  std::thread consumer([&] {
    try {
      for (;;) {
        sum += ch.receive_blocking();
        ++count;
      }
    } catch (const corio::channel_closed&) {
    }
  });
  corio::run([](corio::channel<int>& ch) -> corio::task<> {
    for (int i = 1; i <= 5000; ++i)
      co_await ch.send(i);
    ch.close();
  }(ch));
  consumer.join();
  EXPECT_EQ(count, 5000);
  EXPECT_EQ(sum, 5000 * 5001 / 2);
}

// Two producer threads, two loops on their own threads with four receiving
// tasks each: every item arrives exactly once.
TEST(Channel, ManyProducersAndLoopsLoseAndDuplicateNothing) {
  constexpr int per_producer = 20000;
  corio::channel<int> ch(16);
  std::vector<std::atomic<int>> seen(2 * per_producer);
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&ch, p] {
      for (int i = 0; i < per_producer; ++i)
        ch.send_blocking(p * per_producer + i);
    });
  }
  std::vector<std::thread> loops;
  for (int l = 0; l < 2; ++l) {
    loops.emplace_back([&ch, &seen] {
      corio::run([](corio::channel<int>& ch, std::vector<std::atomic<int>>& seen) -> corio::task<> {
        co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
          for (int k = 0; k < 4; ++k) {
            g.spawn(
                [](corio::channel<int>& ch, std::vector<std::atomic<int>>& seen) -> corio::task<> {
                  try {
                    for (;;)
                      seen[static_cast<std::size_t>(co_await ch.receive())].fetch_add(1);
                  } catch (const corio::channel_closed&) {
                  }
                }(ch, seen));
          }
          co_return;
        });
      }(ch, seen));
    });
  }
  for (auto& t : threads)
    t.join();
  ch.close();
  for (auto& l : loops)
    l.join();
  int wrong = 0;
  for (auto& s : seen)
    wrong += s.load() != 1 ? 1 : 0;
  EXPECT_EQ(wrong, 0);
}

TEST(Channel, CloseWakesWaitingReceiversOnBothSides) {
  corio::channel<int> ch(2);
  std::atomic<int> thread_closed{0};
  std::thread blocked([&] {
    try {
      ch.receive_blocking();
    } catch (const corio::channel_closed&) {
      thread_closed = 1;
    }
  });
  int task_closed = 0;
  corio::run([](corio::channel<int>& ch, int& task_closed) -> corio::task<> {
    std::vector<corio::join_handle<void>> receivers;
    for (int k = 0; k < 3; ++k) {
      receivers.push_back(corio::spawn([](corio::channel<int>& ch, int& n) -> corio::task<> {
        try {
          co_await ch.receive();
        } catch (const corio::channel_closed&) {
          ++n;
        }
      }(ch, task_closed)));
    }
    co_await corio::yield_now();
    ch.close();
    for (auto& r : receivers)
      co_await r;
  }(ch, task_closed));
  blocked.join();
  EXPECT_EQ(task_closed, 3);
  EXPECT_EQ(thread_closed.load(), 1);
}

TEST(Channel, CloseWakesWaitingSendersOnBothSidesAndKeepsWhatWasSent) {
  corio::channel<int> ch(1);
  ch.send_blocking(1);  // full from now on
  std::atomic<int> thread_closed{0};
  std::thread blocked([&] {
    try {
      ch.send_blocking(2);
    } catch (const corio::channel_closed&) {
      thread_closed = 1;
    }
  });
  int task_closed = 0;
  std::vector<int> drained;
  corio::run(
      [](corio::channel<int>& ch, int& task_closed, std::vector<int>& drained) -> corio::task<> {
        std::vector<corio::join_handle<void>> senders;
        for (int k = 0; k < 3; ++k) {
          senders.push_back(corio::spawn([](corio::channel<int>& ch, int& n) -> corio::task<> {
            try {
              co_await ch.send(3);
            } catch (const corio::channel_closed&) {
              ++n;
            }
          }(ch, task_closed)));
        }
        co_await corio::yield_now();
        ch.close();
        for (auto& s : senders)
          co_await s;
        try {
          for (;;)
            drained.push_back(co_await ch.receive());
        } catch (const corio::channel_closed&) {
        }
      }(ch, task_closed, drained));
  blocked.join();
  EXPECT_EQ(task_closed, 3);
  EXPECT_EQ(thread_closed.load(), 1);
  EXPECT_EQ(drained, std::vector<int>{1});
}

TEST(Channel, ACancelledWaiterTakesNothingAndSendsNothing) {
  corio::channel<int> ch(1);
  corio::run([](corio::channel<int>& ch) -> corio::task<> {
    auto r = corio::spawn(
        [](corio::channel<int>& ch) -> corio::task<int> { co_return co_await ch.receive(); }(ch));
    co_await corio::yield_now();
    EXPECT_TRUE(r.cancel());
    EXPECT_THROW(co_await r, corio::cancelled_error);
    co_await ch.send(5);
    EXPECT_EQ(co_await ch.receive(), 5);

    co_await ch.send(6);  // full
    auto s =
        corio::spawn([](corio::channel<int>& ch) -> corio::task<> { co_await ch.send(7); }(ch));
    co_await corio::yield_now();
    EXPECT_TRUE(s.cancel());
    EXPECT_THROW(co_await s, corio::cancelled_error);
    EXPECT_EQ(co_await ch.receive(), 6);
    EXPECT_EQ(ch.try_receive(), std::nullopt);
  }(ch));
}

// Receivers with tiny timeouts race a sender thread: items handed to a
// receiver that was cancelled meanwhile go back, so the count and sum of
// what was received equal what was sent.
TEST(Channel, CancellationRacingASenderThreadLosesNothing) {
  constexpr int n = 20000;
  corio::channel<int> ch(4);
  std::thread producer([&] {
    for (int i = 1; i <= n; ++i)
      ch.send_blocking(i);
    ch.close();
  });
  std::int64_t sum = 0;
  int count = 0;
  int timeouts = 0;
  corio::run(
      [](corio::channel<int>& ch, std::int64_t& sum, int& count, int& timeouts) -> corio::task<> {
        for (;;) {
          try {
            const int v = co_await corio::timeout(1us, ch.receive());
            sum += v;
            ++count;
          } catch (const corio::timeout_error&) {
            ++timeouts;
          } catch (const corio::channel_closed&) {
            co_return;
          }
        }
      }(ch, sum, count, timeouts));
  producer.join();
  EXPECT_EQ(count, n);
  EXPECT_EQ(sum, std::int64_t{n} * (n + 1) / 2);
  RecordProperty("timeouts", timeouts);
}

// close() on a plain thread while the waiting receiver's own timeout
// cancels it on the loop: the waiter is claimed once, by one side, and
// every round ends (before the fix close() unlinked its waiters after
// releasing the lock, racing on_abort's unlink: TSan saw it).
TEST(Channel, CloseOnAThreadRacingAReceiversTimeoutClaimsTheWaiterOnce) {
  constexpr int rounds = 2000;
  std::atomic<corio::channel<int>*> to_close{nullptr};
  std::atomic<int> closed{0};
  std::thread closer([&] {
    for (int i = 0; i < rounds; ++i) {
      corio::channel<int>* c = nullptr;
      while ((c = to_close.exchange(nullptr, std::memory_order_acquire)) == nullptr)
        std::this_thread::yield();
      c->close();
      closed.fetch_add(1, std::memory_order_release);
    }
  });
  int saw_closed = 0;
  int timed_out = 0;
  corio::run([&]() -> corio::task<> {
    for (int i = 0; i < rounds; ++i) {
      corio::channel<int> ch(1);
      to_close.store(&ch, std::memory_order_release);
      try {
        co_await corio::timeout(1us, ch.receive());
        ADD_FAILURE() << "nothing was sent";
      } catch (const corio::channel_closed&) {
        ++saw_closed;
      } catch (const corio::timeout_error&) {
        ++timed_out;
      }
      while (closed.load(std::memory_order_acquire) != i + 1)  // the closer is done with ch
        std::this_thread::yield();
    }
  }());
  closer.join();
  EXPECT_EQ(saw_closed + timed_out, rounds);
  RecordProperty("timed_out", timed_out);
}

// The lock under every channel (and the runtime's queues of balanced
// spawns): threads that find it held spin, then sleep on its futex.
TEST(SpinningMutex, ThreadsThatSleepOnTheLockLoseNoUpdate) {
  corio::detail::spinning_mutex m;
  std::uint64_t counter = 0;  // guarded by m: TSan reports any unguarded access
  constexpr int k_threads = 4;
  constexpr int k_rounds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < k_rounds; ++i) {
        const std::lock_guard guard(m);
        const std::uint64_t seen = counter;
        // Now and then the holder sleeps, so that the others outlast their
        // spin and sleep on the futex.
        if (i % 2000 == 0) std::this_thread::sleep_for(200us);
        counter = seen + 1;
      }
    });
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(counter, std::uint64_t{k_threads} * k_rounds);
}

TEST(SpinningMutex, AThreadAsleepOnTheLockWakesWhenItIsReleased) {
  corio::detail::spinning_mutex m;
  std::atomic<bool> released{false};
  std::atomic<bool> waiter_got_it_after_release{false};
  m.lock();
  EXPECT_FALSE(m.try_lock());
  std::thread waiter([&] {
    m.lock();  // past its spin: asleep on the futex until the unlock
    waiter_got_it_after_release.store(released.load(std::memory_order_acquire));
    m.unlock();
  });
  // Unlocks only once the waiter has marked the lock as slept on, so the
  // unlock must wake it (a lost wake-up hangs here until ctest's timeout).
  while (!m.has_sleepers())
    std::this_thread::yield();
  released.store(true, std::memory_order_release);
  m.unlock();
  waiter.join();
  EXPECT_TRUE(waiter_got_it_after_release.load());
  EXPECT_TRUE(m.try_lock());  // left unlocked
  m.unlock();
}

}  // namespace
