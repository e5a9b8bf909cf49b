// The examples of the guide's strategy pages (docs/guide/strategy_*.md): one
// section per row of the "asyncio optimisation guide -> corio" table, every
// snippet between `//! [name]` markers run here and its result checked.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

using guide::check;

// ---- 1. event-loop blocking by sync work ------------------------------------

//! [blocking]
std::uint64_t legacy_lookup(std::uint64_t id) {  // a synchronous client: blocks its thread
  std::this_thread::sleep_for(30ms);
  return id * 7;
}

std::uint64_t checksum(std::span<const std::uint64_t> data) {  // pure CPU
  std::uint64_t h = 1469598103934665603ULL;
  for (std::uint64_t v : data)
    h = (h ^ v) * 1099511628211ULL;
  return h;
}

corio::task<std::uint64_t> handle(std::uint64_t id, std::span<const std::uint64_t> data) {
  // A blocking call goes to the blocking pool (up to 64 threads, started on demand)...
  const std::uint64_t profile = co_await corio::offload(corio::blocking_pool(), legacy_lookup, id);
  // ...CPU work to the CPU pool (a thread per core); the loop serves others meanwhile.
  const std::uint64_t sum = co_await corio::offload(checksum, data);
  co_return profile ^ sum;
}
//! [blocking]

std::vector<std::string> blocking_example() {
  std::vector<std::uint64_t> data(100000);
  std::iota(data.begin(), data.end(), std::uint64_t{1});
  std::vector<std::string> reports;
  corio::loop_options o;
  o.debug = true;  // would name a task that blocked the loop for 20 ms
  o.slow_callback_duration = 20ms;
  o.report = [&reports](const std::string& r) { reports.push_back(r); };
  corio::event_loop loop(o);
  const std::uint64_t v = corio::run(loop, handle(6, data));
  check(v == (42 ^ checksum(data)), "offloaded results come back");
  return reports;
}

// ---- 2. task scheduling overhead ---------------------------------------------

corio::task<std::uint64_t> store_batch(std::span<const int> rows) {
  co_await corio::sleep(1ms);  // one round trip for the whole batch
  std::uint64_t n = 0;
  for (int r : rows)
    n += static_cast<std::uint64_t>(r);
  co_return n;
}

corio::task<std::uint64_t> scheduling_example() {
  std::vector<int> rows(10000);
  std::iota(rows.begin(), rows.end(), 1);
  //! [map_batched]
  // 10,000 rows: 10 tasks of 1,000 rows each, at most 4 running at once,
  // rather than 10,000 tasks of one row.
  std::vector<std::uint64_t> per_batch = co_await corio::map_batched(rows, 1000, store_batch, 4);
  //! [map_batched]
  check(per_batch.size() == 10, "10 batches");
  //! [batched]
  std::uint64_t stored = 0;
  for (std::span<const int> batch : corio::batched(rows, 2500)) {  // 4 spans into `rows`
    const std::uint64_t n = co_await store_batch(batch);
    stored += n;
  }
  //! [batched]
  check(stored == 50005000, "every row stored once");
  co_return std::accumulate(per_batch.begin(), per_batch.end(), std::uint64_t{0});
}

// ---- 3. memory of unreleased coroutines and tasks -----------------------------

//! [generator]
// Produces records one at a time, only as fast as the consumer takes them.
corio::async_generator<int> records(int n) {
  for (int i = 1; i <= n; ++i) {
    if (i % 1000 == 0) co_await corio::sleep(1ms);  // a page fetched from somewhere
    co_yield i;
  }
}

corio::task<std::uint64_t> sum_in_chunks() {
  std::uint64_t total = 0;
  std::size_t chunks = 0;
  // 100,000 records in vectors of 500: at most one chunk is in memory.
  auto pipeline =
      records(100000) | corio::filter([](int r) { return r % 2 == 0; }) | corio::chunks(500);
  co_await corio::for_each(std::move(pipeline), [&](const std::vector<int>& chunk) {
    ++chunks;
    for (int r : chunk)
      total += static_cast<std::uint64_t>(r);
  });
  co_return total + chunks;  // the chunk count folded in, for the check
}
//! [generator]

//! [leak]
corio::task<> forever() {
  co_await corio::sleep(24h);
}

corio::task<> leaky_main() {
  corio::spawn(forever(), "forgotten");  // the loop owns it; nobody ends it
  co_return;
}
//! [leak]

// ---- 4. contention on shared resources -----------------------------------------

//! [semaphore]
int g_in_flight = 0, g_peak = 0;

corio::task<> call_api(corio::semaphore& limit) {
  auto permit = co_await limit.acquire_guard();  // FIFO; released at scope end
  g_peak = std::max(g_peak, ++g_in_flight);
  co_await corio::sleep(1ms);
  --g_in_flight;
}
//! [semaphore]

//! [queue]
// A bounded queue between a fast producer and slow consumers: push waits
// while 8 items are queued, so memory stays flat.
corio::task<> produce(corio::queue<int>& q, int n) {
  for (int i = 1; i <= n; ++i)
    co_await q.push(i);
  q.close();  // consumers drain what is left, then pop throws queue_closed
}

corio::task<std::uint64_t> consume(corio::queue<int>& q) {
  std::uint64_t sum = 0;
  try {
    for (;;) {
      const int v = co_await q.pop();
      co_await corio::sleep(100us);  // slower than the producer
      sum += static_cast<std::uint64_t>(v);
    }
  } catch (const corio::queue_closed&) {
  }
  co_return sum;
}
//! [queue]

//! [mutex]
// Several tasks update one record; the await inside must not interleave.
corio::task<> deposit(corio::mutex& m, std::int64_t& balance, std::int64_t amount) {
  co_await m.lock();
  const std::int64_t seen = balance;
  co_await corio::sleep(100us);  // a round trip while holding the lock
  balance = seen + amount;
  m.unlock();
}
//! [mutex]

corio::task<> contention_example() {
  //! [semaphore_use]
  corio::semaphore limit(3);  // at most 3 calls at once
  std::vector<corio::task<>> calls;
  for (int i = 0; i < 20; ++i)
    calls.push_back(call_api(limit));
  co_await corio::gather(std::move(calls));
  //! [semaphore_use]
  check(g_peak == 3, "never more than 3 in flight");

  //! [queue_use]
  corio::queue<int> q(8);
  auto producer = corio::spawn(produce(q, 1000));
  auto sums = co_await corio::gather(consume(q), consume(q));
  co_await producer;
  //! [queue_use]
  check(std::get<0>(sums) + std::get<1>(sums) == 500500, "every item consumed once");

  corio::mutex m;
  std::int64_t balance = 0;
  std::vector<corio::task<>> deposits;
  for (int i = 0; i < 10; ++i)
    deposits.push_back(deposit(m, balance, 10));
  co_await corio::gather(std::move(deposits));
  check(balance == 100, "no lost update");

  //! [channel]
  // Across threads: a plain thread sends, a task receives.
  corio::channel<int> readings(16);
  std::thread sensor([&readings] {
    for (int i = 1; i <= 100; ++i)
      readings.send_blocking(i);  // blocks this thread when 16 are waiting
    readings.close();
  });
  int total = 0;
  try {
    for (;;) {
      const int r = co_await readings.receive();
      total += r;
    }
  } catch (const corio::channel_closed&) {
  }
  sensor.join();
  //! [channel]
  check(total == 5050, "every reading received");
  std::printf(
      "contention: semaphore peak %d of 3; queue sums %llu + %llu; balance %lld; channel %d\n",
      g_peak, static_cast<unsigned long long>(std::get<0>(sums)),
      static_cast<unsigned long long>(std::get<1>(sums)), static_cast<long long>(balance), total);
}

// ---- 5. the loop itself ---------------------------------------------------------

corio::task<std::uint64_t> ping_pong(int rounds) {
  auto [a, b] = co_await []() -> corio::task<std::pair<corio::tcp_stream, corio::tcp_stream>> {
    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
    auto accepting = corio::spawn(l.accept());
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    auto s = co_await accepting;
    co_return std::pair{std::move(c), std::move(s)};
  }();
  char byte = 'x';
  for (int i = 0; i < rounds; ++i) {
    co_await a.write_all(&byte, 1);
    co_await b.read_exact(&byte, 1);
  }
  co_return corio::event_loop::current()->stats().syscalls;
}

void loop_example() {
  //! [backend]
  // io_uring when the kernel allows it, else epoll; CORIO_BACKEND=epoll|uring overrides.
  corio::event_loop loop({.backend = corio::io_backend_kind::epoll});
  const std::uint64_t syscalls = corio::run(loop, ping_pong(100));
  std::printf("%s: 100 round trips, %llu system calls\n", loop.backend_name(),
              static_cast<unsigned long long>(syscalls));
  //! [backend]
  check(std::string(loop.backend_name()) == "epoll", "the backend asked for");
  corio::event_loop automatic;
  const std::uint64_t auto_calls = corio::run(automatic, ping_pong(100));
  std::printf("%s: 100 round trips, %llu system calls\n", automatic.backend_name(),
              static_cast<unsigned long long>(auto_calls));
}

// ---- 6. ResourceManager / controlled_gather --------------------------------------

int g_fetching = 0, g_fetch_peak = 0;

corio::task<std::string> fetch(int id) {
  g_fetch_peak = std::max(g_fetch_peak, ++g_fetching);
  co_await corio::sleep(1ms);
  --g_fetching;
  co_return "page" + std::to_string(id);
}

corio::task<> bounded_example() {
  std::vector<int> ids(1000);
  std::iota(ids.begin(), ids.end(), 0);
  //! [map_bounded]
  // At most 50 in flight; a frame is made only when a slot frees, so 1,000
  // ids never mean 1,000 frames at once; results in input order.
  std::vector<std::string> pages = co_await corio::map_bounded(ids, fetch, 50);
  //! [map_bounded]
  check(pages.size() == 1000 && pages[999] == "page999", "results in input order");
  check(g_fetch_peak == 50, "never more than 50 in flight");

  //! [task_group]
  std::vector<std::string> log;
  bool cleaned = false;
  try {
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.defer([&cleaned]() -> corio::task<> {  // runs last, even on failure
        cleaned = true;
        co_return;
      });
      g.spawn([](std::vector<std::string>& log) -> corio::task<> {
        co_await corio::sleep(1h);  // cancelled when its sibling fails
        log.push_back("never");
      }(log));
      g.spawn([]() -> corio::task<> {
        co_await corio::sleep(1ms);
        throw std::runtime_error("upstream refused");
      }());
      co_return;
    });
  } catch (const corio::task_group_error& e) {
    log.push_back(e.what());  // every failure of the group, together
  }
  //! [task_group]
  check(cleaned && log.size() == 1 && log[0].find("upstream refused") != std::string::npos,
        "the failure cancelled the sibling, the cleanup ran");
  std::printf("bounded: 1000 fetches, peak %d in flight; task_group: %s\n", g_fetch_peak,
              log[0].c_str());
}

// ---- 7. ConnectionPool -------------------------------------------------------------

struct conn {
  int id;
};

int g_opened = 0;

//! [pool]
corio::task<conn> open_conn() {
  co_return conn{++g_opened};  // connect, authenticate...
}

corio::task<int> query_user(corio::pool<conn>& db, int user) {
  auto c = co_await db.acquire();  // a lease, returned at scope end
  co_await corio::sleep(1ms);      // the query
  co_return c->id + 0 * user;
}
//! [pool]

corio::task<int> pools_example() {
  std::vector<int> users(100);
  std::iota(users.begin(), users.end(), 0);
  //! [pool_use]
  corio::pool<conn> db({.create = open_conn}, {.name = "db", .max_size = 5, .acquire_timeout = 2s});
  auto ids = co_await corio::map_bounded(
      users, [&db](int user) { return query_user(db, user); }, 20);
  co_await db.close();
  //! [pool_use]
  check(g_opened == 5 && db.stats().acquires == 100, "5 connections served 100 requests");
  co_return *std::max_element(ids.begin(), ids.end());
}

// ---- 8. AsyncProfiler, debug mode, slow callbacks ------------------------------------

//! [profiler]
corio::profiler prof({.slow_threshold = 100ms});

corio::task<int> handle_request(int id) {
  auto whole = prof.measure("request");  // spans every await below
  {
    auto s = prof.measure("db");
    co_await corio::sleep(2ms);
  }
  co_return id;
}
//! [profiler]

corio::task<> profiling_example() {
  std::vector<int> ids(20);
  std::iota(ids.begin(), ids.end(), 0);
  (void)co_await corio::map_bounded(ids, handle_request, 5);
  //! [profiler_report]
  std::string table = prof.report();  // per name: count, errors, mean, p50, p90, p99, max
  std::string json = prof.json();     // the same, durations in nanoseconds
  //! [profiler_report]
  check(table.find("request") != std::string::npos && json.find("\"db\"") != std::string::npos,
        "both operations measured");
  check(prof.snapshot().size() == 2 && prof.snapshot()[0].histogram.count() == 20, "20 samples");
  std::printf("%s", table.c_str());
}

corio::task<int> amain() {
  const std::uint64_t scheduled = co_await scheduling_example();
  check(scheduled == 50005000, "map_batched covered every row");
  std::printf("scheduling: 10,000 rows in 10 batch tasks\n");

  const std::uint64_t streamed = co_await sum_in_chunks();
  check(streamed == 2500050000ULL + 100, "100 chunks of the even records");
  std::printf("memory: 100,000 records streamed in 100 chunks of 500\n");

  co_await contention_example();
  co_await bounded_example();
  const int top = co_await pools_example();
  check(top >= 1 && top <= 5, "ids of the 5 connections");
  std::printf("pools: 100 requests on 5 connections\n");
  co_await profiling_example();
  co_return 0;
}

}  // namespace

int main() {
  const std::vector<std::string> reports = blocking_example();
  check(reports.empty(), "offloaded calls leave debug mode nothing to report");
  std::printf("blocking: offloaded, no slow-resumption report\n");

  //! [leak_report]
  corio::loop_options o;
  o.debug = true;
  std::string report;
  o.report = [&report](const std::string& r) { report += r; };
  corio::run(leaky_main(), o);  // reports the task still alive when main ended, then cancels it
  //! [leak_report]
  check(report.find("'forgotten'") != std::string::npos, "the leftover task is named");
  std::printf("memory: %s\n", report.c_str());

  loop_example();
  const int rc = corio::run(amain());
  std::printf("strategies: all checks passed\n");
  return rc;
}
