// The browser test's workload (tests/browser/dashboard_test.py): a runtime of
// two loops doing small named bits of work, observed by a metrics registry
// that serve_metrics exposes on 127.0.0.1, so that the live dashboard at `/`
// has something to show: both loops, tasks on each, profiled operations, a
// thread pool, a connection pool and slow-resumption reports naming
// "slow-step" (a task that busy-waits on purpose), and a task named with
// markup ("<em>escaped</em>") that the page must show as text.
//
// Usage: dashboard-workload [SECONDS]. Prints `PORT <n>` once it serves,
// then runs until stdin reaches EOF or a SIGTERM/SIGINT arrives, or SECONDS
// (60 by default) have passed; then it shuts down cleanly and exits 0.
#include <unistd.h>
#include <corio/corio.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_stopping{false};
std::atomic<int> g_workers{0};  // remote workers still running

// Counts a remote worker from its start to its end.
struct worker_count {
  worker_count() { g_workers.fetch_add(1); }
  ~worker_count() { g_workers.fetch_sub(1); }
  worker_count(const worker_count&) = delete;
  worker_count& operator=(const worker_count&) = delete;
};

struct fake_conn {  // stands in for a database connection
  int id;
  corio::task<int> query(int x) const {
    co_await corio::sleep(3ms);
    co_return x + id;
  }
};

int g_opened = 0;
corio::task<fake_conn> open_conn() {
  co_await corio::sleep(20ms);
  co_return fake_conn{++g_opened};
}

// CPU work small enough for a pool thread.
std::uint64_t checksum(std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  for (int i = 0; i < 20000; ++i)
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return x;
}

corio::task<int> request(corio::pool<fake_conn>& db, corio::profiler& prof, int i) {
  auto s = prof.measure("db.query");
  auto conn = co_await db.acquire();
  const int r = co_await conn->query(i);
  co_return r;
}

corio::task<> ingest(corio::pool<fake_conn>& db, corio::profiler& prof,
                     corio::thread_pool& workers) {
  for (int i = 0; !g_stopping.load(); ++i) {
    std::vector<corio::join_handle<int>> batch;
    for (int k = 0; k < 3; ++k)
      batch.push_back(corio::spawn(request(db, prof, i * 3 + k), "request"));
    for (auto& h : batch) {
      const int r = co_await h;
      (void)r;
    }
    {
      auto s = prof.measure("render");
      const std::uint64_t x =
          co_await corio::offload(workers, checksum, static_cast<std::uint64_t>(i));
      (void)x;
      co_await corio::yield_now();
    }
    co_await corio::sleep(15ms);
  }
}

corio::task<> flush_worker(corio::profiler* prof, corio::thread_pool* workers) {
  const worker_count counted;
  for (std::uint64_t i = 0; !g_stopping.load(); ++i) {
    {
      auto s = prof->measure("flush");
      co_await corio::sleep(4ms);
      const std::uint64_t x = co_await corio::offload(*workers, checksum, i);
      (void)x;
    }
    co_await corio::yield_now();
    co_await corio::sleep(25ms);
  }
}

// Sleeps in small steps until the stop: a task whose name is markup, which
// the page must show as text (the test checks that it made no element).
corio::task<> idle() {
  while (!g_stopping.load())
    co_await corio::sleep(50ms);
}

// Runs ~30 ms without yielding every second: debug mode reports each one
// as a slow resumption (slow_callback_duration is 10 ms).
corio::task<> slow_step() {
  const worker_count counted;
  while (!g_stopping.load()) {
    for (int i = 0; i < 10 && !g_stopping.load(); ++i)
      co_await corio::sleep(100ms);
    const auto until = std::chrono::steady_clock::now() + 30ms;
    while (std::chrono::steady_clock::now() < until) {
    }
  }
}

corio::task<int> amain(corio::signal_set& stop, corio::report_log& reports,
                       std::chrono::seconds lifetime) {
  corio::profiler prof;
  corio::thread_pool workers(2);
  corio::pool_hooks<fake_conn> hooks;
  hooks.create = open_conn;
  corio::pool<fake_conn> db(std::move(hooks), {.name = "db", .max_size = 2});

  corio::metrics_registry metrics;
  metrics.add_every_loop();
  metrics.add_profiler(prof, "app");
  metrics.add_pool(workers, "workers");
  metrics.add_pool(db, "db");
  metrics.add_reports(reports);

  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  auto server = corio::spawn(corio::serve_metrics(listener, metrics), "metrics");
  auto ingesting = corio::spawn(ingest(db, prof, workers), "ingest");
  auto idling = corio::spawn(idle(), "<em>escaped</em>");
  corio::spawn_on(
      1, [&prof, &workers] { return flush_worker(&prof, &workers); }, "flush-worker");
  corio::spawn_on(
      1, [] { return slow_step(); }, "slow-step");

  std::printf("PORT %u\n", static_cast<unsigned>(listener.local_address().port()));
  std::fflush(stdout);

  const std::optional<int> sig = co_await corio::move_on_after(lifetime, stop.wait());
  std::fprintf(stderr, "dashboard-workload: %s, shutting down\n",
               sig ? "signal or end of stdin" : "lifetime over");

  g_stopping.store(true);
  co_await ingesting;  // ends its round (its requests awaited) and stops
  co_await idling;
  server.cancel();
  try {
    co_await server;
  } catch (const corio::cancelled_error&) {
  }
  // The workers on loop 1 see the flag within a sleep or two.
  for (int i = 0; i < 400 && g_workers.load() > 0; ++i)
    co_await corio::sleep(5ms);
  co_await db.close();
  co_return g_workers.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The most seconds to run (60 by default): it ends by itself even if
  // nobody stops it.
  const std::chrono::seconds lifetime(argc > 1 ? std::atoi(argv[1]) : 60);
  // Before any thread starts, so that every thread blocks them and the
  // signalfd receives them.
  corio::signal_set stop{SIGINT, SIGTERM};
  // EOF on stdin (the test closed its end, or died) stops us like SIGTERM.
  std::thread([] {
    char buf[256];
    while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    ::kill(::getpid(), SIGTERM);
  }).detach();

  corio::report_log reports;
  corio::runtime_options options;
  options.threads = 2;
  options.loop.debug = true;
  options.loop.slow_callback_duration = 10ms;
  options.loop.report = reports.sink();
  corio::runtime rt(options);
  const int rc = rt.run(amain(stop, reports, lifetime));
  std::fprintf(stderr, "dashboard-workload: exit %d\n", rc);
  return rc;
}
