// Chapter: a Redis client. The guide's handlers open a connection per
// request; corio shares one connection among all tasks and writes every
// command of a loop tick in one send (automatic pipelining). On a real
// redis-server that the tour starts in a temporary directory and stops at
// the end. Then corio::batcher turns concurrent GETs into MGETs.
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"
#include "redis_server.hpp"

namespace corio_demo {
namespace {

constexpr int k_tasks = 100;
constexpr int k_gets_per_task = 50;
constexpr int k_keys = 1000;

std::string key_of(int i) {
  std::string k = std::to_string(i % k_keys);
  k.insert(0, "tour:k");
  return k;
}

corio::redis::connection_options server() {
  corio::redis::connection_options o;
  o.port = corio_tools::redis_server::shared().port();
  return o;
}

corio::task<> fill(corio::redis::connection& c) {
  std::vector<std::vector<std::string>> sets;
  sets.reserve(k_keys);
  for (int i = 0; i < k_keys; ++i)
    sets.push_back({"SET", key_of(i), std::string(64, 'v')});
  co_await c.send_all(sets);
}

/// What a variant measured.
struct redis_run {
  double seconds = 0;
  u64 hits = 0;
  u64 connections = 0;
  u64 syscalls = 0;  // loop_stats::syscalls: every read, write, connect and poll
};

// Before: each request opens its own connection, GETs, and closes it.
corio::task<u64> per_request_client(int task) {
  u64 hits = 0;
  for (int j = 0; j < k_gets_per_task; ++j) {
    auto c = co_await corio::redis::connection::connect(server());
    if (co_await c.get(key_of(task * 7919 + j))) ++hits;
  }
  co_return hits;
}

// After: every task on the one shared connection.
corio::task<u64> shared_client(corio::redis::connection& c, int task) {
  u64 hits = 0;
  for (int j = 0; j < k_gets_per_task; ++j) {
    if (co_await c.get(key_of(task * 7919 + j))) ++hits;
  }
  co_return hits;
}

redis_run run_gets(bool shared) {
  redis_run out;
  corio::run([](bool shared, redis_run& out) -> corio::task<> {
    auto c = co_await corio::redis::connection::connect(server());
    co_await fill(c);
    corio::event_loop& loop = *corio::event_loop::current();
    const u64 calls0 = loop.stats().syscalls;
    const auto t0 = steady::now();
    std::vector<corio::task<u64>> clients;
    clients.reserve(k_tasks);
    for (int t = 0; t < k_tasks; ++t)
      clients.push_back(shared ? shared_client(c, t) : per_request_client(t));
    for (const u64 h : co_await corio::gather(std::move(clients)))
      out.hits += h;
    out.seconds = since(t0);
    out.connections = shared ? 1 : static_cast<u64>(k_tasks) * k_gets_per_task;
    out.syscalls = loop.stats().syscalls - calls0;
  }(shared, out));
  return out;
}

// ---- batching: concurrent GETs of 100 users become MGETs -----------------

constexpr int k_lookups = 1000;
constexpr int k_users = 100;

using user_batcher = corio::batcher<std::string, std::optional<std::string>>;

corio::task<u64> lookup(corio::redis::connection& c, user_batcher* users, int i) {
  const std::string key = key_of(i % k_users);
  std::optional<std::string> v;
  if (users != nullptr) {  // (not one ?: with a co_await on each side: GCC 12 miscompiles it)
    v = co_await users->load(key);
  } else {
    v = co_await c.get(key);
  }
  co_return v ? v->size() : 0;
}

/// Commands the server received, and the sum of the values' sizes.
std::pair<u64, u64> run_lookups(bool batched) {
  std::pair<u64, u64> out;
  corio::run([](bool batched, std::pair<u64, u64>& out) -> corio::task<> {
    auto c = co_await corio::redis::connection::connect(server());
    user_batcher users{user_batcher::batch_function(
        [&c](std::span<const std::string> keys) { return c.mget(keys); })};
    const auto before = c.stats().commands;
    std::vector<corio::task<u64>> lookups;
    lookups.reserve(k_lookups);
    for (int i = 0; i < k_lookups; ++i)
      lookups.push_back(lookup(c, batched ? &users : nullptr, i));
    for (const u64 size : co_await corio::gather(std::move(lookups)))
      out.second += size;
    out.first = c.stats().commands - before;
  }(batched, out));
  return out;
}

void run_chapter(report& report) {
  report.heading("a Redis client: %d tasks x %d GETs on a redis-server of its own (port %u)",
                 k_tasks, k_gets_per_task,
                 static_cast<unsigned>(corio_tools::redis_server::shared().port()));
  progress("before: a connection per request (connect, GET, close)");
  const redis_run a = run_gets(false);
  progress("after: one corio::redis::connection shared by every task");
  const redis_run b = run_gets(true);
  report.check_same(a.hits, b.hits);
  const double gets = static_cast<double>(k_tasks) * k_gets_per_task;
  report.add("GETs per second", fmt("%.0f", gets / a.seconds), fmt("%.0f", gets / b.seconds),
             fmt("%.1fx faster", a.seconds / b.seconds));
  report.add(
      "connections opened", fmt("%.0f", static_cast<double>(a.connections)),
      fmt("%.0f", static_cast<double>(b.connections)),
      fmt("%.0fx fewer", static_cast<double>(a.connections) / static_cast<double>(b.connections)));
  // (socket() and close() are not I/O calls of the loop: the "before" count
  // leaves them out, so it is the lower bound of its cost.)
  const double calls_a = static_cast<double>(a.syscalls) / gets;
  const double calls_b = static_cast<double>(b.syscalls) / gets;
  report.add("I/O system calls per GET", fmt("%.2f", calls_a), fmt("%.3f", calls_b),
             fmt("%.0fx fewer", calls_a / calls_b));

  progress("before: 1,000 concurrent GETs of 100 users");
  const auto [commands_a, sum_a] = run_lookups(false);
  progress("after: the same through a batcher whose batch function is MGET");
  const auto [commands_b, sum_b] = run_lookups(true);
  report.check_same(sum_a, sum_b);
  report.add("commands for 1,000 lookups", fmt("%.0f", static_cast<double>(commands_a)),
             fmt("%.0f", static_cast<double>(commands_b)),
             fmt("%.0fx fewer", static_cast<double>(commands_a) / static_cast<double>(commands_b)));
}

const registrar k_registered{{"redis", 1000, run_chapter}};

}  // namespace
}  // namespace corio_demo
