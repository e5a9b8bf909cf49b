// task_group: structured concurrency (Trio's nursery, asyncio.TaskGroup).
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <vector>

#include "corio/flow/detail/child_scope.hpp"

namespace corio {

/// A scope that owns the tasks spawned into it. Open one with
/// `with_task_group`: when it returns, every child has finished.
///
/// - The first child failure cancels the other children and the body.
/// - All failures (the body's and the children's, cancellations aside) come
///   back together as one `task_group_error`.
/// - Cleanups registered with `defer` run last, newest first, even on
///   failure or cancellation (the guide's ResourceManager).
/// - Cancelling the task that runs the group cancels the children, waits
///   for them, runs the cleanups and rethrows `cancelled_error`; failures
///   that happen meanwhile do not replace it (they go to the loop's report).
/// - `cancel()` ends the group without an error; a body that returns a
///   value and was stopped before producing it throws `cancelled_error`.
///
/// \code
///   co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
///     for (auto& url : urls) g.spawn(fetch(url));
///     g.defer([&]() -> corio::task<> { co_await conn.close(); });
///     co_return;
///   });
/// \endcode
class task_group {
 public:
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// Spawns `t` as a child of the group.
  template <class T>
  join_handle<T> spawn(task<T> t, const char* name = nullptr) {
    return m_scope.spawn(std::move(t), name);
  }

  /// Registers a cleanup, run after every child has finished.
  void defer(std::function<task<>()> cleanup) { m_cleanups.push_back(std::move(cleanup)); }

  /// Cancels every child and the body.
  void cancel() noexcept {
    m_scope.cancel_all();
    if (m_body_scope != nullptr) m_body_scope->cancel();
  }

  /// Children still running.
  [[nodiscard]] std::size_t size() const noexcept { return m_scope.active(); }

 private:
  template <class F>
  friend auto with_task_group(F body)
      -> task<detail::await_result_t<std::invoke_result_t<F&, task_group&>>>;

  task_group() noexcept : m_scope(true) {
    m_scope.m_user = this;
    m_scope.m_on_child_done = [](detail::child_scope& s, detail::task_base&) noexcept {
      auto* g = static_cast<task_group*>(s.m_user);
      if (!s.errors().empty() && g->m_body_scope != nullptr) g->m_body_scope->cancel();
    };
  }

  // Waits for the children, runs the cleanups, throws what failed.
  task<> finish(std::exception_ptr body_error, bool outer_cancel) {
    try {
      co_await m_scope.join();
    } catch (const cancelled_error&) {
      outer_cancel = true;
    }
    std::vector<std::exception_ptr> errors;
    if (body_error) errors.push_back(body_error);
    for (const auto& e : m_scope.errors())
      errors.push_back(e);
    for (auto it = m_cleanups.rbegin(); it != m_cleanups.rend(); ++it) {
      try {
        co_await shield((*it)());
      } catch (...) {
        errors.push_back(std::current_exception());
      }
    }
    if (outer_cancel) {
      // The cancellation from outside wins (it must reach whoever asked
      // for it); the failures it overtook are reported, not lost.
      if (!errors.empty()) detail::report_overtaken_errors("a task group", errors);
      throw cancelled_error();
    }
    if (!errors.empty()) throw task_group_error(std::move(errors));
  }

  detail::child_scope m_scope;
  detail::scope_guard* m_body_scope = nullptr;
  std::vector<std::function<task<>()>> m_cleanups;
};

/// Runs `body(group)` with a new task_group and returns the body's value
/// once every child has finished (see task_group).
template <class F>
auto with_task_group(F body)
    -> task<detail::await_result_t<std::invoke_result_t<F&, task_group&>>> {
  using R = detail::await_result_t<std::invoke_result_t<F&, task_group&>>;
  task_group group;
  std::exception_ptr body_error;
  bool outer_cancel = false;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  {
    detail::scope_guard body_scope(false);
    group.m_body_scope = &body_scope;
    try {
      if constexpr (std::is_void_v<R>) {
        co_await body(group);
      } else {
        result.emplace(co_await body(group));
      }
    } catch (const cancelled_error&) {
      if (!body_scope.caused()) outer_cancel = true;  // not from a failing child
    } catch (...) {
      body_error = std::current_exception();
    }
    group.m_body_scope = nullptr;
  }
  if (outer_cancel || body_error) group.m_scope.cancel_all();
  co_await group.finish(body_error, outer_cancel);
  if constexpr (!std::is_void_v<R>) {
    // task_group::cancel() stopped the body before it produced a value.
    if (!result) throw cancelled_error();
    co_return std::move(*result);
  }
}

}  // namespace corio
