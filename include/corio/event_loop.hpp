// The event loop: one per thread, it runs tasks, timers and I/O.
//
// One iteration (`event_loop::tick`, src/loop/event_loop.cpp) is, in order:
//   1. read the clock once (the virtual clock does not move here);
//   2. move due timers out of the wheel and fire them (firing only
//      schedules the sleeping tasks);
//   3. run callbacks posted from other threads (`post`);
//   4. poll the backend: blocking until the next timer when nothing is
//      ready, otherwise without blocking, either because io_uring has
//      submissions queued (sent together, one system call per iteration)
//      or every `event_interval` ticks while I/O is pending, so a busy loop makes no
//      other system call;
//      in virtual-clock mode an idle loop jumps to the next timer instead;
//   5. resume ready tasks in FIFO order, at most `budget` of them, so that
//      timers and I/O are looked at again soon under load; the step also
//      ends when a task that yielded (`yield_now`) comes up again, so a
//      yield always lets due timers fire before the yielder goes on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "corio/detail/task_base.hpp"
#include "corio/detail/timer_wheel.hpp"
#include "corio/histogram.hpp"

namespace corio {

/// The loop's clock. Under `loop_options::virtual_clock` its time points are
/// virtual: they start at the real time of the loop's creation and only jump.
using clock = std::chrono::steady_clock;

/// Which system interface a loop waits on for I/O.
enum class io_backend_kind : std::uint8_t {
  automatic,  ///< io_uring when the kernel allows it, else epoll
  epoll,
  uring,  ///< io_uring, falling back to epoll when it is unavailable
};

/// How an event loop runs. The defaults suit production.
struct loop_options {
  /// The I/O backend. `CORIO_BACKEND=epoll|uring` in the environment
  /// overrides it.
  io_backend_kind backend = io_backend_kind::automatic;
  /// Never read the real clock; when nothing is ready the loop jumps to the
  /// next timer. Timer tests become instant and deterministic.
  bool virtual_clock = false;
  /// Where the virtual clock starts: a fixed time, so that a virtual-clock
  /// run (and how its timers fall on the wheel's ticks) is the same every
  /// time.
  clock::time_point virtual_start = clock::time_point(std::chrono::hours(1));
  /// Shuffle the ready tasks of each tick, to shake out code that depends
  /// on same-tick order. Unset: `CORIO_SHUFFLE=1` in the environment turns
  /// it on (the sanitizer test runs do); true or false here wins over the
  /// environment. The seed is logged once per process;
  /// `CORIO_SHUFFLE_SEED` replays it.
  std::optional<bool> shuffle{};
  std::uint64_t shuffle_seed = 0;
  /// Resumptions per iteration before timers and I/O are looked at again.
  std::uint32_t budget = 256;
  /// While tasks stay ready and I/O is pending, the loop polls for I/O
  /// (without blocking) every this many iterations (Tokio's
  /// `event_interval`, also 61 there): a busy loop still sees its sockets,
  /// and makes no system call in the iterations between.
  std::uint32_t event_interval = 61;
  /// How late a long timer may fire so that nearby timers share one
  /// wake-up. A timer due in d is rounded up to a power-of-two multiple of
  /// at most min(timer_slack, d / 1024) nanoseconds (the kernel's select()
  /// heuristic): a 1 ms sleep stays within a microsecond, a 1 s sleep may
  /// fire up to ~262 us late and shares its wake-up with its neighbours.
  /// Every wake-up of a blocked thread costs microseconds of CPU (tens on a
  /// VM), so a large timer set is much cheaper this way. Timers never fire
  /// early; zero fires each at its exact deadline. Ignored on the virtual
  /// clock.
  std::chrono::nanoseconds timer_slack = std::chrono::microseconds(500);
  /// Loop statistics that read the clock: the timer-lag histogram and the
  /// time spent polling against running (a clock read around each poll that
  /// may block, nothing per resumption). The plain counters are always kept.
  bool stats = true;
  /// Debug mode, also turned on by `CORIO_DEBUG=1` in the environment.
  /// Reports, through `report`: a `task<>` destroyed without ever being
  /// awaited (naming its coroutine function, file and line), one destroyed
  /// while suspended, tasks still running when the main task ends, and
  /// resumptions that run longer than `slow_callback_duration` (naming the
  /// task and its await chain). SIGUSR1 makes the loop write `dump_tasks()`
  /// to the report at its next iteration. Debug mode times every
  /// resumption (two clock reads each), as asyncio's debug mode does.
  bool debug = false;
  /// The threshold of debug mode's slow-resumption report (asyncio's
  /// `loop.slow_callback_duration`).
  std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
  /// Time every resumption and add it to its task's run time (task dumps
  /// show it), without the rest of debug mode.
  bool task_timing = false;
  /// Watch the loop from a separate thread: when one iteration has run
  /// longer than `slow_callback_duration`, report it while it is still
  /// stuck, naming the task that runs and its await chain (captured on the
  /// loop's thread by a signal, SIGRTMIN+4, so nothing is read racily), and
  /// report again when the loop moves. Costs the loop one relaxed store per
  /// iteration. The report sink is then also called from the watchdog
  /// thread. Debug mode turns it on in a quieter form: the chain captured
  /// halfway through a long resumption goes into the slow-resumption report
  /// (it shows the coroutine that blocked even when it has finished by the
  /// end), and the watchdog reports by itself only a loop stuck for ten
  /// times slow_callback_duration.
  bool watchdog = false;
  /// Where reports go, one complete message per call; stderr when empty.
  std::function<void(const std::string&)> report{};
};

/// Counters that are always kept (they cost an increment each).
struct loop_stats {
  std::uint64_t iterations = 0;
  std::uint64_t resumptions = 0;
  std::uint64_t polls = 0;
  std::uint64_t timers_fired = 0;
  std::size_t live_tasks = 0;
  std::size_t pending_timers = 0;
  /// System calls the loop's I/O backend made on this thread: each
  /// non-blocking attempt, epoll_wait and epoll_ctl, io_uring_enter,
  /// eventfd reads. (Descriptor set-up and close are not counted.)
  std::uint64_t syscalls = 0;
  /// Bytes of received data the loop holds for reads not yet made (on
  /// io_uring, the provided buffers that multishot receives filled; at most
  /// a few per socket). Always 0 on epoll, where data waits in the kernel.
  std::size_t read_buffer_bytes = 0;
  /// Callbacks posted from other threads (`post`) that have run.
  std::uint64_t posted_callbacks = 0;
  /// Since the loop was made: time blocked waiting for I/O or timers, and
  /// the rest (running tasks, timers, callbacks). Kept with `stats`.
  std::chrono::nanoseconds polling{0};
  std::chrono::nanoseconds running{0};
  /// Resumptions longer than slow_callback_duration (debug mode).
  std::uint64_t slow_resumptions = 0;
  /// Await chains the watchdog captured on this loop while a step ran long.
  std::uint64_t watchdog_captures = 0;
};

namespace detail {
class backend;
struct watch_state;
std::unique_ptr<backend> make_backend(io_backend_kind wanted);

/// A callback posted from another thread; intrusive so that executors can
/// post completions without allocating.
struct posted_node {
  posted_node* m_next = nullptr;
  void (*m_run)(posted_node&) noexcept = nullptr;
};
}  // namespace detail

class work_guard;
namespace detail {
struct external_work;

/// What a work_guard posts when it lets go: it knows its loop, so the
/// guard needs nothing else.
struct guard_release : posted_node {
  event_loop* m_loop = nullptr;
};
}  // namespace detail

/// A single-threaded event loop. Most code never names it: `corio::run()`
/// makes one, and awaitables find it through `event_loop::current()`.
///
/// \code
///   corio::event_loop loop({.virtual_clock = true});
///   int v = corio::run(loop, compute());  // see run.hpp
/// \endcode
class event_loop final : private detail::task_owner {
 public:
  explicit event_loop(loop_options options = {});
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// The loop running on this thread, or nullptr.
  [[nodiscard]] static event_loop* current() noexcept { return t_current; }

  /// The time of the current tick.
  [[nodiscard]] clock::time_point now() const noexcept {
    return clock::time_point(clock::duration(m_now_ns));
  }

  /// Runs `fn` on the loop's thread soon. Safe from any thread; wakes the
  /// loop (one eventfd write) only when it sleeps.
  void post(std::function<void()> fn);
  /// As above without allocating: `node` must stay alive until it has run.
  void post(detail::posted_node& node) noexcept;

  /// A guard that keeps the loop waiting for work on another thread that
  /// will `post` back (see work_guard). Call it on the loop's thread.
  [[nodiscard]] work_guard keep_alive();

  [[nodiscard]] loop_stats stats() const noexcept;
  /// The loop's lag: how late each `sleep` resumed its task, from the
  /// deadline asked for to the moment the task ran again (a timer that
  /// fired on time but waited behind a task that blocked counts as late, as
  /// a ticker would see it). Kept with `loop_options::stats`: one clock
  /// read per sleep that ends.
  [[nodiscard]] const latency_histogram& timer_lag() const noexcept { return m_lag; }
  /// Records a sleep's lag (see timer_lag).
  void note_sleep_resumed(std::int64_t deadline_ns) noexcept {
    if (detail::observe_enabled && m_options.stats)
      m_lag.record_ns((m_options.virtual_clock ? m_now_ns : read_clock()) - deadline_ns);
  }
  /// Sends a report (debug mode's findings, dumps) to `loop_options::report`.
  void report(const std::string& message) const;
  [[nodiscard]] const loop_options& options() const noexcept { return m_options; }
  [[nodiscard]] const char* backend_name() const noexcept;

  // ---- used by corio's awaitables (not for user code) ----
  void schedule(detail::task_base& t) noexcept {
    t.m_next_ready = nullptr;
    if (m_ready_tail != nullptr) {
      m_ready_tail->m_next_ready = &t;
    } else {
      m_ready_head = &t;
    }
    m_ready_tail = &t;
  }
  [[nodiscard]] detail::task_base* current_task() const noexcept { return m_current; }
  /// Whether this tick's number is odd (yield_now marks its task with it).
  [[nodiscard]] bool odd_tick() const noexcept { return (m_stats.iterations & 1U) != 0; }
  detail::timer_wheel& timers() noexcept { return m_timers; }
  detail::backend& io() noexcept { return *m_backend; }
  /// Schedules `t` (its m_when_ns set), rounded up by the timer slack.
  void add_timer(detail::timer_node& t) noexcept {
    if (m_slack_ns > 0) t.m_when_ns = detail::round_up_by_slack(t.m_when_ns, m_now_ns, m_slack_ns);
    m_timers.insert(t);
  }
  [[nodiscard]] std::int64_t now_ns() const noexcept { return m_now_ns; }
  /// Reads the clock now (unless virtual) and moves the tick's time up to it.
  /// Relative sleeps start from here: a tick that ran long must not make
  /// `sleep(d)` wake before `d` has passed since the call.
  std::int64_t refresh_now_ns() noexcept {
    if (!m_options.virtual_clock) {
      const std::int64_t t = read_clock();
      if (t > m_now_ns) m_now_ns = t;
    }
    return m_now_ns;
  }
  void note_spawned() noexcept { ++m_stats.live_tasks; }
  void note_finished() noexcept { --m_stats.live_tasks; }
  /// The owner of roots spawned without a group.
  detail::task_owner* owner_for_spawn() noexcept { return this; }
  /// Child scopes (task groups, gathers) register here so that task dumps
  /// find every live task.
  void add_scope(detail::task_owner& s) noexcept { m_scopes.push_back(s); }
  /// Calls `fn(task_base&)` for every live root: detached ones, then the
  /// members of each child scope.
  template <class Fn>
  void for_each_root(Fn fn) {
    m_members.for_each(fn);
    m_scopes.for_each([&](detail::task_owner& s) { s.m_members.for_each(fn); });
  }
  [[nodiscard]] bool debug() const noexcept { return m_options.debug; }
  /// For the watchdog thread: the iteration the loop is in, and whether it
  /// is blocked in a poll (idle, not stuck).
  [[nodiscard]] std::uint64_t watched_iteration() const noexcept {
    return m_watch_iteration.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool watched_polling() const noexcept {
    return m_watch_polling.load(std::memory_order_relaxed);
  }
  /// The watchdog hands over the await chain it captured while the loop was
  /// at progress step `step` (debug mode).
  void deposit_capture(std::string chain, std::uint64_t step, std::chrono::nanoseconds at);
  /// The progress step (read on the loop's thread, by the capture signal).
  [[nodiscard]] std::uint64_t watch_step() const noexcept { return m_watch_step; }
  /// Called when a root's frame is about to be destroyed.
  void note_root_destroyed(detail::task_base& t) noexcept {
    if (m_timed) m_run_times.erase(&t);
    if (&t == m_current) {
      m_finished_current = t.where();
      m_finished_name = t.name();
      m_current = nullptr;
    }
  }
  /// The time `t` has run, when resumptions are timed (debug mode or
  /// task_timing); else 0.
  [[nodiscard]] std::chrono::nanoseconds run_time_of(const detail::task_base& t) const {
    const auto it = m_run_times.find(&t);
    return std::chrono::nanoseconds(it == m_run_times.end() ? 0 : it->second);
  }
  /// The current tick's time since the loop was made, in units of 2^20 ns
  /// (a shift, not a division: spawn records it for every task).
  [[nodiscard]] std::uint32_t ticks_since_start() const noexcept {
    return static_cast<std::uint32_t>((m_now_ns - m_start_ns) >> 20);
  }
  [[nodiscard]] std::int64_t ns_since_start() const noexcept { return m_now_ns - m_start_ns; }
  /// Runs ticks until `main` is done; then cancels and drains the rest.
  void run_root(detail::task_base& main);

 private:
  friend struct detail::external_work;
  // Counts work outstanding on other threads that will post back, so the
  // loop waits for it instead of reporting a deadlock. Both calls belong on
  // the loop's thread (the remove in the posted completion itself): user
  // code holds a work_guard, corio's executors use detail::external_work.
  void add_external_work() noexcept { m_external.fetch_add(1, std::memory_order_relaxed); }
  void remove_external_work() noexcept { m_external.fetch_sub(1, std::memory_order_relaxed); }
  void on_member_done(detail::task_base& t) noexcept override;
  void tick();
  void run_posted() noexcept;
  template <bool Timed>
  std::uint64_t run_ready();
  void after_slow_resumption(detail::task_base* t, std::int64_t ns);
  void check_dump_request();
  void poll_io(std::int64_t timeout_ns);
  /// How long an idle loop may block for a timer due at `deadline_ns`.
  [[nodiscard]] std::int64_t wait_for_timer_ns(std::int64_t deadline_ns) const noexcept;
  void shuffle_ready();
  void shutdown();
  [[nodiscard]] bool has_ready() const noexcept { return m_ready_head != nullptr; }
  [[nodiscard]] bool idle_forever() const noexcept;
  static std::int64_t read_clock() noexcept;

  // Constant-initialised and defined here, so access needs no TLS wrapper call.
  static inline thread_local constinit event_loop* t_current = nullptr;

  loop_options m_options;
  detail::task_base* m_ready_head = nullptr;
  detail::task_base* m_ready_tail = nullptr;
  detail::task_base* m_current = nullptr;
  std::int64_t m_now_ns = 0;
  std::int64_t m_start_ns = 0;
  std::int64_t m_poll_ns = 0;
  bool m_timed = false;  // debug or task_timing: time each resumption
  bool m_shuffle = false;
  std::uint32_t m_dump_seen = 0;
  // The root that finished (and was destroyed) during the current
  // resumption, for the slow-resumption report.
  detail::code_site m_finished_current;
  const char* m_finished_name = nullptr;
  latency_histogram m_lag;
  // Run time per root, kept only when resumptions are timed: a side table,
  // so that frames do not carry the field.
  std::unordered_map<const detail::task_base*, std::int64_t> m_run_times;
  detail::intrusive_list<detail::task_owner> m_scopes;
  detail::timer_wheel m_timers;
  std::int64_t m_slack_ns = 0;  // 0 on the virtual clock
  std::unique_ptr<detail::backend> m_backend;
  std::atomic<detail::posted_node*> m_inbox{nullptr};
  std::atomic<bool> m_sleeping{false};
  // Posters between publishing their node and their last touch of the
  // loop: once a node is published the loop may run it and be destroyed,
  // so the destructor waits for this to reach zero.
  std::atomic<int> m_posting{0};
  std::atomic<std::int64_t> m_external{0};
  // Progress the watchdog sees: the iteration, or in debug mode (timed
  // resumptions) every resumption.
  std::atomic<std::uint64_t> m_watch_iteration{0};
  std::uint64_t m_watch_step = 0;
  std::atomic<bool> m_watch_polling{false};
  std::unique_ptr<detail::watch_state> m_watch;
  std::uint64_t m_rng = 0;
  std::uint32_t m_ticks_since_poll = 0;
  event_loop* m_previous = nullptr;
  loop_stats m_stats;
};

/// Holds a loop open for work running on another thread, and posts that
/// work's results back to it. While a guard is alive the loop waits (it
/// does not report a deadlock when it has nothing else to do); releasing
/// the guard, by `reset()` or its destructor, from any thread, is itself
/// posted, so the loop lets go only after every callback posted through
/// the guard before it has run. Make it on the loop's thread and move it
/// to the thread that does the work.
///
/// \code
///   std::thread worker([guard = corio::event_loop::current()->keep_alive(), &done] {
///     auto value = slow_computation();
///     guard.post([&done, value] { done.set(value); });
///   });  // the guard goes with the thread's lambda
/// \endcode
class work_guard {
 public:
  work_guard() noexcept = default;
  explicit work_guard(event_loop& loop);
  work_guard(work_guard&& o) noexcept : m_release(std::exchange(o.m_release, nullptr)) {}
  work_guard& operator=(work_guard&& o) noexcept {
    if (this != &o) {
      reset();
      m_release = std::exchange(o.m_release, nullptr);
    }
    return *this;
  }
  work_guard(const work_guard&) = delete;
  work_guard& operator=(const work_guard&) = delete;
  ~work_guard() { reset(); }

  /// Runs `fn` on the loop's thread soon (event_loop::post).
  void post(std::function<void()> fn) const;
  /// Lets the loop go, once what was posted before has run. Idempotent.
  void reset() noexcept;
  /// The loop held, or nullptr once released.
  [[nodiscard]] event_loop* loop() const noexcept {
    return m_release != nullptr ? m_release->m_loop : nullptr;
  }

 private:
  detail::guard_release* m_release = nullptr;  // allocated up front: reset() cannot fail
};

namespace detail {

/// For corio's own cross-thread parts (offload, the blocking pool,
/// channel): counts their outstanding work on the loop, on the loop's
/// thread. User code holds a work_guard instead.
struct external_work {
  static void add(event_loop& loop) noexcept { loop.add_external_work(); }
  static void remove(event_loop& loop) noexcept { loop.remove_external_work(); }
};

[[nodiscard]] inline event_loop& current_loop() noexcept {
  return *event_loop::current();
}
[[nodiscard]] inline task_base& current_task() noexcept {
  return *current_loop().current_task();
}

/// Debug mode: reports `what`, a call that blocks its thread, made on a
/// loop's thread (src/observe/task_dump.cpp).
void report_blocking_call(event_loop& loop, const char* what);

/// Called by corio's blocking APIs: in debug mode, a call on a loop's
/// thread is reported (it stops every task of that loop until it returns).
inline void note_blocking_call(const char* what) {
  if constexpr (observe_enabled) {
    event_loop* loop = event_loop::current();
    if (loop != nullptr && loop->debug()) [[unlikely]]
      report_blocking_call(*loop, what);
  }
}

inline bool waiter::begin(std::coroutine_handle<> h) noexcept {
  task_base& t = current_task();
  m_task = &t;
  m_handle = h;
  if (t.cancel_effective()) {
    m_state = state::aborted;
    return false;
  }
  m_state = state::waiting;
  t.m_waiter = this;
  t.m_link = h.address();
  return true;
}

inline void waiter::end_without_suspending() noexcept {
  m_state = state::idle;
  m_task->m_waiter = nullptr;
}

inline void waiter::wake() noexcept {
  m_state = state::woken;
  m_task->m_waiter = nullptr;
  current_loop().schedule(*m_task);
}

inline void waiter::finish() {
  if (m_state == state::aborted) throw_cancelled(*m_task);
  if (m_task->cancel_effective()) {
    if (m_on_pass != nullptr) m_on_pass(*this);
    throw_cancelled(*m_task);
  }
}

inline void task_base::abort_wait_if_cancelled() noexcept {
  waiter* w = m_waiter;
  if (w == nullptr || w->m_state != waiter::state::waiting || !cancel_effective()) return;
  m_waiter = nullptr;
  w->m_state = waiter::state::aborted;
  if (w->m_on_abort != nullptr) w->m_on_abort(*w);
  if (!w->m_defer_abort) current_loop().schedule(*this);
}

inline bool task_base::request_cancel() noexcept {
  if (done()) return false;
  m_flags |= tf_cancel_requested | tf_cancel_pending;
  abort_wait_if_cancelled();
  return true;
}

}  // namespace detail
}  // namespace corio
