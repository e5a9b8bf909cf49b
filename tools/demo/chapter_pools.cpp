// Chapter: connection pools and batching. The guide's ConnectionPool is a
// semaphore plus a list of idle connections, lent by an async context
// manager; an operation that throws gives the permit back but not the
// connection, which is lost, and the next borrower pays for a new one.
// Both pools serve the same fake database here: 100 ms to connect, 2 ms per
// operation, 1% of operations failing, 200 clients on 10 connections. It
// runs on the virtual clock, so the times are the model's, not this
// machine's. Then corio::batcher turns 1,000 concurrent lookups into a
// handful of calls of a batch function.
#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr int k_clients = 200;
constexpr int k_ops_per_client = 50;
constexpr std::size_t k_pool_size = 10;

/// The fake database's bookkeeping, for the table.
struct fake_database {
  int connections_made = 0;
  int connections_alive = 0;
};

class db_conn {
 public:
  explicit db_conn(fake_database* db) : m_db(db) { ++m_db->connections_alive; }
  db_conn(db_conn&& o) noexcept : m_db(std::exchange(o.m_db, nullptr)) {}
  db_conn(const db_conn&) = delete;
  db_conn& operator=(const db_conn&) = delete;
  db_conn& operator=(db_conn&&) = delete;
  ~db_conn() {
    if (m_db != nullptr) --m_db->connections_alive;
  }

  /// Operation `i`: 2 ms; one in a hundred fails (a constraint violation,
  /// say: the connection itself is fine).
  corio::task<u64> run(u64 i) const {
    co_await corio::sleep(2ms);
    if (i % 100 == 37) throw std::runtime_error("duplicate key");
    co_return i;
  }

 private:
  fake_database* m_db;
};

corio::task<db_conn> connect(fake_database* db) {
  co_await corio::sleep(100ms);
  ++db->connections_made;
  co_return db_conn(db);
}

/// The guide's pool, as its users write it in C++: a semaphore and an idle
/// list. `release` is what the context manager's exit does for the
/// connection; on an exception only the permit comes back.
class guide_pool {
 public:
  explicit guide_pool(fake_database* db) : m_db(db), m_permits(k_pool_size) {}
  corio::task<db_conn> acquire() {
    co_await m_permits.acquire();
    if (!m_idle.empty()) {
      db_conn c = std::move(m_idle.back());
      m_idle.pop_back();
      co_return c;
    }
    co_return co_await connect(m_db);
  }
  void release(db_conn c) {
    m_idle.push_back(std::move(c));
    m_permits.release();
  }
  void release_permit_only() { m_permits.release(); }
  [[nodiscard]] std::size_t idle() const { return m_idle.size(); }

 private:
  fake_database* m_db;
  corio::semaphore m_permits;
  std::vector<db_conn> m_idle;
};

/// What one variant measured, besides the shared measurement.
struct pool_run {
  int created = 0;
  int leaked = 0;
  double p99_ms = 0;
  u64 completed = 0;
};

/// What one run of the clients shares: the fake database and the figures.
struct trial {
  fake_database db;
  corio::latency_histogram latency;
  u64 completed = 0;
  [[nodiscard]] double p99_ms() const {
    return std::chrono::duration<double, std::milli>(latency.quantile(0.99)).count();
  }
};

corio::loop_options on_virtual_clock() {
  corio::loop_options o;
  o.virtual_clock = true;
  return o;
}

/// Operation k of client `client`.
u64 operation_id(int client, int k) {
  return static_cast<u64>(client) * k_ops_per_client + static_cast<u64>(k);
}

corio::task<> guide_client(guide_pool& pool, int client, trial& t) {
  for (int k = 0; k < k_ops_per_client; ++k) {
    const auto t0 = corio::now();
    db_conn c = co_await pool.acquire();
    bool failed = false;
    try {
      co_await c.run(operation_id(client, k));
      ++t.completed;
    } catch (const std::runtime_error&) {
      failed = true;  // the guide's context manager: the permit comes back, the connection does not
    }
    if (failed) {
      pool.release_permit_only();
    } else {
      pool.release(std::move(c));
    }
    t.latency.record(corio::now() - t0);
  }
}

corio::task<> corio_client(corio::pool<db_conn>& pool, int client, trial& t) {
  for (int k = 0; k < k_ops_per_client; ++k) {
    const auto t0 = corio::now();
    try {
      co_await corio::with(pool, [&](db_conn& c) { return c.run(operation_id(client, k)); });
      ++t.completed;
    } catch (const std::runtime_error&) {  // the lease went back all the same
    }
    t.latency.record(corio::now() - t0);
  }
}

/// All the clients at once, on `pool`.
template <class Pool>
corio::task<> run_clients(Pool& pool, trial& t, corio::task<> (*client)(Pool&, int, trial&)) {
  std::vector<corio::task<>> clients;
  clients.reserve(k_clients);
  for (int i = 0; i < k_clients; ++i)
    clients.push_back(client(pool, i, t));
  co_await corio::gather(std::move(clients));
}

pool_run run_guide_pool() {
  trial t;
  corio::event_loop loop(on_virtual_clock());
  const std::size_t idle_at_end = corio::run(loop, [](trial& t) -> corio::task<std::size_t> {
    guide_pool pool(&t.db);
    co_await run_clients(pool, t, guide_client);
    co_return pool.idle();
  }(t));
  // Connections that were made and never came back to the idle list.
  return {t.db.connections_made, t.db.connections_made - static_cast<int>(idle_at_end), t.p99_ms(),
          t.completed};
}

pool_run run_corio_pool() {
  trial t;
  corio::event_loop loop(on_virtual_clock());
  corio::run(loop, [](trial& t) -> corio::task<> {
    corio::pool_hooks<db_conn> hooks;
    hooks.create = [&t] { return connect(&t.db); };
    corio::pool_options options;
    options.name = "fake-db";
    options.max_size = k_pool_size;
    corio::pool<db_conn> pool(std::move(hooks), options);
    co_await run_clients(pool, t, corio_client);
    co_await pool.close();
  }(t));
  // After close() every connection must be gone: any still alive leaked.
  return {t.db.connections_made, t.db.connections_alive, t.p99_ms(), t.completed};
}

// ---- batching ----------------------------------------------------------

constexpr int k_lookups = 1000;
constexpr int k_distinct_users = 250;

struct store_calls {
  int calls = 0;
};

corio::task<std::string> fetch_one(store_calls* s, int id) {
  ++s->calls;
  co_await corio::sleep(1ms);
  co_return "user" + std::to_string(id);
}

corio::task<std::vector<std::string>> fetch_many(store_calls* s, std::span<const int> ids) {
  ++s->calls;
  co_await corio::sleep(1ms);
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const int id : ids)
    out.push_back("user" + std::to_string(id));
  co_return out;
}

corio::task<u64> lookup_each(store_calls& s, int i) {
  co_return (co_await fetch_one(&s, i % k_distinct_users)).size();
}
corio::task<u64> lookup_batched(corio::batcher<int, std::string>& users, int i) {
  co_return (co_await users.load(i % k_distinct_users)).size();
}

/// The store calls and the sum of name lengths (both variants must agree).
std::pair<int, u64> run_lookups(bool batched) {
  store_calls s;
  corio::event_loop loop(on_virtual_clock());
  const u64 total = corio::run(loop, [](store_calls& s, bool batched) -> corio::task<u64> {
    corio::batcher_options bo;
    bo.max_batch = 100;
    corio::batcher<int, std::string> users(
        corio::batcher<int, std::string>::batch_function(
            [&s](std::span<const int> ids) { return fetch_many(&s, ids); }),
        bo);
    std::vector<corio::task<u64>> lookups;
    lookups.reserve(k_lookups);
    for (int i = 0; i < k_lookups; ++i)
      lookups.push_back(batched ? lookup_batched(users, i) : lookup_each(s, i));
    u64 sum = 0;
    for (const u64 v : co_await corio::gather(std::move(lookups)))
      sum += v;
    co_return sum;
  }(s, batched));
  return {s.calls, total};
}

void run_chapter(report& report) {
  report.heading(
      "connection pools: %d clients x %d operations on %zu connections (connect 100 ms, "
      "operation 2 ms, 1%% fail), virtual clock",
      k_clients, k_ops_per_client, k_pool_size);
  progress(
      "before: the guide's pool (semaphore + idle list; a failed operation loses its "
      "connection)");
  const pool_run a = run_guide_pool();
  progress("after: corio::pool<db_conn> with corio::with(pool, op)");
  const pool_run b = run_corio_pool();
  report.check_same(a.completed, b.completed);
  report.add("connections created", fmt("%.0f", a.created), fmt("%.0f", b.created),
             fmt("%.0fx fewer", static_cast<double>(a.created) / b.created));
  report.add("connections leaked", fmt("%.0f", a.leaked), fmt("%.0f", b.leaked),
             b.leaked == 0 ? "none lost" : "LEAK");
  report.add("operation p99 (ms, model time)", fmt("%.1f", a.p99_ms), fmt("%.1f", b.p99_ms),
             fmt("%.1fx lower", a.p99_ms / b.p99_ms));
  if (b.leaked != 0) throw std::runtime_error("corio::pool leaked a connection");

  progress("before: 1,000 concurrent lookups, one store call each");
  const auto [calls_a, sum_a] = run_lookups(false);
  progress("after: corio::batcher<int, std::string>, max_batch 100");
  const auto [calls_b, sum_b] = run_lookups(true);
  report.check_same(sum_a, sum_b);
  report.add("store calls for 1,000 lookups", fmt("%.0f", calls_a), fmt("%.0f", calls_b),
             fmt("%.0fx fewer", static_cast<double>(calls_a) / calls_b));
}

const registrar k_registered{{"connection pools", 900, run_chapter}};

}  // namespace
}  // namespace corio_demo
