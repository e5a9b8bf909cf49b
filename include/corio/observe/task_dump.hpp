// Task dumps: every live task of a loop with its state and await chain.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "corio/loop/event_loop.hpp"

namespace corio {

/// What a task dump knows about one live task.
struct task_info {
  /// The name given to `spawn(t, name)`, or empty.
  std::string name;
  /// The coroutine function the task runs ("serve(int)"), its file and line
  /// (GCC gives the line of the function's closing brace).
  std::string function;
  std::string file;   ///< The source file of `function` (see above).
  unsigned line = 0;  ///< The line in `file` (see above).
  /// "running" (this very resumption), "ready" (queued to run), "waiting";
  /// "cancelling" is added when a cancellation was requested.
  std::string state;
  /// What the innermost frame waits on: "sleep", "recv", "queue pop",
  /// "child tasks", "join_handle", ... (empty unless waiting).
  std::string waits_on;
  /// Time since the task was spawned (to about a millisecond).
  std::chrono::milliseconds age{0};
  /// Time spent running, when resumptions are timed (debug mode or
  /// `loop_options::task_timing`); else 0.
  std::chrono::nanoseconds run_time{0};
  /// The await chain, outermost first: the tasks that wait for this one
  /// (through a task group, gather or join_handle), then this task's own
  /// nested coroutines down to the one suspended now. Each entry reads like
  /// "'worker' worker(int) at app.cpp:40" or "parse(std::string) at app.cpp:12".
  std::vector<std::string> await_chain;
};

/// Every live task of `loop` (detached ones, then members of task groups
/// and gathers).
[[nodiscard]] std::vector<task_info> list_tasks(event_loop& loop);
/// The same for the loop running on this thread (empty off a loop).
[[nodiscard]] std::vector<task_info> list_tasks();

/// Writes one block per live task: name, state, age, what it waits on and
/// its await chain. No debugger needed; debug mode also prints this on
/// SIGUSR1.
///
/// \code
///   corio::dump_tasks(std::cerr);
///   // task 'worker' worker(int) at app.cpp:40: waiting on queue pop, age 1.50 s
///   //   main_task() at app.cpp:60 > [child tasks] > 'worker' worker(int) at app.cpp:40 > ...
/// \endcode
void dump_tasks(std::ostream& out, event_loop& loop);
/// The same for the loop running on this thread; off a loop it writes a
/// line saying that no loop runs here.
void dump_tasks(std::ostream& out);

}  // namespace corio
