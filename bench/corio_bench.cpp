// corio-bench: the in-process workloads of shared/bench/WORKLOADS.md.
//
//   corio-bench --workload NAME [--n N] [--port P]
//
// Prints exactly one JSON line per workload with the contract's fields plus
// `cpu_s` (user + sys CPU of the measured part) and `check_ok`. The choices
// where the contract is silent mirror shared/peers/py_peer.py: `seconds`
// covers computing `check`; timers take their deadline from the clock just
// before sleeping; spawn-batched runs ceil(n/100) tasks of 100 items.
// `--workload all` runs every workload with its default n, one line each.
#include <sys/resource.h>

#include <csignal>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corio/corio.hpp"
#include "echo_service.hpp"
#include "http_service.hpp"
#include "until_signal.hpp"

namespace {

using u64 = std::uint64_t;
using std::chrono::steady_clock;

/// What a workload reports besides time: the check value, whether it equals
/// the expected one, and extra JSON fields (already formatted, each starting
/// with a comma).
struct outcome_line {
  u64 check = 0;
  bool check_ok = false;
  std::string extra;
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

u64 triangle(u64 n) {
  return n == 0 ? 0 : n * (n - 1) / 2;
}

// ---- spawn: n tasks at once, task i returns i, then await them all -------

corio::task<u64> ret(u64 i) {
  co_return i;
}

corio::task<outcome_line> w_spawn(u64 n) {
  std::vector<corio::join_handle<u64>> handles;
  handles.reserve(n);
  for (u64 i = 0; i < n; ++i)
    handles.push_back(corio::spawn(ret(i)));
  u64 sum = 0;
  for (auto& h : handles)
    sum += co_await h;
  co_return outcome_line{sum, sum == triangle(n), ""};
}

// ---- spawn-batched: ceil(n/100) tasks, each sums its 100 items ----------

corio::task<u64> batch_sum(u64 lo, u64 hi) {
  u64 s = 0;
  for (u64 i = lo; i < hi; ++i)
    s += i;
  co_return s;
}

corio::task<outcome_line> w_spawn_batched(u64 n) {
  constexpr u64 batch = 100;
  std::vector<corio::join_handle<u64>> handles;
  handles.reserve((n + batch - 1) / batch);
  for (u64 lo = 0; lo < n; lo += batch) {
    handles.push_back(corio::spawn(batch_sum(lo, std::min(lo + batch, n))));
  }
  u64 sum = 0;
  for (auto& h : handles)
    sum += co_await h;
  co_return outcome_line{sum, sum == triangle(n),
                         ",\"tasks\":" + std::to_string(handles.size()) + ",\"batch\":100"};
}

// ---- pingpong: a counter passed through two queues of capacity 1 --------

corio::task<> ponger(corio::queue<u64>& in, corio::queue<u64>& out, u64 n) {
  for (u64 i = 0; i < n; ++i) {
    u64 c = co_await in.pop();
    co_await out.push(c + 1);
  }
}

corio::task<outcome_line> w_pingpong(u64 n) {
  corio::queue<u64> a(1);
  corio::queue<u64> b(1);
  auto pong = corio::spawn(ponger(a, b, n));
  u64 c = 0;
  for (u64 i = 0; i < n; ++i) {
    co_await a.push(c);
    c = co_await b.pop();
  }
  co_await pong;
  co_return outcome_line{c, c == n, ""};
}

// ---- timers: n sleepers with xorshift64 delays in [0, 1000) ms ----------

std::vector<u64> xorshift_delays_ms(u64 n) {
  std::vector<u64> out;
  out.reserve(n);
  u64 x = 42;
  for (u64 i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out.push_back(x % 1000);
  }
  return out;
}

// When the last sleeper went to sleep: until then the ready queue holds
// first steps, and timers that come due wait behind them (FIFO).
steady_clock::time_point g_last_sleep_start{};

corio::task<> sleeper(u64 delay_ms, double* late_s) {
  // The deadline is taken just before sleeping, as the peers do; both reads
  // are fresh clock reads, not the loop's cached tick time.
  const auto start = steady_clock::now();
  g_last_sleep_start = std::max(g_last_sleep_start, start);
  const auto deadline = start + std::chrono::milliseconds(delay_ms);
  co_await corio::sleep(std::chrono::milliseconds(delay_ms));
  *late_s = std::chrono::duration<double>(steady_clock::now() - deadline).count();
}

/// py_peer.py's percentile: index round(p/100 * (len-1)) of the sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto last = static_cast<double>(sorted.size() - 1);
  const auto k = static_cast<std::size_t>(std::clamp(std::nearbyint(p / 100.0 * last), 0.0, last));
  return sorted[k];
}

corio::task<outcome_line> w_timers(u64 n) {
  const std::vector<u64> delays = xorshift_delays_ms(n);
  std::vector<double> lates(n, -1.0);
  std::vector<corio::join_handle<>> handles;
  handles.reserve(n);
  const auto t0 = steady_clock::now();
  for (u64 i = 0; i < n; ++i)
    handles.push_back(corio::spawn(sleeper(delays[i], &lates[i])));
  for (auto& h : handles)
    co_await h;
  const auto woken = static_cast<u64>(
      std::count_if(lates.begin(), lates.end(), [](double v) { return v >= 0.0; }));
  std::sort(lates.begin(), lates.end());
  u64 delays_sum = 0;
  for (u64 d : delays)
    delays_sum += d;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                ",\"late_p50_ms\":%.4f,\"late_p99_ms\":%.4f,\"late_max_ms\":%.4f,"
                "\"late_min_ms\":%.4f,\"delays_sum_ms\":%llu,\"start_up_ms\":%.3f",
                percentile(lates, 50) * 1e3, percentile(lates, 99) * 1e3,
                lates.empty() ? 0.0 : lates.back() * 1e3, lates.empty() ? 0.0 : lates[0] * 1e3,
                static_cast<unsigned long long>(delays_sum),
                std::chrono::duration<double, std::milli>(g_last_sleep_start - t0).count());
  co_return outcome_line{woken, woken == n, buf};
}

// ---- stream / collect: an async generator of 0..n-1 ---------------------

corio::async_generator<u64> produce(u64 n) {
  for (u64 i = 0; i < n; ++i)
    co_yield i;
}

// How the stream workload consumes: corio::for_each (the generator hands
// each item to the body as it yields) or a `co_await next()` loop (the
// consumer and the generator resume each other once per item).
bool g_stream_pull = false;

corio::task<outcome_line> stream_by_next(u64 n) {
  u64 sum = 0;
  auto gen = produce(n);
  while (auto v = co_await gen.next())
    sum += *v;
  co_return outcome_line{sum, sum == triangle(n), ",\"stream_style\":\"next\""};
}

corio::task<outcome_line> stream_by_for_each(u64 n) {
  u64 sum = 0;
  co_await corio::for_each(produce(n), [&](u64 v) { sum += v; });
  co_return outcome_line{sum, sum == triangle(n), ",\"stream_style\":\"for-each\""};
}

// Two coroutines rather than one with a branch, so each measures only its
// own style (a shared frame would add the other's suspend points).
corio::task<outcome_line> w_stream(u64 n) {
  return g_stream_pull ? stream_by_next(n) : stream_by_for_each(n);
}

corio::task<outcome_line> w_collect(u64 n) {
  std::vector<u64> items;  // no reserve: the guide's "before" grows as it goes
  auto gen = produce(n);
  while (auto v = co_await gen.next())
    items.push_back(*v);
  u64 sum = 0;
  for (u64 x : items)
    sum += x;
  co_return outcome_line{sum, sum == triangle(n), ",\"collected\":" + std::to_string(items.size())};
}

// ---- offload: n FNV-style CPU jobs on a pool of 2, at most 64 in flight ----

u64 offload_job(u64 i) {
  u64 h = 14695981039346656037ULL;
  for (u64 r = 0; r < 200; ++r)
    h = (h ^ ((i + r) & 0xff)) * 1099511628211ULL;
  return h;
}

u64 offload_expected(u64 n) {
  u64 x = 0;
  for (u64 i = 0; i < n; ++i)
    x ^= offload_job(i);
  return x;
}

corio::thread_pool* g_offload_pool = nullptr;  // made before the clock starts
u64 g_offload_expected = 0;

corio::task<outcome_line> w_offload(u64 n) {
  constexpr std::size_t in_flight = 64;
  u64 next = 0;
  u64 result = 0;
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    for (std::size_t k = 0; k < in_flight; ++k) {
      g.spawn([](u64& next, u64 n, u64& result) -> corio::task<> {
        while (next < n) {
          const u64 i = next++;
          result ^= co_await corio::offload(*g_offload_pool, offload_job, i);
        }
      }(next, n, result));
    }
    co_return;
  });
  co_return outcome_line{result, result == g_offload_expected, ",\"workers\":2,\"in_flight\":64"};
}

// ---- bounded: gather over n coroutines, each semaphore(1000) + 1 ms sleep --

corio::task<int> bounded_one(corio::semaphore& sem) {
  auto permit = co_await sem.acquire_guard();
  co_await corio::sleep(std::chrono::milliseconds(1));
  co_return 1;
}

corio::task<outcome_line> w_bounded(u64 n) {
  constexpr std::size_t limit = 1000;
  corio::semaphore sem(limit);
  std::vector<corio::task<int>> tasks;
  tasks.reserve(n);
  for (u64 i = 0; i < n; ++i)
    tasks.push_back(bounded_one(sem));
  std::vector<int> results = co_await corio::gather(std::move(tasks));
  u64 done = 0;
  for (int r : results)
    done += static_cast<u64>(r);
  co_return outcome_line{done, done == n, ",\"limit\":1000"};
}

struct workload {
  const char* name;
  u64 default_n;
  corio::task<outcome_line> (*run)(u64);
};

constexpr workload k_workloads[] = {
    {"spawn", 1'000'000, w_spawn},       {"spawn-batched", 1'000'000, w_spawn_batched},
    {"pingpong", 1'000'000, w_pingpong}, {"timers", 100'000, w_timers},
    {"stream", 10'000'000, w_stream},    {"collect", 10'000'000, w_collect},
    {"bounded", 100'000, w_bounded},     {"offload", 100'000, w_offload},
};

// What observation the run had: "compiled-out", or stats and debug settings.
const char* observe_label(const corio::loop_options& o) {
  if (!corio::detail::observe_enabled) return "compiled-out";
  if (o.debug) return o.stats ? "stats+debug" : "debug";
  return o.stats ? "stats" : "off";
}

int run_one(const workload& w, u64 n, const corio::loop_options& options) {
  std::unique_ptr<corio::thread_pool> pool;
  if (std::strcmp(w.name, "offload") == 0) {  // set-up, outside the measured part
    pool = std::make_unique<corio::thread_pool>(2);
    g_offload_pool = pool.get();
    g_offload_expected = offload_expected(n);
  }
  corio::event_loop loop(options);
  const double cpu0 = cpu_seconds();
  const auto t0 = steady_clock::now();
  outcome_line r = corio::run(loop, w.run(n));
  const double seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  if (std::strcmp(w.name, "bounded") == 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ",\"overhead_ms\":%.3f",
                  seconds * 1e3 - static_cast<double>(n) / 1000.0);
    r.extra += buf;
  }
  const double per_op_ns = n == 0 ? 0.0 : seconds / static_cast<double>(n) * 1e9;
  const double ops_per_s = seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
  std::printf(
      "{\"impl\":\"corio\",\"workload\":\"%s\",\"n\":%llu,\"seconds\":%.6f,\"per_op_ns\":%.3f,"
      "\"ops_per_s\":%.1f,\"peak_rss_kb\":%ld,\"check\":%llu,\"check_ok\":%s,\"cpu_s\":%.6f,"
      "\"cpu_per_op_ns\":%.3f,\"backend\":\"%s\",\"observe\":\"%s\"%s}\n",
      w.name, static_cast<unsigned long long>(n), seconds, per_op_ns, ops_per_s, peak_rss_kb(),
      static_cast<unsigned long long>(r.check), r.check_ok ? "true" : "false", cpu,
      n == 0 ? 0.0 : cpu / static_cast<double>(n) * 1e9, loop.backend_name(),
      observe_label(loop.options()), r.extra.c_str());
  std::fflush(stdout);
  return r.check_ok ? 0 : 1;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "corio-bench: %s\nusage: corio-bench --workload NAME|all [--n N] [--port P] "
               "[--timer-slack-us US] [--stats on|off] [--debug on|off] "
               "[--stream-style for-each|next]\n"
               "workloads:",
               why);
  for (const workload& w : k_workloads)
    std::fprintf(stderr, " %s", w.name);
  std::fprintf(stderr, "\n");
  return 2;
}

// The network workloads: serve on 127.0.0.1:port until SIGTERM or SIGINT
// (run_peers.sh stops servers with SIGTERM), then print one JSON line.
int serve_network(std::string_view name, std::uint16_t port, const corio::loop_options& options) {
  if (port == 0) return usage("--port is required for the network workloads");
  corio::signal_set stop{SIGINT, SIGTERM};  // before any thread starts
  corio::event_loop loop(options);
  const bool http = name == "http";
  corio::run(loop, [](bool http, std::uint16_t port, corio::signal_set& stop) -> corio::task<> {
    auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(port));
    co_await corio_examples::until_signal(
        http ? corio::serve_http(listener, corio_examples::hello_world)
             : corio_examples::serve_echo(listener),
        stop);
  }(http, port, stop));
  std::printf(
      "{\"workload\":\"%s\",\"backend\":\"%s\",\"peak_rss_kb\":%ld,\"loop_syscalls\":%llu}\n",
      http ? "http" : "echo", loop.backend_name(), peak_rss_kb(),
      static_cast<unsigned long long>(loop.stats().syscalls));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view name;
  u64 n = 0;
  bool have_n = false;
  std::uint16_t port = 0;
  corio::loop_options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--workload") {
      name = v;
    } else if (a == "--n") {
      char* end = nullptr;
      n = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0') return usage("--n takes a non-negative integer");
      have_n = true;
    } else if (a == "--timer-slack-us") {
      options.timer_slack = std::chrono::microseconds(std::strtoll(v, nullptr, 10));
    } else if (a == "--stats" || a == "--debug") {
      const std::string_view on = v;
      if (on != "on" && on != "off") return usage((std::string(a) + " takes on or off").c_str());
      (a == "--stats" ? options.stats : options.debug) = on == "on";
    } else if (a == "--stream-style") {
      const std::string_view style = v;
      if (style != "for-each" && style != "next")
        return usage("--stream-style takes for-each or next");
      g_stream_pull = style == "next";
    } else if (a == "--port") {
      port = static_cast<std::uint16_t>(std::strtoul(v, nullptr, 10));
    } else {
      return usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (name.empty()) return usage("--workload is required");
  if (name == "echo" || name == "http") return serve_network(name, port, options);
  int rc = 0;
  bool found = false;
  for (const workload& w : k_workloads) {
    if (name == "all" || name == w.name) {
      found = true;
      rc |= run_one(w, have_n ? n : w.default_n, options);
    }
  }
  return found ? rc : usage("unknown workload");
}
