#include "backends.hpp"

#include <charconv>
#include <chrono>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "item.hpp"

namespace service {
namespace {

using namespace std::chrono_literals;

corio::redis::connection_options redis_options(const std::string& address) {
  corio::redis::connection_options o;
  o.client_name = "corio_service";
  o.connect_timeout = 5s;
  o.reconnect = true;  // a restarted Redis is a few cache misses, not an outage
  if (address.starts_with('/')) {
    o.unix_socket = address;
    return o;
  }
  const auto colon = address.rfind(':');
  o.host = address.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string_view port = std::string_view(address).substr(colon + 1);
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), o.port);
    if (ec != std::errc() || end != port.data() + port.size() || o.host.empty()) {
      throw std::invalid_argument("--redis: expected HOST:PORT or a Unix socket path, got '" +
                                  address + "'");
    }
  }
  return o;
}

// The batch function's work: the keys of one tick, one MGET. A coroutine
// of its own taking everything by value (not a coroutine lambda), so that
// nothing it uses dies with the batcher's std::function.
corio::task<std::vector<std::optional<std::string>>> mget_items(corio::redis::connection* redis,
                                                                corio::profiler* prof,
                                                                std::vector<std::int32_t> ids) {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const std::int32_t id : ids)
    keys.push_back(cache_key(id));
  auto timing = prof->measure("redis.mget");
  co_return co_await redis->mget(keys);
}

corio::pool_options pool_options_for(const config& c, std::size_t loop) {
  corio::pool_options o;
  o.name = "pg (loop " + std::to_string(loop) + ")";
  o.max_size = c.pg_connections;
  // A request waits at most this for a connection, then answers 503.
  o.acquire_timeout = 5s;
  return o;
}

corio::task<const corio::pool<corio::pg::connection>*> open_loop(backends* app) {
  loop_backends& b = app->local();
  const config& c = app->settings();
  corio::redis::connection_options redis = redis_options(c.redis);
  std::string failed;
  try {
    b.redis = co_await corio::redis::connection::connect(std::move(redis));
  } catch (const std::exception& e) {
    failed = "cannot connect to Redis at " + c.redis + ": " + e.what();
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  try {
    auto lease = co_await b.db.acquire();
  } catch (const std::exception& e) {
    failed = std::string("cannot connect to PostgreSQL: ") + e.what();
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  co_return &b.db;
}

corio::task<> close_loop(backends* app) {
  loop_backends& b = app->local();
  co_await b.db.close(5s);
  b.redis.close();
}

std::string loop_figures(backends* app, std::size_t loop) {
  loop_backends& b = app->local();
  const corio::batcher_stats& cache = b.cache_reads.stats();
  const corio::redis::connection_stats redis = b.redis.stats();
  const corio::pool_stats db = b.db.stats();
  return "{\"loop\":" + std::to_string(loop) +
         ",\"in_flight\":" + std::to_string(b.gate.in_flight()) +
         ",\"cache_loads\":" + std::to_string(cache.loads) +
         ",\"cache_batches\":" + std::to_string(cache.batches) +
         ",\"cache_keys\":" + std::to_string(cache.keys) +
         ",\"largest_batch\":" + std::to_string(cache.max_keys) +
         ",\"cache_errors\":" + std::to_string(b.cache_errors) +
         ",\"redis_commands\":" + std::to_string(redis.commands) +
         ",\"redis_writes\":" + std::to_string(redis.writes) +
         ",\"pg_connections\":" + std::to_string(db.size) +
         ",\"pg_acquires\":" + std::to_string(db.acquires) + "}";
}

}  // namespace

loop_backends::loop_backends(const config& c, std::size_t loop, corio::profiler& prof)
    : db(corio::pg::pool_hooks(c.pg), pool_options_for(c, loop)),
      cache_reads(decltype(cache_reads)::batch_function(
          [this, p = &prof](std::span<const std::int32_t> ids) {
            return mget_items(&redis, p, std::vector<std::int32_t>(ids.begin(), ids.end()));
          })) {}

backends::backends(config c)
    : m_config(std::move(c)), m_loops([this] {
        return std::make_unique<loop_backends>(m_config, corio::this_loop_index(), m_profiler);
      }) {}

corio::task<std::vector<const corio::pool<corio::pg::connection>*>> backends::open_every_loop() {
  std::vector<const corio::pool<corio::pg::connection>*> pools;
  for (std::size_t i = 0; i < corio::loop_count(); ++i) {
    // One loop after the other: a failure names the first address that
    // does not answer, once.
    const corio::pool<corio::pg::connection>* p =
        co_await corio::submit_to(i, [this] { return open_loop(this); });
    pools.push_back(p);
  }
  co_return pools;
}

corio::task<> backends::close_every_loop() {
  if (std::exchange(m_closed, true)) co_return;
  co_await corio::invoke_on_all([this](std::size_t) { return close_loop(this); });
  co_await m_loops.clear();
}

corio::task<std::string> backends::figures_json() {
  std::string out = "[";
  for (std::size_t i = 0; i < corio::loop_count(); ++i) {
    std::string one = co_await corio::submit_to(i, [this, i] { return loop_figures(this, i); });
    if (i != 0) out += ',';
    out += one;
  }
  co_return out + "]";
}

}  // namespace service
