#include "catalog.hpp"

#include <bit>
#include <chrono>
#include <cstdio>
#include <exception>
#include <utility>

namespace service {
namespace {

using namespace std::chrono_literals;

// A query slower than this answers 503 rather than holding the client.
constexpr auto k_db_timeout = 5s;

corio::task<std::optional<item>> select_item(loop_backends* b, corio::profiler* prof,
                                             std::int32_t id) {
  auto timing = prof->measure("pg.select_item");
  auto conn = co_await b->db.acquire();
  const corio::pg::result r =
      co_await conn->query("SELECT id, name, price_cents FROM items WHERE id = $1", id);
  if (r.empty()) co_return std::nullopt;
  const corio::pg::row row = r.at(0);
  item it;
  it.id = row.get<std::int32_t>(0);
  it.name = row.get<std::string>(1);
  it.price_cents = row.get<std::int64_t>(2);
  co_return it;
}

// Powers of two only: a Redis outage must not flood the log.
void report_cache_error(loop_backends& b, const std::exception& e) {
  if (std::has_single_bit(++b.cache_errors)) {
    std::fprintf(stderr, "corio_service: loop %zu: Redis failed (%llu times so far): %s\n",
                 corio::this_loop_index(), static_cast<unsigned long long>(b.cache_errors),
                 e.what());
  }
}

}  // namespace

const char* to_string(cache_outcome c) noexcept {
  switch (c) {
    case cache_outcome::hit:
      return "hit";
    case cache_outcome::miss:
      return "miss";
    case cache_outcome::bypass:
      return "bypass";
  }
  return "?";
}

corio::task<lookup> find_item(backends& app, loop_backends& b, std::int32_t id) {
  std::optional<std::string> cached;
  bool cache_up = true;
  try {
    cached = co_await b.cache_reads.load(id);
  } catch (const corio::cancelled_error&) {
    throw;
  } catch (const std::exception& e) {
    cache_up = false;
    report_cache_error(b, e);
  }
  if (cached) {
    if (std::optional<item> it = from_cache(id, *cached)) {
      co_return lookup{std::move(it), cache_outcome::hit};
    }
  }
  std::optional<item> found =
      co_await corio::timeout(k_db_timeout, select_item(&b, &app.profiler(), id));
  if (found && cache_up) {
    const std::string key = cache_key(id);
    const std::string value = to_cache(*found);
    try {
      co_await b.redis.set(key, value, std::chrono::seconds(app.settings().cache_ttl_seconds));
    } catch (const corio::cancelled_error&) {
      throw;
    } catch (const std::exception& e) {
      report_cache_error(b, e);
    }
  }
  co_return lookup{std::move(found), cache_up ? cache_outcome::miss : cache_outcome::bypass};
}

corio::task<> prepare_schema(std::string conninfo) {
  std::optional<corio::pg::connection> db;
  std::string failed;
  try {
    corio::pg::connection c = co_await corio::pg::connection::connect(std::move(conninfo));
    db.emplace(std::move(c));
  } catch (const corio::pg::connection_error& e) {
    failed = std::string("cannot connect to PostgreSQL: ") + e.what();
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  co_await db->execute(
      "CREATE TABLE IF NOT EXISTS items ("
      "id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL)");
  // Names and prices made up from the id, so that every run has the same
  // catalogue; only into an empty table, so that edits survive restarts.
  const std::uint64_t seeded = co_await db->execute(
      "INSERT INTO items (id, name, price_cents) "
      "SELECT g, (ARRAY['Brass','Oak','Linen','Copper','Glass','Wool','Slate','Cedar'])"
      "[1 + g % 8] || ' ' || "
      "(ARRAY['Lamp','Chair','Kettle','Bowl','Clock','Rug','Shelf','Vase','Desk'])[1 + g % 9], "
      "199 + (g * 7919) % 20000 "
      "FROM generate_series(1, 1000) AS g "
      "WHERE NOT EXISTS (SELECT 1 FROM items) "
      "ON CONFLICT (id) DO NOTHING");
  if (seeded > 0) std::printf("corio_service: seeded %llu items\n", (unsigned long long)seeded);
}

}  // namespace service
