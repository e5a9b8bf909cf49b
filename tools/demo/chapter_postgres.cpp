// Chapter: a PostgreSQL client. The guide's database_operation opens a
// connection per call; corio::pool<pg::connection> keeps ten and lends
// them. Then the same queries on one connection, one after another against
// pipelined (many tasks share it, each query sent without waiting for the
// ones before). On a real PostgreSQL that the tour starts in a temporary
// directory and stops at the end.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"
#include "pg_server.hpp"

namespace corio_demo {
namespace {

constexpr int k_clients = 50;
constexpr int k_ops_per_client = 20;
constexpr int k_rows = 1000;
constexpr int k_queries = 4000;
constexpr int k_pipelined_tasks = 100;

constexpr std::string_view k_select = "SELECT balance FROM tour_accounts WHERE id = $1";

std::string conninfo() {
  return corio_tools::pg_server::shared().conninfo();
}

std::int32_t account_of(int client, int j) {
  return (client * 7919 + j) % k_rows + 1;
}

corio::task<> create_table() {
  auto db = co_await corio::pg::connection::connect(conninfo());
  co_await db.execute("DROP TABLE IF EXISTS tour_accounts");
  co_await db.execute("CREATE TABLE tour_accounts (id int PRIMARY KEY, balance bigint NOT NULL)");
  co_await db.execute(
      "INSERT INTO tour_accounts SELECT x, x * 3 FROM generate_series(1, $1::int4) AS x", k_rows);
}

/// What a variant of the first part measured.
struct pool_run {
  double seconds = 0;
  u64 sum = 0;
  u64 connections = 0;
  corio::latency_histogram latency;
};

// Before: database_operation as the guide writes it.
corio::task<u64> per_call_client(int client, pool_run& out) {
  u64 sum = 0;
  for (int j = 0; j < k_ops_per_client; ++j) {
    const auto t0 = steady::now();
    auto db = co_await corio::pg::connection::connect(conninfo());
    ++out.connections;
    const auto r = co_await db.query(k_select, account_of(client, j));
    sum += static_cast<u64>(r.at(0).get<std::int64_t>(0));
    out.latency.record(steady::now() - t0);
  }  // each connection closed at the end of its iteration
  co_return sum;
}

// After: the same operation on a connection lent by the pool.
corio::task<u64> pooled_client(corio::pool<corio::pg::connection>& pool, int client,
                               pool_run& out) {
  u64 sum = 0;
  for (int j = 0; j < k_ops_per_client; ++j) {
    const auto t0 = steady::now();
    auto db = co_await pool.acquire();
    const auto r = co_await db->query(k_select, account_of(client, j));
    sum += static_cast<u64>(r.at(0).get<std::int64_t>(0));
    out.latency.record(steady::now() - t0);
  }
  co_return sum;
}

pool_run run_operations(bool pooled) {
  pool_run out;
  corio::run([](bool pooled, pool_run& out) -> corio::task<> {
    corio::pool_options options;
    options.name = "tour-pg";
    options.max_size = 10;
    corio::pool<corio::pg::connection> pool(corio::pg::pool_hooks(conninfo()), options);
    const auto t0 = steady::now();
    std::vector<corio::task<u64>> clients;
    clients.reserve(k_clients);
    for (int c = 0; c < k_clients; ++c)
      clients.push_back(pooled ? pooled_client(pool, c, out) : per_call_client(c, out));
    for (const u64 s : co_await corio::gather(std::move(clients)))
      out.sum += s;
    out.seconds = since(t0);
    if (pooled) out.connections = pool.stats().creations;
    co_await pool.close();
  }(pooled, out));
  return out;
}

// ---- one connection: sequential against pipelined ---------------------------

corio::task<u64> querier(corio::pg::connection& db, int task, int count) {
  u64 sum = 0;
  for (int j = 0; j < count; ++j) {
    const auto r = co_await db.query(k_select, account_of(task, j));
    sum += static_cast<u64>(r.at(0).get<std::int64_t>(0));
  }
  co_return sum;
}

/// Seconds, sum of balances, and the connection's reads.
struct one_connection_run {
  double seconds = 0;
  u64 sum = 0;
  u64 reads = 0;
};

one_connection_run run_one_connection(bool pipelined) {
  one_connection_run out;
  corio::run([](bool pipelined, one_connection_run& out) -> corio::task<> {
    auto db = co_await corio::pg::connection::connect(conninfo());
    (void)co_await db.query(k_select, 1);  // prepared before the clock
    const u64 reads0 = db.stats().reads;
    const auto t0 = steady::now();
    if (pipelined) {
      std::vector<corio::task<u64>> tasks;
      tasks.reserve(k_pipelined_tasks);
      for (int t = 0; t < k_pipelined_tasks; ++t)
        tasks.push_back(querier(db, t, k_queries / k_pipelined_tasks));
      for (const u64 s : co_await corio::gather(std::move(tasks)))
        out.sum += s;
    } else {
      for (int t = 0; t < k_pipelined_tasks; ++t)
        out.sum += co_await querier(db, t, k_queries / k_pipelined_tasks);
    }
    out.seconds = since(t0);
    out.reads = db.stats().reads - reads0;
  }(pipelined, out));
  return out;
}

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void run_chapter(report& report) {
  report.heading(
      "a PostgreSQL client: %d clients x %d queries on a PostgreSQL 15 of its own "
      "(port %u)",
      k_clients, k_ops_per_client, static_cast<unsigned>(corio_tools::pg_server::shared().port()));
  corio::run(create_table());
  progress("before: database_operation connects for every query");
  const pool_run a = run_operations(false);
  progress("after: corio::pool<pg::connection> lends ten connections");
  const pool_run b = run_operations(true);
  report.check_same(a.sum, b.sum);
  const double ops = static_cast<double>(k_clients) * k_ops_per_client;
  report.add("queries per second", fmt("%.0f", ops / a.seconds), fmt("%.0f", ops / b.seconds),
             fmt("%.1fx faster", a.seconds / b.seconds));
  report.add(
      "connections made", fmt("%.0f", static_cast<double>(a.connections)),
      fmt("%.0f", static_cast<double>(b.connections)),
      fmt("%.0fx fewer", static_cast<double>(a.connections) / static_cast<double>(b.connections)));
  const double p99_a = ms(a.latency.quantile(0.99));
  const double p99_b = ms(b.latency.quantile(0.99));
  report.add("operation p99 (ms)", fmt("%.2f", p99_a), fmt("%.2f", p99_b),
             fmt("%.1fx lower", p99_a / p99_b));

  progress("before: 4,000 queries on one connection, one after another");
  const one_connection_run c = run_one_connection(false);
  progress("after: the same from 100 tasks sharing the connection (pipelined)");
  const one_connection_run d = run_one_connection(true);
  report.check_same(c.sum, d.sum);
  report.add("queries per second (one connection)", fmt("%.0f", k_queries / c.seconds),
             fmt("%.0f", k_queries / d.seconds), fmt("%.1fx faster", c.seconds / d.seconds));
  report.add("queries per socket read", fmt("%.2f", k_queries / static_cast<double>(c.reads)),
             fmt("%.2f", k_queries / static_cast<double>(d.reads)), "results read together");
}

const registrar k_registered{{"postgresql", 1100, run_chapter}};

}  // namespace
}  // namespace corio_demo
