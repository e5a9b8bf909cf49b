// wait_any: the first task to finish wins; the rest are cancelled.
#pragma once

#include <utility>
#include <vector>

#include "corio/flow/detail/child_scope.hpp"

namespace corio {

/// The result of `wait_any`: which task finished first, and its value.
template <class T>
struct any_result {
  /// Position, in the vector passed to `wait_any`, of the task that finished first.
  std::size_t index;
  T value;  ///< That task's value.
};
/// The result of `wait_any` over `task<>`s: which task finished first.
template <>
struct any_result<void> {
  /// Position, in the vector passed to `wait_any`, of the task that finished first.
  std::size_t index;
};

/// Runs the tasks concurrently; when the first one finishes, cancels the
/// others, waits for them, and returns its index and value (or rethrows its
/// error). An empty vector is an error (std::invalid_argument). The other
/// tasks' values are dropped; a failure of one of them (other than its
/// cancellation) is reported through loop_options::report as a task error
/// nobody retrieved, as is every failure when the caller is cancelled.
///
/// \code
///   auto r = co_await corio::wait_any(std::move(replicas));  // r.index, r.value
/// \endcode
template <class T>
task<any_result<T>> wait_any(std::vector<task<T>> tasks) {
  if (tasks.empty()) throw std::invalid_argument("corio::wait_any: no tasks");
  // Not collecting: only the winner's result is taken; a failure of
  // another task is left to the loop's "nobody retrieved" report when the
  // handles go, instead of being marked retrieved and dropped.
  detail::child_scope scope(false, false);
  detail::task_base* first = nullptr;
  scope.m_user = &first;
  scope.m_on_child_done = [](detail::child_scope& s, detail::task_base& t) noexcept {
    auto* f = static_cast<detail::task_base**>(s.m_user);
    if (*f == nullptr) *f = &t;
  };
  std::vector<join_handle<T>> handles = scope.spawn_all(tasks);
  bool cancelled = false;
  try {
    co_await scope.wait_until([](const detail::child_scope& s) {
      return *static_cast<detail::task_base* const*>(s.m_user) != nullptr;
    });
  } catch (const cancelled_error&) {
    cancelled = true;
  }
  scope.cancel_all();
  co_await shield(scope.join());
  if (cancelled) throw cancelled_error();
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (handles[i].get() == first) {
      if constexpr (std::is_void_v<T>) {
        handles[i].result();
        co_return any_result<void>{i};
      } else {
        co_return any_result<T>{i, handles[i].result()};
      }
    }
  }
  throw std::logic_error("corio::wait_any: winner not found");
}

}  // namespace corio
