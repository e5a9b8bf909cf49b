// pg::connection against a real PostgreSQL 15 (tools/common/pg_server.hpp):
// parameters and results of every supported type, type errors, server
// errors with SQLSTATE, pipelined queries of many tasks where a failing one
// fails only itself and a tick's queries leave in one send, the
// prepared-statement cache and its bound, cancellation, a server restart,
// transactions, LISTEN (and a listener too far behind), streams, COPY (an
// abandoned or cancelled one, one through query()), and all of it over TLS.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "pg_server.hpp"

using namespace std::chrono_literals;
namespace pg = corio::pg;

namespace {

std::string tcp() {
  return corio_tools::pg_server::shared().conninfo();
}

TEST(PgConnection, ParametersAndResultsOfEveryType) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    EXPECT_GE(db.server_version(), 150000);
    const std::byte raw[] = {std::byte{0}, std::byte{0xff}, std::byte{'\''}};
    const auto when = std::chrono::system_clock::time_point(
        std::chrono::microseconds(1'700'000'000'123'456));  // 2023-11-14T22:13:20.123456Z
    const std::optional<std::int32_t> none;
    const std::optional<std::int32_t> seven = 7;
    const pg::result r = co_await db.query(
        "SELECT $1::bool AS yes, $2::int2, $3::int4, $4::int8, $5::float4, $6::float8, "
        "$7::text AS name, $8::bytea, $9::timestamptz, $10::int4, $11::int4, $12::numeric",
        true, std::int16_t{-12}, std::int32_t{1} << 30, std::int64_t{1} << 40, 1.5F, -2.25,
        std::string("héllo"), std::span<const std::byte>(raw), when, none, seven, "12.50");
    EXPECT_EQ(r.size(), 1U);
    EXPECT_EQ(r.columns(), 12);
    const pg::row row = r.at(0);
    EXPECT_TRUE(row.get<bool>("yes"));
    EXPECT_EQ(row.get<std::int16_t>(1), -12);
    EXPECT_EQ(row.get<std::int32_t>(2), 1 << 30);
    EXPECT_EQ(row.get<std::int64_t>(3), std::int64_t{1} << 40);
    EXPECT_EQ(row.get<float>(4), 1.5F);
    EXPECT_EQ(row.get<double>(5), -2.25);
    EXPECT_EQ(row.get<std::string>("name"), "héllo");
    EXPECT_EQ(row.get<std::string_view>(6), "héllo");
    EXPECT_EQ(row.get<std::vector<std::byte>>(7), std::vector<std::byte>(raw, raw + 3));
    EXPECT_EQ(row.get<std::chrono::system_clock::time_point>(8), when);
    EXPECT_TRUE(row.is_null(9));
    EXPECT_EQ(row.get<std::optional<std::int32_t>>(9), std::nullopt);
    EXPECT_EQ(row.get<std::optional<std::int64_t>>(10), 7) << "an int4 widens to int64";
    EXPECT_EQ(row.get<std::string>(11), "12.50") << "numeric as its text";
    EXPECT_EQ(row.get<double>(11), 12.5);

    const pg::result n = co_await db.query(
        "SELECT sum(x), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, -0.000123::numeric, "
        "1e20::numeric FROM generate_series(1, 100) AS x");
    EXPECT_EQ(n.at(0).get<std::int64_t>(0), 5050) << "sum(int) is a numeric: read whole";
    EXPECT_EQ(n.at(0).get<std::string>(1), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(n.at(0).get<std::string>(2), "-0.000123");
    EXPECT_EQ(n.at(0).get<std::string>(3), "100000000000000000000");
  }());
}

TEST(PgConnection, UnixSocketAndUrl) {
  corio::run([]() -> corio::task<> {
    const auto& server = corio_tools::pg_server::shared();
    auto over_socket = co_await pg::connection::connect(server.socket_conninfo());
    EXPECT_EQ((co_await over_socket.query("SELECT 1")).at(0).get<std::int32_t>(0), 1);
    auto by_url = co_await pg::connection::connect(
        "postgresql://postgres@127.0.0.1:" + std::to_string(server.port()) + "/postgres");
    EXPECT_EQ((co_await by_url.query("SELECT current_user")).at(0).get<std::string>(0), "postgres");
  }());
}

TEST(PgConnection, AConnectionThatCannotBeMadeSaysWhy) {
  corio::run([]() -> corio::task<> {
    try {
      co_await pg::connection::connect(tcp() + " dbname=no_such_database");
      ADD_FAILURE() << "connected to a database that does not exist";
    } catch (const pg::connection_error& e) {
      EXPECT_NE(std::string(e.what()).find("no_such_database"), std::string::npos) << e.what();
    }
  }());
}

TEST(PgConnection, ReadingAColumnAsTheWrongTypeSaysWhatItHolds) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    const pg::result r =
        co_await db.query("SELECT 5000000000::int8 AS big, 1::int4 AS one, NULL::text AS nothing");
    const pg::row row = r.at(0);
    auto says = [](auto read, const std::string& part) {
      try {
        read();
        ADD_FAILURE() << "no type_error";
      } catch (const pg::type_error& e) {
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      }
    };
    says([&] { (void)row.get<std::int32_t>("big"); }, "\"big\"");
    says([&] { (void)row.get<std::string>("one"); }, "int4");
    says([&] { (void)row.get<std::string>("nothing"); }, "NULL");
    says([&] { (void)row.get<bool>("missing"); }, "no column named \"missing\"");
    says([&] { (void)row.get<bool>(7); }, "no column 7");
    EXPECT_THROW((void)r.at(1), std::out_of_range);
  }());
}

TEST(PgConnection, AServerErrorCarriesItsSqlstateAndTheConnectionGoesOn) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, v text)");
    EXPECT_EQ(co_await db.execute("INSERT INTO t VALUES ($1, $2), ($3, $4)", 1, "a", 2, "b"), 2U);
    try {
      co_await db.execute("INSERT INTO t VALUES ($1, $2)", 1, "again");
      ADD_FAILURE() << "a duplicate key was accepted";
    } catch (const pg::error& e) {
      EXPECT_EQ(e.sqlstate(), "23505");
      EXPECT_NE(e.message().find("duplicate key"), std::string::npos) << e.message();
      EXPECT_NE(e.detail().find("(id)=(1)"), std::string::npos) << e.detail();
    }
    EXPECT_EQ(co_await db.execute("UPDATE t SET v = v || '!'"), 2U);
    const pg::result r = co_await db.query("SELECT v FROM t ORDER BY id");
    std::vector<std::string> values;
    for (const pg::row row : r.rows())
      values.push_back(row.get<std::string>(0));
    EXPECT_EQ(values, (std::vector<std::string>{"a!", "b!"}));
    EXPECT_FALSE(db.broken());
  }());
}

corio::task<std::int64_t> insert_and_read(pg::connection& db, int i) {
  if (i == 50) {  // fails; the others must not notice
    co_return (co_await db.query("SELECT 1 / ($1::int4 - 50)", i)).at(0).get<std::int64_t>(0);
  }
  co_await db.execute("INSERT INTO pipelined VALUES ($1)", i);
  co_return (co_await db.query("SELECT $1::int8 * 2", i)).at(0).get<std::int64_t>(0);
}

TEST(PgConnection, ConcurrentQueriesArePipelinedAndAFailingOneFailsOnlyItself) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE pipelined (id int)");
    const auto before = db.stats();
    std::vector<corio::task<std::int64_t>> tasks;
    tasks.reserve(100);
    for (int i = 0; i < 100; ++i)
      tasks.push_back(insert_and_read(db, i));
    std::vector<corio::join_handle<std::int64_t>> running;
    running.reserve(tasks.size());
    for (auto& t : tasks)
      running.push_back(corio::spawn(std::move(t)));
    EXPECT_EQ(db.pending(), 0U) << "nothing is sent before the tasks run";
    int failed = 0;
    std::int64_t sum = 0;
    for (auto& h : running) {
      try {
        sum += co_await std::move(h);
      } catch (const pg::error& e) {
        EXPECT_EQ(e.sqlstate(), "22012") << e.what();  // division by zero
        ++failed;
      }
    }
    EXPECT_EQ(failed, 1);
    EXPECT_EQ(sum, 2 * (4950 - 50));
    // Each query was its own transaction: the failure rolled back no insert.
    EXPECT_EQ((co_await db.query("SELECT count(*) FROM pipelined")).at(0).get<std::int64_t>(0), 99);
    const auto after = db.stats();
    EXPECT_EQ(after.queries - before.queries, 100U + 99U + 1U);
    EXPECT_LE(after.prepares - before.prepares, 4U) << "each text prepared once";
  }());
}

TEST(PgConnection, PreparedStatementsAreCachedUnderABound) {
  corio::run([]() -> corio::task<> {
    pg::connect_options options;
    options.statement_cache = 2;
    auto db = co_await pg::connection::connect(tcp(), options);
    std::int64_t sum = 0;
    for (int round = 0; round < 3; ++round) {
      for (int k = 1; k <= 3; ++k) {
        const std::string sql = "SELECT $1::int8 * " + std::to_string(k);
        sum += (co_await db.query(sql, round)).at(0).get<std::int64_t>(0);
      }
    }
    EXPECT_EQ(sum, (0 + 1 + 2) * (1 + 2 + 3));
    EXPECT_EQ(db.stats().prepares, 9U) << "three texts in a cache of two: each use a miss";
    EXPECT_EQ(db.stats().evictions, 7U);
    const pg::result left = co_await db.query("SELECT count(*) FROM pg_prepared_statements");
    EXPECT_EQ(left.at(0).get<std::int64_t>(0), 2)
        << "evicted ones are deallocated: the last of the loop's, and the count's own";

    for (int i = 0; i < 3; ++i)
      EXPECT_EQ((co_await db.query("SELECT 41 + $1::int4", 1)).at(0).get<std::int32_t>(0), 42);
    EXPECT_EQ(db.stats().prepares, 11U) << "a repeated text is prepared once";
  }());
}

corio::task<std::string> bad_sql(pg::connection& db) {
  try {
    co_await db.query("SELEC 1");
  } catch (const pg::error& e) {
    co_return e.sqlstate();
  }
  co_return "no error";
}

TEST(PgConnection, ASyntaxErrorFailsEveryQueryOfItsTextWithTheSameError) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    std::vector<corio::task<std::string>> tasks;
    tasks.reserve(3);
    for (int i = 0; i < 3; ++i)
      tasks.push_back(bad_sql(db));
    const auto states = co_await corio::gather(std::move(tasks));
    EXPECT_EQ(states, (std::vector<std::string>{"42601", "42601", "42601"}));
    EXPECT_EQ(co_await bad_sql(db), "42601") << "and again later";
    EXPECT_EQ((co_await db.query("SELECT 2")).at(0).get<std::int32_t>(0), 2);
  }());
}

TEST(PgConnection, ACancelledQueryHasItsResultDroppedAndTheOthersGoOn) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    auto slow = corio::spawn([](pg::connection& db) -> corio::task<> {
      co_await db.query("SELECT pg_sleep(0.05)");
      ADD_FAILURE() << "the cancelled query returned";
    }(db));
    auto next = corio::spawn([](pg::connection& db) -> corio::task<std::int32_t> {
      co_return (co_await db.query("SELECT 7")).at(0).get<std::int32_t>(0);
    }(db));
    co_await corio::yield_now();  // both queries are sent
    EXPECT_EQ(db.pending(), 2U);
    slow.cancel();
    EXPECT_THROW(co_await std::move(slow), corio::cancelled_error);
    EXPECT_EQ(co_await std::move(next), 7);
    EXPECT_EQ(db.stats().dropped, 1U);
    EXPECT_EQ((co_await db.query("SELECT 8")).at(0).get<std::int32_t>(0), 8);
  }());
}

TEST(PgConnection, AServerRestartFailsPendingQueriesClearly) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    auto waiting = corio::spawn(
        [](pg::connection& db) -> corio::task<> { co_await db.query("SELECT pg_sleep(30)"); }(db));
    co_await corio::yield_now();
    EXPECT_EQ(db.pending(), 1U);
    corio_tools::pg_server::shared().restart();  // ends every session at once
    EXPECT_THROW(co_await std::move(waiting), pg::connection_error);
    EXPECT_TRUE(db.broken());
    EXPECT_THROW(co_await db.query("SELECT 1"), pg::connection_error);
    auto again = co_await pg::connection::connect(tcp());
    EXPECT_EQ((co_await again.query("SELECT 3")).at(0).get<std::int32_t>(0), 3);
  }());
}

}  // namespace

namespace {

corio::task<std::int64_t> pooled_user(corio::pool<pg::connection>& db, int t) {
  std::int64_t sum = 0;
  for (int j = 0; j < 10; ++j) {
    auto conn = co_await db.acquire();
    sum += (co_await conn->query("SELECT $1::int8", t * 10 + j)).at(0).get<std::int64_t>(0);
  }
  co_return sum;
}

TEST(PgConnection, APoolLendsConnectionsAndResetsASessionLeftInATransaction) {
  corio::run([]() -> corio::task<> {
    corio::pool_options options;
    options.max_size = 2;
    corio::pool<pg::connection> db(pg::pool_hooks(tcp()), options);
    std::vector<corio::task<std::int64_t>> users;
    users.reserve(20);
    for (int t = 0; t < 20; ++t)
      users.push_back(pooled_user(db, t));
    std::int64_t sum = 0;
    for (const std::int64_t s : co_await corio::gather(std::move(users)))
      sum += s;
    EXPECT_EQ(sum, 199 * 200 / 2);
    EXPECT_LE(db.stats().creations, 2U);
    {
      auto conn = co_await db.acquire();
      co_await conn->execute("CREATE TEMP TABLE left_behind (x int)");
      co_await conn->execute("BEGIN");
      co_await conn->execute("INSERT INTO left_behind VALUES (1)");
      EXPECT_EQ(conn->transaction_status(), pg::transaction_state::in_transaction);
    }  // returned inside a transaction: the pool's reset discards the session
    for (int i = 0; i < 2; ++i) {  // whichever connection comes back
      auto a = co_await db.acquire();
      auto b = co_await db.acquire();
      const std::array<pg::connection*, 2> both = {&*a, &*b};
      for (pg::connection* c : both) {
        EXPECT_EQ(c->transaction_status(), pg::transaction_state::idle);
        const pg::result r =
            co_await c->query("SELECT count(*) FROM pg_tables WHERE tablename = 'left_behind'");
        EXPECT_EQ(r.at(0).get<std::int64_t>(0), 0) << "the temporary table went with DISCARD ALL";
        EXPECT_EQ((co_await c->query("SELECT 5")).at(0).get<std::int32_t>(0), 5)
            << "statements are prepared again after DISCARD ALL";
      }
    }
    co_await db.close();
  }());
}

}  // namespace

namespace {

corio::task<std::int64_t> count_rows(pg::connection& db, const char* table) {
  const std::string sql = std::string("SELECT count(*) FROM ") + table;
  co_return (co_await db.query(sql)).at(0).get<std::int64_t>(0);
}

TEST(PgTransaction, CommitKeepsAndADestroyedOneRollsBack) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE tx (id int)");
    {
      auto tx = co_await db.begin();
      EXPECT_TRUE(tx.active());
      co_await tx.execute("INSERT INTO tx VALUES (1)");
      co_await tx.commit();
      EXPECT_FALSE(tx.active());
    }
    {
      auto tx = co_await db.begin();
      co_await tx.execute("INSERT INTO tx VALUES (2)");
    }  // neither committed nor rolled back
    EXPECT_EQ(co_await count_rows(db, "tx"), 1);
    {
      auto tx = co_await db.begin();
      co_await tx.execute("INSERT INTO tx VALUES (3)");
      co_await tx.rollback();
    }
    EXPECT_EQ(co_await count_rows(db, "tx"), 1);

    pg::transaction_options ro;
    ro.isolation = pg::transaction_options::level::serializable;
    ro.read_only = true;
    auto tx = co_await db.begin(ro);
    EXPECT_EQ((co_await tx.query("SHOW transaction_isolation")).at(0).get<std::string>(0),
              "serializable");
    try {
      co_await tx.execute(
          "CREATE TABLE read_only_refuses (id int)");  // (temp tables may be written)
      ADD_FAILURE() << "a read-only transaction wrote";
    } catch (const pg::error& e) {
      EXPECT_EQ(e.sqlstate(), "25006");
    }
    try {
      co_await tx.query("SELECT 1");
      ADD_FAILURE() << "a failed transaction went on";
    } catch (const pg::error& e) {
      EXPECT_EQ(e.sqlstate(), "25P02");  // in failed transaction
    }
    co_await tx.rollback();
    co_await db.drain();
    EXPECT_EQ(db.transaction_status(), pg::transaction_state::idle);
  }());
}

TEST(PgTransaction, SavepointsNest) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE sp (id int)");
    auto tx = co_await db.begin();
    co_await tx.execute("INSERT INTO sp VALUES (1)");
    {
      auto inner = co_await tx.begin();
      co_await inner.execute("INSERT INTO sp VALUES (2)");
      co_await inner.rollback();
    }
    {
      auto inner = co_await tx.begin();
      co_await inner.execute("INSERT INTO sp VALUES (3)");
      co_await inner.commit();
    }
    {
      auto inner = co_await tx.begin();
      co_await inner.execute("INSERT INTO sp VALUES (4)");
    }  // destroyed: back to the savepoint
    co_await tx.commit();
    const pg::result r = co_await db.query("SELECT id FROM sp ORDER BY id");
    std::vector<std::int32_t> ids;
    for (const pg::row row : r)
      ids.push_back(row.get<std::int32_t>(0));
    EXPECT_EQ(ids, (std::vector<std::int32_t>{1, 3}));
  }());
}

TEST(PgTransaction, OtherTasksWaitUntilTheTransactionEnds) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE waits (id int)");
    auto tx = co_await db.begin();
    co_await tx.execute("INSERT INTO waits VALUES (1)");
    // Sent now, this count would run inside the transaction and see 1 row.
    auto other = corio::spawn(count_rows(db, "waits"));
    auto second = corio::spawn([](pg::connection& db) -> corio::task<std::int64_t> {
      auto tx2 = co_await db.begin();
      co_await tx2.execute("INSERT INTO waits VALUES (3)");
      co_await tx2.commit();
      co_return 0;
    }(db));
    co_await corio::yield_now();
    EXPECT_EQ(db.pending(), 0U) << "the other task's query and BEGIN wait";
    co_await tx.execute("INSERT INTO waits VALUES (2)");
    co_await tx.commit();
    EXPECT_EQ(co_await std::move(other), 2) << "it ran after the commit";
    co_await std::move(second);
    EXPECT_EQ(co_await count_rows(db, "waits"), 3);
  }());
}

TEST(PgTransaction, CancellingItsTaskRollsItBackAndFreesTheConnection) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE cancelled (id int)");
    const std::uint64_t sent = db.stats().queries;
    auto worker = corio::spawn([](pg::connection& db) -> corio::task<> {
      auto tx = co_await db.begin();
      co_await tx.execute("INSERT INTO cancelled VALUES (1)");
      co_await tx.query("SELECT pg_sleep(0.05)");
      co_await tx.commit();
      ADD_FAILURE() << "the cancelled transaction committed";
    }(db));
    while (db.stats().queries < sent + 3)  // BEGIN, the insert, the sleep
      co_await corio::yield_now();
    worker.cancel();
    EXPECT_THROW(co_await std::move(worker), corio::cancelled_error);
    EXPECT_EQ(co_await count_rows(db, "cancelled"), 0);
    co_await db.drain();
    EXPECT_EQ(db.transaction_status(), pg::transaction_state::idle);
  }());
}

}  // namespace

namespace {

// The payloads of the first `count` notifications (their channel checked),
// into `got`. (Into a vector of the caller's: returning the vector from
// this task, GCC 12 at -O2 handed the joiner an uninitialised one.)
corio::task<> collect(corio::async_generator<pg::notification>& events, std::size_t count,
                      std::vector<std::string>& got) {
  while (got.size() < count) {
    auto n = co_await events.next();
    if (!n) break;
    got.push_back(n->channel == "corio events" && n->sender != 0 ? n->payload : "(wrong)");
  }
}

corio::task<std::int64_t> channels_listened(pg::connection& db) {
  co_return (co_await db.query("SELECT count(*) FROM pg_listening_channels()"))
      .at(0)
      .get<std::int64_t>(0);
}

// (A coroutine of its own rather than a block in the test's lambda: GCC 12
// misplaced a block-scoped local of that lambda's frame.)
corio::task<> listen_and_notify(pg::connection& listening, pg::connection& sender) {
  const std::string channel = "corio events";  // a name that needs quoting
  auto events = listening.listen(channel);
  std::vector<std::string> got;
  auto consumer = corio::spawn(collect(events, 3, got));
  const std::uint64_t before = listening.stats().queries;
  while (listening.stats().queries == before || listening.pending() > 0)
    co_await corio::yield_now();      // until LISTEN is answered
  std::vector<std::string> payloads;  // (no braced list of literals across a co_await: GCC 12)
  payloads.emplace_back("one");
  payloads.emplace_back("two");
  payloads.emplace_back("three");
  for (const std::string& payload : payloads)
    co_await sender.execute("SELECT pg_notify($1, $2)", channel, payload);
  co_await sender.execute("SELECT pg_notify('elsewhere', 'not for us')");
  co_await std::move(consumer);
  EXPECT_EQ(got, payloads);
  EXPECT_EQ(co_await channels_listened(listening), 1);
}

TEST(PgListen, NotificationsArriveInOrderAndEndingTheStreamUnlistens) {
  corio::run([]() -> corio::task<> {
    auto listening = co_await pg::connection::connect(tcp());
    auto sender = co_await pg::connection::connect(tcp());
    co_await listen_and_notify(listening, sender);  // its stream ends: UNLISTEN
    EXPECT_EQ(co_await channels_listened(listening), 0);

    auto events = listening.listen(std::string("closing"));
    std::vector<std::string> got;
    auto consumer = corio::spawn(collect(events, 1, got));
    co_await corio::yield_now();
    listening.close();
    EXPECT_THROW(co_await std::move(consumer), pg::connection_error);
  }());
}

}  // namespace

namespace {

corio::task<std::int64_t> sum_stream(corio::async_generator<pg::row> rows, std::int64_t& count) {
  std::int64_t sum = 0;
  while (auto r = co_await rows.next()) {
    sum += r->get<std::int64_t>(0);
    ++count;
  }
  co_return sum;
}

TEST(PgStream, RowsComeOneByOneWithOtherQueriesPipelinedAround) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    auto before = corio::spawn([](pg::connection& db) -> corio::task<std::int32_t> {
      co_return (co_await db.query("SELECT 1")).at(0).get<std::int32_t>(0);
    }(db));
    co_await corio::yield_now();  // "SELECT 1" is in flight: the stream's query goes behind it
    std::int64_t count = 0;
    const std::int64_t sum = co_await sum_stream(
        db.stream("SELECT x::int8 FROM generate_series(1, $1::int4) AS x", 50000), count);
    EXPECT_EQ(count, 50000);
    EXPECT_EQ(sum, std::int64_t{50000} * 50001 / 2);
    EXPECT_EQ(co_await std::move(before), 1);
    EXPECT_EQ((co_await db.query("SELECT 2")).at(0).get<std::int32_t>(0), 2);
  }());
}

TEST(PgStream, ASlowConsumerPausesTheReaderAndAnAbandonedStreamDropsTheRest) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    {
      auto rows = db.stream("SELECT x, repeat('x', 100) FROM generate_series(1, 200000) AS x");
      std::int64_t seen = 0;
      while (auto r = co_await rows.next()) {
        if (++seen == 10) {
          // The consumer dawdles: the reader fills the stream's queue to its
          // bound and then reads nothing more (22 MB wait in the socket).
          for (int i = 0; i < 100; ++i)
            co_await corio::yield_now();
          const std::uint64_t reads = db.stats().reads;
          for (int i = 0; i < 100; ++i)
            co_await corio::yield_now();
          EXPECT_EQ(db.stats().reads, reads) << "a paused reader reads no more";
        }
        if (seen == 5000) break;  // abandon the stream
      }
      EXPECT_EQ(seen, 5000);
    }
    EXPECT_EQ((co_await db.query("SELECT 3")).at(0).get<std::int32_t>(0), 3)
        << "the rest of the stream's rows were dropped, the connection goes on";
    auto failing = db.stream("SELECT 1 / (x - 3) FROM generate_series(1, 5) AS x");
    std::int64_t got = 0;
    try {
      while (auto r = co_await failing.next())
        ++got;
      ADD_FAILURE() << "no error";
    } catch (const pg::error& e) {
      EXPECT_EQ(e.sqlstate(), "22012");
    }
    EXPECT_LE(got, 2);
  }());
}

}  // namespace

namespace {

corio::async_generator<std::string> csv_rows(int count, bool fail_half_way) {
  for (int i = 1; i <= count; ++i) {
    if (fail_half_way && i == count / 2) throw std::runtime_error("the source broke");
    co_yield std::to_string(i) + ",name " + std::to_string(i) + "\n";
  }
}

TEST(PgCopy, InFromAGeneratorAndOutAsOne) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE copied (id int, name text)");
    EXPECT_EQ(co_await db.copy_in("COPY copied FROM STDIN (FORMAT csv)", csv_rows(10000, false)),
              10000U);
    EXPECT_EQ(co_await count_rows(db, "copied"), 10000);

    auto out =
        db.copy_out("COPY (SELECT id, name FROM copied WHERE id <= 3 ORDER BY id) TO STDOUT");
    std::vector<std::string> lines;
    while (auto line = co_await out.next())
      lines.push_back(*line);
    std::vector<std::string> expected;  // (no braced list of literals in a coroutine: GCC 12)
    for (int i = 1; i <= 3; ++i)
      expected.push_back(std::to_string(i) + "\tname " + std::to_string(i) + "\n");
    EXPECT_EQ(lines, expected);
    EXPECT_EQ((co_await db.query("SELECT 4")).at(0).get<std::int32_t>(0), 4)
        << "queries go on after the COPYs";
  }());
}

TEST(PgCopy, AFailingSourceAbortsTheCopyAndTheConnectionGoesOn) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE half (id int, name text)");
    EXPECT_THROW(co_await db.copy_in("COPY half FROM STDIN (FORMAT csv)", csv_rows(1000, true)),
                 std::runtime_error);
    EXPECT_EQ(co_await count_rows(db, "half"), 0) << "the COPY was rolled back";
    try {
      co_await db.copy_in("COPY half FROM STDIN (FORMAT csv)", csv_rows(0, false));
      co_await db.copy_in("COPY no_such_table FROM STDIN", csv_rows(1, false));
      ADD_FAILURE() << "a COPY into no table";
    } catch (const pg::error& e) {
      EXPECT_EQ(e.sqlstate(), "42P01");
    }
    EXPECT_EQ(co_await count_rows(db, "half"), 0);
  }());
}

TEST(PgCopy, OtherQueriesWaitForTheCopy) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE during (id int, name text)");
    auto copy =
        corio::spawn(db.copy_in("COPY during FROM STDIN (FORMAT csv)", csv_rows(5000, false)));
    co_await corio::yield_now();
    const std::int64_t seen = co_await count_rows(db, "during");  // waits until the COPY ends
    EXPECT_EQ(seen, 5000);
    EXPECT_EQ(co_await std::move(copy), 5000U);
  }());
}

}  // namespace

namespace {

TEST(PgCancel, ACancelledRunningQueryIsCancelledOnTheServer) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    auto sleeper = corio::spawn(
        [](pg::connection& db) -> corio::task<> { co_await db.query("SELECT pg_sleep(60)"); }(db));
    auto watcher = co_await pg::connection::connect(tcp());
    // Until the server runs it (bounded: 2,000 looks, 10 s).
    for (int look = 0; look < 2000; ++look) {
      const pg::result r = co_await watcher.query(
          "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = "
          "'active'");
      if (r.at(0).get<std::int64_t>(0) == 1) break;
      co_await corio::sleep(std::chrono::milliseconds(5));
    }
    sleeper.cancel();
    EXPECT_THROW(co_await std::move(sleeper), corio::cancelled_error);
    // Without the cancel request this would wait out the minute.
    auto five = [](pg::connection& db) -> corio::task<std::int32_t> {
      co_return (co_await db.query("SELECT 5")).at(0).get<std::int32_t>(0);
    };
    EXPECT_EQ(co_await corio::timeout(std::chrono::seconds(20), five(db)), 5);
    EXPECT_EQ(db.stats().cancels, 1U);
    EXPECT_EQ(db.stats().dropped, 1U);
    EXPECT_FALSE(db.broken());
  }());
}

}  // namespace

namespace {

TEST(PgConnection, TheConnectTimeoutBoundsTheSetUp) {
  corio::run([]() -> corio::task<> {
    pg::connect_options options;
    options.connect_timeout = std::chrono::nanoseconds(0);  // passed at the first wait
    EXPECT_THROW(co_await pg::connection::connect(tcp(), options), corio::timeout_error);
  }());
}

TEST(PgConnection, APoolValidatesAnIdleConnectionAndDropsOneTheServerEnded) {
  corio::run([]() -> corio::task<> {
    corio::pool_options options;
    options.max_size = 1;
    options.validate_after_idle = std::chrono::nanoseconds(0);  // every lease is validated
    corio::pool<pg::connection> db(pg::pool_hooks(tcp()), options);
    std::int32_t pid = 0;
    {
      auto conn = co_await db.acquire();
      pid = (co_await conn->query("SELECT pg_backend_pid()")).at(0).get<std::int32_t>(0);
    }
    auto admin = co_await pg::connection::connect(tcp());
    EXPECT_TRUE((co_await admin.query("SELECT pg_terminate_backend($1)", pid)).at(0).get<bool>(0));
    bool gone = false;
    for (int look = 0; look < 2000 && !gone; ++look) {  // bounded: 10 s
      const pg::result r =
          co_await admin.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid);
      gone = r.at(0).get<std::int64_t>(0) == 0;
      if (!gone) co_await corio::sleep(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(gone);
    {
      auto conn = co_await db.acquire();  // the dead one fails validation; a new one comes
      EXPECT_NE((co_await conn->query("SELECT pg_backend_pid()")).at(0).get<std::int32_t>(0), pid);
    }
    EXPECT_EQ(db.stats().validation_failures, 1U);
    EXPECT_EQ(db.stats().creations, 2U);
    co_await db.close();
  }());
}

TEST(PgCopy, AnAbandonedCopyOutDropsTheRestAndTheConnectionGoesOn) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    {
      auto out = db.copy_out("COPY (SELECT x FROM generate_series(1, 100000) AS x) TO STDOUT");
      auto first = co_await out.next();
      EXPECT_TRUE(first.has_value());
      if (first) {
        EXPECT_EQ(*first, "1\n");
      }
    }  // ended half-way: the server is still sending the COPY
    EXPECT_FALSE(db.broken());
    EXPECT_EQ((co_await db.query("SELECT 5")).at(0).get<std::int32_t>(0), 5)
        << "the rest of the COPY's data was read and dropped";
    EXPECT_EQ(db.transaction_status(), pg::transaction_state::idle);
  }());
}

// A source that yields `before` rows, then waits for good.
corio::async_generator<std::string> stalling_rows(int before) {
  for (int i = 1; i <= before; ++i)
    co_yield std::to_string(i) + ",row\n";
  co_await corio::sleep(std::chrono::hours(1));
}

TEST(PgCopy, ACancelledCopyInIsAbortedAndTheConnectionGoesOn) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE interrupted (id int, name text)");
    auto copy =
        corio::spawn(db.copy_in("COPY interrupted FROM STDIN (FORMAT csv)", stalling_rows(100)));
    // Until the COPY is under way: the server took its data's start.
    while (db.stats().flushes < 3)
      co_await corio::yield_now();
    copy.cancel();
    EXPECT_THROW(co_await std::move(copy), corio::cancelled_error);
    EXPECT_FALSE(db.broken());
    EXPECT_EQ(co_await count_rows(db, "interrupted"), 0) << "the server aborted the COPY";
    EXPECT_EQ(co_await db.copy_in("COPY interrupted FROM STDIN (FORMAT csv)", csv_rows(3, false)),
              3U)
        << "and takes the next";
  }());
}

}  // namespace

namespace {

corio::task<std::int32_t> echo(pg::connection& db, std::int32_t v) {
  co_return (co_await db.query("SELECT $1::int4", v)).at(0).get<std::int32_t>(0);
}

// Sums what `count` tasks, started together, get back from `echo`.
corio::task<std::int64_t> echo_all(pg::connection& db, int count) {
  std::vector<corio::task<std::int32_t>> tasks;
  tasks.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    tasks.push_back(echo(db, i));
  std::int64_t sum = 0;
  for (const std::int32_t v : co_await corio::gather(std::move(tasks)))
    sum += v;
  co_return sum;
}

TEST(PgConnection, QueriesOfOneTickLeaveInOneSend) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    EXPECT_EQ(co_await echo(db, 1), 1);  // prepared and cached
    const auto before = db.stats();
    EXPECT_EQ(co_await echo_all(db, 50), 49 * 50 / 2);
    const auto after = db.stats();
    EXPECT_EQ(after.queries - before.queries, 50U);
    // The 50 tasks ran in one tick: their queries, each with its own Sync,
    // went out in one send (libpq 15 would have made 50).
    EXPECT_EQ(after.flushes - before.flushes, 1U);
  }());
}

TEST(PgCopy, ACopyThroughQueryClosesTheConnectionWithAClearError) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    co_await db.execute("CREATE TEMP TABLE not_this_way (id int)");
    try {
      co_await db.execute("COPY not_this_way FROM STDIN");
      ADD_FAILURE() << "a COPY through execute()";
    } catch (const pg::connection_error& e) {
      EXPECT_NE(std::string(e.what()).find("copy_in"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(db.broken());
  }());
}

std::string tls() {
  return corio_tools::pg_server::shared().tls_conninfo();
}

corio::task<> notify_three(pg::connection& sender) {
  for (int i = 1; i <= 3; ++i)
    co_await sender.execute("SELECT pg_notify('corio events', $1)", std::to_string(i));
}

// Everything a connection does, over TLS (libpq's OpenSSL session, which
// corio reads and writes): the reads of a large stream span many records.
TEST(PgTls, QueriesStreamsNotificationsAndCopyWorkOverTls) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tls());
    auto sender = co_await pg::connection::connect(tls());
    EXPECT_TRUE((co_await db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
                    .at(0)
                    .get<bool>(0));
    EXPECT_EQ((co_await db.query("SELECT $1::text || $2::int8", std::string("n"), 7))
                  .at(0)
                  .get<std::string>(0),
              "n7");
    EXPECT_EQ(co_await echo_all(db, 100), 99 * 100 / 2);

    std::int64_t count = 0;
    const std::int64_t sum = co_await sum_stream(
        db.stream("SELECT x::int8, repeat('x', 200) FROM generate_series(1, 50000) AS x"), count);
    EXPECT_EQ(count, 50000);
    EXPECT_EQ(sum, std::int64_t{50000} * 50001 / 2);

    auto events = db.listen(std::string("corio events"));  // the channel collect() checks
    std::vector<std::string> got;
    auto consumer = corio::spawn(collect(events, 3, got));
    const std::uint64_t before = db.stats().queries;
    while (db.stats().queries == before || db.pending() > 0)
      co_await corio::yield_now();  // until LISTEN is answered
    co_await notify_three(sender);
    co_await std::move(consumer);
    std::vector<std::string> expected;
    for (int i = 1; i <= 3; ++i)
      expected.push_back(std::to_string(i));
    EXPECT_EQ(got, expected);

    co_await db.execute("CREATE TEMP TABLE tls_copied (id int, name text)");
    EXPECT_EQ(co_await db.copy_in("COPY tls_copied FROM STDIN (FORMAT csv)", csv_rows(2000, false)),
              2000U);
    std::int64_t lines = 0;
    auto out = db.copy_out("COPY tls_copied TO STDOUT");
    while (auto line = co_await out.next())
      ++lines;
    EXPECT_EQ(lines, 2000);
    EXPECT_EQ(co_await count_rows(db, "tls_copied"), 2000) << "queries go on after the COPYs";
  }());
}

}  // namespace

namespace {

TEST(PgStream, AConnectionInAnotherTasksTransactionIsRefused) {
  corio::run([]() -> corio::task<> {
    auto db = co_await pg::connection::connect(tcp());
    auto tx = co_await db.begin();
    EXPECT_THROW((void)db.stream("SELECT 1"), std::logic_error)
        << "the stream's query would run inside the transaction";
    co_await tx.rollback();
    std::int64_t count = 0;
    EXPECT_EQ(co_await sum_stream(db.stream("SELECT 7::int8"), count), 7)
        << "free again once it ended";
  }());
}

// Counts the notifications a listener yields before it fails. (A pass
// through the loop every 1,024: queued items come back by symmetric
// transfer, which sanitizer builds do not turn into tail calls, so 65,536
// in a row would overflow the stack there.)
corio::task<> count_until_failure(corio::async_generator<pg::notification>& events,
                                  std::int64_t& count, bool& failed) {
  try {
    while (auto n = co_await events.next()) {
      if (++count % 1024 == 0) co_await corio::yield_now();
    }
  } catch (const pg::connection_error&) {
    failed = true;
  }
}

corio::task<> first_notification(corio::async_generator<pg::notification>& events,
                                 std::string& payload) {
  if (auto n = co_await events.next()) payload = n->payload;
}

TEST(PgListen, AListenerTooFarBehindFailsAfterWhatItKept) {
  corio::run([]() -> corio::task<> {
    auto listening = co_await pg::connection::connect(tcp());
    auto events = listening.listen(std::string("flood"));
    std::string payload;
    auto first = corio::spawn(first_notification(events, payload));  // runs LISTEN, then waits
    const std::uint64_t before = listening.stats().queries;
    while (listening.stats().queries == before || listening.pending() > 0)
      co_await corio::yield_now();  // until LISTEN is answered
    co_await listening.execute("NOTIFY flood, 'start'");
    co_await std::move(first);
    EXPECT_EQ(payload, "start");
    // One transaction of 70,001 distinct notifications to this session
    // itself, delivered before the statement's end; nobody reads them.
    co_await listening.execute(
        "SELECT pg_notify('flood', x::text) FROM generate_series(0, 70000) AS x");
    co_await listening.execute("SELECT 1");
    std::int64_t count = 0;
    bool failed = false;
    co_await count_until_failure(events, count, failed);
    EXPECT_TRUE(failed);
    EXPECT_EQ(count, 65536) << "what the listener kept: its bound";
  }());
}

}  // namespace

namespace {

// Until the server runs `sql` on some session (bounded: 2,000 looks, 10 s).
corio::task<> until_running(pg::connection& watcher, std::string sql) {
  for (int look = 0; look < 2000; ++look) {
    const pg::result r = co_await watcher.query(
        "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", sql);
    if (r.at(0).get<std::int64_t>(0) == 1) co_return;
    co_await corio::sleep(std::chrono::milliseconds(5));
  }
}

// The cancel request goes where the connection went: over the Unix socket,
// whose file is moved away meanwhile, so the request cannot connect.
TEST(PgCancel, ACancelRequestThatFailsClosesTheConnection) {
  const corio_tools::pg_server& server = corio_tools::pg_server::shared();
  const std::string socket_file =
      server.socket_dir() + "/.s.PGSQL." + std::to_string(server.port());
  corio::run([&socket_file]() -> corio::task<> {
    auto db = co_await pg::connection::connect(corio_tools::pg_server::shared().socket_conninfo());
    auto sleeper = corio::spawn(
        [](pg::connection& db) -> corio::task<> { co_await db.query("SELECT pg_sleep(30)"); }(db));
    auto watcher = co_await pg::connection::connect(tcp());
    co_await until_running(watcher, "SELECT pg_sleep(30)");
    std::filesystem::rename(socket_file, socket_file + ".away");
    sleeper.cancel();
    EXPECT_THROW(co_await std::move(sleeper), corio::cancelled_error);
    for (int look = 0; look < 2000 && !db.broken(); ++look)
      co_await corio::sleep(std::chrono::milliseconds(5));  // the request runs on a thread
    std::filesystem::rename(socket_file + ".away", socket_file);
    EXPECT_TRUE(db.broken());
    try {
      co_await db.query("SELECT 1");
      ADD_FAILURE() << "a query on a closed connection";
    } catch (const pg::connection_error& e) {
      EXPECT_NE(std::string(e.what()).find("cancel request"), std::string::npos) << e.what();
    }
    EXPECT_EQ(db.stats().cancels, 0U);
  }());
}

}  // namespace
