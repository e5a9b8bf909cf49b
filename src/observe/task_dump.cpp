// Task dumps, await chains, and the texts of debug mode's reports.
#include <ostream>
#include <sstream>

#include "corio/observe/task_dump.hpp"

#include "corio/exec/cross_loop.hpp"
#include "observe/observe.hpp"
#include "observe/observer.hpp"
#include "task/describe.hpp"

namespace corio {

namespace detail {

namespace {

std::vector<std::string> await_chain(const task_base& t) {
  std::vector<std::string> chain;
  walk_await_chain(
      t,
      [&](const char* name, const code_site& where) {
        chain.push_back(describe_named(name, where));
      },
      [&](const char* what) { chain.push_back(describe_link(what)); });
  return chain;
}

std::string task_title(const task_base& t) {
  return "task " + describe_named(t.name(), t.where());
}

std::string ms_text(std::int64_t ns) {
  return format_duration(std::chrono::nanoseconds(ns));
}

}  // namespace

void report_blocking_call(event_loop& loop, const char* what) {
  std::string msg = std::string("corio: blocking call ") + what +
                    " on an event loop's thread: every task of the loop waits until it returns; "
                    "use the awaitable form, or offload() it";
  if (const task_base* t = core_of(loop).current_task()) {
    msg += "\n  in task: ";
    msg += await_chain_text(*t);
  }
  loop.report(msg);
}

std::string describe_link(const char* what) {
  return std::string("[") + what + "]";
}

std::string join_chain(const std::vector<std::string>& chain) {
  std::string s;
  for (const auto& e : chain) {
    if (!s.empty()) s += "\n    > ";
    s += e;
  }
  return s;
}

std::string await_chain_text(const task_base& t) {
  return join_chain(await_chain(t));
}

std::string slow_resumption_report(const task_base& t, std::int64_t ns, std::int64_t threshold_ns) {
  std::string s = "corio: slow resumption: " + task_title(t) + " ran " + ms_text(ns) +
                  " without yielding (slow_callback_duration " + ms_text(threshold_ns) + ")";
  if (t.done()) {
    s += "; it has finished.";
    return s;
  }
  s += "; it is now suspended.\n  await chain now: ";
  s += await_chain_text(t);
  if (t.m_waiter != nullptr && t.m_waiter->m_what != nullptr) {
    s += "\n  waiting on: ";
    s += t.m_waiter->m_what;
  }
  return s;
}

std::string slow_finished_report(const char* name, const code_site& where, std::int64_t ns,
                                 std::int64_t threshold_ns) {
  std::string s = "corio: slow resumption: task " + describe_named(name, where) + " ran " +
                  ms_text(ns) + " without yielding (slow_callback_duration " +
                  ms_text(threshold_ns) + "); it has finished.";
  return s;
}

std::string task_dump_text(event_loop& loop) {
  std::ostringstream out;
  dump_tasks(out, loop);
  return out.str();
}

std::string alive_at_close_report(event_loop& loop, std::size_t count) {
  std::string s = "corio: the main task finished with " + std::to_string(count) +
                  " task(s) still running; they are being cancelled:\n";
  return s + task_dump_text(loop);
}

}  // namespace detail

std::vector<task_info> list_tasks(event_loop& loop) {
  std::vector<task_info> tasks;
  detail::loop_core& core = detail::core_of(loop);
  const detail::observer* observer = detail::observer_of(loop);
  const std::int64_t now_ns = core.ns_since_start();
  core.for_each_root([&](detail::task_base& t) {
    task_info info;
    if (t.name() != nullptr) info.name = t.name();
    info.function = detail::function_display_name(t.where().function_name());
    info.file = t.where().file_name();
    info.line = t.where().line();
    if (&t == core.current_task()) {
      info.state = "running";
    } else if (t.m_waiter != nullptr) {
      info.state = "waiting";
      if (t.m_waiter->m_what != nullptr) info.waits_on = t.m_waiter->m_what;
    } else {
      info.state = "ready";
    }
    if ((t.m_flags & detail::tf_cancel_requested) != 0) info.state += ", cancelling";
    // The spawn time was rounded down to 2^20 ns: the age is at most that
    // much too long, and millisecond precision is what a dump shows.
    info.age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(now_ns - (static_cast<std::int64_t>(t.m_spawned_ticks) << 20)));
    if (observer != nullptr) info.run_time = observer->run_time_of(t);
    info.await_chain = detail::await_chain(t);
    tasks.push_back(std::move(info));
  });
  return tasks;
}

std::vector<task_info> list_tasks() {
  event_loop* loop = event_loop::current();
  if (loop == nullptr) return {};
  return list_tasks(*loop);
}

void dump_tasks(std::ostream& out, event_loop& loop) {
  const std::vector<task_info> tasks = list_tasks(loop);
  out << tasks.size() << " live task(s) on this loop";
  // On a runtime of several loops, which one (dumps are made on the loop's
  // own thread).
  if (detail::t_runtime != nullptr && detail::t_runtime->size() > 1) {
    out << " (loop " << detail::core_of(loop).m_runtime_index << " of " << detail::t_runtime->size()
        << ")";
  }
  out << '\n';
  for (const task_info& t : tasks) {
    out << "task ";
    if (!t.name.empty()) out << '\'' << t.name << "' ";
    out << t.function << " at " << t.file << ':' << t.line << ": " << t.state;
    if (!t.waits_on.empty()) out << " on " << t.waits_on;
    out << ", age " << format_duration(t.age);
    if (t.run_time.count() != 0) out << ", ran " << format_duration(t.run_time);
    out << "\n  await chain: " << detail::join_chain(t.await_chain) << '\n';
  }
}

void dump_tasks(std::ostream& out) {
  if (event_loop* loop = event_loop::current()) {
    dump_tasks(out, *loop);
  } else {
    out << "no corio event loop runs on this thread\n";
  }
}

}  // namespace corio
