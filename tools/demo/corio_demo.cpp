// corio-demo: the guide tour. Each chapter runs the guide's "before" and
// "after" for real and prints what it measured, so the advice comes with
// numbers from this machine.
//
// Chapters that compare memory run each variant in a forked child process:
// peak RSS only ever grows, so measuring two variants in one process would
// credit the second with the first one's peak.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "corio/corio.hpp"
#include "echo_service.hpp"

namespace {

using u64 = std::uint64_t;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// What one variant measured: its wall time, its peak RSS (when run in a
/// child), a result that both variants must agree on, and a free note.
struct measurement {
  double seconds = 0;
  double peak_rss_kb = 0;
  u64 result = 0;
  char note[96] = {};
};

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

/// Runs `fn` in a forked child and brings its measurement back through a
/// pipe, with the child's own peak RSS filled in.
measurement in_child(const std::function<measurement()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("corio-demo: pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("corio-demo: fork failed");
  if (pid == 0) {
    close(fds[0]);
    measurement m = fn();
    m.peak_rss_kb = static_cast<double>(peak_rss_kb());
    const ssize_t w = write(fds[1], &m, sizeof m);
    _exit(w == static_cast<ssize_t>(sizeof m) ? 0 : 1);
  }
  close(fds[1]);
  measurement m;
  const ssize_t r = read(fds[0], &m, sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (r != static_cast<ssize_t>(sizeof m) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("corio-demo: a measuring child failed");
  return m;
}

void progress(const char* what) {
  std::printf("    .. %s\n", what);
  std::fflush(stdout);
}

struct row {
  std::string chapter, measure, before, after, gain;
};
std::vector<row> g_rows;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// The peak-RSS row that the memory chapters (run in children) share.
void add_rss_row(const char* chapter, const measurement& a, const measurement& b) {
  g_rows.push_back({chapter, "peak RSS (MiB)", fmt("%.1f", a.peak_rss_kb / 1024.0),
                    fmt("%.1f", b.peak_rss_kb / 1024.0),
                    fmt("%.1fx less memory", a.peak_rss_kb / b.peak_rss_kb)});
}

void check_same(const char* chapter, u64 a, u64 b) {
  if (a != b) {
    std::fprintf(stderr, "corio-demo: %s: before and after disagree (%llu vs %llu)\n", chapter,
                 static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
    std::exit(1);
  }
}

// ---- 1. task granularity ---------------------------------------------------
// The guide: a task per tiny item costs more than the item; hand each task a
// batch. Here 1,000 items per round, 300 rounds: 1,000 tiny tasks per round
// against 10 tasks of 100 items (corio::map_batched).

constexpr int k_rounds = 300;
constexpr std::size_t k_items = 1000;

corio::task<u64> tiny(u64 item) {
  co_return item* item % 7;
}

corio::task<u64> granularity_before(const std::vector<u64>& items) {
  u64 total = 0;
  for (int r = 0; r < k_rounds; ++r) {
    std::vector<corio::task<u64>> tasks;
    tasks.reserve(items.size());
    for (u64 x : items)
      tasks.push_back(tiny(x));
    for (u64 v : co_await corio::gather(std::move(tasks)))
      total += v;
  }
  co_return total;
}

corio::task<u64> granularity_after(std::vector<u64>& items) {
  u64 total = 0;
  for (int r = 0; r < k_rounds; ++r) {
    auto sums =
        co_await corio::map_batched(items, 100, [](std::span<u64> batch) -> corio::task<u64> {
          u64 s = 0;
          for (u64 x : batch)
            s += x * x % 7;
          co_return s;
        });
    total += std::accumulate(sums.begin(), sums.end(), u64{0});
  }
  co_return total;
}

void chapter_granularity() {
  std::printf("\n[1/8] task granularity: %zu tiny tasks per round vs 10 batches of 100\n", k_items);
  std::vector<u64> items(k_items);
  std::iota(items.begin(), items.end(), u64{0});
  progress("before: one task per item");
  auto t0 = steady::now();
  const u64 a = corio::run(granularity_before(items));
  const double before = since(t0) / (k_rounds * k_items) * 1e9;
  progress("after: corio::map_batched(items, 100, fn)");
  t0 = steady::now();
  const u64 b = corio::run(granularity_after(items));
  const double after = since(t0) / (k_rounds * k_items) * 1e9;
  check_same("task granularity", a, b);
  g_rows.push_back({"1 task granularity", "ns per item", fmt("%.1f", before), fmt("%.1f", after),
                    fmt("%.1fx faster", before / after)});
}

// ---- 2. bounded concurrency ------------------------------------------------
// The guide: gathering 20,000 requests at once holds 20,000 frames and
// buffers; corio::map_bounded keeps 200 in flight and creates each coroutine
// only when a slot frees up. Each "request" holds a 16 KiB buffer across a
// 1 ms sleep.

constexpr u64 k_requests = 20'000;
constexpr std::size_t k_limit = 200;
constexpr std::size_t k_buffer = std::size_t{16} * 1024;

corio::task<u64> request(u64 id) {
  auto buf = std::make_unique<unsigned char[]>(k_buffer);
  std::memset(buf.get(), static_cast<int>(id & 0xff), k_buffer);  // touch it, as a real reply would
  co_await corio::sleep(1ms);
  co_return buf[k_buffer - 1] + id;
}

measurement bounded_before() {
  auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    std::vector<corio::task<u64>> all;
    for (u64 i = 0; i < k_requests; ++i)
      all.push_back(request(i));
    u64 s = 0;
    for (u64 v : co_await corio::gather(std::move(all)))
      s += v;
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

measurement bounded_after() {
  auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    std::vector<u64> ids(k_requests);
    std::iota(ids.begin(), ids.end(), u64{0});
    u64 s = 0;
    for (u64 v : co_await corio::map_bounded(ids, request, k_limit))
      s += v;
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

void chapter_bounded() {
  std::printf("\n[2/8] bounded concurrency: %llu requests, each holding 16 KiB for 1 ms\n",
              static_cast<unsigned long long>(k_requests));
  progress("before: gather over all of them at once");
  const measurement a = in_child(bounded_before);
  progress("after: corio::map_bounded(ids, request, 200)");
  const measurement b = in_child(bounded_after);
  check_same("bounded concurrency", a.result, b.result);
  add_rss_row("2 bounded concurrency", a, b);
  g_rows.push_back({"", "wall time (ms)", fmt("%.0f", a.seconds * 1e3),
                    fmt("%.0f", b.seconds * 1e3), fmt("%.1fx faster", a.seconds / b.seconds)});
}

// ---- 3. streaming ----------------------------------------------------------
// The guide: build a list of everything, then process it, and memory grows
// with the input; stream it through an async generator and it stays flat.

constexpr u64 k_records = 5'000'000;

struct record {
  u64 id;
  u64 value;
};

corio::async_generator<record> records(u64 n) {
  for (u64 i = 0; i < n; ++i) {
    co_yield record{i, i % 1000};
    if (i % 65536 == 0) co_await corio::yield_now();  // a producer that also awaits
  }
}

measurement streaming_before() {
  auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    std::vector<record> all;
    auto gen = records(k_records);
    while (auto r = co_await gen.next())
      all.push_back(*r);
    u64 s = 0;
    for (const record& r : all)
      s += r.value;
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

measurement streaming_after() {
  auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    u64 s = 0;
    co_await corio::for_each(records(k_records), [&](const record& r) { s += r.value; });
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

void chapter_streaming() {
  std::printf("\n[3/8] streaming: %llu records of 16 bytes\n",
              static_cast<unsigned long long>(k_records));
  progress("before: collect them all into a vector, then sum");
  const measurement a = in_child(streaming_before);
  progress("after: sum them with for_each as the async_generator yields them");
  const measurement b = in_child(streaming_after);
  check_same("streaming", a.result, b.result);
  add_rss_row("3 streaming", a, b);
  g_rows.push_back({"", "ns per record", fmt("%.1f", a.seconds / k_records * 1e9),
                    fmt("%.1f", b.seconds / k_records * 1e9),
                    fmt("%.1fx faster", a.seconds / b.seconds)});
}

// ---- 4. lifecycle ----------------------------------------------------------
// The guide: tasks started with create_task outlive the failure that makes
// their work pointless. A task_group cancels the siblings on the first
// failure, runs its cleanups, and leaves nothing behind.

corio::task<> worker(int& cancelled) {
  bool was_cancelled = false;
  try {
    co_await corio::sleep(1h);  // a long job that the failure makes pointless
  } catch (const corio::cancelled_error&) {
    was_cancelled = true;
  }
  if (was_cancelled) {
    ++cancelled;
    throw corio::cancelled_error();
  }
}

corio::task<> failing() {
  co_await corio::sleep(5ms);
  throw std::runtime_error("upstream returned garbage");
}

void chapter_lifecycle() {
  std::printf("\n[4/8] lifecycle: 8 workers, one sibling fails after 5 ms\n");
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
  g_rows.push_back({"4 lifecycle", "tasks left running", std::to_string(leaked_tasks), "0",
                    "siblings cancelled"});
  g_rows.push_back({"", "timers left pending", std::to_string(leaked_timers),
                    std::to_string(timers_after), fmt("group done in %.0f ms", ms)});
  g_rows.push_back({"", "cleanups run", "-", std::to_string(cleanups), "defer() ran"});
}

// ---- 5. the event loop itself ---------------------------------------------
// The same echo workload (50 connections, 64-byte messages, 2,000 round
// trips each) against a server on epoll, then on io_uring. The client runs
// on its own thread and loop (always epoll), so the server thread's CPU
// time and the system calls its loop made are the server's alone.

constexpr int k_echo_conns = 50;
constexpr int k_echo_rounds = 2000;
constexpr std::size_t k_echo_size = 64;

double thread_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// One client connection: k_echo_rounds round trips; the messages that came
// back intact.
corio::task<u64> echo_client(corio::socket_address to, int id) {
  auto s = co_await corio::tcp_stream::connect(to);
  s.set_nodelay(true);
  char out[k_echo_size];
  char in[k_echo_size];
  u64 good = 0;
  for (int i = 0; i < k_echo_rounds; ++i) {
    std::memset(out, 'a' + (id + i) % 26, sizeof out);
    co_await s.write_all(out, sizeof out);
    co_await s.read_exact(in, sizeof in);
    good += std::memcmp(in, out, sizeof in) == 0 ? 1 : 0;
  }
  co_return good;
}

// The server side of one variant, on this thread; the client on another.
measurement echo_on(corio::io_backend_kind backend) {
  corio::loop_options options;
  options.backend = backend;
  corio::event_loop loop(options);
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  const auto addr = listener.local_address();
  u64 good = 0;
  std::thread client([&good, addr] {
    corio::loop_options o;
    o.backend = corio::io_backend_kind::epoll;
    corio::event_loop client_loop(o);
    good = corio::run(client_loop, [](corio::socket_address to) -> corio::task<u64> {
      std::vector<corio::task<u64>> conns;
      conns.reserve(k_echo_conns);
      for (int i = 0; i < k_echo_conns; ++i)
        conns.push_back(echo_client(to, i));
      const auto per = co_await corio::gather(std::move(conns));
      co_return std::accumulate(per.begin(), per.end(), u64{0});
    }(addr));
  });
  const double cpu0 = thread_cpu_seconds();
  const u64 calls0 = loop.stats().syscalls;
  const auto t0 = steady::now();
  corio::run(loop, [](corio::tcp_listener& l) -> corio::task<> {
    int closed = 0;
    corio::event all_closed;
    auto server = corio::spawn(corio::serve(l, [&](corio::tcp_stream s) -> corio::task<> {
      co_await corio_examples::echo_connection(std::move(s));
      if (++closed == k_echo_conns) all_closed.set();
    }));
    co_await all_closed.wait();
    server.cancel();
    try {
      co_await server;
    } catch (const corio::cancelled_error&) {
    }
  }(listener));
  measurement m;
  m.seconds = since(t0);
  const double cpu = thread_cpu_seconds() - cpu0;
  const u64 calls = loop.stats().syscalls - calls0;
  client.join();
  m.result = good;
  const double msgs = static_cast<double>(k_echo_conns) * k_echo_rounds;
  std::snprintf(m.note, sizeof m.note, "%s %.3f %.4f", loop.backend_name(), cpu * 1e6 / msgs,
                static_cast<double>(calls) / msgs);
  return m;
}

void chapter_event_loop() {
  std::printf("\n[5/8] the event loop: echo, %d connections x %d round trips of %zu bytes\n",
              k_echo_conns, k_echo_rounds, k_echo_size);
  progress("before: the server on epoll (readiness: try, park, epoll_wait, retry)");
  const measurement a = in_child([] { return echo_on(corio::io_backend_kind::epoll); });
  progress("after: the server on io_uring (completions: one io_uring_enter per loop turn)");
  const measurement b = in_child([] { return echo_on(corio::io_backend_kind::uring); });
  const u64 want = static_cast<u64>(k_echo_conns) * k_echo_rounds;
  check_same("event loop", a.result, want);
  check_same("event loop", b.result, want);
  char name_a[16] = {};
  char name_b[16] = {};
  double cpu_a = 0;
  double cpu_b = 0;
  double calls_a = 0;
  double calls_b = 0;
  if (std::sscanf(a.note, "%15s %lf %lf", name_a, &cpu_a, &calls_a) != 3 ||
      std::sscanf(b.note, "%15s %lf %lf", name_b, &cpu_b, &calls_b) != 3)
    throw std::runtime_error("corio-demo: event loop: bad measurement");
  std::printf("    %s: %.2f us CPU and %.3f system calls per message\n", name_a, cpu_a, calls_a);
  std::printf("    %s: %.2f us CPU and %.3f system calls per message\n", name_b, cpu_b, calls_b);
  const bool have_uring = std::strcmp(name_b, "io_uring") == 0;
  if (!have_uring) std::printf("    (io_uring is not available here: both ran on epoll)\n");
  const double msgs = static_cast<double>(want);
  g_rows.push_back({"5 event loop", "server CPU per message (us)", fmt("%.2f", cpu_a),
                    fmt("%.2f", cpu_b), have_uring ? fmt("%.2fx", cpu_a / cpu_b) : "-"});
  g_rows.push_back({"", "server syscalls per message", fmt("%.3f", calls_a), fmt("%.3f", calls_b),
                    have_uring ? fmt("%.0fx fewer", calls_a / std::max(calls_b, 1e-9)) : "-"});
  g_rows.push_back({"", "messages per second", fmt("%.0f", msgs / a.seconds),
                    fmt("%.0f", msgs / b.seconds), fmt("%.2fx", a.seconds / b.seconds)});
}

// ---- 6. executors: CPU work off the loop -----------------------------------
// The guide: CPU-bound work on the event loop blocks everything else on it;
// hand it to a pool. Here 120 jobs of ~1.5 ms of hashing while a 1 ms
// ticker measures how late the loop wakes it: first as 120 tasks that hash
// on the loop, then with corio::offload on a pool of 2 threads, 4 jobs in
// flight.

constexpr int k_cpu_jobs = 120;

u64 cpu_job(u64 i) {
  u64 h = 14695981039346656037ULL;
  for (u64 r = 0; r < 1'000'000; ++r)
    h = (h ^ ((i + r) & 0xff)) * 1099511628211ULL;
  return h;
}

/// Ticks every 1 ms until `done`, recording how late each tick fired.
corio::task<> ticker(const bool& done, std::vector<double>& late_ms) {
  while (!done) {
    const auto due = corio::now() + 1ms;
    co_await corio::sleep_until(due);
    late_ms.push_back(std::chrono::duration<double, std::milli>(corio::now() - due).count());
  }
}

measurement cpu_work(bool offloaded) {
  corio::thread_pool pool(2);
  std::vector<double> late;
  const auto t0 = steady::now();
  const u64 sum = corio::run(
      [](bool offloaded, corio::thread_pool& pool, std::vector<double>& late) -> corio::task<u64> {
        bool done = false;
        auto tick = corio::spawn(ticker(done, late));
        co_await corio::sleep(5ms);  // the ticker is running
        u64 x = 0;
        if (offloaded) {
          std::vector<u64> ids(k_cpu_jobs);
          std::iota(ids.begin(), ids.end(), u64{0});
          const auto hs = co_await corio::map_bounded(
              ids,
              [&pool](u64 i) -> corio::task<u64> {
                co_return co_await corio::offload(pool, cpu_job, i);
              },
              4);
          for (u64 h : hs)
            x ^= h;
        } else {
          // One task per job, each hashing inline: the loop runs them back to
          // back and nothing else (the ticker) gets a turn until they are done.
          std::vector<corio::task<u64>> jobs;
          jobs.reserve(k_cpu_jobs);
          for (int i = 0; i < k_cpu_jobs; ++i)
            jobs.push_back(
                [](u64 i) -> corio::task<u64> { co_return cpu_job(i); }(static_cast<u64>(i)));
          for (u64 h : co_await corio::gather(std::move(jobs)))
            x ^= h;
        }
        done = true;
        co_await tick;
        co_return x;
      }(offloaded, pool, late));
  measurement m;
  m.seconds = since(t0);
  m.result = sum;
  std::sort(late.begin(), late.end());
  const double p99 = late.empty() ? 0 : late[late.size() * 99 / 100];
  std::snprintf(m.note, sizeof m.note, "%.3f %.3f %zu", p99, late.empty() ? 0 : late.back(),
                late.size());
  return m;
}

void chapter_executors() {
  std::printf("\n[6/8] executors: %d CPU jobs of ~1.5 ms with a 1 ms ticker on the loop\n",
              k_cpu_jobs);
  progress("before: gather of 120 tasks that hash on the loop");
  const measurement a = cpu_work(false);
  progress("after: corio::offload(pool, job, i) on a pool of 2, 4 in flight");
  const measurement b = cpu_work(true);
  check_same("executors", a.result, b.result);
  double p99_a = 0;
  double max_a = 0;
  double p99_b = 0;
  double max_b = 0;
  std::size_t ticks_a = 0;
  std::size_t ticks_b = 0;
  if (std::sscanf(a.note, "%lf %lf %zu", &p99_a, &max_a, &ticks_a) != 3 ||
      std::sscanf(b.note, "%lf %lf %zu", &p99_b, &max_b, &ticks_b) != 3)
    throw std::runtime_error("corio-demo: executors: bad measurement");
  std::printf("    on the loop: ticker p99 %.2f ms late, worst %.2f ms, %zu ticks\n", p99_a, max_a,
              ticks_a);
  std::printf("    offloaded:   ticker p99 %.2f ms late, worst %.2f ms, %zu ticks\n", p99_b, max_b,
              ticks_b);
  g_rows.push_back({"6 executors", "1 ms ticker lateness p99 (ms)", fmt("%.2f", p99_a),
                    fmt("%.2f", p99_b), fmt("%.0fx less", p99_a / std::max(p99_b, 1e-3))});
  g_rows.push_back({"", "jobs per second", fmt("%.0f", k_cpu_jobs / a.seconds),
                    fmt("%.0f", k_cpu_jobs / b.seconds), fmt("%.2fx", a.seconds / b.seconds)});
}

// ---- 7. a streaming pipeline -----------------------------------------------
// The guide's streaming and batching strategies together: 20,000 records of
// 4 KiB are enriched by an async call (1 ms each, 64 at a time) and stored
// in batches of 500 (one 2 ms round trip per batch). Before: load them all,
// enrich them all with map_bounded, then store the batches. After: one
// pipeline, records | map(enrich) | buffered(64) | chunks(500), whose memory
// stays at what is in flight.

constexpr u64 k_pipeline_records = 20'000;
constexpr std::size_t k_payload = 4096;

struct raw_record {
  u64 id;
  std::vector<char> payload;
};

struct enriched_record {
  u64 id;
  u64 checksum;
  std::vector<char> payload;
};

corio::async_generator<raw_record> load_records(u64 n) {
  for (u64 i = 0; i < n; ++i) {
    // A named record: GCC 12 destroys a class temporary inside co_yield twice.
    raw_record r{i, std::vector<char>(k_payload, static_cast<char>(i & 0x7f))};
    co_yield std::move(r);
  }
}

corio::task<enriched_record> enrich(raw_record r) {
  co_await corio::sleep(1ms);  // stands in for a lookup over the network
  u64 sum = r.id;
  for (std::size_t k = 0; k < r.payload.size(); k += 512)
    sum += static_cast<unsigned char>(r.payload[k]);
  co_return enriched_record{r.id, sum, std::move(r.payload)};
}

corio::task<u64> store(const enriched_record* first, std::size_t n) {
  co_await corio::sleep(2ms);  // one round trip per batch
  u64 s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += first[i].checksum;
  co_return s;
}

measurement pipeline_before() {
  const auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    std::vector<raw_record> all;
    auto src = load_records(k_pipeline_records);
    while (auto r = co_await src.next())
      all.push_back(std::move(*r));
    const std::vector<enriched_record> done = co_await corio::map_bounded(
        all, [](const raw_record& r) { return enrich(r); }, 64);
    u64 s = 0;
    for (std::size_t i = 0; i < done.size(); i += 500)
      s += co_await store(done.data() + i, std::min<std::size_t>(500, done.size() - i));
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

measurement pipeline_after() {
  const auto t0 = steady::now();
  measurement m;
  m.result = corio::run([]() -> corio::task<u64> {
    auto batches = load_records(k_pipeline_records) | corio::map(enrich) | corio::buffered(64) |
                   corio::chunks(500);
    u64 s = 0;
    while (auto b = co_await batches.next())
      s += co_await store(b->data(), b->size());
    co_return s;
  }());
  m.seconds = since(t0);
  return m;
}

void chapter_pipeline() {
  std::printf(
      "\n[7/8] a streaming pipeline: %llu records of 4 KiB, enriched (1 ms, 64 at once) "
      "and stored in batches of 500\n",
      static_cast<unsigned long long>(k_pipeline_records));
  progress("before: load all, map_bounded(enrich, 64), then store the batches");
  const measurement a = in_child(pipeline_before);
  progress("after: records | map(enrich) | buffered(64) | chunks(500)");
  const measurement b = in_child(pipeline_after);
  check_same("pipeline", a.result, b.result);
  add_rss_row("7 pipeline", a, b);
  g_rows.push_back({"", "wall time (ms)", fmt("%.0f", a.seconds * 1e3),
                    fmt("%.0f", b.seconds * 1e3), fmt("%.2fx", a.seconds / b.seconds)});
}

// ---- 8. monitoring -----------------------------------------------------------
// The guide's debug mode, slow_callback_duration and AsyncProfiler: 200
// requests (20 at a time), each a 2 ms database call and a render; every
// 50th also calls a legacy client that blocks its thread for 120 ms. Debug
// mode names the task that blocked and its await chain; the profiler's
// table shows where the time went; the fix offloads the blocking call to
// the blocking pool, and the report is gone.

constexpr u64 k_monitored_requests = 200;

// A synchronous client of some legacy service: it blocks the thread.
u64 legacy_lookup(u64 id) {
  std::this_thread::sleep_for(120ms);
  return id * 7;
}

corio::task<u64> load_profile(corio::profiler& prof, u64 id, bool offloaded) {
  auto s = prof.measure("legacy_lookup");
  if (id % 50 != 7) co_return id * 7;  // served from a cache
  if (offloaded) co_return co_await corio::offload(corio::blocking_pool(), legacy_lookup, id);
  co_return legacy_lookup(id);
}

corio::task<u64> handle_request(corio::profiler& prof, u64 id, bool offloaded) {
  auto whole = prof.measure("request");
  {
    auto s = prof.measure("db_query");
    co_await corio::sleep(2ms);
  }
  const u64 profile = co_await load_profile(prof, id, offloaded);
  co_return profile + id;
}

struct monitored_run {
  measurement m;
  std::vector<std::string> reports;
  std::string table;
  double lag_p99_ms = 0;
  double request_p90_ms = 0;
};

monitored_run monitored(bool offloaded) {
  monitored_run r;
  corio::profiler prof;
  corio::loop_options o;
  o.debug = true;  // what CORIO_DEBUG=1 turns on
  o.report = [&r](const std::string& s) { r.reports.push_back(s); };
  corio::event_loop loop(o);
  const auto t0 = steady::now();
  r.m.result = corio::run(loop, [](corio::profiler& prof, bool offloaded) -> corio::task<u64> {
    std::vector<u64> ids(k_monitored_requests);
    std::iota(ids.begin(), ids.end(), u64{0});
    const auto out = co_await corio::map_bounded(
        ids,
        [&prof, offloaded](u64 id) -> corio::task<u64> {
          co_return co_await corio::spawn(handle_request(prof, id, offloaded), "request");
        },
        20);
    co_return std::accumulate(out.begin(), out.end(), u64{0});
  }(prof, offloaded));
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

void chapter_monitoring() {
  std::printf(
      "\n[8/8] monitoring: %llu requests, 20 at a time; every 50th calls a blocking "
      "legacy client (120 ms)\n",
      static_cast<unsigned long long>(k_monitored_requests));
  progress("before: debug mode on (CORIO_DEBUG=1), the blocking call made on the loop");
  const monitored_run a = monitored(false);
  std::printf("    debug mode made %zu slow-resumption report(s); the first:\n", a.reports.size());
  if (!a.reports.empty()) print_indented(a.reports.front());
  std::printf("    the profiler's table:\n");
  print_indented(a.table);
  progress("after: co_await corio::offload(corio::blocking_pool(), legacy_lookup, id)");
  const monitored_run b = monitored(true);
  check_same("monitoring", a.m.result, b.m.result);
  std::printf("    debug mode made %zu report(s); the profiler's table:\n", b.reports.size());
  print_indented(b.table);
  g_rows.push_back({"8 monitoring", "slow-resumption reports",
                    fmt("%.0f", double(a.reports.size())), fmt("%.0f", double(b.reports.size())),
                    b.reports.empty() ? "gone" : "-"});
  g_rows.push_back({"", "timer lag p99 (ms)", fmt("%.2f", a.lag_p99_ms), fmt("%.2f", b.lag_p99_ms),
                    fmt("%.0fx less", a.lag_p99_ms / std::max(b.lag_p99_ms, 1e-3))});
  g_rows.push_back({"", "request p90 (ms)", fmt("%.1f", a.request_p90_ms),
                    fmt("%.1f", b.request_p90_ms),
                    fmt("%.0fx less", a.request_p90_ms / std::max(b.request_p90_ms, 1e-3))});
  g_rows.push_back({"", "wall time (ms)", fmt("%.0f", a.m.seconds * 1e3),
                    fmt("%.0f", b.m.seconds * 1e3), fmt("%.2fx", a.m.seconds / b.m.seconds)});
}

void print_table() {
  const char* head[] = {"chapter", "measure", "before", "after", "gain"};
  std::size_t w[5] = {};
  for (int i = 0; i < 5; ++i)
    w[i] = std::strlen(head[i]);
  for (const row& r : g_rows) {
    const std::string* c[] = {&r.chapter, &r.measure, &r.before, &r.after, &r.gain};
    for (int i = 0; i < 5; ++i)
      w[i] = std::max(w[i], c[i]->size());
  }
  auto line = [&](const std::string* c[5]) {
    std::printf("|");
    for (int i = 0; i < 5; ++i) {
      if (i == 2 || i == 3) {
        std::printf(" %*s |", static_cast<int>(w[i]), c[i]->c_str());
      } else {
        std::printf(" %-*s |", static_cast<int>(w[i]), c[i]->c_str());
      }
    }
    std::printf("\n");
  };
  std::printf("\n");
  std::string hs[5];
  const std::string* hp[5];
  for (int i = 0; i < 5; ++i) {
    hs[i] = head[i];
    hp[i] = &hs[i];
  }
  line(hp);
  std::string dashes[5];
  const std::string* dp[5];
  for (int i = 0; i < 5; ++i) {
    dashes[i] = std::string(w[i], '-');
    dp[i] = &dashes[i];
  }
  line(dp);
  for (const row& r : g_rows) {
    const std::string* c[] = {&r.chapter, &r.measure, &r.before, &r.after, &r.gain};
    line(c);
  }
}

}  // namespace

// `corio-demo` runs every chapter; `corio-demo 3 8` runs chapters 3 and 8.
int main(int argc, char** argv) {
  std::printf("corio guide tour: each chapter runs the guide's before and after\n");
  void (*const chapters[])() = {chapter_granularity, chapter_bounded,    chapter_streaming,
                                chapter_lifecycle,   chapter_event_loop, chapter_executors,
                                chapter_pipeline,    chapter_monitoring};
  constexpr int count = static_cast<int>(std::size(chapters));
  const auto t0 = steady::now();
  try {
    if (argc == 1) {
      for (auto* c : chapters)
        c();
    }
    for (int i = 1; i < argc; ++i) {
      const int n = std::atoi(argv[i]);
      if (n < 1 || n > count) {
        std::fprintf(stderr, "corio-demo: chapters are 1 to %d\n", count);
        return 2;
      }
      chapters[n - 1]();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio-demo: %s\n", e.what());
    return 1;
  }
  print_table();
  std::printf("\ntour finished in %.1f s\n", since(t0));
  return 0;
}
