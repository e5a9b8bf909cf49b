// The systematic cancellation test: for every primitive, a victim task goes
// through a sequence of suspension points; for each point k, a fresh loop
// drives the victim to k and cancels it there, either while it waits
// (`parked`) or after it was woken but before it resumed (`woken`, the case
// in which a permit, item or notification has already been handed to it).
// Then the invariants must hold: nothing is lost or duplicated, other waiters
// still make progress, and the loop ends clean.
//
// A scenario is a struct with:
//   points, can_wake          how many suspension points; whether `woken` applies
//   p                         the probe: the victim sets p.at = i right before
//                             suspending at point i
//   victim()                  the task under test
//   give(i)                   lets the victim past point i (wakes it; must not
//                             let it resume)
//   after_give(i)             runs after give(i) for points before k
//   before_cancel(k)          e.g. queues a bystander up behind the victim
//   on_cancel(k, w)           synchronous checks right after cancel()
//   shielded(k)               point k is shielded: the cancel lands later
//   check(k, w)               the invariants, after the victim has finished
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;
using corio_test::wheel_tick;

namespace {

enum class when { parked, woken };

struct probe {
  int at = -1;
};

// Harness sanity checks. They read the root's current waiter record: set
// while the task waits, cleared when something wakes it.
template <class T>
bool parked(const corio::join_handle<T>& h) {
  return !h.done() && h.get()->m_waiter != nullptr;
}
template <class T>
bool woken(const corio::join_handle<T>& h) {
  return !h.done() && h.get()->m_waiter == nullptr;
}

// Waits until the victim has announced point i (it announces right before
// suspending there). Yields first; then lets virtual time pass, for victims
// that wait on timers.
corio::task<> reach(const probe& p, int i) {
  for (int n = 0; p.at < i && n < 100000; ++n) {
    if (n < 16) {
      co_await corio::yield_now();
    } else {
      co_await corio::sleep(100us);
    }
  }
  EXPECT_EQ(p.at, i) << "the victim did not stop at point " << i;
}

corio::task<> let_run(int yields = 4) {
  for (int i = 0; i < yields; ++i)
    co_await corio::yield_now();
}

struct scenario_base {
  probe p;
  corio::task<> after_give(int) { co_return; }
  // Lets tasks the victim started (children) run up to their own waits.
  corio::task<> before_cancel(int) { co_await let_run(); }
  void on_cancel(int, when) {}
  bool shielded(int) const { return false; }
};

template <class S>
corio::task<> cancel_at_point(S& s, int k, when w) {
  auto victim = corio::spawn(s.victim(), "victim");
  for (int i = 0; i < k; ++i) {
    co_await reach(s.p, i);
    co_await s.give(i);
    co_await s.after_give(i);
  }
  co_await reach(s.p, k);
  EXPECT_TRUE(parked(victim)) << "the victim is not waiting at point " << k;
  co_await s.before_cancel(k);
  EXPECT_TRUE(parked(victim));
  if (w == when::woken) {
    co_await s.give(k);
    EXPECT_TRUE(woken(victim)) << "give() must wake the victim and not let it run";
  }
  EXPECT_TRUE(victim.cancel());
  s.on_cancel(k, w);
  if (s.shielded(k) && w == when::parked) {
    co_await let_run();
    EXPECT_TRUE(parked(victim)) << "a shielded wait was cut short";
    co_await s.give(k);  // it completes; the cancellation lands at the next point
  }
  EXPECT_THROW(co_await victim, corio::cancelled_error);
  EXPECT_TRUE(victim.cancelled());
  co_await s.check(k, w);
}

template <class S>
void sweep(const char* name) {
  for (int k = 0; k < S::points; ++k) {
    for (when w : {when::parked, when::woken}) {
      if (w == when::woken && !S::can_wake) continue;
      SCOPED_TRACE(std::string(name) + ": cancelled at point " + std::to_string(k) +
                   (w == when::parked ? " while waiting" : " after being woken"));
      run_virtual([k, w]() -> corio::task<> {
        S s;
        co_await cancel_at_point(s, k, w);
      });
    }
  }
}

// ---- semaphore: acquire on an empty semaphore, permits kept until the end.

struct semaphore_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::semaphore sem{0};
  std::size_t released = 0;
  int victim_got = 0, bystander_got = 0;
  corio::join_handle<> bystander;

  corio::task<> victim() {
    std::vector<corio::semaphore_guard> held;
    for (int i = 0; i < points; ++i) {
      p.at = i;
      held.push_back(co_await sem.acquire_guard());
      ++victim_got;
    }
  }
  corio::task<> give(int) {
    sem.release();
    ++released;
    co_return;
  }
  corio::task<> before_cancel(int) {
    bystander = corio::spawn([](semaphore_scenario& s) -> corio::task<> {
      auto g = co_await s.sem.acquire_guard();
      ++s.bystander_got;
    }(*this));
    co_await corio::yield_now();
    EXPECT_EQ(sem.waiters(), 2U);
  }
  void on_cancel(int, when) { EXPECT_EQ(sem.waiters(), 1U); }  // the victim left the queue
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_got, k);
    co_await let_run();
    // The permit handed to the victim, or one it held, went on to the bystander.
    EXPECT_EQ(bystander_got, (w == when::woken || k > 0) ? 1 : 0);
    co_await give(0);
    co_await bystander;
    EXPECT_EQ(bystander_got, 1);
    EXPECT_EQ(sem.waiters(), 0U);
    EXPECT_EQ(sem.available(), released);  // no permit lost or made up
  }
};

// ---- mutex: the driver holds the lock whenever the victim asks for it.

struct mutex_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::mutex mu;
  bool driver_holds = false;
  int victim_got = 0, bystander_got = 0;
  corio::join_handle<> bystander;

  mutex_scenario() { driver_holds = mu.try_lock(); }
  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      auto g = co_await mu.scoped_lock();
      ++victim_got;
    }
  }
  corio::task<> give(int) {
    EXPECT_TRUE(driver_holds);
    mu.unlock();  // to the victim, the oldest waiter
    driver_holds = false;
    co_return;
  }
  corio::task<> after_give(int) {
    co_await mu.lock();  // queued behind the victim: the victim unlocks to us
    driver_holds = true;
  }
  corio::task<> before_cancel(int) {
    bystander = corio::spawn([](mutex_scenario& s) -> corio::task<> {
      auto g = co_await s.mu.scoped_lock();
      ++s.bystander_got;
    }(*this));
    co_await corio::yield_now();
  }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_got, k);
    co_await let_run();
    EXPECT_EQ(bystander_got, w == when::woken ? 1 : 0);  // the handed lock went on
    if (driver_holds) mu.unlock();
    co_await bystander;
    EXPECT_EQ(bystander_got, 1);
    EXPECT_FALSE(mu.locked());
  }
};

// ---- event: one event per point.

struct event_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> ev;
  int victim_got = 0;
  bool bystander_woke = false;
  corio::join_handle<> bystander;

  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      co_await ev[i].wait();
      ++victim_got;
    }
  }
  corio::task<> give(int i) {
    ev[i].set();
    co_return;
  }
  corio::task<> before_cancel(int k) {
    bystander = corio::spawn([](corio::event& e, bool& b) -> corio::task<> {
      co_await e.wait();
      b = true;
    }(ev[k], bystander_woke));
    co_await corio::yield_now();
  }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_got, k);
    co_await let_run();
    EXPECT_EQ(bystander_woke, w == when::woken);
    co_await give(k);
    co_await bystander;
    EXPECT_TRUE(bystander_woke);
    EXPECT_TRUE(ev[k].is_set());
  }
};

// ---- condition_variable: wait(m) in a loop, holding m in between.

struct condvar_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::mutex m;
  corio::condition_variable cv;
  int victim_got = 0, bystander_got = 0;
  corio::join_handle<> bystander;

  corio::task<> victim() {
    auto g = co_await m.scoped_lock();
    for (int i = 0; i < points; ++i) {
      p.at = i;
      co_await cv.wait(m);
      EXPECT_TRUE(m.locked());
      ++victim_got;
    }
  }
  corio::task<> give(int) {
    EXPECT_GT(cv.waiters(), 0U);
    cv.notify_one();
    co_return;
  }
  corio::task<> before_cancel(int) {
    bystander = corio::spawn([](condvar_scenario& s) -> corio::task<> {
      auto g = co_await s.m.scoped_lock();
      co_await s.cv.wait(s.m);
      ++s.bystander_got;
    }(*this));
    co_await corio::yield_now();
    EXPECT_EQ(cv.waiters(), 2U);
  }
  void on_cancel(int, when) { EXPECT_EQ(cv.waiters(), 1U); }  // the bystander
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_got, k);
    co_await let_run();
    EXPECT_EQ(bystander_got, w == when::woken ? 1 : 0);  // the notification went on
    if (bystander_got == 0) cv.notify_one();
    co_await bystander;
    EXPECT_EQ(bystander_got, 1);
    EXPECT_EQ(cv.waiters(), 0U);
    EXPECT_FALSE(m.locked());  // the victim re-took the mutex and its guard let go
  }
};

// ---- queue push while full.

struct queue_push_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::queue<int> q{1};
  std::vector<int> popped;
  int victim_pushed = 0;
  corio::join_handle<> bystander;

  queue_push_scenario() { EXPECT_TRUE(q.try_push(0)); }
  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      co_await q.push(i + 1);
      ++victim_pushed;
    }
  }
  corio::task<> give(int) {
    std::optional<int> v = q.try_pop();  // frees the slot: granted to the victim
    EXPECT_TRUE(v.has_value());
    if (v) popped.push_back(*v);
    co_return;
  }
  corio::task<> before_cancel(int) {
    bystander =
        corio::spawn([](corio::queue<int>& q) -> corio::task<> { co_await q.push(100); }(q));
    co_await corio::yield_now();
    EXPECT_FALSE(bystander.done());
  }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_pushed, k);
    co_await let_run();
    EXPECT_EQ(bystander.done(), w == when::woken);  // the granted slot went on
    for (int spins = 0; spins < 100; ++spins) {
      if (std::optional<int> v = q.try_pop()) {
        popped.push_back(*v);
      } else if (bystander.done()) {
        break;
      } else {
        co_await corio::yield_now();
      }
    }
    EXPECT_TRUE(bystander.done()) << "the bystander never got a slot";
    if (!bystander.done()) bystander.cancel();
    EXPECT_NO_THROW(co_await bystander);
    // Pushed = popped + left: 0, the victim's items before k, the bystander's.
    std::vector<int> expected;
    for (int i = 0; i <= k; ++i)
      expected.push_back(i);
    expected.push_back(100);
    EXPECT_EQ(popped, expected);
    EXPECT_TRUE(q.empty());
    EXPECT_TRUE(q.try_push(7));  // no slot leaked to a dead pusher
    EXPECT_FALSE(q.try_push(8));
    EXPECT_EQ(q.try_pop(), std::optional<int>(7));
  }
};

// ---- queue pop while empty.

struct queue_pop_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::queue<int> q{2};
  std::vector<int> victim_got;
  int pushed = 0, bystander_got = -1;
  corio::join_handle<> bystander;

  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      int v = co_await q.pop();
      victim_got.push_back(v);
    }
  }
  corio::task<> give(int i) {
    EXPECT_TRUE(q.try_push(i));  // handed straight to the waiting victim
    ++pushed;
    co_return;
  }
  corio::task<> before_cancel(int) {
    bystander = corio::spawn([](corio::queue<int>& q, int& got) -> corio::task<> {
      got = co_await q.pop();
    }(q, bystander_got));
    co_await corio::yield_now();
  }
  corio::task<> check(int k, when w) {
    std::vector<int> expected;
    for (int i = 0; i < k; ++i)
      expected.push_back(i);
    EXPECT_EQ(victim_got, expected);
    co_await let_run();
    EXPECT_EQ(bystander_got, w == when::woken ? k : -1);  // the handed item went on
    if (w == when::parked) co_await give(k);
    co_await bystander;
    EXPECT_EQ(bystander_got, k);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(static_cast<std::size_t>(pushed), victim_got.size() + 1 + q.size());
  }
};

// ---- sleep.

struct sleep_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = false;  // a timer cannot be fired by hand
  int victim_slept = 0;
  corio::clock::time_point bystander_start;
  corio::join_handle<> bystander;

  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      co_await corio::sleep(10ms);
      ++victim_slept;
    }
  }
  corio::task<> give(int) { co_return; }  // time passes while reach() polls
  corio::task<> before_cancel(int) {
    bystander_start = corio::now();
    bystander = corio::spawn([](corio::clock::time_point t0) -> corio::task<> {
      co_await corio::sleep(25ms);
      EXPECT_GE(corio::now() - t0, 25ms);
      EXPECT_LT(corio::now() - t0, 25ms + wheel_tick);
    }(bystander_start));
    co_await corio::yield_now();
    EXPECT_EQ(corio_test::stats().pending_timers, 2U);
  }
  void on_cancel(int, when) { EXPECT_EQ(corio_test::stats().pending_timers, 1U); }
  corio::task<> check(int k, when) {
    EXPECT_EQ(victim_slept, k);
    co_await bystander;
  }
};

// ---- awaiting a join_handle: the victim spawns a child per point.

struct join_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> ev;
  std::array<bool, points> child_cancelled{}, child_finished{};
  int victim_sum = 0;

  static corio::task<int> child(corio::event& e, bool& cancelled, bool& finished, int v) {
    try {
      co_await e.wait();
    } catch (const corio::cancelled_error&) {
      cancelled = true;
      throw;
    }
    finished = true;
    co_return v;
  }
  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      auto c = corio::spawn(child(ev[i], child_cancelled[i], child_finished[i], i + 1));
      p.at = i;
      victim_sum += co_await c;
    }
  }
  corio::task<> give(int i) {
    ev[i].set();
    co_await corio::yield_now();  // the child finishes and wakes the victim
  }
  corio::task<> check(int k, when w) {
    co_await corio_test::settle();
    EXPECT_EQ(victim_sum, k * (k + 1) / 2);
    // Cancelling a task that awaits a child cancels the child.
    EXPECT_EQ(child_cancelled[k], w == when::parked);
    EXPECT_EQ(child_finished[k], w == when::woken);
    for (int i = 0; i < points; ++i) {
      if (i < k) {
        EXPECT_TRUE(child_finished[i]);
      } else if (i > k) {
        EXPECT_FALSE(child_finished[i] || child_cancelled[i]);  // never spawned
      }
    }
  }
};

// ---- task_group: the body waits at points 0..2; at point 3 the body has
// returned and the group waits for its children.

struct task_group_scenario : scenario_base {
  static constexpr int points = 4;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> ev;
  int alive = 0, children_cancelled = 0, cleanups = 0, body_steps = 0;
  bool returned = false;

  struct alive_count {
    int* n;
    explicit alive_count(int& c) : n(&c) { ++*n; }
    ~alive_count() { --*n; }
  };
  corio::task<> child() {
    alive_count a(alive);
    try {
      co_await ev[3].wait();
    } catch (const corio::cancelled_error&) {
      ++children_cancelled;
      throw;
    }
  }
  corio::task<> victim() {
    co_await corio::with_task_group([this](corio::task_group& g) -> corio::task<> {
      g.spawn(child());
      g.spawn(child());
      g.defer([this]() -> corio::task<> {
        co_await corio::sleep(1ms);
        ++cleanups;
      });
      for (int i = 0; i < 3; ++i) {
        p.at = i;
        co_await ev[i].wait();
        ++body_steps;
      }
      p.at = 3;
    });
    returned = true;
  }
  corio::task<> give(int i) {
    ev[i].set();
    if (i == 3) co_await corio::yield_now();  // the children finish and wake the group
  }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(body_steps, std::min(k, 3));
    EXPECT_EQ(cleanups, 1);  // ran once, cancelled or not
    EXPECT_EQ(alive, 0);     // every child finished before the group did
    EXPECT_EQ(children_cancelled, (k == 3 && w == when::woken) ? 0 : 2);
    EXPECT_FALSE(returned);
    co_return;
  }
};

// ---- gather: one gather of two children per point.

struct gather_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> ev;
  int alive = 0, cleaned = 0, victim_sum = 0;

  corio::task<int> child(int i, int j) {
    ++alive;
    bool cancelled = false;
    try {
      co_await ev[i].wait();
    } catch (const corio::cancelled_error&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await corio::sleep(1ms);  // cleanup that awaits
      ++cleaned;
      --alive;
      throw corio::cancelled_error();
    }
    --alive;
    co_return 10 * i + j;
  }
  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      auto [a, b] = co_await corio::gather(child(i, 0), child(i, 1));
      victim_sum += a + b;
    }
  }
  corio::task<> give(int i) {
    ev[i].set();
    co_await corio::yield_now();  // both children finish and wake the victim
  }
  corio::task<> check(int k, when w) {
    int expected = 0;
    for (int i = 0; i < k; ++i)
      expected += 20 * i + 1;
    EXPECT_EQ(victim_sum, expected);
    EXPECT_EQ(alive, 0);  // gather waited for the cancelled children's cleanup
    EXPECT_EQ(cleaned, w == when::parked ? 2 : 0);
    co_return;
  }
};

// ---- map_bounded: 6 items, 2 in flight; point i = items 0..i-1 done.

struct map_bounded_scenario : scenario_base {
  static constexpr int points = 4;
  static constexpr bool can_wake = false;  // the victim waits for all items at once
  static constexpr std::size_t limit = 2;
  std::array<corio::event, 6> ev;
  corio::semaphore slots{limit};
  int started = 0, finished = 0, cancelled = 0, in_flight = 0, max_in_flight = 0;

  corio::task<> victim() {
    std::vector<int> items{0, 1, 2, 3, 4, 5};
    p.at = 0;
    co_await corio::map_bounded(
        items,
        [this](int i) -> corio::task<int> {
          ++started;
          max_in_flight = std::max(max_in_flight, ++in_flight);
          auto slot = co_await slots.acquire_guard();
          bool was_cancelled = false;
          try {
            co_await ev[i].wait();
          } catch (const corio::cancelled_error&) {
            was_cancelled = true;
          }
          --in_flight;
          if (was_cancelled) {
            ++cancelled;
            throw corio::cancelled_error();
          }
          ++finished;
          p.at = std::max(p.at, i + 1);
          co_return i;
        },
        limit);
  }
  corio::task<> give(int i) {
    ev[i].set();
    co_await corio::yield_now();
  }
  corio::task<> check(int k, when) {
    EXPECT_EQ(finished, k);
    EXPECT_EQ(started, k + static_cast<int>(limit));  // created lazily, never ahead
    EXPECT_EQ(cancelled, static_cast<int>(limit));    // the ones in flight
    EXPECT_EQ(in_flight, 0);
    EXPECT_LE(max_in_flight, static_cast<int>(limit));
    EXPECT_EQ(slots.available(), limit);
    co_return;
  }
};

// ---- async_generator: the producer waits inside next(), holding a permit.

struct generator_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> ev;
  corio::semaphore sem{1};
  std::vector<int> got;
  bool producer_destroyed = false;

  struct on_destroy {
    bool* flag;
    ~on_destroy() { *flag = true; }
  };
  corio::async_generator<int> producer() {
    on_destroy d{&producer_destroyed};
    for (int i = 0; i < points; ++i) {
      auto permit = co_await sem.acquire_guard();
      co_await ev[i].wait();
      co_yield i;
    }
  }
  corio::task<> victim() {
    auto g = producer();
    for (int i = 0; i < points; ++i) {
      p.at = i;
      auto v = co_await g.next();
      EXPECT_TRUE(v.has_value());
      if (v) got.push_back(*v);
    }
  }
  corio::task<> give(int i) {
    ev[i].set();
    co_return;
  }
  corio::task<> check(int k, when) {
    std::vector<int> expected;
    for (int i = 0; i < k; ++i)
      expected.push_back(i);
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(producer_destroyed);
    EXPECT_EQ(sem.available(), 1U);
    co_return;
  }
};

// ---- for_each: the same producer, its items pushed into the loop body.

struct for_each_scenario : generator_scenario {
  corio::task<> victim() {
    p.at = 0;
    co_await corio::for_each(producer(), [this](int v) {
      got.push_back(v);
      p.at = v + 1;  // the producer's next wait is point v + 1
    });
  }
};

// ---- timeout and shield: a timed acquire, a shielded wait, a timed pop.

struct timeout_shield_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  corio::semaphore sem{0};
  corio::event ev;
  corio::queue<int> q{1};
  std::size_t released = 0;
  int steps = 0;
  bool shield_done = false;

  corio::task<> victim() {
    p.at = 0;
    auto permit = co_await corio::timeout(1h, sem.acquire_guard());
    ++steps;
    p.at = 1;
    co_await corio::shield(ev.wait());
    shield_done = true;
    ++steps;
    p.at = 2;
    std::optional<int> v = co_await corio::move_on_after(1h, q.pop());
    EXPECT_TRUE(v.has_value());
    ++steps;
  }
  corio::task<> give(int i) {
    if (i == 0) {
      sem.release();
      ++released;
    } else if (i == 1) {
      ev.set();
    } else {
      EXPECT_TRUE(q.try_push(5));
    }
    co_return;
  }
  bool shielded(int k) const { return k == 1; }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(steps, k == 0 ? 0 : 2);
    EXPECT_EQ(shield_done, k >= 1);  // the shielded wait finished, then the cancel landed
    EXPECT_EQ(sem.available(), released);
    // An item handed to the cancelled popper is back in the queue.
    EXPECT_EQ(q.size(), (k == 2 && w == when::woken) ? 1U : 0U);
    if (k == 2 && w == when::woken) {
      EXPECT_EQ(q.try_pop(), std::optional<int>(5));
    }
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);  // the deadlines went with their scopes
    co_return;
  }
};

}  // namespace

// ---- pool: one connection, held by the driver whenever the victim asks.

class counted_conn {
 public:
  explicit counted_conn(int* live) : m_live(live) { ++*m_live; }
  counted_conn(counted_conn&& o) noexcept : m_live(std::exchange(o.m_live, nullptr)) {}
  counted_conn(const counted_conn&) = delete;
  counted_conn& operator=(const counted_conn&) = delete;
  counted_conn& operator=(counted_conn&&) = delete;
  ~counted_conn() {
    if (m_live != nullptr) --*m_live;
  }

 private:
  int* m_live;
};

corio::task<counted_conn> open_counted(int* live) {
  co_await corio::sleep(1ms);
  co_return counted_conn(live);
}

struct pool_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  int live = 0;
  corio::pool<counted_conn> pool{make_hooks(&live), make_options()};
  corio::pool_lease<counted_conn> driver;
  corio::event driver_ready;
  int victim_got = 0, bystander_got = 0;
  corio::join_handle<> bystander, setup;

  static corio::pool_hooks<counted_conn> make_hooks(int* live) {
    corio::pool_hooks<counted_conn> h;
    h.create = [live] { return open_counted(live); };
    return h;
  }
  static corio::pool_options make_options() {
    corio::pool_options o;
    o.max_size = 1;
    return o;
  }
  static corio::task<> take_driver(pool_scenario& s) {
    s.driver = co_await s.pool.acquire();
    s.driver_ready.set();
  }
  static corio::task<> borrow_once(pool_scenario& s) {
    auto lease = co_await s.pool.acquire();
    ++s.bystander_got;
  }

  pool_scenario() { setup = corio::spawn(take_driver(*this)); }
  corio::task<> victim() {
    co_await driver_ready.wait();
    for (int i = 0; i < points; ++i) {
      p.at = i;
      auto lease = co_await pool.acquire();
      ++victim_got;
    }  // each lease goes back to the driver, queued behind the victim
  }
  corio::task<> give(int) {
    driver.release();  // to the victim, the oldest waiter
    co_return;
  }
  corio::task<> after_give(int) { driver = co_await pool.acquire(); }
  corio::task<> before_cancel(int) {
    bystander = corio::spawn(borrow_once(*this));
    co_await corio::yield_now();
    EXPECT_EQ(pool.stats().waiters, 2U);
  }
  void on_cancel(int, when w) {
    if (w == when::parked) {
      EXPECT_EQ(pool.stats().waiters, 1U);  // the victim left the queue
    }
  }
  corio::task<> check(int k, when w) {
    EXPECT_EQ(victim_got, k);
    co_await let_run();
    // The connection handed to the victim went on to the bystander.
    EXPECT_EQ(bystander_got, w == when::woken ? 1 : 0);
    driver.release();
    co_await bystander;
    EXPECT_EQ(bystander_got, 1);
    const corio::pool_stats st = pool.stats();
    EXPECT_EQ(st.size, 1U);  // no connection lost or made up
    EXPECT_EQ(st.idle, 1U);
    EXPECT_EQ(st.in_use, 0U);
    EXPECT_EQ(st.waiters, 0U);
    EXPECT_EQ(st.creations, 1U);
    co_await pool.close();
    EXPECT_EQ(live, 0);
  }
};

// ---- batcher: load i waits for batch i, which waits for gate i.

struct batcher_scenario : scenario_base {
  static constexpr int points = 3;
  static constexpr bool can_wake = true;
  std::array<corio::event, points> gate;
  int calls = 0;
  corio::batcher<int, int> batches{corio::batcher<int, int>::batch_function(
      [this](std::span<const int> keys) { return fetch(this, keys); })};
  int victim_got = 0;
  int bystander_value = -1;
  corio::join_handle<> bystander;

  static corio::task<std::vector<int>> fetch(batcher_scenario* s, std::span<const int> keys) {
    ++s->calls;
    co_await s->gate[static_cast<std::size_t>(keys[0])].wait();
    std::vector<int> out(keys.begin(), keys.end());
    for (int& v : out)
      v *= 10;
    co_return out;
  }
  static corio::task<> load_into(batcher_scenario& s, int key) {
    s.bystander_value = co_await s.batches.load(key);
  }

  corio::task<> victim() {
    for (int i = 0; i < points; ++i) {
      p.at = i;
      EXPECT_EQ(co_await batches.load(i), 10 * i);
      ++victim_got;
    }
  }
  corio::task<> give(int i) {
    gate[static_cast<std::size_t>(i)].set();
    co_await corio::yield_now();  // the batch runs and wakes its loads
  }
  corio::task<> before_cancel(int k) {
    bystander = corio::spawn(load_into(*this, k));  // the same key
    co_await corio::yield_now();
  }
  corio::task<> check(int k, when) {
    EXPECT_EQ(victim_got, k);
    gate[static_cast<std::size_t>(k)].set();
    co_await bystander;
    // The batch was not cancelled with the victim: the other load of the
    // key got its value.
    EXPECT_EQ(bystander_value, 10 * k);
    EXPECT_GE(calls, k + 1);
  }
};

TEST(CancelPoints, Semaphore) {
  sweep<semaphore_scenario>("semaphore");
}
TEST(CancelPoints, Mutex) {
  sweep<mutex_scenario>("mutex");
}
TEST(CancelPoints, Event) {
  sweep<event_scenario>("event");
}
TEST(CancelPoints, ConditionVariable) {
  sweep<condvar_scenario>("condition_variable");
}
TEST(CancelPoints, QueuePushWhileFull) {
  sweep<queue_push_scenario>("queue push");
}
TEST(CancelPoints, QueuePopWhileEmpty) {
  sweep<queue_pop_scenario>("queue pop");
}
TEST(CancelPoints, Sleep) {
  sweep<sleep_scenario>("sleep");
}
TEST(CancelPoints, JoinHandle) {
  sweep<join_scenario>("join_handle");
}
TEST(CancelPoints, TaskGroup) {
  sweep<task_group_scenario>("task_group");
}
TEST(CancelPoints, Gather) {
  sweep<gather_scenario>("gather");
}
TEST(CancelPoints, MapBounded) {
  sweep<map_bounded_scenario>("map_bounded");
}
TEST(CancelPoints, AsyncGenerator) {
  sweep<generator_scenario>("async_generator");
}
TEST(CancelPoints, ForEach) {
  sweep<for_each_scenario>("for_each");
}
TEST(CancelPoints, PoolAcquire) {
  sweep<pool_scenario>("pool acquire");
}
TEST(CancelPoints, BatcherLoad) {
  sweep<batcher_scenario>("batcher load");
}
TEST(CancelPoints, TimeoutAndShield) {
  sweep<timeout_shield_scenario>("timeout/shield");
}
