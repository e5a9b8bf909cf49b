// The state every task shares: the promise base of `task<T>`, the waiter
// record through which every suspension goes, and cancel scopes.
//
// Roots and nested tasks. A `task<T>` that is spawned becomes a *root*: the
// loop schedules it, and its promise holds the scheduling state (ready link,
// resume point, current waiter, cancel scopes). A `task<T>` that is awaited
// by another runs *nested* inside its awaiter's root: it is not a suspension
// point, it only uses `m_link` as its continuation.
//
// The one suspension primitive. Every awaitable that really suspends embeds
// a `waiter` and calls `park(self, h, what)` (loop_core.hpp: begin, describe,
// and the awaiter's on_abort/on_pass wired in) in await_suspend and
// `w.finish()` in await_resume:
//   * begin() checks for a pending cancellation first (then it does not
//     suspend, and finish() throws), else records itself as the root's
//     current wait;
//   * the awaited thing later calls `w.wake()`, which schedules the root;
//   * cancellation calls the waiter's `on_abort` (unlink from the timer, the
//     queue, the child...) at once, and schedules the root; finish() throws
//     `cancelled_error`;
//   * an asynchronous abort (io_uring: cancel, then wait for the kernel's
//     completion before the frame may run or die) sets m_defer_abort, and
//     the completion schedules the root;
//   * a waiter that was woken and is cancelled before it resumed calls its
//     `on_pass` (hand the permit, item or notification to the next waiter)
//     and throws too, so no wake-up is lost or duplicated.
//
// Waiter states: idle -> waiting -> (woken | aborted); or idle -> aborted
// when cancellation was already pending at begin().
//
// Cancel scopes (timeout, shield, task_group bodies) form a stack per root
// through `m_scope`. A request sets `pending` on a scope (or on the root);
// it is effective when no shield stands between the innermost scope and the
// pending one. Delivery is edge-triggered, as in asyncio: the request is
// consumed when `cancelled_error` is thrown, so cleanup code may await again.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <version>
#ifdef __cpp_lib_source_location
#include <source_location>
#endif

#include "corio/detail/intrusive_list.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

/// Whether observation is compiled in: building with CORIO_NO_OBSERVE
/// (CMake: -DCORIO_OBSERVE=OFF) removes the await-chain and wait records,
/// loop statistics that read the clock, and debug mode, so that none of it
/// costs an instruction.
#ifdef CORIO_NO_OBSERVE
inline constexpr bool observe_enabled = false;
#else
inline constexpr bool observe_enabled = true;
#endif

class task_base;

/// A level of cancellation inside one root: a timeout's deadline, a shield, a
/// task group's body. Lives in the frame of whoever pushed it.
struct cancel_scope {
  cancel_scope* m_parent = nullptr;
  bool m_shield = false;     // stops requests of outer scopes
  bool m_pending = false;    // requested, not yet delivered
  bool m_delivered = false;  // this scope's request was the one thrown
};

/// See the file comment: the record of one suspension.
struct waiter {
  enum class state : std::uint8_t { idle, waiting, woken, aborted };

  std::coroutine_handle<> m_handle;
  task_base* m_task = nullptr;
  void (*m_on_abort)(waiter&) noexcept = nullptr;  // unlink from what it waits on
  void (*m_on_pass)(waiter&) noexcept = nullptr;   // give an unused wake-up on
  state m_state = state::idle;
  /// What the task waits on, for task dumps ("sleep", "read", "queue pop").
  const char* m_what = nullptr;
  // Set by waiters whose abort is asynchronous (an io_uring operation: the
  // kernel may still write into the frame until its completion arrives).
  // Cancellation then marks the wait aborted but leaves scheduling the root
  // to whoever sees the completion.
  bool m_defer_abort = false;

  // false: cancelled, do not suspend. Always inlined: every suspension
  // runs it, and GCC stops inlining it in large translation units.
  [[gnu::always_inline]] inline bool begin(std::coroutine_handle<> h) noexcept;
  /// Records what the wait is for (task dumps); nothing when compiled out.
  void describe(const char* what) noexcept {
    if constexpr (observe_enabled) m_what = what;
  }
  void end_without_suspending() noexcept;  // after begin(): done at once after all
  void wake() noexcept;
  void finish();            // throws cancelled_error when cancelled; nothing when never suspended
  void finish_suspended();  // finish() after a real suspension
};

/// Told when a root finishes (a join_handle being awaited).
struct done_listener {
  done_listener* m_next = nullptr;
  void (*m_on_done)(done_listener&) noexcept = nullptr;
  /// The root that waits through this listener (a join_handle's awaiter),
  /// so task dumps can follow the await chain upwards.
  task_base* m_waiting = nullptr;
};

/// Where a coroutine's function is: std::source_location where the library
/// has it (GCC 11+), else the same from the compiler builtins that every
/// GCC and Clang has (Clang 14 with libstdc++ 12 lacks source_location).
/// Evaluated in a default argument, it describes the caller.
#ifdef __cpp_lib_source_location
using code_site = std::source_location;
#else
class code_site {
 public:
  static constexpr code_site current(const char* file = __builtin_FILE(),
                                     const char* function = __builtin_FUNCTION(),
                                     unsigned line = __builtin_LINE()) noexcept {
    code_site s;
    s.m_file = file;
    s.m_function = function;
    s.m_line = line;
    return s;
  }
  [[nodiscard]] constexpr const char* file_name() const noexcept { return m_file; }
  [[nodiscard]] constexpr const char* function_name() const noexcept { return m_function; }
  [[nodiscard]] constexpr unsigned line() const noexcept { return m_line; }

 private:
  const char* m_file = "";
  const char* m_function = "";
  unsigned m_line = 0;
};
#endif

/// What every task's frame records for task dumps and reports: the
/// coroutine's function, captured at compile time (the promise's
/// constructor takes a defaulted code_site, which names the coroutine
/// function itself), and the nested task it is awaiting now. Following
/// `awaiting()` from a root gives its await chain at no cost beyond two
/// stores per nested await. (Generators are left out: a chain ends at the
/// task consuming the stream, which keeps the stream's per-item path as it
/// was.)
///
/// The layout does not depend on CORIO_NO_OBSERVE, so a user's build that
/// sets it differently from the library's cannot disagree about where a
/// field is: compiled out, the setters store nothing and the fields keep
/// their empty defaults.
struct frame_info {
  [[nodiscard]] const code_site& where() const noexcept { return m_where; }
  [[nodiscard]] frame_info* awaiting() const noexcept { return m_awaiting; }
  void set_where(const code_site& where) noexcept {
    if constexpr (observe_enabled) m_where = where;
  }
  void set_awaiting(frame_info* f) noexcept {
    if constexpr (observe_enabled) m_awaiting = f;
  }

  code_site m_where{};
  frame_info* m_awaiting = nullptr;
};

/// Who holds a root: the loop (detached roots) or a child scope (task
/// groups, gather). Members are linked through task_base's list_node, so
/// every live root can be found and cancelled. Child scopes are also linked
/// into their loop's list of scopes (through this class's own list_node),
/// so task dumps find every live root.
class loop_core;

class task_owner : public list_node {
 public:
  virtual void on_member_done(task_base& t) noexcept = 0;

  intrusive_list<task_base> m_members;
  std::size_t m_count = 0;
  /// The task that opened this scope and waits for its members (nullptr for
  /// the loop itself).
  task_base* m_opener = nullptr;
  /// The loop whose tasks these are (debug mode checks that a task is
  /// resumed by its own loop).
  loop_core* m_home = nullptr;

 protected:
  ~task_owner() = default;
};

enum task_flag : std::uint32_t {
  tf_root = 1U << 0,
  tf_done = 1U << 1,
  tf_handle = 1U << 2,  // a join_handle refers to the root
  tf_cancel_requested = 1U << 3,
  tf_cancel_pending = 1U << 4,  // the root's own (outermost) cancel request
  tf_has_value = 1U << 5,
  tf_has_error = 1U << 6,
  tf_error_is_cancel = 1U << 7,
  tf_retrieved = 1U << 8,     // the result or error was taken
  tf_yielded = 1U << 9,       // yield_now: not again in the tick it yielded in
  tf_yield_odd = 1U << 10,    // ... which was an odd-numbered tick
  tf_value_taken = 1U << 11,  // a join_handle moved the value out
  tf_forwarding = 1U << 12,   // the root only awaits an inner task whose site it took
};

/// Promise base of every task<T>. Fields after `m_link` are used by roots only.
class task_base : public list_node, public frame_info {
 public:
  task_base* m_next_ready = nullptr;
  // Nested task: the awaiting coroutine to resume when it ends
  // (continuation()). Root: the coroutine to resume when the loop runs it
  // next (resume_point()). One field, two meanings: a task is either.
  void* m_link = nullptr;
  waiter* m_waiter = nullptr;
  cancel_scope* m_scope = nullptr;
  done_listener* m_listeners = nullptr;
  task_owner* m_owner = nullptr;
  std::exception_ptr m_error;
  std::uint32_t m_flags = 0;
  // The fields below are set by spawn (roots only): left uninitialised here
  // so that nested tasks, the most common frames, do not pay for them.
  // When the root was spawned, in units of 2^20 ns (about a millisecond)
  // since the loop started (task dumps show the age); fills the padding
  // after m_flags.
  std::uint32_t m_spawned_ticks;
  const char* m_name;  // spawn(t, name), or nullptr

  /// The name given to spawn, or nullptr.
  [[nodiscard]] const char* name() const noexcept { return m_name; }
  void set_name(const char* name) noexcept { m_name = name; }

  /// Nested task: who awaits it (null before it is awaited).
  [[nodiscard]] std::coroutine_handle<> continuation() const noexcept {
    return std::coroutine_handle<>::from_address(m_link);
  }
  void set_continuation(std::coroutine_handle<> h) noexcept { m_link = h.address(); }
  /// Root: the coroutine the loop resumes when it runs the root next.
  [[nodiscard]] std::coroutine_handle<> resume_point() const noexcept {
    return std::coroutine_handle<>::from_address(m_link);
  }
  void set_resume_point(std::coroutine_handle<> h) noexcept { m_link = h.address(); }

  [[nodiscard]] bool done() const noexcept { return (m_flags & tf_done) != 0; }

  /// True when a cancellation request would be delivered at a suspension now.
  [[nodiscard]] bool cancel_effective() const noexcept {
    for (const cancel_scope* s = m_scope; s != nullptr; s = s->m_parent) {
      if (s->m_pending) return true;
      if (s->m_shield) return false;
    }
    return (m_flags & tf_cancel_pending) != 0;
  }

  /// Marks the effective request(s) delivered. The outermost one is the
  /// cause: a timeout scope converts the error only when it is the cause.
  /// Scopes inside the cause lose an earlier `delivered` mark: a deadline
  /// whose cancellation is being cleaned up must not convert a newer
  /// request from outside into its own timeout.
  void consume_cancel() noexcept {
    cancel_scope* cause = nullptr;
    cancel_scope* shield = nullptr;  // the walk stops at the first shield
    for (cancel_scope* s = m_scope; s != nullptr && shield == nullptr; s = s->m_parent) {
      if (s->m_pending) {
        s->m_pending = false;
        cause = s;
      }
      if (s->m_shield) shield = s;
    }
    if (shield == nullptr && (m_flags & tf_cancel_pending) != 0) {
      m_flags &= ~tf_cancel_pending;
      cause = nullptr;  // the task's own request: no scope caused it
    } else if (cause == nullptr) {
      return;
    }
    const cancel_scope* end = shield != nullptr ? shield->m_parent : nullptr;
    for (cancel_scope* s = m_scope; s != end && s != cause; s = s->m_parent)
      s->m_delivered = false;
    if (cause != nullptr) cause->m_delivered = true;
  }

  /// Requests cancellation of this root (join_handle::cancel). Returns false
  /// when it has already finished.
  bool request_cancel() noexcept;

  /// Aborts the current wait if a request has become effective.
  void abort_wait_if_cancelled() noexcept;
};

/// Throws cancelled_error after consuming the effective request.
[[noreturn]] void throw_cancelled(task_base& t);

}  // namespace corio::detail
