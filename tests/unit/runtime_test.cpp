// corio::runtime: loops on threads of their own, calls between them
// (values, tasks, errors, cancellation across loops), detached tasks on
// other loops, invoke_on_all, a blocked loop while the others serve, and
// the shutdown with work in flight on every loop. No test depends on
// timing: what must happen first is waited for with flags.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

// Spins (yielding to its loop) until `flag` is set by another thread.
corio::task<void> until_set(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire))
    co_await corio::sleep(1ms);
}

TEST(Runtime, MainRunsOnLoopZeroAndEachLoopHasAThreadOfItsOwn) {
  corio::runtime rt({.threads = 3});
  EXPECT_EQ(rt.size(), 3U);
  const std::size_t threads = rt.run([]() -> corio::task<std::size_t> {
    EXPECT_EQ(corio::this_loop_index(), 0U);
    EXPECT_EQ(corio::loop_count(), 3U);
    std::set<std::thread::id> ids;
    for (std::size_t i = 0; i < corio::loop_count(); ++i) {
      const auto [index, id] = co_await corio::submit_to(
          i, [] { return std::pair(corio::this_loop_index(), std::this_thread::get_id()); });
      EXPECT_EQ(index, i);
      ids.insert(id);
    }
    co_return ids.size();
  }());
  EXPECT_EQ(threads, 3U);
  EXPECT_EQ(corio::loop_count(), 1U) << "off the runtime again";
}

TEST(Runtime, SubmitToCarriesValuesTasksAndErrorsBack) {
  corio::run(
      []() -> corio::task<void> {
        EXPECT_EQ(co_await corio::submit_to(1, [] { return 6 * 7; }), 42);
        const std::string text = co_await corio::submit_to(1, []() -> corio::task<std::string> {
          co_await corio::sleep(1ms);  // a timer of loop 1
          co_return "from loop " + std::to_string(corio::this_loop_index());
        });
        EXPECT_EQ(text, "from loop 1");
        try {
          co_await corio::submit_to(1, []() -> int { throw std::runtime_error("remote failure"); });
          ADD_FAILURE() << "no error";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "remote failure");
        }
        EXPECT_THROW(co_await corio::submit_to(2, [] { return 0; }), std::out_of_range);
      }(),
      corio::runtime_options{.threads = 2});
}

TEST(Runtime, SubmitToOffARuntimeIsALogicError) {
  corio::run([]() -> corio::task<void> {
    EXPECT_THROW(co_await corio::submit_to(0, [] { return 1; }), std::logic_error);
    co_return;
  }());
}

// Calls loop 1, where the call waits until it is cancelled, then cleans
// up (awaiting) before it ends. (A coroutine of its own: a spawned
// lambda's captures die with the lambda object, its parameters do not.)
corio::task<void> call_that_waits(std::atomic<bool>& started, std::atomic<bool>& remote_cancelled) {
  co_await corio::submit_to(1, [&started, &remote_cancelled]() -> corio::task<void> {
    started.store(true, std::memory_order_release);
    bool cancelled = false;
    try {
      co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await corio::sleep(5ms);  // cleanup that still awaits: the caller waits for it
      remote_cancelled.store(true, std::memory_order_release);
    }
  });
}

TEST(Runtime, CancellingASubmitToCancelsTheRemoteTaskAndWaitsForIt) {
  std::atomic<bool> started{false};
  std::atomic<bool> remote_cancelled{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    auto caller = corio::spawn(call_that_waits(started, remote_cancelled));
    co_await until_set(started);
    caller.cancel();
    EXPECT_THROW(co_await std::move(caller), corio::cancelled_error);
    EXPECT_TRUE(remote_cancelled.load(std::memory_order_acquire))
        << "the caller resumed only after the remote task ended";
  }());
}

// Records its loop, says it started, and sleeps until it is cancelled.
corio::task<void> sleep_until_cancelled(std::atomic<int>& ran_on, std::atomic<bool>& started,
                                        std::atomic<bool>& cancelled) {
  ran_on.store(static_cast<int>(corio::this_loop_index()));
  started.store(true, std::memory_order_release);
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled.store(true);
    throw;
  }
}

TEST(Runtime, SpawnOnRunsThereAndTheShutdownCancelsWhatIsLeft) {
  std::atomic<int> ran_on{-1};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> started{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    corio::spawn_on(1, [&] { return sleep_until_cancelled(ran_on, started, cancelled); });
    co_await until_set(started);
  }());  // main ends: loop 1 cancels its task and drains
  EXPECT_EQ(ran_on.load(), 1);
  EXPECT_TRUE(cancelled.load());
}

// A task on each loop calling the next loop forever, each call sleeping
// there: when main ends, calls are in flight between every pair.
corio::task<void> relay(std::atomic<int>& calls) {
  const std::size_t next = (corio::this_loop_index() + 1) % corio::loop_count();
  try {
    for (;;) {
      co_await corio::submit_to(next, [&calls]() -> corio::task<void> {
        calls.fetch_add(1);
        co_await corio::sleep(1ms);
      });
    }
  } catch (const corio::runtime_stopping_error&) {  // between two calls when main ended
  }
}

// Waits until the shutdown cancels it, then tries to cross once more.
corio::task<void> cross_after_cancel(std::atomic<int>& refused) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
  }
  try {
    corio::spawn_on(0, []() -> corio::task<void> { co_return; });
  } catch (const corio::runtime_stopping_error&) {
    refused.fetch_add(1);
  }
}

TEST(Runtime, TheShutdownDrainsCallsInFlightOnEveryLoopAndRefusesNewOnes) {
  std::atomic<int> calls{0};
  std::atomic<int> refused{0};
  corio::runtime rt({.threads = 3});
  rt.run([&]() -> corio::task<void> {
    co_await corio::invoke_on_all([&](std::size_t) {
      corio::spawn(relay(calls));
      corio::spawn(cross_after_cancel(refused));
    });
    while (calls.load() < 30)
      co_await corio::sleep(1ms);
  }());
  EXPECT_GE(calls.load(), 30);
  EXPECT_EQ(refused.load(), 3);
}

// Holds loop 1's thread until `release` is set.
corio::task<void> block_loop_1(std::atomic<bool>& blocked, std::atomic<bool>& release) {
  co_await corio::submit_to(1, [&blocked, &release] {
    blocked.store(true, std::memory_order_release);
    while (!release.load(std::memory_order_acquire))
      std::this_thread::yield();
  });
}

TEST(Runtime, ALoopBlockedByASlowTaskLeavesTheOthersServing) {
  std::atomic<bool> release{false};
  std::atomic<bool> blocked{false};
  corio::runtime rt({.threads = 3});
  rt.run([&]() -> corio::task<void> {
    auto slow = corio::spawn(block_loop_1(blocked, release));
    co_await until_set(blocked);
    int answered = 0;
    for (int i = 0; i < 100; ++i)
      answered += co_await corio::submit_to(2, [] { return 1; });
    EXPECT_EQ(answered, 100);
    EXPECT_FALSE(slow.done()) << "loop 1 is still blocked";
    release.store(true, std::memory_order_release);
    co_await std::move(slow);
  }());
}

corio::task<void> call_loop_1(std::atomic<bool>& ran) {
  co_await corio::submit_to(1, [&ran] { ran.store(true); });
}

TEST(Runtime, ACallCancelledBeforeItStartedThereNeverRuns) {
  std::atomic<bool> release{false};
  std::atomic<bool> blocked{false};
  std::atomic<bool> ran{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    auto slow = corio::spawn(block_loop_1(blocked, release));
    co_await until_set(blocked);
    auto caller = corio::spawn(call_loop_1(ran));
    co_await corio::yield_now();  // the caller posted its call; loop 1 cannot take it yet
    caller.cancel();
    co_await corio::yield_now();
    EXPECT_FALSE(caller.done()) << "the caller waits for loop 1 to hear of the cancel";
    release.store(true, std::memory_order_release);
    EXPECT_THROW(co_await std::move(caller), corio::cancelled_error);
    EXPECT_FALSE(ran.load()) << "the call and its cancel arrived together: it never ran";
    co_await std::move(slow);
  }());
}

TEST(Runtime, InvokeOnAllRunsOnEveryLoopAndRethrowsAnError) {
  std::vector<std::atomic<int>> seen(4);
  corio::runtime rt({.threads = 4});
  rt.run([&]() -> corio::task<void> {
    co_await corio::invoke_on_all(
        [&](std::size_t i) { seen[i].store(static_cast<int>(corio::this_loop_index()) + 1); });
    for (std::size_t i = 0; i < seen.size(); ++i)
      EXPECT_EQ(seen[i].load(), static_cast<int>(i) + 1);
    EXPECT_THROW(co_await corio::invoke_on_all([](std::size_t i) {
                   if (i == 2) throw std::runtime_error("loop 2 refused");
                 }),
                 std::runtime_error);
  }());
}

TEST(Runtime, MainsErrorIsRethrownAfterEveryLoopEnded) {
  std::atomic<int> ran_on{-1};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> started{false};
  corio::runtime rt({.threads = 2});
  EXPECT_THROW(rt.run([&]() -> corio::task<int> {
    corio::spawn_on(1, [&] { return sleep_until_cancelled(ran_on, started, cancelled); });
    co_await until_set(started);
    throw std::runtime_error("main failed");
  }()),
               std::runtime_error);
  EXPECT_TRUE(cancelled.load());
  EXPECT_THROW(rt.run([]() -> corio::task<int> { co_return 1; }()), std::logic_error)
      << "a runtime runs once";
}

// Records the thread that made it and the one that destroyed it.
struct per_loop {
  std::size_t index = corio::this_loop_index();
  std::thread::id made = std::this_thread::get_id();
  std::atomic<bool>* destroyed_on_own_thread = nullptr;
  per_loop() = default;
  per_loop(per_loop&& o) noexcept
      : index(o.index),
        made(o.made),
        destroyed_on_own_thread(std::exchange(o.destroyed_on_own_thread, nullptr)) {}
  ~per_loop() {
    if (destroyed_on_own_thread != nullptr) {
      destroyed_on_own_thread->store(std::this_thread::get_id() == made);
    }
  }
};

TEST(Runtime, LoopLocalGivesEachLoopItsOwnInstanceMadeAndDestroyedThere) {
  std::vector<std::atomic<bool>> own_thread(3);
  std::atomic<int> made{0};
  corio::runtime rt({.threads = 3});
  rt.run([&]() -> corio::task<void> {
    corio::loop_local<per_loop> state([&] {
      made.fetch_add(1);
      per_loop p;
      p.destroyed_on_own_thread = &own_thread[corio::this_loop_index()];
      return p;
    });
    EXPECT_EQ(state.size(), 3U);
    for (int round = 0; round < 2; ++round) {  // the second round reuses them
      co_await corio::invoke_on_all([&state](std::size_t i) {
        const per_loop& mine = state.local();
        EXPECT_EQ(mine.index, i);
        EXPECT_EQ(mine.made, std::this_thread::get_id());
      });
    }
    EXPECT_EQ(made.load(), 3);
    co_await state.clear();
    for (const auto& flag : own_thread)
      EXPECT_TRUE(flag.load()) << "destroyed on the loop that made it";
  }());
}

}  // namespace
