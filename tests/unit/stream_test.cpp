// Stream adapters on the virtual clock: composition with |, take stopping
// its source, chunks and chunks_timeout batch boundaries, buffered order and
// concurrency bound, buffered_unordered completion order, merge
// interleaving, producer errors reaching the consumer, and cancelling the
// consumer stopping every producer (no task left behind).
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "corio/flow/stream.hpp"
#include "unit/test_support.hpp"

using corio_test::run_virtual;
using namespace std::chrono_literals;

namespace {

corio::async_generator<int> count_from(int first, int& pulled) {
  for (int i = first;; ++i) {
    ++pulled;
    co_yield i;
  }
}

corio::async_generator<int> range(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

/// Yields `values` with a sleep of `gaps[i]` before each.
corio::async_generator<int> timed(std::vector<int> values,
                                  std::vector<std::chrono::milliseconds> gaps) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    co_await corio::sleep(gaps[i]);
    co_yield values[i];
  }
}

template <class T>
corio::task<std::vector<T>> collect(corio::async_generator<T> g) {
  std::vector<T> out;
  while (auto v = co_await g.next())
    out.push_back(std::move(*v));
  co_return out;
}

// Expected values and inputs live outside the coroutines: GCC 12 rejects
// braced lists that need an array temporary inside a coroutine body.
using ints = std::vector<int>;
using batches_t = std::vector<std::vector<int>>;
using gaps_t = std::vector<std::chrono::milliseconds>;
const ints k_even_squares{0, 4, 16, 36, 64};
const batches_t k_chunks_of_3{{0, 1, 2}, {3, 4, 5}, {6, 7}};
const ints k_bursty_values{0, 1, 2, 3, 4, 5, 6, 7, 8};
const gaps_t k_bursty_gaps{0ms, 1ms, 1ms, 50ms, 1ms, 1ms, 1ms, 1ms, 1ms};
const batches_t k_bursty_batches{{0, 1, 2}, {3, 4, 5, 6}, {7, 8}};
const ints k_tens{0, 10, 20, 30, 40, 50, 60, 70, 80};
const ints k_durations{30, 10, 20, 5};
const ints k_completion_order{10, 5, 20, 30};
const ints k_odd{1, 3, 5};
const gaps_t k_odd_gaps{0ms, 20ms, 20ms};
const ints k_even{2, 4};
const gaps_t k_even_gaps{10ms, 20ms};
const ints k_one_to_five{1, 2, 3, 4, 5};

TEST(Stream, MapFilterTakeComposeAndTakeStopsTheSource) {
  run_virtual([]() -> corio::task<> {
    int pulled = 0;
    auto s = count_from(0, pulled) | corio::filter([](int x) { return x % 2 == 0; }) |
             corio::map([](int x) { return x * x; }) | corio::take(5);
    EXPECT_EQ(co_await collect(std::move(s)), k_even_squares);
    EXPECT_EQ(pulled, 9);  // 0..8: nothing after the fifth even number
  });
}

// Items that own memory pass through map, chunks and buffered intact (the
// sanitizer builds would see a double destruction or a leak).
TEST(Stream, ItemsThatOwnMemoryPassThroughUnharmed) {
  run_virtual([]() -> corio::task<> {
    auto to_text = [](int x) { return std::string(64, static_cast<char>('a' + x % 26)); };
    auto later = [](std::string s) -> corio::task<std::string> {
      co_await corio::sleep(1ms);
      co_return s + "!";
    };
    auto s = range(100) | corio::map(to_text) | corio::map(later) | corio::buffered(4) |
             corio::chunks(7);
    std::size_t items = 0;
    bool ok = true;
    int i = 0;
    while (auto batch = co_await s.next()) {
      for (const std::string& t : *batch) {
        ok = ok && t.size() == 65 && t[0] == static_cast<char>('a' + i % 26) && t.back() == '!';
        ++i;
      }
      items += batch->size();
    }
    EXPECT_EQ(items, 100U);
    EXPECT_TRUE(ok);
  });
}

TEST(Stream, ChunksCutsFixedBatchesAndAShortLastOne) {
  run_virtual([]() -> corio::task<> {
    auto s = range(8) | corio::chunks(3);
    EXPECT_EQ(co_await collect(std::move(s)), k_chunks_of_3);
  });
}

TEST(Stream, ChunksTimeoutClosesABatchWhenFullOrLate) {
  run_virtual([]() -> corio::task<> {
    // 0, 1, 2 within 2 ms, then a 50 ms pause, then 3..8 quickly.
    auto src = timed(k_bursty_values, k_bursty_gaps);
    auto s = std::move(src) | corio::chunks_timeout(4, 10ms);
    std::vector<std::vector<int>> batches;
    std::vector<double> at_ms;
    const auto t0 = corio::now();
    while (auto b = co_await s.next()) {
      batches.push_back(*b);
      at_ms.push_back(std::chrono::duration<double, std::milli>(corio::now() - t0).count());
    }
    EXPECT_EQ(batches, k_bursty_batches);
    EXPECT_EQ(at_ms.size(), 3U);
    if (at_ms.size() == 3) {
      EXPECT_NEAR(at_ms[0], 10.0, 0.1);  // the first item's time + 10 ms
      EXPECT_NEAR(at_ms[1], 55.0, 0.1);  // full at the fourth item
    }
  });
}

TEST(Stream, BufferedRunsNTasksAtOnceAndKeepsOrder) {
  run_virtual([]() -> corio::task<> {
    int running = 0;
    int peak = 0;
    auto work = [&running, &peak](int i) -> corio::task<int> {
      peak = std::max(peak, ++running);
      co_await corio::sleep(std::chrono::milliseconds(10 + (i % 3) * 5));
      --running;
      co_return i * 10;
    };
    const auto t0 = corio::now();
    auto s = range(9) | corio::map(work) | corio::buffered(3);
    EXPECT_EQ(co_await collect(std::move(s)), k_tens);
    EXPECT_EQ(peak, 3);
    // 9 tasks of 10-20 ms, 3 at a time: far below the 135 ms of one at a time.
    EXPECT_LT(corio::now() - t0, 70ms);
  });
}

TEST(Stream, BufferedUnorderedYieldsInCompletionOrder) {
  run_virtual([]() -> corio::task<> {
    auto work = [](int ms) -> corio::task<int> {
      co_await corio::sleep(std::chrono::milliseconds(ms));
      co_return ms;
    };
    auto src = [](std::vector<int> v) -> corio::async_generator<int> {
      for (int x : v)
        co_yield x;
    };
    auto s = src(k_durations) | corio::map(work) | corio::buffered_unordered(3);
    // 30, 10, 20 start together; 10 ends first and lets 5 start (ends at 15).
    EXPECT_EQ(co_await collect(std::move(s)), k_completion_order);
  });
}

TEST(Stream, MergeInterleavesAsItemsCome) {
  run_virtual([]() -> corio::task<> {
    auto a = timed(k_odd, k_odd_gaps);
    auto b = timed(k_even, k_even_gaps);
    EXPECT_EQ(co_await collect(corio::merge(std::move(a), std::move(b))), k_one_to_five);
  });
}

corio::async_generator<int> failing_after(int n) {
  for (int i = 0; i < n; ++i) {
    co_await corio::sleep(1ms);
    co_yield i;
  }
  throw std::runtime_error("source broke");
}

TEST(Stream, AProducerErrorReachesTheConsumerThroughEveryAdapter) {
  run_virtual([]() -> corio::task<> {
    auto expect_error = [](auto stream, std::size_t items_before) -> corio::task<> {
      std::size_t got = 0;
      bool thrown = false;
      try {
        while (co_await stream.next())
          ++got;
      } catch (const std::runtime_error& e) {
        thrown = std::string(e.what()) == "source broke";
      }
      EXPECT_TRUE(thrown);
      EXPECT_EQ(got, items_before);
    };
    co_await expect_error(failing_after(3) | corio::map([](int x) { return x + 1; }), 3);
    co_await expect_error(failing_after(3) | corio::chunks(2), 1);  // {0,1}; then the error
    co_await expect_error(failing_after(3) | corio::chunks_timeout(10, 100ms), 0);
    co_await expect_error(corio::merge(failing_after(3), range(2)), 5);
    auto task_fails = [](int x) -> corio::task<int> {
      co_await corio::sleep(1ms);
      if (x == 2) throw std::runtime_error("source broke");
      co_return x;
    };
    co_await expect_error(range(5) | corio::map(task_fails) | corio::buffered(2), 2);
  });
}

/// A source that records its own destruction (its frame's cleanup ran).
corio::async_generator<int> endless(bool& cleaned_up) {
  struct on_exit {
    bool& flag;
    ~on_exit() { flag = true; }
  } guard{cleaned_up};
  for (int i = 0;; ++i) {
    co_await corio::sleep(1ms);
    co_yield i;
  }
}

// Cancelling the consumer stops the producers: the sources' frames are
// destroyed and no helper task outlives the test (run_virtual checks).
TEST(Stream, CancellingTheConsumerStopsEveryProducer) {
  run_virtual([]() -> corio::task<> {
    bool direct = false;
    bool pumped = false;
    bool merged = false;
    auto consume = [](corio::async_generator<std::vector<int>> s) -> corio::task<> {
      while (co_await s.next()) {
      }
    };
    auto consume_ints = [](corio::async_generator<int> s) -> corio::task<> {
      while (co_await s.next()) {
      }
    };
    auto h1 = corio::spawn(consume(endless(direct) | corio::chunks(4)));
    auto h2 = corio::spawn(consume(endless(pumped) | corio::chunks_timeout(4, 2ms)));
    auto h3 = corio::spawn(consume_ints(corio::merge(endless(merged), range(3))));
    co_await corio::sleep(20ms);
    h1.cancel();
    h2.cancel();
    h3.cancel();
    EXPECT_THROW(co_await h1, corio::cancelled_error);
    EXPECT_THROW(co_await h2, corio::cancelled_error);
    EXPECT_THROW(co_await h3, corio::cancelled_error);
    for (int i = 0; i < 5; ++i)
      co_await corio::yield_now();  // the cancelled pumps finish
    EXPECT_TRUE(direct);
    EXPECT_TRUE(pumped);
    EXPECT_TRUE(merged);
  });
}

}  // namespace
