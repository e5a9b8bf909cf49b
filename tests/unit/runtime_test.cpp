// corio::runtime: loops on threads of their own, calls between them
// (values, tasks, errors, cancellation across loops), detached tasks on
// other loops, invoke_on_all, a blocked loop while the others serve, and
// the shutdown with work in flight on every loop. No test depends on
// timing: what must happen first is waited for with flags.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
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

// ---- spawn_balanced and the batched messages -----------------------------

// Task i of the balanced tests: where it ran, and i squared.
corio::task<std::size_t> square_where(std::size_t i, std::vector<std::thread::id>& made_on,
                                      std::vector<std::size_t>& ran_on) {
  ran_on[i] = corio::this_loop_index();
  made_on[i] = std::this_thread::get_id();
  co_return i* i;
}

TEST(Runtime, SpawnBalancedUsesEveryLoopAndBringsResultsBack) {
  constexpr std::size_t n = 2000;
  std::vector<std::thread::id> made_on(n);
  std::vector<std::size_t> ran_on(n, 99);
  std::vector<std::thread::id> loop_thread(2);
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    for (std::size_t i = 0; i < 2; ++i)
      loop_thread[i] = co_await corio::submit_to(i, [] { return std::this_thread::get_id(); });
    std::vector<corio::remote_handle<std::size_t>> handles;
    std::size_t local = 0;
    for (std::size_t i = 0; i < n; ++i) {
      handles.push_back(corio::spawn_balanced(
          [i, &made_on, &ran_on] { return square_where(i, made_on, ran_on); }));
      if (handles.back().local()) ++local;
    }
    // The first spawn ties (or loses) against the idle loop 1, and once
    // this loop holds more tasks than loop 1 shows, loop 1 wins: both get
    // some, whatever the timing.
    EXPECT_GT(local, 0U);
    EXPECT_LT(local, n);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(co_await handles[i], i * i);
      EXPECT_TRUE(handles[i].done());
    }
    std::size_t kept_ran_on_1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_LT(ran_on[i], 2U);
      if (ran_on[i] >= 2) break;
      EXPECT_EQ(made_on[i], loop_thread[ran_on[i]]) << "the task is made on the loop it runs on";
      // One sent to loop 1 runs there; one kept here runs here unless
      // loop 1 stole it.
      if (!handles[i].local()) {
        EXPECT_EQ(ran_on[i], 1U);
      }
      if (handles[i].local() && ran_on[i] == 1) ++kept_ran_on_1;
    }
    const std::uint64_t stolen = co_await corio::submit_to(
        1, [] { return corio::event_loop::current()->stats().calls_stolen; });
    EXPECT_EQ(stolen, kept_ran_on_1);
  }());
}

// Sets `ran` if its body ever runs.
corio::task<int> must_not_run(std::atomic<int>& ran) {
  ran.fetch_add(1);
  co_return 1;
}

TEST(Runtime, ABalancedTaskCancelledBeforeItStartedNeverRuns) {
  std::atomic<int> ran{0};
  std::atomic<bool> release{false};
  std::atomic<bool> blocked{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    // Loop 1 is held, so that it neither steals the tasks kept here nor
    // starts those sent to it before their cancels arrive.
    auto slow = corio::spawn(block_loop_1(blocked, release));
    co_await until_set(blocked);
    std::vector<corio::remote_handle<int>> handles;
    std::size_t remote = 0;
    for (int i = 0; i < 600; ++i) {
      handles.push_back(corio::spawn_balanced([&ran] { return must_not_run(ran); }));
      // Kept here: still queued. Sent: the cancel follows the request.
      handles.back().cancel();
      if (!handles.back().local()) ++remote;
    }
    EXPECT_GT(remote, 0U);
    EXPECT_LT(remote, 600U);
    co_await corio::yield_now();  // this tick's end: every request and cancel went out
    release.store(true, std::memory_order_release);
    for (auto& h : handles)
      EXPECT_THROW((void)co_await h, corio::cancelled_error);
    co_await std::move(slow);
  }());
  EXPECT_EQ(ran.load(), 0);
}

// Says it started, then sleeps until cancelled; records the cancellation.
corio::task<int> started_then_sleeps(std::atomic<bool>& started, std::atomic<bool>& cancelled) {
  started.store(true, std::memory_order_release);
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled.store(true, std::memory_order_release);
    throw;
  }
  co_return 0;
}

corio::task<void> nap() {
  co_await corio::sleep(1ms);
}

// Awaits a balanced handle that is sure to be remote.
corio::task<int> await_remote(std::atomic<bool>& started, std::atomic<bool>& cancelled) {
  for (;;) {
    auto h = corio::spawn_balanced([&] { return started_then_sleeps(started, cancelled); });
    if (!h.local()) co_return co_await h;
    h.cancel();
    EXPECT_THROW((void)co_await h, corio::cancelled_error);
    started.store(false);
    cancelled.store(false);
    corio::spawn(nap());  // one more local task: the next goes to loop 1 sooner
  }
}

TEST(Runtime, CancellingTheAwaiterOfARemoteHandleCancelsTheTaskAndWaitsForIt) {
  std::atomic<bool> started{false};
  std::atomic<bool> cancelled{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    auto waiter = corio::spawn(await_remote(started, cancelled));
    co_await until_set(started);
    waiter.cancel();
    EXPECT_THROW((void)co_await std::move(waiter), corio::cancelled_error);
    EXPECT_TRUE(cancelled.load(std::memory_order_acquire))
        << "the awaiter resumed only after the remote task ended";
  }());
}

// Loop 1's count of messages it sent to other loops, read there.
corio::task<std::uint64_t> messages_sent_by_loop_1() {
  co_return co_await corio::submit_to(
      1, [] { return corio::event_loop::current()->stats().messages_sent; });
}

TEST(Runtime, ABalancedTaskThatEndsBeforeItIsAwaitedSendsNoReply) {
  constexpr std::size_t n = 300;
  corio::runtime rt({.threads = 2});
  rt.run([]() -> corio::task<void> {
    const std::uint64_t before = co_await messages_sent_by_loop_1();
    std::vector<corio::remote_handle<std::size_t>> handles;
    std::size_t remote = 0;
    for (std::size_t i = 0; i < n; ++i) {
      handles.push_back(corio::spawn_balanced([i] { return i * 3; }));
      if (!handles.back().local()) ++remote;
    }
    EXPECT_GT(remote, 0U);
    // Nobody awaits yet: each handle sees its outcome stored, wherever the
    // task ran (sent to loop 1, kept here, or stolen by loop 1).
    for (const auto& h : handles) {
      while (!h.done())
        co_await corio::sleep(1ms);
    }
    const std::uint64_t after = co_await messages_sent_by_loop_1();
    // The one message in between is the reply to the first count's call.
    EXPECT_EQ(after - before, 1U) << "loop 1 replied to calls nobody waited for";
    for (std::size_t i = 0; i < n; ++i)
      EXPECT_EQ(co_await handles[i], i * 3);
  }());
}

// Waits for `go`, then counts itself in `ended`.
corio::task<int> after_go(const std::atomic<bool>& go, std::atomic<int>& ended) {
  co_await until_set(go);
  ended.fetch_add(1, std::memory_order_acq_rel);
  co_return 1;
}

TEST(Runtime, AHandleDroppedBeforeItsTaskEndsLeavesItRunningAndFreesTheCall) {
  constexpr int n = 200;
  std::atomic<bool> go{false};
  std::atomic<int> ended{0};
  std::atomic<bool> all_ended{false};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    int remote = 0;
    for (int i = 0; i < n; ++i) {
      auto h = corio::spawn_balanced([&] { return after_go(go, ended); });
      if (!h.local()) ++remote;
    }  // each handle dropped here, its task not ended
    EXPECT_GT(remote, 0);
    go.store(true, std::memory_order_release);
    while (ended.load(std::memory_order_acquire) != n)
      co_await corio::sleep(1ms);
    all_ended.store(true);
  }());
  // The calls ended on loop 1 after their handles were gone are freed there
  // (the ASan build checks that none leaks and none is freed twice).
  EXPECT_TRUE(all_ended.load());
  EXPECT_EQ(ended.load(), n);
}

corio::task<void> wait_for(corio::event& ev);  // waits until `ev` is set (below)

TEST(Runtime, AnAwaitFindsTheOutcomeWhetherItParkedOrTheOutcomeWasStoredFirst) {
  constexpr std::size_t n = 2000;
  corio::runtime rt({.threads = 2});
  std::size_t stored_first = 0;
  std::size_t parked = 0;
  const std::size_t sum = rt.run([&]() -> corio::task<std::size_t> {
    // Tasks waiting here make this loop the busier one: balanced spawns
    // go to loop 1.
    corio::event end;
    for (int i = 0; i < 4; ++i)
      corio::spawn(wait_for(end));
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      auto h = corio::spawn_balanced([i] { return i; });
      if (i % 2 == 1) {
        // Stored first: nobody waits yet, so nothing is posted back.
        while (!h.done())
          co_await corio::yield_now();
        ++stored_first;
      } else if (!h.local()) {
        // Still in this resumption's batch: the await parks before the
        // request has even left.
        EXPECT_FALSE(h.done());
        ++parked;
      }
      total += co_await h;
    }
    end.set();
    co_return total;
  }());
  EXPECT_EQ(sum, n * (n - 1) / 2);
  EXPECT_EQ(stored_first, n / 2);
  EXPECT_GT(parked, 0U);
}

// Records on which thread the copy a call keeps of it is destroyed.
struct destroyed_where {
  std::mutex* m;
  std::vector<std::thread::id>* where;
  bool live = true;
  destroyed_where(std::mutex& mu, std::vector<std::thread::id>& w) : m(&mu), where(&w) {}
  destroyed_where(destroyed_where&& o) noexcept
      : m(o.m), where(o.where), live(std::exchange(o.live, false)) {}
  destroyed_where(const destroyed_where&) = delete;
  destroyed_where& operator=(const destroyed_where&) = delete;
  destroyed_where& operator=(destroyed_where&&) = delete;
  ~destroyed_where() {
    if (!live) return;
    const std::lock_guard lock(*m);
    where->push_back(std::this_thread::get_id());
  }
};

TEST(Runtime, ACallWhoseHandleWasDroppedFirstIsFreedByTheLoopThatMadeIt) {
  constexpr int n = 200;
  std::atomic<bool> go{false};
  std::atomic<int> ended{0};
  std::mutex m;
  std::vector<std::thread::id> where;
  const std::thread::id loop_0 = std::this_thread::get_id();
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    int remote = 0;
    for (int i = 0; i < n; ++i) {
      auto h =
          corio::spawn_balanced([&, d = destroyed_where(m, where)] { return after_go(go, ended); });
      if (!h.local()) ++remote;
    }  // each handle dropped here, its task not ended
    EXPECT_GT(remote, 0);
    go.store(true, std::memory_order_release);
    for (;;) {
      {
        const std::lock_guard lock(m);
        if (where.size() == static_cast<std::size_t>(n)) break;
      }
      co_await corio::sleep(1ms);
    }
  }());
  EXPECT_EQ(ended.load(), n);
  ASSERT_EQ(where.size(), static_cast<std::size_t>(n));
  for (const std::thread::id& id : where)
    EXPECT_EQ(id, loop_0) << "a call is freed by the thread whose frame pool it came from";
}

TEST(Runtime, CancellingAHandleWhoseOutcomeIsStoredKeepsTheOutcome) {
  corio::runtime rt({.threads = 2});
  const int v = rt.run([]() -> corio::task<int> {
    for (;;) {
      auto h = corio::spawn_balanced([] { return 42; });
      while (!h.done())
        co_await corio::yield_now();
      h.cancel();  // too late: it ended
      const int got = co_await h;
      if (!h.local()) co_return got;  // one that ended on loop 1, stored there
      EXPECT_EQ(got, 42);
      corio::spawn(nap());  // one more local task: the next goes to loop 1 sooner
    }
  }());
  EXPECT_EQ(v, 42);
}

TEST(Runtime, ARemoteHandleAwaitedByTwoTasksAtOnceIsALogicError) {
  std::atomic<bool> go{false};
  std::atomic<int> ended{0};
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    auto h = corio::spawn_balanced([&] { return after_go(go, ended); });
    auto first = corio::spawn(
        [](corio::remote_handle<int>& r) -> corio::task<int> { co_return co_await r; }(h));
    co_await corio::sleep(1ms);  // `first` parks on the handle
    EXPECT_THROW((void)co_await h, std::logic_error);
    go.store(true, std::memory_order_release);
    EXPECT_EQ(co_await first, 1) << "the first awaiter still gets the outcome";
  }());
}

corio::task<void> park();  // sleeps for an hour (below)

// A task parked on a call to loop 1 when main returns: the shutdown
// cancels both ends, and loop 0 waits for the reply instead of giving the
// task up (nothing is reported abandoned, nothing leaks).
TEST(Runtime, TheShutdownWaitsForTheReplyOfACallATaskIsParkedOn) {
  for (int round = 0; round < 50; ++round) {
    std::mutex m;
    std::vector<std::string> reports;
    corio::loop_options options;
    options.report = [&](const std::string& r) {
      const std::lock_guard lock(m);
      reports.push_back(r);
    };
    std::atomic<bool> started{false};
    std::atomic<bool> cancelled{false};
    corio::runtime rt({.threads = 2, .loop = options});
    rt.run([&]() -> corio::task<void> {
      for (int i = 0; i < 8; ++i) {
        corio::spawn(
            []() -> corio::task<void> { co_await corio::submit_to(1, [] { return park(); }); }());
      }
      corio::spawn(await_remote(started, cancelled));
      co_await until_set(started);
    }());
    const std::lock_guard lock(m);
    for (const std::string& r : reports)
      EXPECT_EQ(r.find("abandoned"), std::string::npos) << r;
  }
}

TEST(Runtime, SpawnBalancedOffARuntimeRunsOnThisLoop) {
  const int v = corio::run([]() -> corio::task<int> {
    auto h = corio::spawn_balanced([] { return 20 + 1; });
    EXPECT_TRUE(h.local());
    const int a = co_await h;
    auto t = corio::spawn_balanced([]() -> corio::task<int> { co_return 21; });
    const int b = co_await t;
    // Cancelling one is cancelling a task of this loop (no runtime queue).
    auto sleeper = corio::spawn_balanced([]() -> corio::task<int> {
      co_await corio::sleep(std::chrono::hours(1));
      co_return 0;
    });
    co_await corio::yield_now();
    sleeper.cancel();
    EXPECT_THROW((void)co_await sleeper, corio::cancelled_error);
    co_return a + b;
  }());
  EXPECT_EQ(v, 42);
  EXPECT_THROW((void)corio::spawn_balanced([] { return 1; }), std::logic_error) << "off any loop";
}

// Appends its number on the loop it was sent to.
corio::task<void> append(std::vector<int>& seen, int i) {
  seen.push_back(i);
  co_return;
}

TEST(Runtime, MessagesOfOneTickGoInBatchesAndKeepTheirOrder) {
  std::vector<int> seen;
  // The tasks the messages spawn run in spawning order only unshuffled
  // (CORIO_SHUFFLE shuffles each tick's ready tasks).
  corio::loop_options in_order;
  in_order.shuffle = false;
  corio::runtime rt({.threads = 2, .loop = in_order});
  rt.run([&]() -> corio::task<void> {
    const corio::loop_stats before = corio::event_loop::current()->stats();
    for (int i = 0; i < 1000; ++i)
      corio::spawn_on(1, [&seen, i] { return append(seen, i); });
    // Still this tick: 3 full batches of 256 went; 232 wait for its end.
    const corio::loop_stats during = corio::event_loop::current()->stats();
    EXPECT_EQ(during.messages_sent - before.messages_sent, 1000U);
    EXPECT_EQ(during.message_batches - before.message_batches, 3U);
    co_await corio::submit_to(1, [] { return 0; });  // after the 1,000 (one sender's order)
    const corio::loop_stats after = corio::event_loop::current()->stats();
    EXPECT_EQ(after.message_batches - before.message_batches, 4U) << "the rest with the call";
    const std::size_t count = co_await corio::submit_to(1, [&seen] { return seen.size(); });
    EXPECT_EQ(count, 1000U);
  }());
  ASSERT_EQ(seen.size(), 1000U);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(seen[static_cast<std::size_t>(i)], i);
}

// A chain of short tasks that runs within one tick (each spawns the next)
// until this loop has pushed a batch of messages, so that the loop checks
// its outbox between them; gives up after `give_up` (a failure, not a hang).
struct short_task_chain {
  std::uint64_t tick = 0;
  std::uint64_t batches_before = 0;
  std::chrono::steady_clock::time_point give_up;
  bool sent_within_the_tick = false;
  corio::event finished;
};

corio::task<void> chain_link(short_task_chain& c) {
  const corio::loop_stats now = corio::event_loop::current()->stats();
  if (now.iterations == c.tick && now.message_batches == c.batches_before &&
      std::chrono::steady_clock::now() < c.give_up) {
    corio::spawn(chain_link(c));  // the next link: later in this same tick
    co_return;
  }
  c.sent_within_the_tick = now.iterations == c.tick && now.message_batches > c.batches_before;
  c.finished.set();
}

corio::task<void> set_flag(std::atomic<bool>& flag) {
  flag.store(true, std::memory_order_release);
  co_return;
}

TEST(Runtime, AMessageToAnIdleLoopLeavesBeforeTheSendersLongTickEnds) {
  // A tick as long as its ready tasks last: the only end is the chain's.
  corio::loop_options long_ticks;
  long_ticks.budget = std::numeric_limits<std::uint32_t>::max();
  std::atomic<bool> ran{false};
  corio::runtime rt({.threads = 2, .loop = long_ticks});
  rt.run([&]() -> corio::task<void> {
    co_await corio::submit_to(1, [] { return 0; });  // loop 1 is up, and then idle
    short_task_chain chain;
    const corio::loop_stats before = corio::event_loop::current()->stats();
    chain.tick = before.iterations;
    chain.batches_before = before.message_batches;
    chain.give_up = std::chrono::steady_clock::now() + 30s;
    corio::spawn_on(1, [&ran] { return set_flag(ran); });
    corio::spawn(chain_link(chain));
    co_await chain.finished.wait();
    // Without the check between resumptions the message waits in the
    // outbox until the tick ends, however long loop 1 has been idle.
    EXPECT_TRUE(chain.sent_within_the_tick);
    co_await until_set(ran);
  }());
}

// Counts its end however it ends.
corio::task<void> sleep_and_count(std::atomic<int>& ended) {
  struct count_end {
    std::atomic<int>& n;
    ~count_end() { n.fetch_add(1); }
  } c{ended};
  co_await corio::sleep(1h);
}

// Spins, holding its loop, until `flag` is set or 30 s pass (a failure
// then, not a hang).
corio::task<void> hold_loop_until(const std::atomic<int>& flag) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (flag.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  co_return;
}

corio::task<std::size_t> loop_index_counting(std::atomic<int>& on_loop_1) {
  if (corio::this_loop_index() == 1) on_loop_1.fetch_add(1, std::memory_order_release);
  co_return corio::this_loop_index();
}

TEST(Runtime, AnIdleLoopStealsBalancedTasksKeptOnABusyOne) {
  std::atomic<int> on_loop_1{0};
  std::atomic<int> sleeping{0};
  std::size_t stolen_by_1 = 0;
  std::size_t ran_on_1 = 0;
  std::size_t kept = 0;
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    // Loop 1 holds 10 sleeping tasks: a balanced spawn here keeps its task
    // here (loop 1 looks busier), though loop 1 has nothing to run.
    for (int i = 0; i < 10; ++i)
      corio::spawn_on(1, [&sleeping] { return sleep_and_count(sleeping); });
    co_await corio::submit_to(1, [] { return 0; });  // after the 10: published
    std::vector<corio::remote_handle<std::size_t>> handles;
    for (int i = 0; i < 8; ++i) {
      handles.push_back(
          corio::spawn_balanced([&on_loop_1] { return loop_index_counting(on_loop_1); }));
      if (handles.back().local()) ++kept;
    }
    // This loop is held by the next task until loop 1 has run one of them:
    // loop 1 can only have stolen it.
    auto hold = corio::spawn(hold_loop_until(on_loop_1));
    for (auto& h : handles) {
      const std::size_t where = co_await h;
      if (where == 1) ++ran_on_1;
    }
    co_await std::move(hold);
    stolen_by_1 = co_await corio::submit_to(
        1, [] { return corio::event_loop::current()->stats().calls_stolen; });
  }());
  EXPECT_EQ(kept, 8U) << "loop 1 looked busier: every task was kept here";
  EXPECT_GE(ran_on_1, 1U);
  EXPECT_EQ(stolen_by_1, ran_on_1);
}

corio::task<int> set_ran(std::atomic<bool>& ran) {
  ran.store(true, std::memory_order_release);
  co_return 1;
}

TEST(Runtime, ABalancedTaskKeptOnALoopThatNeverRunsDryStillStarts) {
  std::atomic<bool> release{false};
  std::atomic<bool> blocked{false};
  std::atomic<bool> ran{false};
  int yields = 0;
  corio::runtime rt({.threads = 2});
  rt.run([&]() -> corio::task<void> {
    auto slow = corio::spawn(block_loop_1(blocked, release));  // loop 1 cannot steal
    co_await until_set(blocked);
    std::vector<corio::remote_handle<int>> sent;
    corio::remote_handle<int> kept;
    while (!kept.valid()) {
      auto h = corio::spawn_balanced([&ran] { return set_ran(ran); });
      if (h.local()) {
        kept = std::move(h);
      } else {
        sent.push_back(std::move(h));
      }
    }
    ran.store(false);
    // This loop always has a ready task (this one, yielding): it never
    // runs out of them, and still starts one kept task a tick.
    while (!ran.load(std::memory_order_acquire) && yields < 100000) {
      co_await corio::yield_now();
      ++yields;
    }
    EXPECT_TRUE(ran.load());
    release.store(true, std::memory_order_release);
    EXPECT_EQ(co_await kept, 1);
    for (auto& h : sent)
      EXPECT_EQ(co_await h, 1);
    co_await std::move(slow);
  }());
  EXPECT_LE(yields, 2) << "started in the next tick or the one after";
}

TEST(Runtime, TheShutdownCancelsBalancedTasksOnEveryLoop) {
  std::atomic<int> ended{0};
  corio::runtime rt({.threads = 3});
  rt.run([&]() -> corio::task<void> {
    std::vector<corio::remote_handle<void>> handles;
    for (int i = 0; i < 300; ++i)
      handles.push_back(corio::spawn_balanced([&ended] { return sleep_and_count(ended); }));
    co_await corio::sleep(1ms);
    // main ends with every handle dropped: the tasks run on until the
    // shutdown cancels them on their loops.
  }());
  EXPECT_EQ(ended.load(), 300);
}

// ---- servers on every loop --------------------------------------------------

// Echoes one byte back with the index of the loop that serves it.
corio::task<> tell_loop(corio::tcp_stream s) {
  char c = 0;
  co_await s.read_exact(&c, 1);
  const char index = static_cast<char>('0' + corio::this_loop_index());
  co_await s.write_all(&index, 1);
}

// Connects `n` clients one after another; counts which loop served each.
corio::task<std::vector<int>> clients(corio::socket_address addr, int n) {
  std::vector<int> per_loop(2, 0);
  for (int i = 0; i < n; ++i) {
    auto c = co_await corio::tcp_stream::connect(addr);
    co_await c.write_all("?", 1);
    char index = 0;
    co_await c.read_exact(&index, 1);
    ++per_loop.at(static_cast<std::size_t>(index - '0'));
  }
  co_return per_loop;
}

TEST(Runtime, ServeEveryLoopAcceptsOnEachLoopThroughOnePort) {
  corio::runtime rt({.threads = 2});
  const std::vector<int> per_loop = rt.run([]() -> corio::task<std::vector<int>> {
    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0), {.reuse_port = true});
    auto server = corio::spawn(corio::serve_every_loop(
        l, [](corio::tcp_listener& mine) { return corio::serve(mine, tell_loop); }));
    // 64 connections from 64 source ports: the kernel's hash sends some to
    // each listener (all to one: a chance of 2 in 2^64) once loop 1's is
    // bound; those that came before it all went to loop 0's, so connect on
    // (bounded) until loop 1 has served some.
    auto counts = co_await clients(l.local_address(), 64);
    for (int more = 0; more < 60 && counts[1] == 0; ++more) {
      const std::vector<int> next = co_await clients(l.local_address(), 16);
      counts[0] += next[0];
      counts[1] += next[1];
    }
    server.cancel();
    EXPECT_THROW(co_await std::move(server), corio::cancelled_error);
    co_return counts;
  }());
  EXPECT_GE(per_loop[0] + per_loop[1], 64);
  EXPECT_GT(per_loop[0], 0);
  EXPECT_GT(per_loop[1], 0);
}

TEST(Runtime, ServeEveryLoopWantsAListenerThatSharesItsPort) {
  corio::runtime rt({.threads = 2});
  rt.run([]() -> corio::task<void> {
    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
    EXPECT_FALSE(l.reuses_port());
    EXPECT_THROW(co_await corio::serve_every_loop(
                     l, [](corio::tcp_listener& mine) { return corio::serve(mine, tell_loop); }),
                 std::invalid_argument);
  }());
}

// Tells the client its loop, then holds the connection until the client
// closes it: connections stay open, so loads build up.
corio::task<> tell_and_hold(corio::tcp_stream s) {
  char c = 0;
  co_await s.read_exact(&c, 1);
  const char index = static_cast<char>('0' + corio::this_loop_index());
  co_await s.write_all(&index, 1);
  co_await s.read_some(&c, 1);  // 0: the client closed
}

// `n` blocking clients on a thread of their own (so that no loop carries
// them): each connects, asks, and keeps its connection until all asked.
std::vector<int> held_clients(std::uint16_t port, int n) {
  std::vector<int> per_loop(2, 0);
  std::vector<int> fds;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) break;
    fds.push_back(fd);
    char index = '?';
    if (::write(fd, &index, 1) != 1 || ::read(fd, &index, 1) != 1) break;
    ++per_loop.at(static_cast<std::size_t>(index - '0'));
  }
  for (const int fd : fds)
    ::close(fd);
  return per_loop;
}

TEST(Runtime, OneAcceptorHandsConnectionsToTheLeastLoadedLoop) {
  corio::runtime rt({.threads = 2});
  const std::vector<int> per_loop = rt.run([]() -> corio::task<std::vector<int>> {
    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
    corio::server_stats stats[2];
    auto server = corio::spawn(corio::serve_from_one_acceptor(l, [&stats](auto& connections) {
      return corio::serve(connections, tell_and_hold, {.stats = &stats[corio::this_loop_index()]});
    }));
    const std::uint16_t port = l.local_address().port();
    std::vector<int> counts =
        co_await corio::offload(corio::blocking_pool(), held_clients, port, 64);
    server.cancel();
    EXPECT_THROW(co_await std::move(server), corio::cancelled_error);
    EXPECT_EQ(stats[0].accepted + stats[1].accepted, 64U);
    co_return counts;
  }());
  EXPECT_EQ(per_loop[0] + per_loop[1], 64);
  // 64 connections held open: the loop that took more grew its load, so
  // the other gets the next ones.
  EXPECT_GT(per_loop[0], 0);
  EXPECT_GT(per_loop[1], 0);
}

// Answers every request with the index of the loop that serves it.
void which_loop(const corio::http_request& /*req*/, corio::http_response& res) {
  res.set_body(std::string(1, static_cast<char>('0' + corio::this_loop_index())));
}

// A keep-alive client that asks once: the loop that answered.
corio::task<int> ask_which_loop(corio::tcp_stream& c) {
  const std::string_view req = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  co_await c.write_all(req.data(), req.size());
  std::string in;
  char buf[512];
  for (;;) {
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos && in.size() > end + 4) co_return in[end + 4] - '0';
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) co_return -1;
    in.append(buf, n);
  }
}

// One server_shutdown, requested on loop 0, stops the HTTP servers of both
// loops, under either way of serving every loop: the idle keep-alive
// connections of each loop are closed, each server returns, and so does
// the whole.
TEST(Runtime, OneServerShutdownStopsTheServersOfEveryLoop) {
  corio::runtime rt({.threads = 2});
  rt.run([]() -> corio::task<void> {
    for (const bool one_acceptor : {false, true}) {
      corio::server_shutdown stop;
      auto per_loop = [&stop](auto& mine) {
        return corio::serve_http(mine, which_loop,
                                 {.shutdown = &stop, .drain_timeout = std::chrono::hours(1)});
      };
      auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0), {.reuse_port = true});
      const corio::socket_address address = l.local_address();
      bool returned = false;
      auto server = corio::spawn([](corio::task<> whole, bool& returned) -> corio::task<> {
        co_await std::move(whole);
        returned = true;
      }(one_acceptor ? corio::serve_from_one_acceptor(l, per_loop)
                     : corio::serve_every_loop(l, per_loop),
                                                                         returned));
      // At least 32 connections held open, until each loop has some: the
      // kernel's hash, or the acceptor's count of held connections, puts
      // some on each loop once loop 1 listens.
      std::vector<corio::tcp_stream> held;
      std::vector<int> per_loop_count(2, 0);
      for (int i = 0; i < 32 || (i < 1000 && (per_loop_count[0] == 0 || per_loop_count[1] == 0));
           ++i) {
        held.push_back(co_await corio::tcp_stream::connect(address));
        const int loop = co_await ask_which_loop(held.back());
        if (loop == 0 || loop == 1) ++per_loop_count[static_cast<std::size_t>(loop)];
      }
      EXPECT_GT(per_loop_count[0], 0) << "one_acceptor " << one_acceptor;
      EXPECT_GT(per_loop_count[1], 0) << "one_acceptor " << one_acceptor;
      stop.request();
      for (corio::tcp_stream& c : held) {
        char byte = 0;
        std::error_code ec;  // bounded: a connection left open fails, not hangs, the test
        const std::optional<std::size_t> n =
            co_await corio::move_on_after(std::chrono::seconds(10), c.read_some(&byte, 1, ec));
        EXPECT_TRUE(n && (ec || *n == 0)) << "an idle connection is closed by the stop";
        c.close();
      }
      for (int i = 0; i < 10000 && !returned; ++i)
        co_await corio::sleep(std::chrono::milliseconds(1));
      EXPECT_TRUE(returned) << "one_acceptor " << one_acceptor;
      if (!returned) server.cancel();
      try {
        co_await server;
      } catch (const corio::cancelled_error&) {
      }
    }
  }());
}

// ---- debug mode and observation across loops ---------------------------------

corio::task<void> wait_for(corio::event& ev) {
  co_await ev.wait();
}

TEST(Runtime, DebugModeReportsALoopLocalPrimitiveWokenFromAnotherLoop) {
  std::mutex m;
  std::vector<std::string> reports;
  corio::loop_options debug;
  debug.debug = true;
  debug.report = [&](const std::string& r) {
    const std::lock_guard lock(m);
    reports.push_back(r);
  };
  corio::runtime rt({.threads = 2, .loop = debug});
  std::string dump;
  rt.run([&dump]() -> corio::task<void> {
    corio::event ev;  // loop 0's
    auto waiter = corio::spawn(wait_for(ev), "waits-on-loop-0");
    co_await corio::sleep(1ms);                         // the waiter is parked
    co_await corio::submit_to(1, [&ev] { ev.set(); });  // the misuse
    co_await waiter;                                    // it still ends: sent back to loop 0
    dump = co_await corio::submit_to(1, [] {
      std::ostringstream out;
      corio::dump_tasks(out);
      return out.str();
    });
  }());
  bool found = false;
  for (const std::string& r : reports) {
    if (r.find("waits-on-loop-0") != std::string::npos &&
        r.find("of loop 0 was woken on loop 1") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "reports: " << reports.size();
  EXPECT_NE(dump.find("on this loop (loop 1 of 2)"), std::string::npos) << dump;
}

corio::task<void> yield_times(int n) {
  for (int i = 0; i < n; ++i)
    co_await corio::yield_now();
}

TEST(Runtime, EveryLoopStatsReadsEachLoopOnItsOwnThread) {
  corio::runtime rt({.threads = 3});
  rt.run([]() -> corio::task<void> {
    const std::vector<corio::loop_stats> before = co_await corio::every_loop_stats();
    co_await corio::submit_to(2, [] { return yield_times(100); });
    const std::vector<corio::loop_stats> after = co_await corio::every_loop_stats();
    EXPECT_EQ(after.size(), 3U);
    EXPECT_GE(after[2].resumptions - before[2].resumptions, 100U) << "loop 2 ran the yields";
    EXPECT_LT(after[1].resumptions - before[1].resumptions, 100U) << "loop 1 did not";
  }());
  const std::size_t alone = corio::run([]() -> corio::task<std::size_t> {
    co_return (co_await corio::every_loop_stats()).size();
  }());
  EXPECT_EQ(alone, 1U) << "off a runtime: this loop's alone";
}

corio::task<void> nothing() {
  co_return;
}

TEST(Runtime, TheMetricsExportCountsMessagesToOtherLoops) {
  corio::runtime rt({.threads = 2});
  const std::string text = rt.run([]() -> corio::task<std::string> {
    for (int i = 0; i < 10; ++i)
      corio::spawn_on(1, [] { return nothing(); });
    co_await corio::submit_to(1, [] { return 0; });  // the 11th, in the same batch
    corio::metrics_registry metrics;
    metrics.add_loop(*corio::event_loop::current(), "0");  // read on its own thread
    co_return metrics.prometheus();
  }());
  EXPECT_NE(text.find("corio_loop_messages_sent_total{loop=\"0\"} 11\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("corio_loop_message_batches_total{loop=\"0\"} 1\n"), std::string::npos)
      << text;
}

corio::task<void> park() {
  co_await corio::sleep(1h);
}

// One request on a connection of its own, answered until the server closes.
corio::task<std::string> http_get(corio::socket_address addr, std::string_view path) {
  auto c = co_await corio::tcp_stream::connect(addr);
  const std::string request =
      "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  co_await c.write_all(request.data(), request.size());
  std::string reply;
  char buf[4096];
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) break;
    reply.append(buf, n);
  }
  co_return reply;
}

TEST(Runtime, MetricsOfEveryLoopAreReadOnEachLoopAndServed) {
  corio::runtime rt({.threads = 2});
  rt.run([]() -> corio::task<void> {
    corio::metrics_registry metrics;
    metrics.add_every_loop();
    EXPECT_THROW((void)metrics.prometheus(), std::logic_error) << "two loops: gather, not read";
    co_await corio::submit_to(1, [] { return yield_times(100); });
    corio::spawn_on(
        1, [] { return park(); }, "parked");  // the shutdown cancels it
    const std::string text = co_await metrics.gather_prometheus();
    for (const char* line : {"corio_loop_tasks{loop=\"0\"} ", "corio_loop_tasks{loop=\"1\"} ",
                             "corio_loop_timer_lag_seconds_count{loop=\"1\"} "})
      EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    const std::string json = co_await metrics.gather_json();
    EXPECT_EQ(json.rfind("{\"loops\":{\"0\":{\"iterations\":", 0), 0U) << json;
    EXPECT_NE(json.find(",\"1\":{\"iterations\":"), std::string::npos) << json;

    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
    auto server = corio::spawn(corio::serve_metrics(l, metrics), "metrics");
    const std::string tasks = co_await http_get(l.local_address(), "/tasks.json");
    // Shown as the task it runs, not as spawn_on's wrapper around it.
    EXPECT_NE(tasks.find("{\"name\":\"parked\",\"loop\":1,\"function\":\"park()\""),
              std::string::npos)
        << tasks;
    EXPECT_EQ(tasks.find("remote_spawn"), std::string::npos) << tasks;
    EXPECT_NE(tasks.find("{\"name\":\"metrics\",\"loop\":0,"), std::string::npos) << tasks;
    const std::string dump = co_await http_get(l.local_address(), "/tasks");
    EXPECT_NE(dump.find("(loop 1 of 2)"), std::string::npos) << dump;
    const std::string served = co_await http_get(l.local_address(), "/metrics");
    EXPECT_NE(served.find("corio_loop_resumptions_total{loop=\"1\"} "), std::string::npos);
    server.cancel();
    EXPECT_THROW(co_await std::move(server), corio::cancelled_error);
  }());
  const std::string alone = corio::run([]() -> corio::task<std::string> {
    corio::metrics_registry metrics;
    metrics.add_every_loop("loop");
    co_return metrics.prometheus();
  }());
  EXPECT_NE(alone.find("corio_loop_tasks{loop=\"loop0\"} "), std::string::npos) << alone;
}

// ---- threads and CPUs -----------------------------------------------------------

std::vector<int> cpus_of_this_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::pthread_getaffinity_np(::pthread_self(), sizeof set, &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

TEST(Runtime, ByDefaultItRunsALoopPerCpuThisThreadMayUse) {
  const std::vector<int> cpus = cpus_of_this_thread();
  EXPECT_EQ(corio::runtime().size(), cpus.size());
  // A thread allowed one CPU gets one loop.
  std::size_t size_on_one_cpu = 0;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus.front(), &one);
    ASSERT_EQ(::pthread_setaffinity_np(::pthread_self(), sizeof one, &one), 0);
    size_on_one_cpu = corio::runtime().size();
  }).join();
  EXPECT_EQ(size_on_one_cpu, 1U);
}

TEST(Runtime, PinningPutsLoopIOnTheIthCpuAndGivesTheCallerItsCpusBack) {
  const std::vector<int> before = cpus_of_this_thread();
  corio::runtime rt({.threads = 3, .pin = true});
  const std::vector<std::vector<int>> pinned =
      rt.run([]() -> corio::task<std::vector<std::vector<int>>> {
        std::vector<std::vector<int>> each;
        for (std::size_t i = 0; i < corio::loop_count(); ++i) {
          std::vector<int> cpus =
              co_await corio::submit_to(i, [] { return cpus_of_this_thread(); });
          each.push_back(std::move(cpus));
        }
        co_return each;
      }());
  ASSERT_EQ(pinned.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i)  // more loops than CPUs wrap around
    EXPECT_EQ(pinned[i], std::vector<int>{before[i % before.size()]}) << "loop " << i;
  EXPECT_EQ(cpus_of_this_thread(), before) << "the caller's thread is not left pinned";
}

// ---- a connection pool per loop -------------------------------------------------

struct loop_conn {
  std::size_t made_on = 0;
};

corio::task<loop_conn> open_here() {
  co_return loop_conn{corio::this_loop_index()};
}

corio::pool_hooks<loop_conn> loop_conn_hooks() {
  corio::pool_hooks<loop_conn> h;
  h.create = [] { return open_here(); };
  return h;
}

corio::task<std::size_t> borrow_from(corio::loop_local<corio::pool<loop_conn>>& pools, int n) {
  std::size_t made_on = 0;
  for (int i = 0; i < n; ++i) {
    auto lease = co_await pools.local().acquire();
    made_on = lease->made_on;
  }
  co_return made_on;
}

TEST(Runtime, APoolPerLoopIsMadeThereAndExportedFromItsOwnLoop) {
  corio::runtime rt({.threads = 2});
  const std::string json = rt.run([]() -> corio::task<std::string> {
    // pool<T> is not movable: loop_local builds it in place.
    corio::loop_local<corio::pool<loop_conn>> pools(
        [] { return corio::pool<loop_conn>(loop_conn_hooks(), {.name = "db", .max_size = 2}); });
    const std::size_t on_0 = co_await borrow_from(pools, 3);
    const std::size_t on_1 =
        co_await corio::submit_to(1, [&pools] { return borrow_from(pools, 5); });
    EXPECT_EQ(on_0, 0U);
    EXPECT_EQ(on_1, 1U);
    corio::metrics_registry metrics;
    metrics.add_pool(pools.local(), "db0");
    corio::pool<loop_conn>* other =
        co_await corio::submit_to(1, [&pools] { return &pools.local(); });
    EXPECT_EQ(other->loop_index(), 1U);
    metrics.add_pool(*other, "db1");  // read on loop 1 by the gathering export (TSan checks)
    std::string text = co_await metrics.gather_json();
    co_await corio::invoke_on_all([&pools](std::size_t) { return pools.local().close(); });
    co_await pools.clear();  // each pool destroyed on its own loop
    co_return text;
  }());
  EXPECT_NE(json.find("\"db0\":{\"size\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"db1\":{\"size\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"acquires\":3,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"acquires\":5,"), std::string::npos) << json;
}

}  // namespace
