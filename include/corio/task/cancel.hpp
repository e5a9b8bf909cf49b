// shield, timeout, timeout_at, move_on_after: cancel scopes inside a task.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>

#include "corio/detail/awaitable_traits.hpp"
#include "corio/errors.hpp"
#include "corio/task/task.hpp"
#include "corio/time/sleep.hpp"

namespace corio {

namespace detail {

/// Pushes a cancel scope onto the running root for the lifetime of the
/// object; with a deadline, arms a timer that requests cancellation of the
/// scope when the loop's clock reaches it. Strictly nested (a coroutine
/// frame owns it).
///
/// The deadline can move, as Trio's `CancelScope.deadline` does: a server
/// moves one scope's deadline before every read instead of opening a
/// timeout per read. Moving it later costs a store (the armed timer, when
/// it fires early, re-arms itself at the deadline then in force); only
/// moving it earlier than the armed timer touches the timer wheel.
class scope_guard : public cancel_scope, timer_node {
 public:
  /// The deadline that never comes.
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

  explicit scope_guard(bool shield) noexcept : m_task(&current_task()) {
    m_shield = shield;
    m_parent = m_task->m_scope;
    m_task->m_scope = this;
    m_fire = &on_timer;
  }
  scope_guard(std::int64_t deadline_ns, bool /*deadline*/) noexcept : scope_guard(false) {
    set_deadline(deadline_ns);
  }
  scope_guard(const scope_guard&) = delete;
  scope_guard& operator=(const scope_guard&) = delete;
  ~scope_guard() {
    current_loop().timers().cancel(*this);
    m_task->m_scope = m_parent;
  }

  [[nodiscard]] std::int64_t deadline() const noexcept { return m_deadline_ns; }

  /// Moves the deadline (`never` disarms it). Called by the task that owns
  /// the scope, so never while it waits: a deadline that passed but was not
  /// yet delivered is withdrawn when the new one lies ahead, and a deadline
  /// already past is delivered at the next suspension.
  void set_deadline(std::int64_t deadline_ns) noexcept {
    m_deadline_ns = deadline_ns;
    const std::int64_t now = current_loop().now_ns();
    if (deadline_ns <= now) {
      current_loop().timers().cancel(*this);
      m_pending = true;
      return;
    }
    m_pending = false;
    if (deadline_ns == never || (linked() && m_when_ns <= deadline_ns)) return;
    current_loop().timers().cancel(*this);
    m_when_ns = deadline_ns;
    current_loop().add_timer(*this);
  }

  /// True when this scope's own deadline caused the cancellation thrown.
  [[nodiscard]] bool caused() const noexcept { return m_delivered; }

  /// True when a cancellation from outside this scope is pending, or was
  /// delivered and may still be on its way out (a cleanup awaiting inside
  /// it): this scope's conversion to a timeout must not hide it. The task's
  /// own request counts from the moment it is made until the task ends, as
  /// in asyncio (a timeout inside a cancelled task never converts). A
  /// shield holds outer requests off, so the walk stops there.
  [[nodiscard]] bool outer_cancellation() const noexcept {
    for (const cancel_scope* s = m_parent; s != nullptr; s = s->m_parent) {
      if (s->m_pending || s->m_delivered) return true;
      if (s->m_shield) return false;
    }
    return (m_task->m_flags & (tf_cancel_requested | tf_cancel_pending)) != 0;
  }

  /// True when the cancellation being handled is this scope's deadline and
  /// nothing else: the catch block may turn it into a timeout.
  [[nodiscard]] bool timed_out() const noexcept { return caused() && !outer_cancellation(); }

  /// After a timeout was handled, lets the scope time out again (with the
  /// next deadline set).
  void clear_timeout() noexcept { m_delivered = false; }

  /// Requests cancellation of this scope (task_group: a child failed).
  void cancel() noexcept {
    m_pending = true;
    m_task->abort_wait_if_cancelled();
  }

 protected:
  /// Asked when the deadline has passed, before the scope is cancelled:
  /// returns the deadline in force now, which defers the cancellation when
  /// it lies ahead (a watch that decides by something other than time, such
  /// as a socket's progress). Only the timer calls it.
  std::int64_t (*m_recheck)(scope_guard&) noexcept = nullptr;

 private:
  static void on_timer(timer_node& t) noexcept {
    auto& self = static_cast<scope_guard&>(t);
    loop_core& loop = current_loop();
    if (self.m_deadline_ns <= loop.now_ns() && self.m_recheck != nullptr)
      self.m_deadline_ns = self.m_recheck(self);
    if (self.m_deadline_ns <= loop.now_ns()) {
      self.m_pending = true;
      self.m_task->abort_wait_if_cancelled();
    } else if (self.m_deadline_ns != never) {
      self.m_when_ns = self.m_deadline_ns;  // fired early: the deadline moved
      loop.add_timer(self);
    }
  }

  task_base* m_task;
  std::int64_t m_deadline_ns = never;
};

template <class A>
auto deadline_body(std::int64_t deadline_ns, A aw, bool* timed_out) -> task<await_result_t<A>> {
  scope_guard scope(deadline_ns, true);
  try {
    co_return co_await std::move(aw);
  } catch (const cancelled_error&) {
    // Converted only when this deadline is what was thrown, and no
    // cancellation from outside is pending or on its way out (that one
    // must come out as itself).
    if (!scope.caused() || scope.outer_cancellation()) throw;
  }
  if (timed_out != nullptr) *timed_out = true;
  throw timeout_error();
}

template <class A>
auto shield_body(A aw) -> task<await_result_t<A>> {
  scope_guard scope(true);
  co_return co_await std::move(aw);
}

inline std::int64_t to_ns(clock::time_point tp) noexcept {
  return tp.time_since_epoch().count();
}

template <class Rep, class Period>
std::int64_t deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  return saturating_add(current_loop().now_ns(), saturating_ns(d));
}

}  // namespace detail

/// Awaits `aw`, but cancels it and throws `timeout_error` when the loop's
/// clock reaches `deadline` first. A cancellation from outside still comes
/// out as `cancelled_error`.
template <class A>
auto timeout_at(clock::time_point deadline, A aw) -> task<detail::await_result_t<A>> {
  return detail::deadline_body(detail::to_ns(deadline), std::move(aw), nullptr);
}

/// Awaits `aw` for at most `d`; see timeout_at.
///
/// \code
///   auto reply = co_await corio::timeout(std::chrono::seconds(2), fetch());
/// \endcode
template <class Rep, class Period, class A>
auto timeout(std::chrono::duration<Rep, Period> d, A aw) -> task<detail::await_result_t<A>> {
  return detail::deadline_body(detail::deadline_after(d), std::move(aw), nullptr);
}

/// Awaits `aw` for at most `d`: gives its value, or std::nullopt when the
/// time ran out (for an awaitable of void: true when it completed).
template <class Rep, class Period, class A>
auto move_on_after(std::chrono::duration<Rep, Period> d, A aw)
    -> task<std::conditional_t<std::is_void_v<detail::await_result_t<A>>, bool,
                               std::optional<detail::await_value_t<A>>>> {
  bool timed_out = false;
  try {
    if constexpr (std::is_void_v<detail::await_result_t<A>>) {
      co_await detail::deadline_body(detail::deadline_after(d), std::move(aw), &timed_out);
      co_return true;
    } else {
      co_return co_await detail::deadline_body(detail::deadline_after(d), std::move(aw),
                                               &timed_out);
    }
  } catch (const timeout_error&) {
    if (!timed_out) throw;
  }
  if constexpr (std::is_void_v<detail::await_result_t<A>>) {
    co_return false;
  } else {
    co_return std::nullopt;
  }
}

/// Awaits `aw` with cancellation held off: a request that arrives meanwhile
/// is delivered at the first suspension after `aw` finished.
template <class A>
auto shield(A aw) -> task<detail::await_result_t<A>> {
  return detail::shield_body(std::move(aw));
}

/// True once the running task has been asked to cancel: by
/// `join_handle::cancel()`, by its task group or gather cancelling it, by
/// the cancellation of a task awaiting its handle, or by the loop's
/// shutdown. It stays true after the `cancelled_error` was thrown, so
/// cleanup code can tell a cancellation from an ordinary failure (asyncio's
/// `Task.cancelling()`). A timeout does not set it: a deadline cancels the
/// awaitable it wraps, not the task.
[[nodiscard]] inline bool cancel_requested() noexcept {
  const detail::loop_core* loop = detail::loop_core::current();
  const detail::task_base* t = loop != nullptr ? loop->current_task() : nullptr;
  return t != nullptr && (t->m_flags & detail::tf_cancel_requested) != 0;
}

/// Awaits `aw`; if the task is cancelled meanwhile, awaits `cleanup()`
/// shielded (so the cleanup itself may await, and a second cancellation
/// cannot cut it short), then rethrows the cancellation. C++ does not allow
/// `co_await` inside a `catch` block, so this is the way to run async
/// cleanup on cancellation; by hand it is:
///
/// \code
///   bool cancelled = false;
///   try { co_await work(); } catch (const corio::cancelled_error&) { cancelled = true; }
///   if (cancelled) {
///     co_await corio::shield(close_connection());
///     throw corio::cancelled_error();
///   }
///   // the same, with the helper:
///   co_await corio::on_cancel(work(), [&] { return close_connection(); });
/// \endcode
template <class A, class F>
auto on_cancel(A aw, F cleanup) -> task<detail::await_result_t<A>> {
  std::exception_ptr cancellation;
  try {
    co_return co_await std::move(aw);
  } catch (const cancelled_error&) {
    cancellation = std::current_exception();
  }
  co_await shield(cleanup());
  std::rethrow_exception(cancellation);
}

}  // namespace corio
