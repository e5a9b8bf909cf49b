// The task core that is not inline: how a root finishes, is destroyed, and
// how a task's failure or cancellation is stored (task.hpp, task_base.hpp).
#include "corio/task/task.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "corio/errors.hpp"
#include "task/describe.hpp"

namespace corio::detail {

void store_error(task_base& t) noexcept {
  t.m_error = std::current_exception();
  t.m_flags |= tf_has_error;
  try {
    throw;
  } catch (const cancelled_error&) {
    t.m_flags |= tf_error_is_cancel;
  } catch (...) {  // NOLINT(bugprone-empty-catch): only classifying
  }
}

bool complete_root(task_base& t) noexcept {
  t.m_flags |= tf_done;
  t.m_waiter = nullptr;
  t.unlink();
  task_owner* owner = t.m_owner;
  --owner->m_count;
  if (loop_core* loop = loop_core::current()) loop->note_finished();
  owner->on_member_done(t);
  done_listener* l = t.m_listeners;
  t.m_listeners = nullptr;
  while (l != nullptr) {
    done_listener* next = l->m_next;
    l->m_on_done(*l);
    l = next;
  }
  return (t.m_flags & tf_handle) == 0;
}

void before_destroy_root(task_base& t) noexcept {
  if ((t.m_flags & (tf_has_error | tf_retrieved | tf_error_is_cancel)) == tf_has_error) {
    try {
      report_current("corio: task " + describe_named(t.name(), t.where()) +
                     " failed and nobody retrieved its exception: " + describe_error(t.m_error));
    } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw out of a destructor
    }
  }
  if (loop_core* loop = loop_core::current()) loop->note_root_destroyed(t);
}

void on_task_dropped(task_base& t, bool started) noexcept {
  if (loop_core* loop = loop_core::current()) loop->note_task_dropped(t, started);
}

[[noreturn]] void throw_no_loop(const char* what) {
  throw std::logic_error(std::string(what) + " called outside a running corio event loop");
}

}  // namespace corio::detail
