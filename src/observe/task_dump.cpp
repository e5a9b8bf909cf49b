// Task dumps, await chains, and the texts of debug mode's reports.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <ostream>
#include <sstream>
#include <string_view>

#include "corio/task_dump.hpp"
#include "observe/observe.hpp"

namespace corio {

namespace detail {

namespace {

// The index of the bracket that opens the one closing at `close`, or npos.
std::size_t matching_open(const std::string& s, std::size_t close, char o, char c) {
  int depth = 0;
  for (std::size_t i = close + 1; i-- > 0;) {
    if (s[i] == c) ++depth;
    if (s[i] == o && --depth == 0) return i;
  }
  return std::string::npos;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Erases every occurrence of `what`, or only its first `n` characters.
void erase_each(std::string& s, std::string_view what, std::size_t n = std::string::npos) {
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p))
    s.erase(p, std::min(n, what.size()));
}

// Compilers name a function with its return type, namespaces, qualifiers
// and template arguments. GCC: "corio::task<int> {anonymous}::parse(const
// std::string&) [with T = int]"; Clang: "corio::task<int> (anonymous
// namespace)::parse(const std::string &) [T = int]", and "auto f()::(anonymous
// class)::operator()() const" for a lambda. Both become "parse(const
// std::string&)". The parameter list is the last balanced "(...)"; the name
// starts after the last space outside brackets before it.
std::string function_without_return_type(std::string s) {
  if (!s.empty() && s.back() == ']') {  // template arguments
    const std::size_t open = matching_open(s, s.size() - 1, '[', ']');
    if (open != std::string::npos && open > 0 && s[open - 1] == ' ') s.resize(open - 1);
  }
  // Anonymous namespaces add nothing a reader needs.
  erase_each(s, "{anonymous}::");
  erase_each(s, "(anonymous namespace)::");
  for (bool more = true; more;) {
    more = false;
    for (const std::string_view q : {" const", " volatile", " noexcept", " &&", " &"})
      if (ends_with(s, q)) {
        s.resize(s.size() - q.size());
        more = true;
      }
  }
  // Clang writes "const std::string &", GCC "const std::string&": one way.
  erase_each(s, " &", 1);
  erase_each(s, " *", 1);
  if (s.empty() || s.back() != ')') return s;  // GCC's "main()::<lambda(int)>": no return type
  const std::size_t open = matching_open(s, s.size() - 1, '(', ')');
  if (open == std::string::npos) return s;
  int depth = 0;  // inside <...> or (...), counted from the right
  for (std::size_t i = open; i-- > 0;) {
    if (s[i] == '>' || s[i] == ')') ++depth;
    if (s[i] == '<' || s[i] == '(') --depth;
    if (s[i] == ' ' && depth == 0) return s.substr(i + 1);
  }
  return s;
}

bool identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// The index just past the bracket that closes the one at `open`.
std::size_t past_closing(const std::string& s, std::size_t open, char o, char c) {
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    if (s[i] == o) ++depth;
    if (s[i] == c && --depth == 0) return i + 1;
  }
  return s.size();
}

// Chains name instantiations of templates and lambdas inside them, which
// GCC spells out in full (a lambda's type repeats its enclosing function's
// signature). Keep them readable: drop template argument lists, and write
// a parameter list longer than 60 characters as "(...)".
std::string compact_name(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '<' && i > 0 && identifier_char(s[i - 1]) && s.compare(i, 7, "<lambda") != 0) {
      i = past_closing(s, i, '<', '>');
      continue;
    }
    if (c == '(') {
      const std::size_t end = past_closing(s, i, '(', ')');
      if (end - i - 2 > 60) {
        out += "(...)";
        i = end;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

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

std::string function_display_name(const char* full) {
  return compact_name(function_without_return_type(full));
}

std::string describe_frame(const code_site& where) {
  if (where.line() == 0) return "(unknown coroutine)";
  std::string s = function_display_name(where.function_name());
  s += " at ";
  s += where.file_name();
  s += ':';
  s += std::to_string(where.line());
  return s;
}

void report_blocking_call(event_loop& loop, const char* what) {
  std::string msg = std::string("corio: blocking call ") + what +
                    " on an event loop's thread: every task of the loop waits until it returns; "
                    "use the awaitable form, or offload() it";
  if (const task_base* t = loop.current_task()) {
    msg += "\n  in task: ";
    msg += await_chain_text(*t);
  }
  loop.report(msg);
}

std::string describe_named(const char* name, const code_site& where) {
  std::string s;
  if (name != nullptr) {
    s += '\'';
    s += name;
    s += "' ";
  }
  return s + describe_frame(where);
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
  const std::int64_t now_ns = loop.ns_since_start();
  loop.for_each_root([&](detail::task_base& t) {
    task_info info;
    if (t.name() != nullptr) info.name = t.name();
    info.function = detail::function_display_name(t.where().function_name());
    info.file = t.where().file_name();
    info.line = t.where().line();
    if (&t == loop.current_task()) {
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
    if constexpr (detail::observe_enabled)
      info.age = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::nanoseconds(now_ns - (static_cast<std::int64_t>(t.m_spawned_ticks) << 20)));
    info.run_time = loop.run_time_of(t);
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
  out << tasks.size() << " live task(s) on this loop\n";
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
