// shield, timeout, timeout_at, move_on_after: cancel scopes inside a task.
#pragma once

#include <chrono>
#include <optional>

#include "corio/detail/awaitable_traits.hpp"
#include "corio/task.hpp"
#include "corio/time.hpp"

namespace corio {

namespace detail {

/// Pushes a cancel scope onto the running root for the lifetime of the
/// object; with a deadline, arms a timer that requests cancellation of the
/// scope. Strictly nested (a coroutine frame owns it).
class scope_guard : public cancel_scope, timer_node {
 public:
  explicit scope_guard(bool shield) noexcept : m_task(&current_task()) {
    m_shield = shield;
    m_parent = m_task->m_scope;
    m_task->m_scope = this;
  }
  scope_guard(std::int64_t deadline_ns, bool /*deadline*/) noexcept : scope_guard(false) {
    if (deadline_ns <= current_loop().now_ns()) {
      m_pending = true;  // delivered at the first suspension
      return;
    }
    m_when_ns = deadline_ns;
    m_fire = [](timer_node& t) noexcept {
      auto& self = static_cast<scope_guard&>(t);
      self.m_pending = true;
      self.m_task->abort_wait_if_cancelled();
    };
    current_loop().add_timer(*this);
  }
  scope_guard(const scope_guard&) = delete;
  scope_guard& operator=(const scope_guard&) = delete;
  ~scope_guard() {
    current_loop().timers().cancel(*this);
    m_task->m_scope = m_parent;
  }

  /// True when this scope's own deadline caused the cancellation thrown.
  [[nodiscard]] bool caused() const noexcept { return m_delivered; }

  /// Requests cancellation of this scope (task_group: a child failed).
  void cancel() noexcept {
    m_pending = true;
    m_task->abort_wait_if_cancelled();
  }

 private:
  task_base* m_task;
};

template <class A>
auto deadline_body(std::int64_t deadline_ns, A aw, bool* timed_out) -> task<await_result_t<A>> {
  scope_guard scope(deadline_ns, true);
  try {
    co_return co_await std::move(aw);
  } catch (const cancelled_error&) {
    if (!scope.caused()) throw;
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
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return current_loop().now_ns() + ns;
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

}  // namespace corio
