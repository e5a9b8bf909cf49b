// as_completed: results in the order the tasks finish.
#pragma once

#include <deque>
#include <vector>

#include "corio/async_generator.hpp"
#include "corio/detail/child_scope.hpp"

namespace corio {

/// Runs the tasks concurrently and yields each result as soon as its task
/// finishes (a failure is rethrown from `next()` at its turn). Dropping the
/// generator early cancels the tasks still running.
///
/// \code
///   auto results = corio::as_completed(std::move(jobs));
///   while (auto r = co_await results.next()) use(*r);
/// \endcode
template <class T>
async_generator<T> as_completed(std::vector<task<T>> tasks) {
  detail::child_scope scope(false);
  std::deque<detail::task_base*> finished;
  scope.m_user = &finished;
  scope.m_on_child_done = [](detail::child_scope& s, detail::task_base& t) noexcept {
    static_cast<std::deque<detail::task_base*>*>(s.m_user)->push_back(&t);
  };
  std::vector<join_handle<T>> handles = scope.spawn_all(tasks);
  for (std::size_t yielded = 0; yielded < handles.size(); ++yielded) {
    if (finished.empty()) {
      co_await scope.wait_until([](const detail::child_scope& s) {
        return !static_cast<const std::deque<detail::task_base*>*>(s.m_user)->empty();
      });
    }
    auto* p = static_cast<detail::task_promise<T>*>(finished.front());
    finished.pop_front();
    p->m_flags &= ~detail::tf_retrieved;  // the scope does not report: we rethrow here
    co_yield p->take();
  }
}

}  // namespace corio
