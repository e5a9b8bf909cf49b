// The observer: the loop_hooks table that src/observe installs on a loop
// whose options ask for observation (stats, task timing, debug mode, the
// watchdog). It owns every piece of observation state that used to live in
// the loop: the timer-lag histogram, time spent polling, run time per task,
// the watchdog's progress marks, debug mode's reports.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "corio/loop/detail/loop_hooks.hpp"
#include "corio/observe/histogram.hpp"

namespace corio::detail {

class observer final : public loop_hooks {
 public:
  observer(event_loop& loop, std::uint32_t events);
  ~observer() override;

  void tick_started() noexcept override;
  void before_resume(task_base& t) noexcept override;
  void after_resume(task_base* t) override;
  void before_poll() noexcept override;
  void after_poll() noexcept override;
  void task_destroyed(task_base& t) noexcept override;
  void task_dropped(task_base& t, bool started) noexcept override;
  void sleep_resumed(std::int64_t deadline_ns) noexcept override;
  void run_started() override;
  void main_done(std::size_t live) override;
  void run_finished() noexcept override;
  void blocking_call(const char* what) override;
  std::string task_dump() override;
  void add_stats(loop_stats& s) const noexcept override;

  [[nodiscard]] event_loop& loop() const noexcept { return m_loop; }
  [[nodiscard]] const latency_histogram& timer_lag() const noexcept { return m_lag; }
  /// The time `t` has run, when resumptions are timed; else 0.
  [[nodiscard]] std::chrono::nanoseconds run_time_of(const task_base& t) const;

  // For the watchdog thread: the progress step the loop is at (an
  // iteration, or in debug mode a resumption), and whether it is blocked
  // in a poll (idle, not stuck). Relaxed: a stale value only delays a
  // report by one watchdog interval.
  [[nodiscard]] std::uint64_t watched_step() const noexcept {
    return m_watch_step.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool watched_polling() const noexcept {
    return m_watch_polling.load(std::memory_order_relaxed);
  }
  /// The step, read on the loop's own thread (by the capture signal).
  [[nodiscard]] std::uint64_t step_on_loop_thread() const noexcept { return m_step; }
  /// The watchdog hands over the await chain it captured while the loop was
  /// at progress step `step` (debug mode).
  void deposit_capture(std::string chain, std::uint64_t step, std::chrono::nanoseconds at);

 private:
  void advance_step() noexcept { m_watch_step.store(++m_step, std::memory_order_relaxed); }
  void report_slow_resumption(task_base* t, std::int64_t ns);

  event_loop& m_loop;
  const bool m_debug;
  const bool m_timed;    // debug or task_timing: time each resumption
  const bool m_watched;  // the watchdog watches this loop
  const bool m_time_polls;
  latency_histogram m_lag;
  std::int64_t m_poll_ns = 0;
  std::int64_t m_poll_start = 0;
  std::int64_t m_resume_start = 0;
  std::uint64_t m_slow_resumptions = 0;
  std::uint32_t m_dump_seen = 0;
  // Run time per root: a side table, so that frames do not carry the field.
  std::unordered_map<const task_base*, std::int64_t> m_run_times;
  // The root that finished (and was destroyed) during the current
  // resumption, for the slow-resumption report.
  code_site m_finished_where{};
  const char* m_finished_name = nullptr;
  std::uint64_t m_step = 0;
  std::atomic<std::uint64_t> m_watch_step{0};
  std::atomic<bool> m_watch_polling{false};
  // What the watchdog captured, handed over to the loop's thread.
  std::mutex m_capture_mutex;
  std::string m_capture_chain;
  std::uint64_t m_capture_step = 0;
  std::chrono::nanoseconds m_capture_at{0};
  std::atomic<std::uint64_t> m_captures{0};
};

/// The observer installed on `loop`, or nullptr.
observer* observer_of(const event_loop& loop) noexcept;

/// The watchdog (watchdog.cpp): starts watching the observer's loop, which
/// runs on the calling thread, until unwatch_loop.
void watch_loop(observer& o);
void unwatch_loop(observer& o) noexcept;

}  // namespace corio::detail
