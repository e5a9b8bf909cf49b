// metrics_registry: loop stats, profiler histograms and pool statistics as
// Prometheus text or JSON, and an HTTP endpoint that serves them.
#pragma once

#include <string>
#include <vector>

#include "corio/exec/cross_loop.hpp"
#include "corio/exec/thread_pool.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/observe/profiler.hpp"
#include "corio/observe/report_log.hpp"
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

namespace detail {
/// One loop's figures as an export reads them: taken on the loop's thread.
struct loop_reading {
  std::string label;
  loop_stats stats;
  latency_histogram lag;
};
/// One connection pool's figures, taken on the thread of its loop.
struct pool_reading {
  std::string label;
  pool_stats stats;
  latency_histogram waits;
};
/// What one export writes: every loop's and connection pool's figures.
struct metrics_readings {
  std::vector<loop_reading> loops;
  std::vector<pool_reading> pools;
};
}  // namespace detail

/// The sources one export covers. Each is added with a label value
/// (`loop="main"`, `profiler="db"`, `pool="cpu"`) and read when an export is
/// written, so figures are always current. Sources are referenced, not
/// copied: they must outlive the registry. A loop's statistics are read
/// without a lock, so write exports on the thread of every loop added
/// (`serve_metrics` does: it runs on that loop). The loops of a runtime
/// (`add_every_loop`) are read each on its own thread, so the exports
/// that cover them are the ones that can wait: `co_await
/// gather_prometheus()`, `co_await gather_json()` and `serve_metrics`.
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
  /// `loop`, read where the export is written (that must be its thread).
  void add_loop(event_loop& loop, std::string label = "main");
  /// Every loop of the runtime that writes the export, labelled
  /// `loop="<prefix><index>"` (`loop="0"`, `loop="1"`, ... by default);
  /// off a runtime, the loop that writes it, as index 0. Read by
  /// `gather_prometheus`, `gather_json` and `serve_metrics` on each loop's
  /// own thread; the plain `prometheus()` and `json()` read it only where
  /// that is this thread (one loop), and throw `std::logic_error` on a
  /// runtime of several loops.
  ///
  /// \code
  ///   corio::metrics_registry metrics;
  ///   metrics.add_every_loop();
  ///   std::string text = co_await metrics.gather_prometheus();
  /// \endcode
  void add_every_loop(std::string prefix = "");
  /// A profiler's operations, labelled `profiler="<label>",name="<op>"`.
  /// Profilers are thread-safe: read from any thread.
  void add_profiler(const profiler& p, std::string label = "default");
  /// A thread pool's gauges and counters, labelled `pool="<label>"`.
  void add_pool(const thread_pool& pool, std::string label);
  /// A connection pool (any `pool<T>`). A pool belongs to the loop it was
  /// made on: the gathering exports read it on that loop's thread, so a
  /// pool per loop (`loop_local`) is exported safely from any loop.
  void add_pool(const detail::pool_core& pool, std::string label);
  /// The loops' latest reports (JSON export only: `"reports"`, as
  /// `report_log::json()`; Prometheus has the counts, e.g.
  /// `corio_loop_slow_resumptions_total`).
  void add_reports(const report_log& reports);

  /// Prometheus text exposition format, version 0.0.4.
  [[nodiscard]] std::string prometheus() const;
  /// {"loops": {label: {...}}, "profilers": {label: {name: {...}}},
  ///  "pools": {label: {...}}, "connection_pools": {label: {...}},
  ///  "reports": {"total": n, "recent": [...]}} (reports only once added);
  ///  durations in nanoseconds.
  [[nodiscard]] std::string json() const;
  /// `prometheus()`, with every loop of the runtime read on its own thread.
  [[nodiscard]] task<std::string> gather_prometheus() const;
  /// `json()`, with every loop of the runtime read on its own thread.
  [[nodiscard]] task<std::string> gather_json() const;

 private:
  [[nodiscard]] detail::metrics_readings read_here() const;
  [[nodiscard]] task<detail::metrics_readings> gather() const;
  [[nodiscard]] std::string prometheus_of(const detail::metrics_readings& r) const;
  [[nodiscard]] std::string json_of(const detail::metrics_readings& r) const;

  std::vector<std::pair<std::string, event_loop*>> m_loops;
  std::vector<std::string> m_every_loop;  // prefixes
  std::vector<std::pair<std::string, const profiler*>> m_profilers;
  std::vector<std::pair<std::string, const thread_pool*>> m_pools;
  std::vector<std::pair<std::string, const detail::pool_core*>> m_connection_pools;
  const report_log* m_reports = nullptr;
};

/// Serves `metrics` over HTTP on `listener` until cancelled: `GET /` (a
/// live dashboard for a browser: one self-contained page, no CDN, that
/// polls the JSON below and charts lag, load, tasks and profiles), `/metrics`
/// (Prometheus text), `/metrics.json`, `/tasks` (dump_tasks of every loop
/// of the runtime it runs on, or of its loop off a runtime; text) and
/// `/tasks.json` (each task with its loop's index); anything else is 404. Runs on
/// corio's own HTTP server (keep-alive, limits), so scraping costs the loop
/// a few microseconds per request.
///
/// \code
///   auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(9464));
///   auto endpoint = corio::spawn(corio::serve_metrics(listener, metrics), "metrics");
/// \endcode
task<> serve_metrics(tcp_listener& listener, const metrics_registry& metrics);

}  // namespace corio
