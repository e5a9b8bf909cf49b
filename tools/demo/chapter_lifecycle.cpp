// Chapter: lifecycle. The guide: tasks started with create_task outlive the
// failure that makes their work pointless. A task_group cancels the
// siblings on the first failure, runs its cleanups, and leaves nothing
// behind.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

/// A long job that the failure makes pointless; counts its cancellation.
corio::task<> worker(int& cancelled) {
  bool was_cancelled = false;
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    was_cancelled = true;
  }
  if (was_cancelled) {
    ++cancelled;
    throw corio::cancelled_error();
  }
}

/// The sibling that fails after 5 ms.
corio::task<> failing() {
  co_await corio::sleep(5ms);
  throw std::runtime_error("upstream returned garbage");
}

/// Runs the spawn-and-forget version, then the task_group one, and reports
/// what each left behind.
void run_chapter(report& report) {
  report.heading("lifecycle: 8 workers, one sibling fails after 5 ms");
  std::size_t leaked_tasks = 0;
  std::size_t leaked_timers = 0;
  progress("before: spawn() each and await only the failing one");
  {
    corio::event_loop loop;
    int cancelled = 0;
    corio::run(loop, [](int& c, std::size_t& lt, std::size_t& ltm) -> corio::task<> {
      for (int i = 0; i < 8; ++i)
        (void)corio::spawn(worker(c), "worker");
      auto f = corio::spawn(failing(), "failing");
      bool failed = false;
      try {
        co_await f;
      } catch (const std::runtime_error&) {
        failed = true;
      }
      const corio::loop_stats s = corio::event_loop::current()->stats();
      lt = s.live_tasks - 1;  // not counting this task
      ltm = s.pending_timers;
      if (!failed) throw std::logic_error("the failure was lost");
    }(cancelled, leaked_tasks, leaked_timers));
  }
  progress("after: corio::with_task_group");
  int cancelled = 0;
  int cleanups = 0;
  std::size_t live_after = 0;
  std::size_t timers_after = 0;
  std::string error;
  const auto t0 = steady::now();
  {
    corio::event_loop loop;
    corio::run(loop, [](int& c, int& cl, std::string& err) -> corio::task<> {
      try {
        co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
          g.defer([&cl]() -> corio::task<> {
            ++cl;
            co_return;
          });
          for (int i = 0; i < 8; ++i)
            g.spawn(worker(c), "worker");
          g.spawn(failing(), "failing");
          co_return;
        });
      } catch (const corio::task_group_error& e) {
        err = e.what();
      }
    }(cancelled, cleanups, error));
    live_after = loop.stats().live_tasks;
    timers_after = loop.stats().pending_timers;
  }
  const double ms = since(t0) * 1e3;
  if (cancelled != 8 || cleanups != 1 || live_after != 0 || timers_after != 0 || error.empty()) {
    std::fprintf(stderr, "corio-demo: lifecycle went wrong (cancelled %d, cleanups %d)\n",
                 cancelled, cleanups);
    std::exit(1);
  }
  std::printf("    task_group_error: %s\n", error.c_str());
  report.add("tasks left running", std::to_string(leaked_tasks), "0", "siblings cancelled");
  report.add("timers left pending", std::to_string(leaked_timers), std::to_string(timers_after),
             fmt("group done in %.0f ms", ms));
  report.add("cleanups run", "-", std::to_string(cleanups), "defer() ran");
}

const registrar k_registered{{"lifecycle", 400, run_chapter}};

}  // namespace
}  // namespace corio_demo
