// pg::connection against a real PostgreSQL 15 (tools/common/pg_server.hpp):
// parameters and results of every supported type, type errors, server
// errors with SQLSTATE, pipelined queries of many tasks where a failing one
// fails only itself, the prepared-statement cache and its bound,
// cancellation of one pipelined query, and a server restart.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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
