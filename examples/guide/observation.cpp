// The examples of the guide's "Observation and debugging" page
// (docs/guide/observation.md): every snippet between `//! [name]` markers
// runs here, and main checks what it produced. The page quotes the reports
// and the task dump this program prints.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "guide_observation: FAILED: %s\n", what);
    std::exit(1);
  }
}

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

// ---- loop statistics -------------------------------------------------------

corio::task<> ticker(int n) {
  for (int i = 0; i < n; ++i)
    co_await corio::sleep(1ms);
}

corio::task<> stats_example() {
  co_await ticker(20);
  //! [loop_stats]
  corio::event_loop& loop = *corio::event_loop::current();
  const corio::loop_stats s = loop.stats();
  // Always kept: s.iterations, s.resumptions, s.polls, s.timers_fired,
  // s.live_tasks, s.syscalls, ... With loop_options::stats (the default):
  // s.polling and s.running, and the lag of every sleep:
  const corio::latency_histogram& lag = corio::timer_lag(loop);
  std::printf("%llu resumptions, %llu timers, %zu live tasks; sleep lag p99 %s, max %s\n",
              static_cast<unsigned long long>(s.resumptions),
              static_cast<unsigned long long>(s.timers_fired), s.live_tasks,
              corio::format_duration(lag.quantile(0.99)).c_str(),
              corio::format_duration(lag.max()).c_str());
  //! [loop_stats]
  check(s.timers_fired >= 20 && lag.count() == 20, "20 sleeps ended, each measured");
}

// ---- debug mode --------------------------------------------------------------

//! [slow]
std::uint64_t legacy_lookup(std::uint64_t id) {  // a synchronous client: blocks the thread
  std::this_thread::sleep_for(30ms);
  return id * 7;
}

corio::task<std::uint64_t> load_profile(std::uint64_t id) {
  co_return legacy_lookup(id);  // the bug: a blocking call on the loop
}

corio::task<std::uint64_t> handle_request(std::uint64_t id) {
  co_await corio::sleep(1ms);  // the database
  const std::uint64_t p = co_await load_profile(id);
  co_return p + id;
}
//! [slow]

corio::task<> work() {
  co_await corio::sleep(1ms);
}

std::vector<std::string> debug_mode_reports() {
  std::vector<std::string> reports;
  //! [debug]
  corio::loop_options o;
  o.debug = true;                   // or CORIO_DEBUG=1 in the environment
  o.slow_callback_duration = 20ms;  // asyncio's loop.slow_callback_duration (100 ms)
  o.report = [&reports](const std::string& r) { reports.push_back(r); };  // default: stderr
  corio::event_loop loop(o);
  corio::run(loop, []() -> corio::task<> {
    auto request = corio::spawn(handle_request(1), "request");
    (void)co_await request;            // one slow resumption: 30 ms inside load_profile
    corio::task<> forgotten = work();  // made, never awaited: reported when destroyed
  }());
  //! [debug]
  return reports;
}

// ---- the watchdog -------------------------------------------------------------

std::vector<std::string> watchdog_reports() {
  std::mutex m;
  std::vector<std::string> reports;
  std::atomic<bool> seen{false};
  //! [watchdog]
  corio::loop_options o;
  o.watchdog = true;  // a thread that watches the loop from outside
  o.slow_callback_duration = 20ms;
  o.report = [&](const std::string& r) {  // also called from the watchdog's thread
    const std::lock_guard lock(m);
    reports.push_back(r);
    seen = true;
  };
  corio::event_loop loop(o);
  corio::run(loop, [](std::atomic<bool>& seen) -> corio::task<> {
    co_await corio::sleep(1ms);
    // Stuck: the watchdog reports while this still runs (here we wait for
    // its report, at most 10 s, so the example never depends on timing).
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!seen && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
  }(seen));
  //! [watchdog]
  return reports;
}

// ---- task dumps ----------------------------------------------------------------

//! [dump_tasks]
corio::task<> worker(corio::queue<int>& jobs) {
  for (;;) {
    const int job = co_await jobs.pop();  // idle workers wait here
    co_await corio::sleep(std::chrono::milliseconds(job));
  }
}

corio::task<> pool_of_workers(corio::queue<int>& jobs) {
  co_await corio::with_task_group([&jobs](corio::task_group& g) -> corio::task<> {
    for (int i = 0; i < 2; ++i)
      g.spawn(worker(jobs), "worker");
    co_return;
  });  // returns when the workers have: their await chains go through here
}

corio::task<std::string> dump_example() {
  corio::queue<int> jobs(16);
  auto workers = corio::spawn(pool_of_workers(jobs), "workers");
  auto ticking = corio::spawn(ticker(1000), "ticker");
  co_await jobs.push(50);  // one worker is busy with it, the other idles
  co_await corio::sleep(5ms);
  std::ostringstream dump;
  corio::dump_tasks(dump);  // every live task of this loop
  workers.cancel();
  ticking.cancel();
  try {
    co_await workers;
  } catch (const corio::cancelled_error&) {
  }
  try {
    co_await ticking;
  } catch (const corio::cancelled_error&) {
  }
  co_return dump.str();
}
//! [dump_tasks]

// ---- profiler --------------------------------------------------------------------

//! [profiler]
corio::profiler prof({.slow_threshold = 100ms});  // logs any slower operation at once

corio::task<int> query(int id) {
  auto s = prof.measure("db_query");  // from here to the end of the scope, awaits included
  co_await corio::sleep(2ms);
  if (id == 3) throw std::runtime_error("no such row");  // counted as an error
  co_return id;
}

corio::task<int> request(int id) {
  auto whole = prof.measure("request");
  int v = 0;
  try {
    v = co_await query(id);
  } catch (const std::runtime_error&) {
    v = -1;
  }
  co_return v;
}
//! [profiler]

// ---- metrics -----------------------------------------------------------------------

corio::task<std::string> http_get(corio::socket_address server, std::string path) {
  auto c = co_await corio::tcp_stream::connect(server);
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  co_await c.write_all(req.data(), req.size());
  std::string in;
  char buf[16384];
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) break;
    in.append(buf, n);
  }
  co_return in;
}

corio::task<> metrics_example() {
  std::vector<int> ids{1, 2, 3, 4};
  const std::vector<int> got = co_await corio::map_bounded(ids, request, 2);
  check(got[2] == -1 && got[3] == 4, "requests ran");
  //! [profiler_report]
  std::printf("%s", prof.report().c_str());  // name, count, errors, mean, p50, p90, p99, max
  //! [profiler_report]
  const auto snap = prof.snapshot();
  check(snap.size() == 2 && snap[0].name == "db_query" && snap[0].histogram.count() == 4 &&
            snap[0].errors == 1,
        "4 db_query samples, one an error");

  //! [metrics]
  corio::metrics_registry metrics;
  metrics.add_loop(*corio::event_loop::current(), "main");
  metrics.add_profiler(prof, "app");
  metrics.add_pool(corio::blocking_pool(), "blocking");
  auto listener =
      corio::tcp_listener::bind(corio::socket_address::loopback(0));  // 9464 in production
  auto endpoint = corio::spawn(corio::serve_metrics(listener, metrics), "metrics");
  //! [metrics]
  const auto at = listener.local_address();
  const std::string prom = co_await http_get(at, "/metrics");
  const std::string json = co_await http_get(at, "/metrics.json");
  const std::string tasks = co_await http_get(at, "/tasks");
  const std::string tasks_json = co_await http_get(at, "/tasks.json");
  const std::string page = co_await http_get(at, "/");
  const std::string other = co_await http_get(at, "/nope");
  check(contains(prom, "text/plain; version=0.0.4") &&
            contains(prom, "corio_loop_resumptions_total{loop=\"main\"}") &&
            contains(prom, "corio_profile_seconds_count{profiler=\"app\",name=\"db_query\"} 4"),
        "/metrics is Prometheus text");
  check(contains(json, "application/json") && contains(json, "\"loops\""), "/metrics.json");
  check(contains(tasks, "'metrics'"), "/tasks lists the endpoint's own task");
  check(contains(tasks_json, "application/json"), "/tasks.json");
  check(contains(page, "text/html") && contains(page, "<html"), "/ is the dashboard page");
  check(other.starts_with("HTTP/1.1 404"), "anything else is 404");
  std::printf(
      "serve_metrics: /metrics %zu bytes, /metrics.json %zu, /tasks %zu, /tasks.json %zu, / %zu\n",
      prom.size(), json.size(), tasks.size(), tasks_json.size(), page.size());
  // A line of the Prometheus text, for the page.
  const auto from = prom.find("corio_profile_seconds_count");
  std::printf("  %s\n", prom.substr(from, prom.find('\n', from) - from).c_str());
  endpoint.cancel();
  try {
    co_await endpoint;
  } catch (const corio::cancelled_error&) {
  }
}

corio::task<int> amain() {
  co_await stats_example();
  const std::string dump = co_await dump_example();
  std::printf("dump_tasks:\n%s", dump.c_str());
  check(contains(dump, "'worker'") && contains(dump, "queue pop") && contains(dump, "'ticker'"),
        "the dump shows the workers and the ticker");
  co_await metrics_example();
  co_return 0;
}

}  // namespace

int main() {
  const std::vector<std::string> reports = debug_mode_reports();
  bool slow = false, forgotten = false;
  for (const std::string& r : reports) {
    std::printf("debug mode report:\n%s\n", r.c_str());
    if (contains(r, "slow resumption: task 'request'") && contains(r, "load_profile")) slow = true;
    if (contains(r, "was destroyed without ever being awaited")) forgotten = true;
  }
  check(slow, "debug mode names the slow task and where it blocked");
  check(forgotten, "debug mode reports the task never awaited");

  const std::vector<std::string> watched = watchdog_reports();
  check(!watched.empty(), "the watchdog reported the stuck loop");
  std::printf("watchdog report:\n%s\n", watched.front().c_str());

  const int rc = corio::run(amain());
  std::printf("observation: all checks passed\n");
  return rc;
}
