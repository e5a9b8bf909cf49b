// metrics_registry: loop stats, profiler histograms and pool statistics as
// Prometheus text or JSON, and an HTTP endpoint that serves them.
#pragma once

#include <string>
#include <vector>

#include "corio/exec/thread_pool.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/observe/profiler.hpp"
#include "corio/pool/pool.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// The loop's lag: how late each `sleep` resumed its task, from the deadline
/// asked for to the moment the task ran again (a timer that fired on time
/// but waited behind a task that blocked counts as late, as a ticker would
/// see it). Kept with `loop_options::stats` once the loop has run: one clock
/// read per sleep that ends. Empty for a loop that keeps no statistics.
///
/// \code
///   auto p99 = corio::timer_lag(*corio::event_loop::current()).quantile(0.99);
/// \endcode
[[nodiscard]] const latency_histogram& timer_lag(const event_loop& loop) noexcept;

/// The sources one export covers. Each is added with a label value
/// (`loop="main"`, `profiler="db"`, `pool="cpu"`) and read when an export is
/// written, so figures are always current. Sources are referenced, not
/// copied: they must outlive the registry. A loop's statistics are read
/// without a lock, so write exports on the thread of every loop added
/// (`serve_metrics` does: it runs on that loop).
///
/// Prometheus names: `corio_loop_*` (iterations, resumptions, polls,
/// timers fired, syscalls, posted callbacks, slow resumptions as counters;
/// live tasks, pending timers, read buffer bytes as gauges; polling and
/// running seconds; `corio_loop_timer_lag_seconds` histogram),
/// `corio_profile_seconds{profiler,name}` histograms with
/// `corio_profile_errors_total`, and `corio_pool_*` (threads, queued,
/// running, peak queued; completed and rejected counters) for thread
/// pools, `corio_connection_pool_*` for connection pools (size, idle, in
/// use, creating, waiters; acquires, waits, timeouts, creations, failures,
/// leaks; evictions by cause; a wait-time histogram).
///
/// \code
///   corio::metrics_registry metrics;
///   metrics.add_loop(*corio::event_loop::current(), "main");
///   metrics.add_profiler(prof, "app");
///   metrics.add_pool(corio::cpu_pool(), "cpu");
///   std::string text = metrics.prometheus();
/// \endcode
class metrics_registry {
 public:
  void add_loop(event_loop& loop, std::string label = "main");
  void add_profiler(const profiler& p, std::string label = "default");
  void add_pool(const thread_pool& pool, std::string label);
  /// A connection pool (any `pool<T>`).
  void add_pool(const detail::pool_core& pool, std::string label);

  /// Prometheus text exposition format, version 0.0.4.
  [[nodiscard]] std::string prometheus() const;
  /// {"loops": {label: {...}}, "profilers": {label: {name: {...}}},
  ///  "pools": {label: {...}}, "connection_pools": {label: {...}}};
  ///  durations in nanoseconds.
  [[nodiscard]] std::string json() const;

 private:
  std::vector<std::pair<std::string, event_loop*>> m_loops;
  std::vector<std::pair<std::string, const profiler*>> m_profilers;
  std::vector<std::pair<std::string, const thread_pool*>> m_pools;
  std::vector<std::pair<std::string, const detail::pool_core*>> m_connection_pools;
};

/// Serves `metrics` over HTTP on `listener` until cancelled: `GET /metrics`
/// (Prometheus text), `/metrics.json`, `/tasks` (dump_tasks of the loop it
/// runs on, text) and `/tasks.json`; anything else is 404. Runs on
/// corio's own HTTP server (keep-alive, limits), so scraping costs the loop
/// a few microseconds per request.
///
/// \code
///   auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(9464));
///   auto endpoint = corio::spawn(corio::serve_metrics(listener, metrics), "metrics");
/// \endcode
task<> serve_metrics(tcp_listener& listener, const metrics_registry& metrics);

}  // namespace corio
