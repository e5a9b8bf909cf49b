// corio-bench: the workloads of shared/bench/WORKLOADS.md.
//
//   corio-bench --workload NAME [--n N] [--port P]
//
// Prints exactly one JSON line per workload with the contract's fields plus
// `cpu_s` (user + sys CPU of the measured part) and `check_ok`. Everything
// particular to a workload (its set-up, extra fields, whether it is a
// network server) is in its row of `k_workloads`. The choices
// where the contract is silent mirror shared/peers/py_peer.py: `seconds`
// covers computing `check`; timers take their deadline from the clock just
// before sleeping; spawn-batched runs ceil(n/100) tasks of 100 items.
// `--workload all` runs every in-process workload with its default n, one
// line each; a network workload runs only when named.
#include <csignal>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corio/corio.hpp"
#include "echo_service.hpp"
#include "http_service.hpp"
#include "process_stats.hpp"
#include "until_signal.hpp"

namespace {

using u64 = std::uint64_t;
using corio_tools::cpu_seconds;
using corio_tools::peak_rss_kb;
using std::chrono::steady_clock;

/// What a workload reports besides time: the check value, whether it equals
/// the expected one, and extra JSON fields (already formatted, each starting
/// with a comma).
struct outcome_line {
  u64 check = 0;
  bool check_ok = false;
  std::string extra;
  /// Set by a workload that times itself (its set-up is not measured):
  /// wall and CPU seconds of its measured part.
  double seconds = -1;
  double cpu_s = -1;
};

/// 0 + 1 + ... + (n - 1): the check value of the summing workloads.
u64 triangle(u64 n) {
  return n == 0 ? 0 : n * (n - 1) / 2;
}

// ---- spawn: n tasks at once, task i returns i, then await them all -------

/// Task i of spawn: returns i.
corio::task<u64> ret(u64 i) {
  co_return i;
}

/// spawn: n tasks at once, then await each.
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

/// One batch of spawn-batched: the sum of [lo, hi).
corio::task<u64> batch_sum(u64 lo, u64 hi) {
  u64 s = 0;
  for (u64 i = lo; i < hi; ++i)
    s += i;
  co_return s;
}

/// spawn-batched: one task per 100 items.
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

/// The far side of pingpong: sends back each counter it gets, plus one.
corio::task<> ponger(corio::queue<u64>& in, corio::queue<u64>& out, u64 n) {
  for (u64 i = 0; i < n; ++i) {
    u64 c = co_await in.pop();
    co_await out.push(c + 1);
  }
}

/// pingpong: n round trips through two queues of capacity 1.
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

/// The contract's delays: xorshift64 seeded 42, each x % 1000 ms.
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

/// One timer: sleeps `delay_ms` and records how late it woke.
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

/// timers: n sleepers at once, then their lateness percentiles.
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

/// The producer of stream and collect: yields 0..n-1.
corio::async_generator<u64> produce(u64 n) {
  for (u64 i = 0; i < n; ++i)
    co_yield i;
}

// How the stream workload consumes: corio::for_each (the generator hands
// each item to the body as it yields) or a `co_await next()` loop (the
// consumer and the generator resume each other once per item).
bool g_stream_pull = false;

/// stream, consumed with a `co_await next()` loop.
corio::task<outcome_line> stream_by_next(u64 n) {
  u64 sum = 0;
  auto gen = produce(n);
  while (auto v = co_await gen.next())
    sum += *v;
  co_return outcome_line{sum, sum == triangle(n), ",\"stream_style\":\"next\""};
}

/// stream, consumed with corio::for_each.
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

/// collect: every item into a vector first, then the sum.
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

/// The contract's CPU job: `rounds` rounds of FNV-style hashing of i.
u64 hash_rounds(u64 i, u64 rounds) {
  u64 h = 14695981039346656037ULL;
  for (u64 r = 0; r < rounds; ++r)
    h = (h ^ ((i + r) & 0xff)) * 1099511628211ULL;
  return h;
}

/// Job i of offload: 200 rounds.
u64 offload_job(u64 i) {
  return hash_rounds(i, 200);
}

/// The check value of n jobs, computed on this thread.
u64 offload_expected(u64 n) {
  u64 x = 0;
  for (u64 i = 0; i < n; ++i)
    x ^= offload_job(i);
  return x;
}

/// 64 feeders, each taking the next job and awaiting it on `pool`, until
/// all n are done.
corio::task<outcome_line> w_offload(corio::thread_pool& pool, u64 n, u64 expected) {
  constexpr std::size_t in_flight = 64;
  u64 next = 0;
  u64 result = 0;
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    for (std::size_t k = 0; k < in_flight; ++k) {
      g.spawn([](corio::thread_pool& pool, u64& next, u64 n, u64& result) -> corio::task<> {
        while (next < n) {
          const u64 i = next++;
          result ^= co_await corio::offload(pool, offload_job, i);
        }
      }(pool, next, n, result));
    }
    co_return;
  });
  co_return outcome_line{result, result == expected, ",\"workers\":2,\"in_flight\":64"};
}

// ---- bounded: gather over n coroutines, each semaphore(1000) + 1 ms sleep --

/// One coroutine of bounded: a permit held across a 1 ms sleep.
corio::task<int> bounded_one(corio::semaphore& sem) {
  auto permit = co_await sem.acquire_guard();
  co_await corio::sleep(std::chrono::milliseconds(1));
  co_return 1;
}

/// bounded: a gather over all n, the semaphore keeping 1,000 in flight.
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

/// The contract's "overhead_ms": the wall time beyond the ideal n/1000 ms,
/// which needs the measured seconds and so comes after the run.
std::string bounded_overhead(u64 n, double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"overhead_ms\":%.3f",
                seconds * 1e3 - static_cast<double>(n) / 1000.0);
  return buf;
}

// ---- pool: 1,000 tasks share 10 connections: acquire, yield, release -----

/// The pool workload's connection: creating one costs a 100 us sleep.
struct bench_conn {
  u64 uses = 0;
};

corio::task<bench_conn> bench_connect() {
  co_await corio::sleep(std::chrono::microseconds(100));
  co_return bench_conn{};
}

/// One of the 1,000 tasks: `rounds` times acquire, yield once, release.
corio::task<> pool_user(corio::pool<bench_conn>& pool, u64 rounds) {
  for (u64 i = 0; i < rounds; ++i) {
    auto lease = co_await pool.acquire();
    ++lease->uses;
    co_await corio::yield_now();
  }
}

/// pool: corio::pool<T> with its defaults but max_size 10.
corio::task<outcome_line> w_pool(u64 n) {
  constexpr u64 tasks = 1000;
  constexpr std::size_t size = 10;
  const u64 rounds = n / tasks;
  corio::pool_hooks<bench_conn> hooks;
  hooks.create = bench_connect;
  corio::pool_options options;
  options.name = "bench";
  options.max_size = size;
  corio::pool<bench_conn> pool(std::move(hooks), options);
  std::vector<corio::task<>> users;
  users.reserve(tasks);
  for (u64 i = 0; i < tasks; ++i)
    users.push_back(pool_user(pool, rounds));
  co_await corio::gather(std::move(users));
  const corio::pool_stats stats = pool.stats();
  co_await pool.close();
  char extra[128];
  std::snprintf(
      extra, sizeof extra, ",\"tasks\":%llu,\"pool_size\":%zu,\"rounds\":%llu,\"created\":%llu",
      static_cast<unsigned long long>(tasks), size, static_cast<unsigned long long>(rounds),
      static_cast<unsigned long long>(stats.creations));
  co_return outcome_line{stats.acquires, stats.acquires == rounds * tasks, extra};
}

// ---- redis-get, redis-pipeline: a client of a real Redis ------------------

/// --redis: HOST:PORT, or a Unix socket path.
std::string g_redis = "127.0.0.1:6379";

corio::redis::connection_options redis_options() {
  corio::redis::connection_options o;
  if (!g_redis.empty() && g_redis.front() == '/') {
    o.unix_socket = g_redis;
  } else if (g_redis.rfind("unix://", 0) == 0) {
    o.unix_socket = g_redis.substr(7);
  } else {
    const auto colon = g_redis.rfind(':');
    o.host = g_redis.substr(0, colon);
    o.port = static_cast<std::uint16_t>(std::strtoul(g_redis.c_str() + colon + 1, nullptr, 10));
  }
  return o;
}

constexpr u64 k_redis_keys = 1000;

/// The contract's data: a 64-byte value under each of k0..k999.
corio::task<> redis_set_up(corio::redis::connection& c) {
  const std::string value(64, 'v');
  std::vector<std::vector<std::string>> sets;
  sets.reserve(k_redis_keys);
  for (u64 i = 0; i < k_redis_keys; ++i)
    sets.push_back({"SET", "k" + std::to_string(i), value});
  co_await c.send_all(sets);
}

/// Key `k{(task * 7919 + j) % 1000}` into `buf`.
std::string_view redis_key(char (&buf)[24], u64 task, u64 j) {
  const int len = std::snprintf(buf, sizeof buf, "k%llu",
                                static_cast<unsigned long long>((task * 7919 + j) % k_redis_keys));
  return {buf, static_cast<std::size_t>(len)};
}

/// One of the 100 tasks of redis-get: n/100 GETs on the shared connection.
corio::task<u64> redis_user(corio::redis::connection& c, u64 task, u64 per) {
  u64 hits = 0;
  char buf[24];
  for (u64 j = 0; j < per; ++j) {
    const corio::redis::reply r = co_await c.command("GET", redis_key(buf, task, j));
    if (!r.is_nil()) ++hits;
  }
  co_return hits;
}

std::string redis_extra(const corio::redis::connection& c,
                        const corio::redis::connection_stats& s0) {
  const corio::redis::connection_stats s = c.stats();
  char buf[200];
  std::snprintf(buf, sizeof buf,
                ",\"client\":\"corio::redis::connection (one, multiplexed)\",\"connections\":1,"
                "\"protocol\":%d,\"writes\":%llu,\"reads\":%llu",
                c.protocol(), static_cast<unsigned long long>(s.writes - s0.writes),
                static_cast<unsigned long long>(s.reads - s0.reads));
  return buf;
}

/// redis-get: 100 tasks share one connection (automatic pipelining).
corio::task<outcome_line> w_redis_get(u64 n) {
  constexpr u64 tasks = 100;
  auto c = co_await corio::redis::connection::connect(redis_options());
  co_await redis_set_up(c);
  const u64 per = n / tasks;
  const auto s0 = c.stats();
  const double cpu0 = cpu_seconds();
  const auto t0 = steady_clock::now();
  std::vector<corio::task<u64>> users;
  users.reserve(tasks);
  for (u64 t = 0; t < tasks; ++t)
    users.push_back(redis_user(c, t, per));
  u64 hits = 0;
  for (const u64 h : co_await corio::gather(std::move(users)))
    hits += h;
  outcome_line o{hits, hits == per * tasks, redis_extra(c, s0)};
  o.seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  o.cpu_s = cpu_seconds() - cpu0;
  co_return o;
}

/// redis-pipeline: one connection, n GETs in explicit pipelines of 100.
corio::task<outcome_line> w_redis_pipeline(u64 n) {
  constexpr u64 depth = 100;
  auto c = co_await corio::redis::connection::connect(redis_options());
  co_await redis_set_up(c);
  const auto s0 = c.stats();
  const double cpu0 = cpu_seconds();
  const auto t0 = steady_clock::now();
  u64 hits = 0;
  std::vector<std::vector<std::string>> batch(depth, std::vector<std::string>(2));
  char buf[24];
  for (u64 done = 0; done < n; done += depth) {
    for (u64 i = 0; i < depth; ++i) {
      batch[i][0] = "GET";
      batch[i][1] = redis_key(buf, 0, done + i);
    }
    for (const corio::redis::reply& r : co_await c.send_all(batch))
      hits += r.is_nil() ? 0 : 1;
  }
  const u64 sent = (n + depth - 1) / depth * depth;
  outcome_line o{hits, hits == sent, redis_extra(c, s0) + ",\"depth\":100"};
  o.seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  o.cpu_s = cpu_seconds() - cpu0;
  co_return o;
}

// ---- pg-select, pg-pipeline: a client of a real PostgreSQL -------------------

/// --pg: a libpq connection string or URL (servers.sh's database `bench`).
std::string g_pg = "postgresql://postgres@127.0.0.1:5432/bench";

constexpr u64 k_pg_rows = 10000;
constexpr std::string_view k_pg_query = "SELECT id, name, balance FROM accounts WHERE id = $1";

std::int32_t pg_id(u64 task, u64 j) {
  return static_cast<std::int32_t>((task * 7919 + j) % k_pg_rows + 1);
}

/// The check: the sum of balance (3 * id) over the ids the tasks ask for.
u64 pg_expected(u64 tasks, u64 per) {
  u64 sum = 0;
  for (u64 t = 0; t < tasks; ++t) {
    for (u64 j = 0; j < per; ++j)
      sum += 3 * static_cast<u64>(pg_id(t, j));
  }
  return sum;
}

/// One row's balance, or a wrong-row marker (no balance can be this).
u64 pg_balance(const corio::pg::result& r, std::int32_t id) {
  if (r.size() != 1) return u64{1} << 62;
  const corio::pg::row row = r[0];
  if (row.get<std::int32_t>(0) != id || row.get<std::string_view>(1).empty()) return u64{1} << 62;
  return static_cast<u64>(row.get<std::int64_t>(2));
}

/// One of pg-select's 100 tasks: per queries, each on a leased connection.
corio::task<u64> pg_pooled_user(corio::pool<corio::pg::connection>& db, u64 task, u64 per) {
  u64 sum = 0;
  for (u64 j = 0; j < per; ++j) {
    const std::int32_t id = pg_id(task, j);
    auto conn = co_await db.acquire();
    sum += pg_balance(co_await conn->query(k_pg_query, id), id);
  }
  co_return sum;
}

/// One of 100 tasks sharing one connection: per queries, pipelined.
corio::task<u64> pg_shared_user(corio::pg::connection& c, u64 task, u64 per) {
  u64 sum = 0;
  for (u64 j = 0; j < per; ++j) {
    const std::int32_t id = pg_id(task, j);
    sum += pg_balance(co_await c.query(k_pg_query, id), id);
  }
  co_return sum;
}

std::string pg_extra(const char* client, u64 connections) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                ",\"client\":\"%s\",\"connections\":%llu,\"tasks\":100,"
                "\"statement\":\"prepared (corio statement cache)\"",
                client, static_cast<unsigned long long>(connections));
  return buf;
}

/// A connection's figures over the measured part.
std::string pg_stats(const corio::pg::connection_stats& s, const corio::pg::connection_stats& s0) {
  char buf[120];
  std::snprintf(buf, sizeof buf, ",\"prepares\":%llu,\"flushes\":%llu,\"reads\":%llu",
                static_cast<unsigned long long>(s.prepares - s0.prepares),
                static_cast<unsigned long long>(s.flushes - s0.flushes),
                static_cast<unsigned long long>(s.reads - s0.reads));
  return buf;
}

/// The measured part of every pg workload: 100 users, `user(t, per)`, run
/// at once; their balances summed and checked; the time and CPU they took.
template <class User>
corio::task<outcome_line> pg_measured(u64 n, User user, std::string extra) {
  constexpr u64 tasks = 100;
  const u64 per = n / tasks;
  const double cpu0 = cpu_seconds();
  const auto t0 = steady_clock::now();
  std::vector<corio::task<u64>> users;
  users.reserve(tasks);
  for (u64 t = 0; t < tasks; ++t)
    users.push_back(user(t, per));
  u64 sum = 0;
  for (const u64 s : co_await corio::gather(std::move(users)))
    sum += s;
  outcome_line o{sum, sum == pg_expected(tasks, per), std::move(extra)};
  o.seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  o.cpu_s = cpu_seconds() - cpu0;
  co_return o;
}

/// --pg-share: "pool" (a lease per query) or "round-robin".
bool g_pg_round_robin = false;
/// --pg-connections: pg-select's connections (the contract's 10; 1 is
/// the base that pg-pipeline's goal compares against: one connection, a
/// query at a time).
std::size_t g_pg_connections = 10;

corio::task<outcome_line> w_pg_select_shared(u64 n);

/// pg-select: 100 tasks share a corio::pool of 10 connections, a lease per
/// query; each connection prepares the statement before the clock.
corio::task<outcome_line> w_pg_select(u64 n) {
  if (g_pg_round_robin) co_return co_await w_pg_select_shared(n);
  const std::size_t size = g_pg_connections;
  corio::pool_options options;
  options.name = "pg";
  options.max_size = size;
  corio::pool<corio::pg::connection> db(corio::pg::pool_hooks(g_pg), options);
  {  // all ten made, each with the statement prepared
    std::vector<corio::pool_lease<corio::pg::connection>> all;
    all.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
      all.push_back(co_await db.acquire());
      (void)co_await all.back()->query(k_pg_query, 1);
    }
  }
  outcome_line o = co_await pg_measured(
      n, [&db](u64 t, u64 per) { return pg_pooled_user(db, t, per); },
      pg_extra("corio::pg::connection in corio::pool (a lease per query)", size));
  co_await db.close();
  co_return o;
}

/// pg-select with --pg-share round-robin: 100 tasks on 10 connections,
/// task t always on connection t % 10, its queries pipelined with those
/// of the other 9 tasks there (corio's multiplexed model, as Tokio's
/// --pg-share round-robin).
corio::task<outcome_line> w_pg_select_shared(u64 n) {
  const std::size_t size = g_pg_connections;
  std::vector<corio::pg::connection> conns;
  conns.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    conns.push_back(co_await corio::pg::connection::connect(g_pg));
    (void)co_await conns.back().query(k_pg_query, 1);
  }
  co_return co_await pg_measured(
      n, [&conns, size](u64 t, u64 per) { return pg_shared_user(conns[t % size], t, per); },
      pg_extra("corio::pg::connection x10, shared round-robin (pipelined)", size));
}

/// pg-pipeline: one connection, 100 tasks on it: 100 queries in flight.
corio::task<outcome_line> w_pg_pipeline(u64 n) {
  auto c = co_await corio::pg::connection::connect(g_pg);
  (void)co_await c.query(k_pg_query, 1);  // prepared before the clock
  const auto s0 = c.stats();
  outcome_line o = co_await pg_measured(
      n, [&c](u64 t, u64 per) { return pg_shared_user(c, t, per); },
      pg_extra("corio::pg::connection (one, pipelined)", 1));
  o.extra += pg_stats(c.stats(), s0) + ",\"depth\":100";
  co_return o;
}

// ---- multi-core: a corio::runtime of --threads loops ------------------------

/// --threads: the loops of a multi-core workload's runtime.
std::size_t g_threads = 2;
/// Whether --threads was given: a network server then runs on a runtime.
bool g_threads_given = false;
/// --accept one: with --threads, one loop accepts and hands connections to
/// the least loaded loop (serve_from_one_acceptor); else a SO_REUSEPORT
/// listener per loop (serve_every_loop).
bool g_accept_one = false;
/// --idle-spin-us: runtime_options::idle_spin of the --threads runtime.
std::chrono::nanoseconds g_idle_spin = corio::runtime_options{}.idle_spin;
/// --pin on: runtime_options::pin (loop i on the i-th CPU), for A/B runs of
/// corio against corio on a noisy machine; the contract's runs leave it off.
bool g_pin = false;

/// The runtime of --threads T, as the options above set it.
corio::runtime_options runtime_options_of(const corio::loop_options& loop) {
  return {.threads = g_threads, .pin = g_pin, .loop = loop, .idle_spin = g_idle_spin};
}

/// The loops' resumptions, in loop order, as a JSON field: how the work
/// spread.
corio::task<std::string> per_loop_resumptions() {
  std::string out = ",\"resumptions_per_loop\":[";
  const std::vector<corio::loop_stats> loops = co_await corio::every_loop_stats();
  for (std::size_t i = 0; i < loops.size(); ++i)
    out += (i == 0 ? "" : ",") + std::to_string(loops[i].resumptions);
  co_return out + "]";
}

/// Task i of mt-spawn: the offload job's hash of i with 50 rounds.
u64 mt_job(u64 i) {
  return hash_rounds(i, 50);
}

/// mt-spawn: n balanced spawns at once, each hashing; await them all.
/// `expected` is computed before the clock starts, as the peers do.
corio::task<outcome_line> w_mt_spawn(u64 n, u64 expected) {
  std::vector<corio::remote_handle<u64>> handles;
  handles.reserve(n);
  for (u64 i = 0; i < n; ++i)
    handles.push_back(corio::spawn_balanced([i] { return mt_job(i); }));
  u64 x = 0;
  for (auto& h : handles)
    x ^= co_await h;
  // (Each co_await its own statement: GCC 12 mishandles temporaries
  // around one inside an expression.)
  const std::string loops = co_await per_loop_resumptions();
  co_return outcome_line{x, x == expected, ",\"placement\":\"spawn_balanced\"" + loops};
}

/// One task of mt-yield: yields `times` times.
corio::task<u64> yielder(u64 times) {
  for (u64 i = 0; i < times; ++i)
    co_await corio::yield_now();
  co_return times;
}

/// mt-yield: 4·T balanced tasks each yield n/(4·T) times.
corio::task<outcome_line> w_mt_yield(u64 n) {
  const u64 tasks = 4 * corio::loop_count();
  const u64 each = n / tasks;
  std::vector<corio::remote_handle<u64>> handles;
  for (u64 t = 0; t < tasks; ++t)
    handles.push_back(corio::spawn_balanced([each] { return yielder(each); }));
  u64 total = 0;
  for (auto& h : handles)
    total += co_await h;
  const std::string loops = co_await per_loop_resumptions();
  co_return outcome_line{
      total, total == each * tasks,
      ",\"tasks\":" + std::to_string(tasks) + ",\"placement\":\"spawn_balanced\"" + loops};
}

/// One link of mt-chain: spawns the next (on this loop, as spawn does) and
/// ends; the last one sets `done`.
corio::task<> chain_link(u64 left, corio::event& done) {
  if (left == 0) {
    done.set();
  } else {
    corio::spawn(chain_link(left - 1, done));
  }
  co_return;
}

/// mt-chain: n tasks, each spawning the next.
corio::task<outcome_line> w_mt_chain(u64 n) {
  corio::event done;
  corio::spawn(chain_link(n - 1, done));
  co_await done.wait();
  co_return outcome_line{n, true, ",\"placement\":\"spawn (the spawning loop)\""};
}

/// The far side of mt-pingpong, on another loop: returns each counter
/// plus one.
corio::task<> channel_ponger(corio::channel<u64>& in, corio::channel<u64>& out, u64 n) {
  for (u64 i = 0; i < n; ++i)
    co_await out.send(co_await in.receive() + 1);
}

/// The near side: n round trips.
corio::task<u64> channel_pinger(corio::channel<u64>& to, corio::channel<u64>& from, u64 n) {
  u64 c = 0;
  for (u64 i = 0; i < n; ++i) {
    co_await to.send(c);
    c = co_await from.receive();
  }
  co_return c;
}

/// mt-pingpong: n round trips through two channels of capacity 1 between
/// loop 0 and the last loop.
corio::task<outcome_line> w_mt_pingpong(u64 n) {
  corio::channel<u64> a(1);
  corio::channel<u64> b(1);
  auto near = corio::spawn(channel_pinger(a, b, n));
  co_await corio::submit_to(corio::loop_count() - 1,
                            [&a, &b, n] { return channel_ponger(a, b, n); });
  const u64 c = co_await near;
  const std::string loops = co_await per_loop_resumptions();
  co_return outcome_line{
      c, c == n,
      ",\"placement\":\"loop 0 and loop " + std::to_string(corio::loop_count() - 1) + "\"" + loops};
}

/// One producer of mt-fanin: sends [lo, hi).
corio::task<u64> fanin_producer(corio::channel<u64>& ch, u64 lo, u64 hi) {
  for (u64 i = lo; i < hi; ++i)
    co_await ch.send(i);
  co_return hi - lo;
}

/// mt-fanin: T balanced producers into one channel of 1,024; this task sums.
corio::task<outcome_line> w_mt_fanin(u64 n) {
  corio::channel<u64> ch(1024);
  const u64 producers = corio::loop_count();
  std::vector<corio::remote_handle<u64>> handles;
  for (u64 p = 0; p < producers; ++p) {
    const u64 lo = n / producers * p;
    const u64 hi = p + 1 == producers ? n : n / producers * (p + 1);
    handles.push_back(corio::spawn_balanced([&ch, lo, hi] { return fanin_producer(ch, lo, hi); }));
  }
  u64 sum = 0;
  for (u64 i = 0; i < n; ++i)
    sum += co_await ch.receive();
  for (auto& h : handles)
    (void)co_await h;
  const std::string loops = co_await per_loop_resumptions();
  co_return outcome_line{sum, sum == triangle(n), ",\"placement\":\"spawn_balanced\"" + loops};
}

// ---- the workload table ----------------------------------------------------

/// In-process workloads measure their own run and print the contract's
/// line; network servers serve until a signal while a load client measures
/// them, and print a line of their own loop's figures; clients of a real
/// server (--redis) run like in-process ones, but only when named.
enum class workload_kind { in_process, multi_core, network_server, server_client };

/// The measured part of an in-process run: starts the workload's task.
/// It owns whatever the set-up made for it, which therefore lives until
/// the run's line is printed.
using measured_run = std::function<corio::task<outcome_line>()>;

/// The set-up of a workload that needs none: the measured part is `Run(n)`.
template <corio::task<outcome_line> (*Run)(u64)>
measured_run no_set_up(u64 n) {
  return [n] { return Run(n); };
}

/// The offload workload's set-up, outside the clock: the pool (its threads
/// started) and the expected check value.
measured_run set_up_offload(u64 n) {
  auto pool = std::make_shared<corio::thread_pool>(2);  // shared: std::function copies
  const u64 expected = offload_expected(n);
  return [pool, n, expected] { return w_offload(*pool, n, expected); };
}

/// mt-spawn's set-up: the expected check, outside the clock.
measured_run set_up_mt_spawn(u64 n) {
  u64 expected = 0;
  for (u64 i = 0; i < n; ++i)
    expected ^= mt_job(i);
  return [n, expected] { return w_mt_spawn(n, expected); };
}

/// The http server of the contract, as a network workload's `serve`.
template <class Listener = corio::tcp_listener>
corio::task<> serve_hello_world(Listener& listener) {
  return corio::serve_http(listener, corio_examples::hello_world);
}

/// One workload and everything run_one and main need to know about it, so
/// that neither has to look at its name.
struct workload {
  const char* name = "";
  workload_kind kind = workload_kind::in_process;
  /// The n of a run without --n (in-process only).
  u64 default_n = 0;
  /// In-process: runs before the clock starts and returns the measured part.
  measured_run (*set_up)(u64 n) = nullptr;
  /// Optional: JSON fields (each starting with a comma) that need the
  /// measured seconds, appended after the run's own.
  std::string (*extra_fields)(u64 n, double seconds) = nullptr;
  /// Network: the server, cancelled when the signal comes.
  corio::task<> (*serve)(corio::tcp_listener& listener) = nullptr;
  /// Network, --accept one: a loop's server of the connections handed to it.
  corio::task<> (*serve_handed)(corio::handed_connections& connections) = nullptr;
};

// `--workload all` runs the in-process rows in this order.
constexpr workload k_workloads[] = {
    {.name = "spawn", .default_n = 1'000'000, .set_up = no_set_up<w_spawn>},
    {.name = "spawn-batched", .default_n = 1'000'000, .set_up = no_set_up<w_spawn_batched>},
    {.name = "pingpong", .default_n = 1'000'000, .set_up = no_set_up<w_pingpong>},
    {.name = "timers", .default_n = 100'000, .set_up = no_set_up<w_timers>},
    {.name = "stream", .default_n = 10'000'000, .set_up = no_set_up<w_stream>},
    {.name = "collect", .default_n = 10'000'000, .set_up = no_set_up<w_collect>},
    {.name = "bounded",
     .default_n = 100'000,
     .set_up = no_set_up<w_bounded>,
     .extra_fields = bounded_overhead},
    {.name = "offload", .default_n = 100'000, .set_up = set_up_offload},
    {.name = "pool", .default_n = 1'000'000, .set_up = no_set_up<w_pool>},
    {.name = "redis-get",
     .kind = workload_kind::server_client,
     .default_n = 1'000'000,
     .set_up = no_set_up<w_redis_get>},
    {.name = "redis-pipeline",
     .kind = workload_kind::server_client,
     .default_n = 1'000'000,
     .set_up = no_set_up<w_redis_pipeline>},
    {.name = "pg-select",
     .kind = workload_kind::server_client,
     .default_n = 200'000,
     .set_up = no_set_up<w_pg_select>},
    {.name = "pg-pipeline",
     .kind = workload_kind::server_client,
     .default_n = 200'000,
     .set_up = no_set_up<w_pg_pipeline>},
    {.name = "mt-spawn",
     .kind = workload_kind::multi_core,
     .default_n = 1'000'000,
     .set_up = set_up_mt_spawn},
    {.name = "mt-yield",
     .kind = workload_kind::multi_core,
     .default_n = 10'000'000,
     .set_up = no_set_up<w_mt_yield>},
    {.name = "mt-chain",
     .kind = workload_kind::multi_core,
     .default_n = 1'000'000,
     .set_up = no_set_up<w_mt_chain>},
    {.name = "mt-pingpong",
     .kind = workload_kind::multi_core,
     .default_n = 1'000'000,
     .set_up = no_set_up<w_mt_pingpong>},
    {.name = "mt-fanin",
     .kind = workload_kind::multi_core,
     .default_n = 10'000'000,
     .set_up = no_set_up<w_mt_fanin>},
    {.name = "echo",
     .kind = workload_kind::network_server,
     .serve = corio_examples::serve_echo<>,
     .serve_handed = corio_examples::serve_echo<corio::handed_connections>},
    {.name = "http",
     .kind = workload_kind::network_server,
     .serve = serve_hello_world<>,
     .serve_handed = serve_hello_world<corio::handed_connections>},
};

/// What observation the run had: "compiled-out", or stats and debug settings.
const char* observe_label(const corio::loop_options& o) {
  if (!corio::detail::observe_enabled) return "compiled-out";
  if (o.debug) return o.stats ? "stats+debug" : "debug";
  return o.stats ? "stats" : "off";
}

/// Runs an in-process workload once and prints its JSON line; 0 when its
/// check came out right.
int run_one(const workload& w, u64 n, const corio::loop_options& options) {
  const measured_run measured = w.set_up(n);  // outlives the loop, as a pool must
  std::string threads_field;
  const char* backend = "";
  const char* observe = "";
  const double cpu0 = cpu_seconds();
  const auto t0 = steady_clock::now();
  outcome_line r;
  if (w.kind == workload_kind::multi_core) {
    corio::runtime rt(runtime_options_of(options));
    r = rt.run([](const measured_run& m, const char*& backend,
                  const char*& observe) -> corio::task<outcome_line> {
      backend = corio::event_loop::current()->backend_name();
      observe = observe_label(corio::event_loop::current()->options());
      co_return co_await m();
    }(measured, backend, observe));
    threads_field = ",\"threads\":" + std::to_string(g_threads);
  } else {
    corio::event_loop loop(options);
    r = corio::run(loop, measured());
    backend = loop.backend_name();
    observe = observe_label(loop.options());
  }
  const double seconds =
      r.seconds >= 0 ? r.seconds : std::chrono::duration<double>(steady_clock::now() - t0).count();
  const double cpu = r.cpu_s >= 0 ? r.cpu_s : cpu_seconds() - cpu0;
  if (w.extra_fields != nullptr) r.extra += w.extra_fields(n, seconds);
  const double per_op_ns = n == 0 ? 0.0 : seconds / static_cast<double>(n) * 1e9;
  const double ops_per_s = seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
  std::printf(
      "{\"impl\":\"corio\",\"workload\":\"%s\",\"n\":%llu,\"seconds\":%.6f,\"per_op_ns\":%.3f,"
      "\"ops_per_s\":%.1f,\"peak_rss_kb\":%ld,\"check\":%llu,\"check_ok\":%s,\"cpu_s\":%.6f,"
      "\"cpu_per_op_ns\":%.3f,\"backend\":\"%s\",\"observe\":\"%s\"%s%s}\n",
      w.name, static_cast<unsigned long long>(n), seconds, per_op_ns, ops_per_s, peak_rss_kb(),
      static_cast<unsigned long long>(r.check), r.check_ok ? "true" : "false", cpu,
      n == 0 ? 0.0 : cpu / static_cast<double>(n) * 1e9, backend, observe, threads_field.c_str(),
      r.extra.c_str());
  std::fflush(stdout);
  return r.check_ok ? 0 : 1;
}

/// Prints why the command line was refused and how to use it; exit status 2.
int usage(const char* why) {
  std::fprintf(stderr,
               "corio-bench: %s\nusage: corio-bench --workload NAME|all [--n N] [--port P] "
               "[--timer-slack-us US] [--stats on|off] [--debug on|off] "
               "[--stream-style for-each|next] [--redis HOST:PORT|SOCKET] [--pg URL] [--pg-share "
               "pool|round-robin] [--pg-connections N] [--threads T] [--accept one|reuseport] "
               "[--idle-spin-us US] [--pin on|off]\n"
               "workloads:",
               why);
  // The in-process ones only, as the message always listed: the network
  // workloads are the contract's second table.
  for (const workload& w : k_workloads) {
    if (w.kind == workload_kind::in_process) std::fprintf(stderr, " %s", w.name);
  }
  std::fprintf(stderr, "\n");
  return 2;
}

/// The network server of --threads T: a loop per thread, each accepting on
/// its own SO_REUSEPORT listener, until SIGTERM or SIGINT; then one JSON
/// line with the loops' figures (connections and system calls per loop).
int serve_network_on_every_loop(const workload& w, std::uint16_t port,
                                const corio::loop_options& options, corio::signal_set& stop) {
  corio::runtime rt(runtime_options_of(options));
  const std::string figures = rt.run([](const workload& w, std::uint16_t port,
                                        corio::signal_set& stop) -> corio::task<std::string> {
    auto listener =
        corio::tcp_listener::bind(corio::socket_address::loopback(port), {.reuse_port = true});
    if (g_accept_one) {
      co_await corio_examples::until_signal(
          corio::serve_from_one_acceptor(
              listener, [&w](corio::handed_connections& c) { return w.serve_handed(c); }),
          stop);
    } else {
      co_await corio_examples::until_signal(
          corio::serve_every_loop(listener, [&w](corio::tcp_listener& l) { return w.serve(l); }),
          stop);
    }
    std::string syscalls;
    std::string resumptions;
    const std::vector<corio::loop_stats> loops = co_await corio::every_loop_stats();
    for (std::size_t i = 0; i < loops.size(); ++i) {
      syscalls += (i == 0 ? "" : ",") + std::to_string(loops[i].syscalls);
      resumptions += (i == 0 ? "" : ",") + std::to_string(loops[i].resumptions);
    }
    co_return std::string(",\"backend\":\"") + corio::event_loop::current()->backend_name() +
        "\",\"syscalls_per_loop\":[" + syscalls + "],\"resumptions_per_loop\":[" + resumptions +
        "]";
  }(w, port, stop));
  std::printf(
      "{\"workload\":\"%s\",\"threads\":%zu,\"accept\":\"%s\","
      "\"peak_rss_kb\":%ld%s}\n",
      w.name, g_threads, g_accept_one ? "one acceptor" : "SO_REUSEPORT per loop", peak_rss_kb(),
      figures.c_str());
  return 0;
}

/// Serves a network workload on 127.0.0.1:port until SIGTERM or SIGINT
/// (run_peers.sh stops servers with SIGTERM), then prints one JSON line.
int serve_network(const workload& w, std::uint16_t port, const corio::loop_options& options) {
  if (port == 0) return usage("--port is required for the network workloads");
  corio::signal_set stop{SIGINT, SIGTERM};  // before any thread starts
  if (g_threads_given) return serve_network_on_every_loop(w, port, options, stop);
  corio::event_loop loop(options);
  corio::run(loop,
             [](const workload& w, std::uint16_t port, corio::signal_set& stop) -> corio::task<> {
               auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(port));
               co_await corio_examples::until_signal(w.serve(listener), stop);
             }(w, port, stop));
  std::printf(
      "{\"workload\":\"%s\",\"backend\":\"%s\",\"peak_rss_kb\":%ld,\"loop_syscalls\":%llu}\n",
      w.name, loop.backend_name(), peak_rss_kb(),
      static_cast<unsigned long long>(loop.stats().syscalls));
  return 0;
}

}  // namespace

/// Parses the options, then runs the chosen workloads (see usage()).
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
    } else if (a == "--redis") {
      g_redis = v;
    } else if (a == "--pg") {
      g_pg = v;
    } else if (a == "--pg-share") {
      g_pg_round_robin = std::string_view(v) == "round-robin";
    } else if (a == "--threads") {
      g_threads = std::strtoul(v, nullptr, 10);
      g_threads_given = true;
      if (g_threads == 0 || g_threads > 1024) return usage("--threads takes 1 to 1024");
    } else if (a == "--idle-spin-us") {
      g_idle_spin = std::chrono::microseconds(std::strtoul(v, nullptr, 10));
    } else if (a == "--pin") {
      if (std::string_view(v) != "on" && std::string_view(v) != "off")
        return usage("--pin takes on or off");
      g_pin = std::string_view(v) == "on";
    } else if (a == "--accept") {
      if (std::string_view(v) != "one" && std::string_view(v) != "reuseport")
        return usage("--accept takes one or reuseport");
      g_accept_one = std::string_view(v) == "one";
    } else if (a == "--pg-connections") {
      g_pg_connections = std::strtoul(v, nullptr, 10);
      if (g_pg_connections == 0 || g_pg_connections > 100)
        return usage("--pg-connections takes 1 to 100");
    } else {
      return usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (name.empty()) return usage("--workload is required");
  int rc = 0;
  bool found = false;
  for (const workload& w : k_workloads) {
    // A server runs until it is stopped, so only a name chooses one.
    const bool in_all = name == "all" && w.kind == workload_kind::in_process;
    if (!in_all && name != w.name) continue;
    if (w.kind == workload_kind::network_server) return serve_network(w, port, options);
    found = true;
    rc |= run_one(w, have_n ? n : w.default_n, options);
  }
  return found ? rc : usage("unknown workload");
}
