// offload() and thread_pool: results, exceptions and void on the loop's
// thread; immediate cancellation with the job's result dropped (and freed);
// a full queue refused; many completions taken in one loop iteration;
// corio::run waiting for jobs that cancelled tasks left behind.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using corio_test::run_virtual;

namespace {

/// A gate a job waits at until the test opens it (a spin with yields: the
/// test thread is the loop thread and must not block).
struct gate {
  std::atomic<bool> open{false};
  std::atomic<int> waiting{0};
  void pass() {
    waiting.fetch_add(1);
    while (!open.load())
      std::this_thread::yield();
  }
};

/// Counts live instances, so a dropped result that leaked would show.
struct counted {
  static inline std::atomic<int> live{0};
  int value;
  explicit counted(int v) : value(v) { live.fetch_add(1); }
  counted(const counted& o) : value(o.value) { live.fetch_add(1); }
  counted(counted&& o) noexcept : value(o.value) { live.fetch_add(1); }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) = default;
  ~counted() { live.fetch_sub(1); }
};

/// An offload of `fn` on `pool`, as a task (to spawn it).
template <class F>
auto offloaded(corio::thread_pool& pool, F fn) -> corio::task<decltype(fn())> {
  co_return co_await corio::offload(pool, std::move(fn));
}

TEST(Offload, ReturnsTheValueOnTheLoopThreadAfterRunningOnAWorker) {
  corio::thread_pool pool(2);
  run_virtual([&]() -> corio::task<> {
    const auto loop_thread = std::this_thread::get_id();
    const auto worker = co_await corio::offload(pool, [] { return std::this_thread::get_id(); });
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    EXPECT_EQ(co_await corio::offload(
                  pool, [](int a, int b) { return a * b; }, 6, 7),
              42);
    std::string moved = "a long string that is moved into the job, not copied";
    const std::size_t length = moved.size();
    EXPECT_EQ(co_await corio::offload(
                  pool, [](const std::string& s) { return s.size(); }, std::move(moved)),
              length);
    int side = 0;
    co_await corio::offload(pool, [&side] { side = 5; });
    EXPECT_EQ(side, 5);
    EXPECT_EQ(co_await corio::offload([] { return 1; }), 1);  // the CPU pool
  });
  EXPECT_EQ(pool.stats().completed, 4U);
}

TEST(Offload, AnExceptionOfTheJobReachesTheTask) {
  corio::thread_pool pool(1);
  run_virtual([&]() -> corio::task<> {
    bool caught = false;
    try {
      co_await corio::offload(pool, []() -> int { throw std::invalid_argument("bad input"); });
    } catch (const std::invalid_argument& e) {
      caught = std::string(e.what()) == "bad input";
    }
    EXPECT_TRUE(caught);
  });
}

TEST(Offload, ManyJobsInFlightAllComeBackInOrderOfTheirTasks) {
  corio::thread_pool pool(2);
  run_virtual([&]() -> corio::task<> {
    std::vector<int> inputs(2000);
    for (int i = 0; i < 2000; ++i)
      inputs[static_cast<std::size_t>(i)] = i;
    const std::vector<std::uint64_t> out = co_await corio::map_bounded(
        inputs,
        [&pool](int i) -> corio::task<std::uint64_t> {
          co_return co_await corio::offload(
              pool, [](int v) { return static_cast<std::uint64_t>(v) * v; }, i);
        },
        64);
    bool ok = out.size() == 2000;
    for (std::size_t i = 0; ok && i < out.size(); ++i)
      ok = out[i] == i * i;
    EXPECT_TRUE(ok);
  });
  EXPECT_EQ(pool.stats().completed, 2000U);
}

// Cancelling the awaiting task gives it cancelled_error while the job is
// still stuck on the worker; the job then finishes and its result is
// destroyed on the loop, not leaked and not delivered.
TEST(Offload, CancellingTheTaskIsImmediateAndTheResultIsDropped) {
  corio::thread_pool pool(1);
  gate g;
  bool was_cancelled_while_job_ran = false;
  run_virtual([&]() -> corio::task<> {
    auto h = corio::spawn([](corio::thread_pool& pool, gate& g) -> corio::task<int> {
      const counted c = co_await corio::offload(pool, [&g] {
        g.pass();
        return counted(7);
      });
      co_return c.value;
    }(pool, g));
    while (g.waiting.load() == 0)
      co_await corio::yield_now();
    EXPECT_TRUE(h.cancel());
    try {
      co_await h;
    } catch (const corio::cancelled_error&) {
      was_cancelled_while_job_ran = !g.open.load();
    }
    g.open = true;  // the job ends now; run() waits for its completion
  });
  EXPECT_TRUE(was_cancelled_while_job_ran);
  EXPECT_EQ(pool.stats().completed, 1U) << "run() returned before the dropped job came back";
  EXPECT_EQ(counted::live.load(), 0) << "the dropped result leaked";
}

// A timeout around an offload is a cancellation too: it fires on time
// (virtual clock) although the job is still running.
TEST(Offload, ATimeoutDoesNotWaitForTheJob) {
  corio::thread_pool pool(1);
  gate g;
  run_virtual([&]() -> corio::task<> {
    bool timed_out = false;
    try {
      co_await corio::timeout(std::chrono::milliseconds(10), corio::offload(pool, [&g] {
                                g.pass();
                                return 1;
                              }));
    } catch (const corio::timeout_error&) {
      timed_out = !g.open.load();
    }
    EXPECT_TRUE(timed_out);
    g.open = true;
  });
}

TEST(Offload, AFullQueueRefusesTheJobWithAClearError) {
  corio::thread_pool pool(corio::thread_pool_options{.threads = 1, .queue_limit = 1});
  gate g;
  int ran = 0;
  run_virtual([&]() -> corio::task<> {
    auto busy = corio::spawn(offloaded(pool, [&g] { g.pass(); }));
    while (g.waiting.load() == 0)
      co_await corio::yield_now();
    auto queued = corio::spawn(offloaded(pool, [&ran] { ++ran; }));
    co_await corio::yield_now();
    bool refused = false;
    try {
      co_await corio::offload(pool, [&ran] { ran += 100; });
    } catch (const corio::pool_overloaded_error&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    EXPECT_EQ(pool.stats().rejected, 1U);
    g.open = true;
    co_await busy;
    co_await queued;
  });
  EXPECT_EQ(ran, 1);
}

// Completions that arrive while the loop is busy are all taken in the next
// iteration: one pass over the inbox, not one wake-up each.
TEST(Offload, CompletionsArrivingTogetherResumeInOneIteration) {
  corio::thread_pool pool(2);
  run_virtual([&]() -> corio::task<> {
    constexpr int n = 100;
    std::vector<corio::join_handle<int>> jobs;
    for (int i = 0; i < n; ++i)
      jobs.push_back(corio::spawn(offloaded(pool, [i] { return i; })));
    co_await corio::yield_now();  // every job is submitted
    // Keep the loop thread busy (no await) until every job has come back.
    while (pool.stats().completed < static_cast<std::uint64_t>(n))
      std::this_thread::yield();
    const std::uint64_t before = corio::event_loop::current()->stats().iterations;
    int sum = 0;
    for (auto& j : jobs)
      sum += co_await j;
    EXPECT_EQ(sum, n * (n - 1) / 2);
    EXPECT_LE(corio::event_loop::current()->stats().iterations - before, 3U);
  });
}

// A `threads` of 0 counts as one worker, as documented (not a pool without
// workers, where every offload would wait for ever).
TEST(ThreadPool, ZeroThreadsCountsAsOneWorker) {
  for (const bool on_demand : {false, true}) {
    corio::thread_pool_options options;
    options.threads = 0;
    options.start_on_demand = on_demand;
    corio::thread_pool pool(options);
    EXPECT_EQ(pool.options().threads, 0U);
    run_virtual([&]() -> corio::task<> {
      EXPECT_EQ(co_await corio::offload(pool, [] { return 42; }), 42);
    });
    EXPECT_EQ(pool.stats().threads, 1U) << "on demand: " << on_demand;
  }
  corio::thread_pool by_count(0);
  run_virtual([&]() -> corio::task<> {
    EXPECT_EQ(co_await corio::offload(by_count, [] { return 7; }), 7);
  });
}

TEST(Offload, LoopsOnSeveralThreadsShareOnePool) {
  corio::thread_pool pool(2);
  std::atomic<std::uint64_t> total{0};
  std::vector<std::thread> loops;
  for (int t = 0; t < 3; ++t) {
    loops.emplace_back([&pool, &total, t] {
      corio::run(
          [](corio::thread_pool& pool, std::atomic<std::uint64_t>& total, int t) -> corio::task<> {
            for (int i = 0; i < 300; ++i)
              total += co_await corio::offload(
                  pool, [](int v) { return v; }, t * 1000 + i);
          }(pool, total, t));
    });
  }
  for (auto& l : loops)
    l.join();
  // sum over t of (300 * 1000 t + 0..299)
  EXPECT_EQ(total.load(), 3U * 44850U + 300U * 1000U * 3U);
}

}  // namespace
