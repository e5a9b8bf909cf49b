// The observer (observer.hpp): observation state and debug mode's reports,
// reached from the loop only through its hooks.
#include "observe/observer.hpp"

#include <signal.h>

#include <memory>
#include <string>

#include "corio/observe/task_dump.hpp"
#include "observe/observe.hpp"
#include "task/describe.hpp"

namespace corio::detail {

namespace {

// SIGUSR1 asks every debug-mode loop for a task dump: the handler only
// bumps a counter, which each loop compares once per iteration.
std::atomic<std::uint32_t> g_dump_requests{0};

void on_dump_signal(int /*sig*/) {
  g_dump_requests.fetch_add(1, std::memory_order_relaxed);
}

void install_dump_signal() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = on_dump_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old {};
    // Leave a handler the program installed itself alone.
    if (::sigaction(SIGUSR1, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
      ::sigaction(SIGUSR1, &sa, nullptr);
    return true;
  }();
  (void)installed;
}

// Which hooks a loop with these options needs: nothing per resumption
// unless resumptions are timed, nothing per poll unless polls are timed or
// watched.
std::uint32_t events_for(const loop_options& o) noexcept {
  std::uint32_t e = 0;
  if (o.stats) {
    e |= hook_sleep;
    if (!o.virtual_clock) e |= hook_poll;
  }
  if (o.debug || o.task_timing) e |= hook_resume | hook_task_destroyed;
  if (o.debug) e |= hook_tick | hook_task_dropped | hook_run | hook_blocking_call;
  if (o.watchdog) e |= hook_tick | hook_poll | hook_run;
  return e;
}

}  // namespace

observer::observer(event_loop& loop, std::uint32_t events)
    : loop_hooks(events),
      m_loop(loop),
      m_debug(loop.options().debug),
      m_timed(loop.options().debug || loop.options().task_timing),
      m_watched(loop.options().watchdog),
      m_time_polls(loop.options().stats && !loop.options().virtual_clock) {
  if (m_debug) {
    install_dump_signal();
    m_dump_seen = g_dump_requests.load(std::memory_order_relaxed);
  }
}

observer::~observer() = default;

void observer::tick_started() noexcept {
  if (m_watched) advance_step();
  if (m_debug) {
    const std::uint32_t n = g_dump_requests.load(std::memory_order_relaxed);
    if (n != m_dump_seen) {
      m_dump_seen = n;
      try {
        m_loop.report(task_dump());
      } catch (...) {  // NOLINT(bugprone-empty-catch): a dump must not stop the loop
      }
    }
  }
}

void observer::before_resume(task_base& /*t*/) noexcept {
  if (m_watched) advance_step();
  if (m_timed) m_resume_start = loop_core::read_clock();
}

void observer::after_resume(task_base* t) {
  if (!m_timed) return;
  const std::int64_t ns = loop_core::read_clock() - m_resume_start;
  if (t != nullptr) m_run_times[t] += ns;
  if (m_debug && ns >= m_loop.options().slow_callback_duration.count()) [[unlikely]]
    report_slow_resumption(t, ns);
}

void observer::report_slow_resumption(task_base* t, std::int64_t ns) {
  ++m_slow_resumptions;
  std::string during;  // the chain the watchdog captured in this resumption, if it did
  {
    std::lock_guard lock(m_capture_mutex);
    if (m_capture_step == m_step && !m_capture_chain.empty())
      during = "\n  await chain " + format_duration(m_capture_at) + " into it: " + m_capture_chain;
    m_capture_chain.clear();
  }
  const std::int64_t threshold = m_loop.options().slow_callback_duration.count();
  std::string text = t != nullptr
                         ? slow_resumption_report(*t, ns, threshold)
                         : slow_finished_report(m_finished_name, m_finished_where, ns, threshold);
  const auto first_line = text.find('\n');
  text.insert(first_line == std::string::npos ? text.size() : first_line, during);
  m_loop.report(text);
}

void observer::deposit_capture(std::string chain, std::uint64_t step, std::chrono::nanoseconds at) {
  std::lock_guard lock(m_capture_mutex);
  m_capture_chain = std::move(chain);
  m_capture_step = step;
  m_capture_at = at;
  m_captures.fetch_add(1, std::memory_order_relaxed);
}

void observer::before_poll() noexcept {
  if (m_watched) m_watch_polling.store(true, std::memory_order_relaxed);
  if (m_time_polls) m_poll_start = loop_core::read_clock();
}

void observer::after_poll() noexcept {
  if (m_time_polls) m_poll_ns += loop_core::read_clock() - m_poll_start;
  if (m_watched) m_watch_polling.store(false, std::memory_order_relaxed);
}

void observer::task_destroyed(task_base& t) noexcept {
  m_run_times.erase(&t);
  if (&t == core_of(m_loop).current_task()) {
    m_finished_where = t.where();
    m_finished_name = t.name();
  }
}

void observer::task_dropped(task_base& t, bool started) noexcept {
  if (!m_debug) return;
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
    if (task_base* cur = core_of(m_loop).current_task()) {
      msg += "\n  dropped while running: ";
      msg += await_chain_text(*cur);
    }
    m_loop.report(msg);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw out of a destructor
  }
}

void observer::sleep_resumed(std::int64_t deadline_ns) noexcept {
  const loop_core& core = core_of(m_loop);
  m_lag.record_ns((core.virtual_clock() ? core.now_ns() : loop_core::read_clock()) - deadline_ns);
}

void observer::run_started() {
  if (m_watched) watch_loop(*this);
}

void observer::main_done(std::size_t live) {
  if (m_debug && live != 0) m_loop.report(alive_at_close_report(m_loop, live));
}

void observer::run_finished() noexcept {
  if (m_watched) unwatch_loop(*this);
}

void observer::blocking_call(const char* what) {
  if (m_debug) report_blocking_call(m_loop, what);
}

std::string observer::task_dump() {
  return task_dump_text(m_loop);
}

void observer::add_stats(loop_stats& s) const noexcept {
  s.polling = std::chrono::nanoseconds(m_poll_ns);
  s.slow_resumptions = m_slow_resumptions;
  s.watchdog_captures = m_captures.load(std::memory_order_relaxed);
}

std::chrono::nanoseconds observer::run_time_of(const task_base& t) const {
  const auto it = m_run_times.find(&t);
  return std::chrono::nanoseconds(it == m_run_times.end() ? 0 : it->second);
}

observer* observer_of(const event_loop& loop) noexcept {
  return dynamic_cast<observer*>(core_of(loop).hooks());
}

void attach_observer(event_loop& loop) {
  if constexpr (observe_enabled) {
    if (core_of(loop).hooks() != nullptr) return;
    install_hooks(loop, std::make_unique<observer>(loop, events_for(loop.options())));
  }
}

}  // namespace corio::detail

namespace corio {

const latency_histogram& timer_lag(const event_loop& loop) noexcept {
  static const latency_histogram empty;
  const detail::observer* o = detail::observer_of(loop);
  return o != nullptr ? o->timer_lag() : empty;
}

}  // namespace corio
