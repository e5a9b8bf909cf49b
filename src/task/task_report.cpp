// Root completion and the reports about tasks nobody looked after.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "observe/observe.hpp"

namespace corio {

namespace {

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (const cancelled_error& c) {
    return c.what();
  } catch (...) {
    return "(an exception not derived from std::exception)";
  }
}

std::string join_messages(const std::vector<std::exception_ptr>& errors) {
  std::string s = std::to_string(errors.size()) + " task(s) failed";
  for (const auto& e : errors) {
    s += "; ";
    s += describe(e);
  }
  return s;
}

}  // namespace

task_group_error::task_group_error(std::vector<std::exception_ptr> errors)
    : std::runtime_error(join_messages(errors)), m_errors(std::move(errors)) {}

namespace detail {

bool complete_root(task_base& t) noexcept {
  t.m_flags |= tf_done;
  t.m_waiter = nullptr;
  t.unlink();
  task_owner* owner = t.m_owner;
  --owner->m_count;
  if (event_loop* loop = event_loop::current()) loop->note_finished();
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

void report_overtaken_errors(const char* what,
                             const std::vector<std::exception_ptr>& errors) noexcept {
  try {
    std::string msg = std::string("corio: ") + what +
                      " was cancelled from outside, and the cancellation overtook " +
                      join_messages(errors);
    if (event_loop* loop = event_loop::current()) {
      loop->report(msg);
    } else {
      std::fprintf(stderr, "%s\n", msg.c_str());
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw
  }
}

void before_destroy_root(task_base& t) noexcept {
  event_loop* loop = event_loop::current();
  if ((t.m_flags & (tf_has_error | tf_retrieved | tf_error_is_cancel)) == tf_has_error) {
    try {
      std::string msg = "corio: task " + describe_named(t.name(), t.where()) +
                        " failed and nobody retrieved its exception: " + describe(t.m_error);
      if (loop != nullptr) {
        loop->report(msg);
      } else {
        std::fprintf(stderr, "%s\n", msg.c_str());
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw out of a destructor
    }
  }
  if (loop != nullptr) loop->note_root_destroyed(t);
}

void on_task_dropped(task_base& t, bool started) noexcept {
  event_loop* loop = event_loop::current();
  if (loop == nullptr || !loop->debug()) return;
  try {
    std::string msg = "corio: task " + describe_frame(t.where());
    if (!started) {
      msg +=
          " was destroyed without ever being awaited (a task<> runs only when awaited or "
          "spawned)";
    } else {
      msg += " was destroyed while pending (suspended";
      if (t.m_waiter != nullptr && t.m_waiter->m_what != nullptr) {
        msg += " on ";
        msg += t.m_waiter->m_what;
      }
      msg += "); its awaiter is gone";
    }
    if (task_base* cur = loop->current_task()) {
      msg += "\n  dropped while running: ";
      msg += await_chain_text(*cur);
    }
    loop->report(msg);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw out of a destructor
  }
}

[[noreturn]] void throw_no_loop(const char* what) {
  throw std::logic_error(std::string(what) + " called outside a running corio event loop");
}

}  // namespace detail
}  // namespace corio
