// loop_hooks: how observation sees a loop without living in it (Trio's
// Instrument). The loop calls these at fixed points of its iteration, and
// only those that the installed table asked for in `events()`; src/observe
// installs one (the observer: loop timings, the watchdog, debug mode's
// reports) when the loop's options ask for any of that, and the loop owns
// it from then on. The loop itself never includes anything from observe.
//
// Every hook runs on the loop's thread. A hook must not resume, schedule or
// destroy tasks; reports go through `loop_core::report`.
#pragma once

#include <cstdint>
#include <string>

#include "corio/loop/detail/loop_core.hpp"
#include "corio/loop/event_loop.hpp"

namespace corio::detail {

/// See the file comment. Each hook's event bit (hook_event, loop_core.hpp)
/// is named after it.
class loop_hooks {
 public:
  explicit loop_hooks(std::uint32_t events) noexcept : m_events(events) {}
  loop_hooks(const loop_hooks&) = delete;
  loop_hooks& operator=(const loop_hooks&) = delete;
  virtual ~loop_hooks() = default;

  /// The hook_event bits of the hooks the loop should call.
  [[nodiscard]] std::uint32_t events() const noexcept { return m_events; }

  /// hook_tick: an iteration starts (before the clock is read).
  virtual void tick_started() noexcept {}
  /// hook_resume: around each resumption of a root. `after_resume` gets
  /// the root, or nullptr when the resumption finished and destroyed it.
  virtual void before_resume(task_base& /*t*/) noexcept {}
  virtual void after_resume(task_base* /*t*/) {}
  /// hook_poll: around each poll that may block (a busy loop's
  /// non-blocking polls are not reported, so they cost nothing).
  virtual void before_poll() noexcept {}
  virtual void after_poll() noexcept {}
  /// hook_task_destroyed: a root's frame is about to be destroyed.
  virtual void task_destroyed(task_base& /*t*/) noexcept {}
  /// hook_task_dropped: a task<> was destroyed never awaited (`started`
  /// false) or while suspended.
  virtual void task_dropped(task_base& /*t*/, bool /*started*/) noexcept {}
  /// hook_sleep: a sleep due at `deadline_ns` resumed its task.
  virtual void sleep_resumed(std::int64_t /*deadline_ns*/) noexcept {}
  /// hook_run: run() starts; its main task has ended (`live` roots are
  /// still running, about to be cancelled); run() ends (also by an
  /// exception).
  virtual void run_started() {}
  virtual void main_done(std::size_t /*live*/) {}
  virtual void run_finished() noexcept {}
  /// hook_blocking_call: a call that blocks its thread ran on the loop's.
  virtual void blocking_call(const char* /*what*/) {}

  /// Asked by the loop, not by events: a dump of every live task for the
  /// loop's own reports (empty when the hooks keep none), and the figures
  /// that only the hooks measure.
  virtual std::string task_dump() { return {}; }
  virtual void add_stats(loop_stats& /*s*/) const noexcept {}

 private:
  std::uint32_t m_events;
};

}  // namespace corio::detail
