// The loop's core: what tasks, timers and suspensions need from a loop
// (the ready queue, the running task, the tick's time, the timer wheel), in
// a header that includes no more than they do. `event_loop`
// (corio/loop/event_loop.hpp) builds the iteration, the I/O backend, the
// cross-thread inbox and the user API on it; `task.hpp` and the sync
// primitives include only this.
//
// Observation is not here. The loop calls a table of hooks
// (detail/loop_hooks.hpp) that src/observe installs, and only for the
// events the installed table asks for: `hooked(e)` is one load and one
// predictable branch, so a loop without hooks pays nothing else.
#pragma once

#include <cstddef>
#include <cstdint>

#include "corio/detail/intrusive_list.hpp"
#include "corio/loop/detail/task_base.hpp"
#include "corio/loop/detail/timer_wheel.hpp"

namespace corio::detail {

class backend;
class loop_hooks;

/// The events a loop_hooks table can ask for (see loop_hooks.hpp).
enum hook_event : std::uint32_t {
  hook_tick = 1U << 0,    // each iteration starts
  hook_resume = 1U << 1,  // around each resumption
  hook_poll = 1U << 2,    // around each poll that may block
  // No hook for a task's creation: the check alone cost spawn 8 of its 311
  // instructions (callgrind), as the call makes GCC save registers on the
  // fast path, and nothing needs it yet. A tracer that does can count
  // roots at their first resumption (hook_resume).
  hook_task_destroyed = 1U << 3,  // a root's frame is about to go
  hook_task_dropped = 1U << 4,    // a task<> destroyed unawaited or pending
  hook_sleep = 1U << 5,           // a sleep resumed its task
  hook_run = 1U << 6,             // run() starts, its main task ends, run() ends
  hook_blocking_call = 1U << 7,   // a blocking call on the loop's thread
};

/// The counters a loop always keeps, an increment each; the first part of
/// loop_stats.
struct loop_counters {
  std::uint64_t iterations = 0;   ///< loop iterations (ticks)
  std::uint64_t resumptions = 0;  ///< tasks resumed
  std::uint64_t polls = 0;        ///< backend polls, blocking or not
  std::uint64_t timers_fired = 0;
  std::uint64_t posted_callbacks = 0;  ///< callbacks posted from other threads that ran
  std::size_t live_tasks = 0;          ///< roots spawned and not finished
  std::uint64_t messages_sent = 0;     ///< messages batched for other loops (post_batched)
  std::uint64_t message_batches = 0;   ///< the pushes that carried them
  std::uint64_t calls_stolen = 0;      ///< balanced spawns taken from other loops' queues
};

/// A callback that runs once at the end of the current tick, after the
/// ready queue has drained and before the loop polls again: where work that
/// many tasks asked for in one tick is sent out together (a batcher's
/// batch, a client's pipelined writes).
struct tick_end_node : list_node {
  void (*m_fire)(tick_end_node&) noexcept = nullptr;
};

/// See the file comment. Only `event_loop` derives from it.
class loop_core : public task_owner {
 public:
  loop_core(const loop_core&) = delete;
  loop_core& operator=(const loop_core&) = delete;

  /// The loop running on this thread, or nullptr.
  [[nodiscard]] static loop_core* current() noexcept { return t_current; }

  /// Appends `t` to the ready queue (FIFO, intrusive: no allocation).
  void schedule(task_base& t) noexcept {
    t.m_next_ready = nullptr;
    if (m_ready_tail != nullptr) {
      m_ready_tail->m_next_ready = &t;
    } else {
      m_ready_head = &t;
    }
    m_ready_tail = &t;
  }
  /// The root running now, or nullptr between resumptions.
  [[nodiscard]] task_base* current_task() const noexcept { return m_current; }
  /// Whether this tick's number is odd (yield_now marks its task with it).
  [[nodiscard]] bool odd_tick() const noexcept { return (m_counters.iterations & 1U) != 0; }

  [[nodiscard]] timer_wheel& timers() noexcept { return m_timers; }
  /// Schedules `t` (its m_when_ns set), rounded up by the timer slack.
  void add_timer(timer_node& t) noexcept {
    if (m_slack_ns > 0) t.m_when_ns = round_up_by_slack(t.m_when_ns, m_now_ns, m_slack_ns);
    m_timers.insert(t);
  }
  /// The time of the current tick, in nanoseconds of the loop's clock.
  [[nodiscard]] std::int64_t now_ns() const noexcept { return m_now_ns; }
  /// Reads the clock now (unless virtual) and moves the tick's time up to it.
  /// Relative sleeps start from here: a tick that ran long must not make
  /// `sleep(d)` wake before `d` has passed since the call.
  std::int64_t refresh_now_ns() noexcept {
    if (!m_virtual_clock) {
      const std::int64_t t = read_clock();
      if (t > m_now_ns) m_now_ns = t;
    }
    return m_now_ns;
  }
  /// CLOCK_MONOTONIC in nanoseconds.
  [[nodiscard]] static std::int64_t read_clock() noexcept;
  [[nodiscard]] bool virtual_clock() const noexcept { return m_virtual_clock; }
  /// The current tick's time since the loop was made, in units of 2^20 ns
  /// (a shift, not a division: spawn records it for every task).
  [[nodiscard]] std::uint32_t ticks_since_start() const noexcept {
    return static_cast<std::uint32_t>((m_now_ns - m_start_ns) >> 20);
  }
  [[nodiscard]] std::int64_t ns_since_start() const noexcept { return m_now_ns - m_start_ns; }

  /// Runs `n.m_fire(n)` once at the end of this tick (a no-op when `n` is
  /// already registered). Unlink `n` to withdraw it.
  void at_tick_end(tick_end_node& n) noexcept {
    if (!n.linked()) m_tick_end.push_back(n);
  }

  /// The I/O backend (src/io/backend.hpp).
  [[nodiscard]] backend& io() noexcept { return *m_io; }

  /// This loop's index in its corio::runtime (0 on a loop of its own):
  /// reports name loops by it.
  std::size_t m_runtime_index = 0;
  /// Where a loop of a runtime finds more work once its ready tasks are
  /// done (the runtime's queues of balanced spawns not yet started): its
  /// own queue, and when `idle` (about to poll) the other loops' too.
  /// True when it made a task ready. Set only on a loop with siblings,
  /// which also sends what it gathered for a waiting loop after each
  /// resumption (a loop of its own skips that check).
  struct work_source {
    bool (*m_take)(work_source&, bool idle) noexcept = nullptr;
  };
  work_source* m_work_source = nullptr;

  /// Roots spawned on this loop and not finished.
  [[nodiscard]] std::size_t live_tasks() const noexcept { return m_counters.live_tasks; }
  void note_spawned() noexcept { ++m_counters.live_tasks; }
  void count_stolen(std::size_t n) noexcept { m_counters.calls_stolen += n; }
  void note_finished() noexcept { --m_counters.live_tasks; }
  /// The owner of roots spawned without a group.
  task_owner* owner_for_spawn() noexcept { return this; }
  /// Child scopes (task groups, gathers) register here so that task dumps
  /// find every live task.
  void add_scope(task_owner& s) noexcept { m_scopes.push_back(s); }
  /// Calls `fn(task_base&)` for every live root: detached ones, then the
  /// members of each child scope.
  template <class Fn>
  void for_each_root(Fn fn) {
    m_members.for_each(fn);
    m_scopes.for_each([&](task_owner& s) { s.m_members.for_each(fn); });
  }

  /// Sends a report (debug mode's findings, dumps) to the loop's report
  /// sink (loop_options::report), or stderr. `message` is a std::string,
  /// a std::string_view or a C string: this header does not include
  /// <string>, which costs a file including task.hpp 28,000 lines.
  template <class String>
  void report(const String& message) const {
    report_text(message.data(), message.size());
  }
  void report(const char* message) const { report_text(message, __builtin_strlen(message)); }
  void report_text(const char* data, std::size_t size) const;

  /// Whether the installed hooks asked for event `e`.
  [[nodiscard]] bool hooked(hook_event e) const noexcept { return (m_hook_events & e) != 0; }
  /// The installed hooks, or nullptr.
  [[nodiscard]] loop_hooks* hooks() const noexcept { return m_hooks; }

  // Out of line (event_loop.cpp): they call a hook, only when it was asked for.
  void note_task_dropped(task_base& t, bool started) noexcept;
  void note_blocking_call(const char* what);
  /// A root's frame is about to be destroyed: it may be the running one.
  void note_root_destroyed(task_base& t) noexcept {
    if (hooked(hook_task_destroyed)) [[unlikely]]
      call_destroyed_hook(t);
    if (&t == m_current) m_current = nullptr;
  }
  void note_sleep_resumed(std::int64_t deadline_ns) noexcept {
    if (hooked(hook_sleep)) [[unlikely]]
      call_sleep_hook(deadline_ns);
  }

 protected:
  loop_core() noexcept { m_home = this; }
  ~loop_core() = default;

  // Out of line on purpose: visible here, GCC would guess at it in
  // complete_root and spend more instructions than the call it saves.
  void on_member_done(task_base& t) noexcept override;
  void call_sleep_hook(std::int64_t deadline_ns) noexcept;
  void call_destroyed_hook(task_base& t) noexcept;

  // Constant-initialised and defined here, so access needs no TLS wrapper call.
  static inline thread_local constinit loop_core* t_current = nullptr;

  task_base* m_ready_head = nullptr;
  task_base* m_ready_tail = nullptr;
  task_base* m_current = nullptr;
  std::int64_t m_now_ns = 0;
  std::int64_t m_start_ns = 0;
  std::int64_t m_slack_ns = 0;  // 0 on the virtual clock
  bool m_virtual_clock = false;
  std::uint32_t m_hook_events = 0;
  loop_hooks* m_hooks = nullptr;
  backend* m_io = nullptr;
  timer_wheel m_timers;
  intrusive_list<task_owner> m_scopes;
  intrusive_list<tick_end_node> m_tick_end;
  loop_counters m_counters;
};

[[nodiscard]] inline loop_core& current_loop() noexcept {
  return *loop_core::current();
}
[[nodiscard]] inline task_base& current_task() noexcept {
  return *current_loop().current_task();
}

/// Sends `message` to the current loop's report sink, or to stderr outside a
/// loop; never throws (a report must not turn into a failure).
void report_current_text(const char* data, std::size_t size) noexcept;
template <class String>
void report_current(const String& message) noexcept {
  report_current_text(message.data(), message.size());
}

/// Called by corio's blocking APIs: in debug mode, a call on a loop's
/// thread is reported (it stops every task of that loop until it returns).
inline void note_blocking_call(const char* what) {
  if constexpr (observe_enabled) {
    loop_core* loop = loop_core::current();
    if (loop != nullptr && loop->hooked(hook_blocking_call)) [[unlikely]]
      loop->note_blocking_call(what);
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
  t.set_resume_point(h);
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
  // Split so that the compiler inlines both, as it did when every caller
  // wrote this check itself.
  if (m_state != state::idle) finish_suspended();  // idle: never suspended
}

inline void waiter::finish_suspended() {
  if (m_state == state::aborted) throw_cancelled(*m_task);
  if (m_task->cancel_effective()) {
    if (m_on_pass != nullptr) m_on_pass(*this);
    throw_cancelled(*m_task);
  }
}

/// The suspension protocol in one call, for await_suspend: begins the wait
/// (false: a cancellation is pending, do not suspend), records what it is
/// for task dumps, and wires the hooks that `self` defines:
///   * `void on_abort() noexcept`: leave what it waits on (cancellation,
///     called at once);
///   * `void on_pass() noexcept`: give an unused wake-up on (woken, then
///     cancelled before it resumed).
/// await_resume then calls `finish()`.
///
/// \code
///   struct awaiter : waiter {
///     void on_abort() noexcept { m_list.erase(*this); }
///     bool await_suspend(std::coroutine_handle<> h) noexcept {
///       if (!park(*this, h, "my primitive")) return false;
///       m_list.push_back(*this);
///       return true;
///     }
///     void await_resume() { finish(); }
///   };
/// \endcode
template <class Self>
bool park(Self& self, std::coroutine_handle<> h, const char* what) noexcept {
  waiter& w = self;
  if (!w.begin(h)) return false;
  w.describe(what);
  if constexpr (requires { self.on_abort(); }) {
    w.m_on_abort = [](waiter& x) noexcept { static_cast<Self&>(x).on_abort(); };
  }
  if constexpr (requires { self.on_pass(); }) {
    w.m_on_pass = [](waiter& x) noexcept { static_cast<Self&>(x).on_pass(); };
  }
  return true;
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

}  // namespace corio::detail
