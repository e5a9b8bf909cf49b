// The examples of the guide's "Pools and clients" page
// (docs/guide/pools_clients.md): every snippet between `//! [name]` markers
// runs here, and main checks what it produced. Redis and PostgreSQL are
// real servers that tools/common starts on free ports of 127.0.0.1 in
// temporary directories and stops at exit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"
#include "pg_server.hpp"
#include "redis_server.hpp"

using namespace std::chrono_literals;

namespace {

using guide::check;

std::vector<std::string> g_reports;  // the loop's reports (loop_options::report)

//! [conn]
// Stands in for a client connection: a pool holds any movable T.
struct db_conn {
  int id = 0;
  bool stale = false;  // what a health check would find out
  corio::task<int> query(int x) {
    co_await corio::sleep(1ms);  // a round trip
    co_return x * 2;
  }
};

int g_opened = 0, g_validated = 0, g_closed = 0;
//! [conn]

//! [pool]
corio::pool_hooks<db_conn> db_hooks() {
  return {
      .create = []() -> corio::task<db_conn> {
        co_await corio::sleep(5ms);  // connect, authenticate
        co_return db_conn{.id = ++g_opened};
      },
      // Before a connection is lent after idling (validate_after_idle) or
      // after its last borrower failed: false closes it.
      .validate = [](db_conn& c) -> corio::task<bool> {
        ++g_validated;
        co_return !c.stale;
      },
      .close = [](db_conn&) -> corio::task<> {  // QUIT, Terminate
        ++g_closed;
        co_return;
      },
  };
}
//! [pool]

//! [lease]
corio::task<int> handle(corio::pool<db_conn>& db, int i) {
  auto conn = co_await db.acquire();  // a lease: waits (FIFO) while max_size are lent
  co_return co_await conn->query(i);
}  // the lease ends: the next waiter gets the connection, or it goes idle
//! [lease]

corio::task<> pool_examples() {
  //! [pool_make]
  corio::pool<db_conn> db(db_hooks(), {.name = "db", .max_size = 4, .acquire_timeout = 100ms});
  //! [pool_make]

  std::vector<corio::task<int>> requests;
  for (int i = 0; i < 100; ++i)
    requests.push_back(handle(db, i));
  const std::vector<int> results = co_await corio::gather(std::move(requests));
  int sum = 0;
  for (int r : results)
    sum += r;
  check(sum == 9900, "100 requests answered");
  //! [stats]
  const corio::pool_stats s = db.stats();
  // s.creations: 4 (max_size), s.acquires: 100, s.waits: how many queued;
  // db.wait_times() is the histogram of those waits.
  const auto p99_wait = db.wait_times().quantile(0.99);
  //! [stats]
  check(s.creations == 4 && s.acquires == 100 && s.size == 4, "4 connections, 100 leases");
  check(s.waits == 100, "every acquire waited: for a creation or a return");
  std::printf("pool: 100 requests on %zu connections, %llu waited, p99 wait %s\n", s.size,
              static_cast<unsigned long long>(s.waits), corio::format_duration(p99_wait).c_str());

  //! [acquire_timeout]
  std::vector<corio::pool_lease<db_conn>> held;
  for (int i = 0; i < 4; ++i) {
    auto lease = co_await db.acquire();
    held.push_back(std::move(lease));  // every connection is lent now
  }
  std::string why;
  try {
    auto one_more = co_await db.acquire();  // waits acquire_timeout (100 ms)...
  } catch (const corio::timeout_error& e) {
    why = e.what();  // ...then names the pool, the waiters, the last creation error
  }
  held.clear();  // the four go back
  //! [acquire_timeout]
  check(why.find("'db'") != std::string::npos, "the timeout names the pool");
  check(db.stats().timeouts == 1, "one acquire timed out");
  std::printf("pool: acquire_timeout: %s\n", why.c_str());

  //! [discard]
  {
    auto conn = co_await db.acquire();
    conn.discard();  // e.g. the server hung up mid-reply: closed, never lent again
  }
  //! [discard]
  check(db.stats().evictions.broken == 1, "a discarded connection is evicted");

  //! [failed_borrower]
  corio::pool<db_conn> single(db_hooks(), {.name = "single", .max_size = 1});
  int first_id = 0;
  try {
    auto conn = co_await single.acquire();
    first_id = conn->id;
    conn->stale = true;  // the session is in some unknown state now
    throw std::runtime_error("request failed mid-query");
  } catch (const std::runtime_error&) {
  }
  // That lease ended during an exception: the connection is validated
  // before anyone gets it again; it fails the check and is closed, and
  // this acquire gets a new one.
  auto next = co_await single.acquire();
  //! [failed_borrower]
  check(next->id != first_id && !next->stale, "the stale connection is never lent again");
  check(single.stats().evictions.validation == 1, "it was evicted by validation");
  next.release();
  co_await single.close();

  //! [with]
  // Acquire, await fn(conn), give it back; a corio::connection_broken
  // thrown by fn discards the connection instead.
  int doubled = co_await corio::with(
      db, [](db_conn& c) -> corio::task<int> { co_return co_await c.query(21); });
  //! [with]
  check(doubled == 42, "with() returns fn's value");

  //! [close]
  co_await db.close();  // waiters get pool_closed; leases are waited for (30 s grace)
  //! [close]
  check(g_closed == g_opened, "every connection opened was closed through the hook");
  std::printf("pool: %d opened, %d validated, %d closed\n", g_opened, g_validated, g_closed);

  //! [leak]
  corio::pool<db_conn> leaky(db_hooks(), {.name = "leaky", .leak_threshold = 20ms});
  co_await corio::spawn(
      [](corio::pool<db_conn>& p) -> corio::task<> {
        auto conn = co_await p.acquire();
        co_await corio::sleep(60ms);  // holds it past leak_threshold: reported once
      }(leaky),
      "slow holder");
  co_await leaky.close();
  //! [leak]
  check(leaky.stats().leaks_reported == 1, "the lease held too long was reported");
  check(!g_reports.empty() &&
            g_reports.back().find("held by task 'slow holder'") != std::string::npos,
        "the leak report names the holder");
  std::printf("pool: leak report:\n%s\n", g_reports.back().c_str());
}

//! [batch_fn]
int g_batch_calls = 0;

// One call for many keys (SELECT ... WHERE id = ANY($1)): a value per key,
// in the keys' order.
corio::task<std::vector<std::string>> names_for(std::span<const int> ids) {
  ++g_batch_calls;
  co_await corio::sleep(1ms);
  std::vector<std::string> out;
  for (int id : ids)
    out.push_back("user" + std::to_string(id));
  co_return out;
}
//! [batch_fn]

corio::task<> batcher_examples() {
  //! [batcher]
  corio::batcher<int, std::string> users{
      corio::batcher<int, std::string>::batch_function(names_for)};
  // 100 tasks, each loading one name as if alone; they all ask in one loop
  // tick, so the batch function runs once, with the 10 distinct keys.
  std::vector<corio::task<std::string>> loads;
  for (int i = 0; i < 100; ++i) {
    loads.push_back([](corio::batcher<int, std::string>& b, int i) -> corio::task<std::string> {
      co_return co_await b.load(i % 10);
    }(users, i));
  }
  const std::vector<std::string> names = co_await corio::gather(std::move(loads));
  //! [batcher]
  check(names[42] == "user2", "each load gets its key's value");
  check(g_batch_calls == 1 && users.stats().batches == 1, "one batch call");
  check(users.stats().keys == 10 && users.stats().loads == 100, "10 distinct keys of 100 loads");
  std::printf("batcher: %llu loads, %llu batch call(s), %llu keys\n",
              static_cast<unsigned long long>(users.stats().loads),
              static_cast<unsigned long long>(users.stats().batches),
              static_cast<unsigned long long>(users.stats().keys));

  //! [batcher_outcome]
  // Per-key errors: a missing key fails its own loads, not the batch.
  corio::batcher<int, std::string> strict{
      corio::batcher<int, std::string>::outcome_batch_function(
          [](std::span<const int> ids) -> corio::task<std::vector<corio::outcome<std::string>>> {
            std::vector<corio::outcome<std::string>> out;
            for (int id : ids) {
              if (id < 0) {
                out.push_back(corio::outcome<std::string>::from_error(
                    std::make_exception_ptr(std::out_of_range("no such user"))));
              } else {
                out.push_back(corio::outcome<std::string>::from_value("user" + std::to_string(id)));
              }
            }
            co_return out;
          }),
      {.max_batch = 100}};
  auto good = corio::spawn([](corio::batcher<int, std::string>& b) -> corio::task<std::string> {
    co_return co_await b.load(7);
  }(strict));
  auto bad = corio::spawn([](corio::batcher<int, std::string>& b) -> corio::task<std::string> {
    co_return co_await b.load(-1);
  }(strict));
  std::string seven = co_await good;  // "user7", from the same batch as -1
  bool missing = false;
  try {
    (void)co_await bad;
  } catch (const std::out_of_range&) {
    missing = true;
  }
  //! [batcher_outcome]
  check(seven == "user7" && missing, "per-key outcomes");
  check(strict.stats().batches == 1, "one batch for both keys");
  std::printf("batcher: per-key error for -1, user7 in the same batch\n");
}

corio::task<> redis_examples(std::uint16_t port) {
  //! [redis_connect]
  corio::redis::connection_options options;  // host 127.0.0.1, RESP3, 10 s connect timeout
  options.port = port;
  auto redis = co_await corio::redis::connection::connect(options);
  co_await redis.set("greeting", "hello", std::chrono::seconds(60));
  std::optional<std::string> greeting = co_await redis.get("greeting");
  // Any command: strings, numbers and byte spans as arguments, a reply back.
  corio::redis::reply r = co_await redis.command("HSET", "user:1", "name", "ann", "visits", 3);
  //! [redis_connect]
  check(greeting == "hello" && r.integer() == 2, "SET, GET, HSET");

  //! [redis_shared]
  // 100 tasks share the one connection; the commands they issue in a loop
  // tick leave in one write and the replies are matched back in order.
  const auto before = redis.stats();
  std::vector<corio::task<std::int64_t>> visits;
  for (int i = 0; i < 100; ++i) {
    visits.push_back([](corio::redis::connection& c) -> corio::task<std::int64_t> {
      co_return co_await c.incr("visits");
    }(redis));
  }
  const std::vector<std::int64_t> counts = co_await corio::gather(std::move(visits));
  const auto after = redis.stats();
  //! [redis_shared]
  const auto writes = after.writes - before.writes;
  check(after.commands - before.commands == 100, "100 commands");
  check(writes <= 3, "a write per tick, not per command");
  check(counts.back() == 100 || counts.front() >= 1, "INCR replies");
  std::printf("redis: 100 INCRs from 100 tasks in %llu write(s)\n",
              static_cast<unsigned long long>(writes));

  //! [redis_error]
  bool refused = false;
  try {
    (void)co_await redis.command("INCR", "greeting");  // not a number
  } catch (const corio::redis::error& e) {
    refused = true;  // e.what(): "ERR value is not an integer or out of range"
  }
  std::optional<std::string> still = co_await redis.get("greeting");  // the connection goes on
  //! [redis_error]
  check(refused && still == "hello", "an error reply is thrown; the connection stays usable");

  //! [redis_pipeline]
  corio::redis::pipeline p;
  p.set("a", "1").incr("a").command("INCR", "greeting").get("a");
  std::vector<corio::redis::reply> replies = co_await p.exec(redis);  // errors stay in place
  //! [redis_pipeline]
  check(replies.size() == 4 && replies[1].integer() == 2 && replies[2].is_error() &&
            replies[3].str() == "2",
        "an explicit pipeline");

  //! [redis_batcher]
  // GETs from many tasks become one MGET per tick.
  using get_batcher = corio::batcher<std::string, std::optional<std::string>>;
  get_batcher gets{get_batcher::batch_function(
      [&redis](std::span<const std::string> keys) { return redis.mget(keys); })};
  std::vector<corio::task<std::optional<std::string>>> lookups;
  for (const char* key : {"a", "greeting", "a", "missing"}) {
    lookups.push_back([](get_batcher& g, std::string k) -> corio::task<std::optional<std::string>> {
      co_return co_await g.load(std::move(k));
    }(gets, key));
  }
  const auto values = co_await corio::gather(std::move(lookups));
  //! [redis_batcher]
  check(values[0] == "2" && values[1] == "hello" && !values[3], "MGET through a batcher");
  check(gets.stats().batches == 1 && gets.stats().keys == 3, "one MGET of 3 keys");

  //! [redis_pool]
  // BLPOP and MULTI/EXEC need a connection to themselves: lend them from a pool.
  corio::pool<corio::redis::connection> blocking(corio::redis::pool_hooks(options),
                                                 {.name = "redis-blocking", .max_size = 2});
  auto worker =
      corio::spawn([](corio::pool<corio::redis::connection>& p) -> corio::task<std::string> {
        auto c = co_await p.acquire();
        corio::redis::reply job = co_await c->command("BLPOP", "jobs", 5);  // [list, value]
        co_return std::string(job[1].str());
      }(blocking));
  co_await redis.lpush("jobs", "job-1");  // on the shared connection
  std::string job = co_await worker;
  co_await blocking.close();
  //! [redis_pool]
  check(job == "job-1", "BLPOP on a pooled connection");
  std::printf("redis: error reply kept the connection; pipeline; MGET batcher; BLPOP got %s\n",
              job.c_str());
}

//! [pg_transfer]
corio::task<> transfer(corio::pg::connection& db, int from, int to, std::int64_t amount,
                       bool fail_halfway = false) {
  auto tx = co_await db.begin();  // the connection is this transaction's until it ends
  co_await tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, from);
  if (fail_halfway) throw std::runtime_error("crash between the two updates");
  co_await tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", amount, to);
  co_await tx.commit();  // a throw or a cancellation before this rolls back
}
//! [pg_transfer]

corio::task<std::int64_t> balance(corio::pg::connection& db, int id) {
  corio::pg::result r = co_await db.query("SELECT balance FROM accounts WHERE id = $1", id);
  co_return r.at(0).get<std::int64_t>("balance");
}

corio::task<> pg_examples(std::string conninfo) {
  //! [pg_connect]
  auto db = co_await corio::pg::connection::connect(conninfo);
  co_await db.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)");
  // $1, $2...: parameters bound in binary; the statement is prepared once
  // per connection and cached by its text.
  std::uint64_t inserted = co_await db.execute(
      "INSERT INTO accounts SELECT x, 100 FROM generate_series(1, $1::int4) AS x", 10);
  corio::pg::result r = co_await db.query("SELECT id, balance FROM accounts WHERE id = $1", 7);
  std::int64_t b = r.at(0).get<std::int64_t>("balance");  // pg::type_error if it is not
  //! [pg_connect]
  check(inserted == 10 && b == 100 && r.size() == 1, "INSERT and SELECT");

  //! [pg_pipelined]
  // Ten tasks query one connection at once: the queries of a tick leave in
  // one send, each with its own Sync (its own implicit transaction).
  const auto before = db.stats();
  std::vector<corio::task<std::int64_t>> reads;
  for (int id = 1; id <= 10; ++id)
    reads.push_back(balance(db, id));
  const std::vector<std::int64_t> balances = co_await corio::gather(std::move(reads));
  const auto after = db.stats();
  //! [pg_pipelined]
  check(balances.size() == 10 && balances[9] == 100, "pipelined reads");
  check(after.queries - before.queries == 10, "10 queries sent");
  check(after.flushes - before.flushes <= 3, "in a send per tick, not per query");
  std::printf("pg: 10 queries from 10 tasks in %llu send(s); prepared %llu statement(s) in all\n",
              static_cast<unsigned long long>(after.flushes - before.flushes),
              static_cast<unsigned long long>(after.prepares));

  //! [pg_tx_use]
  co_await transfer(db, 1, 2, 30);
  bool failed = false;
  try {
    co_await transfer(db, 1, 2, 50, /*fail_halfway=*/true);
  } catch (const std::runtime_error&) {
    failed = true;  // the first UPDATE was rolled back when `tx` was destroyed
  }
  //! [pg_tx_use]
  const std::int64_t one = co_await balance(db, 1);
  const std::int64_t two = co_await balance(db, 2);
  check(failed && one == 70 && two == 130, "committed once, rolled back once");

  //! [pg_error]
  std::string sqlstate;
  const std::int64_t zero = 0;
  try {
    co_await db.execute("INSERT INTO accounts VALUES ($1, $2)", 1, zero);
  } catch (const corio::pg::error& e) {
    sqlstate = e.sqlstate();  // "23505": unique_violation; the connection goes on
  }
  //! [pg_error]
  check(sqlstate == "23505", "a duplicate key is pg::error 23505");

  //! [pg_stream]
  // Rows one at a time as they arrive: flat memory for any result size.
  std::int64_t total = 0;
  auto rows = db.stream("SELECT x FROM generate_series(1, $1::int4) AS x", 100000);
  while (auto row = co_await rows.next())
    total += row->get<std::int32_t>(0);
  //! [pg_stream]
  check(total == std::int64_t{100000} * 100001 / 2, "streamed 100,000 rows");
  std::printf(
      "pg: transfer committed, failed one rolled back (%lld / %lld); 23505; streamed sum %lld\n",
      static_cast<long long>(one), static_cast<long long>(two), static_cast<long long>(total));

  //! [pg_pool]
  // Transactions, COPY and LISTEN want a connection to themselves: a pool.
  corio::pool<corio::pg::connection> pool(corio::pg::pool_hooks(conninfo), {.max_size = 4});
  {
    auto conn = co_await pool.acquire();
    co_await transfer(*conn, 3, 4, 10);
  }
  //! [pg_pool]
  const std::int64_t four = co_await balance(db, 4);
  check(four == 110, "a transaction on a pooled connection");
  co_await pool.close();
}

corio::task<int> amain(std::uint16_t redis_port, std::string pg_conninfo) {
  co_await pool_examples();
  co_await batcher_examples();
  co_await redis_examples(redis_port);
  co_await pg_examples(std::move(pg_conninfo));
  std::printf("pools_clients: all checks passed\n");
  co_return 0;
}

}  // namespace

int main() {
  // Throwaway servers, started before the loop (their start-up blocks).
  const std::uint16_t redis_port = corio_tools::redis_server::shared().port();
  std::string pg = corio_tools::pg_server::shared().conninfo();
  corio::loop_options options;
  options.report = [](const std::string& r) { g_reports.push_back(r); };
  return corio::run(amain(redis_port, std::move(pg)), options);
}
