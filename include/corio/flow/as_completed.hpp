// as_completed: results in the order the tasks finish.
#pragma once

#include <deque>
#include <vector>

#include "corio/flow/async_generator.hpp"
#include "corio/flow/detail/child_scope.hpp"

namespace corio {

/// Runs the tasks concurrently and yields each result as soon as its task
/// finishes. A task's failure is rethrown from `next()` at its turn, and
/// the stream goes on: the next `next()` gives the next task to finish (as
/// asyncio's `as_completed` does). `for_each` ends at a failure, like a
/// loop whose body throws.
///
/// Cancelling the consumer cancels the tasks still running and waits for
/// them before the cancellation comes out of `next()`. Dropping the
/// generator early cancels the tasks still running; they finish on the
/// loop, since a destructor cannot wait.
///
/// \code
///   auto results = corio::as_completed(std::move(jobs));
///   for (;;) {
///     try {
///       auto r = co_await results.next();
///       if (!r) break;
///       use(*r);
///     } catch (const std::exception& e) { log(e.what()); }
///   }
/// \endcode
template <class T>
async_generator<T> as_completed(std::vector<task<T>> tasks) {
  using finished_list = std::deque<detail::task_base*>;
  detail::child_scope scope(false);
  finished_list finished;
  scope.m_user = &finished;
  scope.m_on_child_done = [](detail::child_scope& s, detail::task_base& t) noexcept {
    static_cast<finished_list*>(s.m_user)->push_back(&t);
  };
  std::vector<join_handle<T>> handles = scope.spawn_all(tasks);
  for (std::size_t yielded = 0; yielded < handles.size(); ++yielded) {
    if (finished.empty()) {
      co_await scope.join_until([](const detail::child_scope& s) {
        return !static_cast<const finished_list*>(s.m_user)->empty();
      });
    }
    auto* p = static_cast<detail::task_promise<T>*>(finished.front());
    finished.pop_front();
    if ((p->m_flags & detail::tf_has_error) != 0) {
      p->m_flags |= detail::tf_retrieved;  // handed to the consumer
      co_yield detail::yielded_error{&p->m_error};
    } else {
      co_yield p->take();
    }
  }
}

}  // namespace corio
