// Chapter: monitoring. The guide's debug mode, slow_callback_duration and
// AsyncProfiler: 200 requests (20 at a time), each a 2 ms database call
// and a render; every 50th also calls a legacy client that blocks its
// thread for 120 ms. Debug mode names the task that blocked and its await
// chain; the profiler's table shows where the time went; the fix offloads
// the blocking call to the blocking pool, and the report is gone. While
// each variant runs, serve_metrics serves its live dashboard; the chapter
// prints the address (CORIO_DEMO_DASHBOARD_SECONDS=N keeps it up N seconds
// after the requests, to look at it in a browser).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr u64 k_monitored_requests = 200;

/// A synchronous client of some legacy service: it blocks the thread.
u64 legacy_lookup(u64 id) {
  std::this_thread::sleep_for(120ms);
  return id * 7;
}

/// A request's profile: mostly from a cache, every 50th from the legacy
/// client, on the loop or `offloaded` to the blocking pool.
corio::task<u64> load_profile(corio::profiler& prof, u64 id, bool offloaded) {
  auto s = prof.measure("legacy_lookup");
  if (id % 50 != 7) co_return id * 7;  // served from a cache
  if (offloaded) co_return co_await corio::offload(corio::blocking_pool(), legacy_lookup, id);
  co_return legacy_lookup(id);
}

/// One request: a 2 ms database call, then the profile.
corio::task<u64> handle_request(corio::profiler& prof, u64 id, bool offloaded) {
  auto whole = prof.measure("request");
  {
    auto s = prof.measure("db_query");
    co_await corio::sleep(2ms);
  }
  const u64 profile = co_await load_profile(prof, id, offloaded);
  co_return profile + id;
}

/// What one variant produced: its measurement, debug mode's reports, the
/// profiler's table and the two latencies the table row shows.
struct monitored_run {
  measurement m;
  std::vector<std::string> reports;
  std::string table;
  double lag_p99_ms = 0;
  double request_p90_ms = 0;
};

/// How long the dashboard stays up after the requests (the environment's
/// CORIO_DEMO_DASHBOARD_SECONDS; 0 by default, so the tour does not wait).
std::chrono::seconds dashboard_linger() {
  const char* v = std::getenv("CORIO_DEMO_DASHBOARD_SECONDS");
  return std::chrono::seconds(v != nullptr ? std::strtol(v, nullptr, 10) : 0);
}

/// Serves the requests with debug mode and the profiler on, and the live
/// dashboard of both on a free port while they run.
monitored_run monitored(bool offloaded) {
  monitored_run r;
  corio::profiler prof;
  corio::report_log reports;
  corio::loop_options o;
  o.debug = true;  // what CORIO_DEBUG=1 turns on
  o.report = reports.sink([&r](const std::string& s) { r.reports.push_back(s); });
  corio::event_loop loop(o);
  corio::metrics_registry metrics;
  metrics.add_loop(loop, "main");
  metrics.add_profiler(prof, "app");
  metrics.add_pool(corio::blocking_pool(), "blocking");
  metrics.add_reports(reports);
  const auto t0 = steady::now();
  r.m.result = corio::run(
      loop,
      [](corio::profiler& prof, bool offloaded,
         corio::metrics_registry& metrics) -> corio::task<u64> {
        auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
        auto dashboard = corio::spawn(corio::serve_metrics(listener, metrics), "dashboard");
        std::printf("    live dashboard while it runs: http://%s/\n",
                    listener.local_address().to_string().c_str());
        std::fflush(stdout);
        std::vector<u64> ids(k_monitored_requests);
        std::iota(ids.begin(), ids.end(), u64{0});
        const auto out = co_await corio::map_bounded(
            ids,
            [&prof, offloaded](u64 id) -> corio::task<u64> {
              co_return co_await corio::spawn(handle_request(prof, id, offloaded), "request");
            },
            20);
        co_await corio::sleep(dashboard_linger());
        dashboard.cancel();
        try {
          co_await dashboard;
        } catch (const corio::cancelled_error&) {
        }
        co_return std::accumulate(out.begin(), out.end(), u64{0});
      }(prof, offloaded, metrics));
  r.m.seconds = since(t0);
  r.table = prof.report();
  r.lag_p99_ms =
      std::chrono::duration<double, std::milli>(corio::timer_lag(loop).quantile(0.99)).count();
  for (const auto& e : prof.snapshot())
    if (e.name == "request")
      r.request_p90_ms =
          std::chrono::duration<double, std::milli>(e.histogram.quantile(0.9)).count();
  return r;
}

/// Prints multi-line text indented under the chapter's progress lines.
void print_indented(const std::string& text) {
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end == std::string::npos ? end : end - start);
    std::printf("      %s\n", line.c_str());
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

/// Runs the blocking version, then the offloaded one, printing what debug
/// mode and the profiler show for each.
void run_chapter(report& report) {
  report.heading(
      "monitoring: %llu requests, 20 at a time; every 50th calls a blocking "
      "legacy client (120 ms)",
      static_cast<unsigned long long>(k_monitored_requests));
  progress("before: debug mode on (CORIO_DEBUG=1), the blocking call made on the loop");
  const monitored_run a = monitored(false);
  std::printf("    debug mode made %zu slow-resumption report(s); the first:\n", a.reports.size());
  if (!a.reports.empty()) print_indented(a.reports.front());
  std::printf("    the profiler's table:\n");
  print_indented(a.table);
  progress("after: co_await corio::offload(corio::blocking_pool(), legacy_lookup, id)");
  const monitored_run b = monitored(true);
  report.check_same(a.m.result, b.m.result);
  std::printf("    debug mode made %zu report(s); the profiler's table:\n", b.reports.size());
  print_indented(b.table);
  report.add("slow-resumption reports", fmt("%.0f", double(a.reports.size())),
             fmt("%.0f", double(b.reports.size())), b.reports.empty() ? "gone" : "-");
  report.add("timer lag p99 (ms)", fmt("%.2f", a.lag_p99_ms), fmt("%.2f", b.lag_p99_ms),
             fmt("%.0fx less", a.lag_p99_ms / std::max(b.lag_p99_ms, 1e-3)));
  report.add("request p90 (ms)", fmt("%.1f", a.request_p90_ms), fmt("%.1f", b.request_p90_ms),
             fmt("%.0fx less", a.request_p90_ms / std::max(b.request_p90_ms, 1e-3)));
  report.add("wall time (ms)", fmt("%.0f", a.m.seconds * 1e3), fmt("%.0f", b.m.seconds * 1e3),
             fmt("%.2fx", a.m.seconds / b.m.seconds));
}

const registrar k_registered{{"monitoring", 800, run_chapter}};

}  // namespace
}  // namespace corio_demo
