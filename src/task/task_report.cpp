// Root completion and the reports about tasks nobody looked after.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"

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

void before_destroy_root(task_base& t) noexcept {
  event_loop* loop = event_loop::current();
  if ((t.m_flags & (tf_has_error | tf_retrieved | tf_error_is_cancel)) == tf_has_error) {
    const char* name = loop != nullptr ? loop->name_of(t) : nullptr;
    std::fprintf(stderr, "corio: task '%s' failed and nobody retrieved its exception: %s\n",
                 name != nullptr ? name : "(unnamed)", describe(t.m_error).c_str());
  }
  if (loop != nullptr) loop->forget_name(t);
}

[[noreturn]] void throw_no_loop(const char* what) {
  throw std::logic_error(std::string(what) + " called outside a running corio event loop");
}

}  // namespace detail
}  // namespace corio
