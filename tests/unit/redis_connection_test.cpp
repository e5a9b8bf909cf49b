// redis::connection against a real redis-server (tests/support): commands
// and helpers, RESP3 and RESP2, automatic pipelining, error replies,
// cancellation of one command in a pipeline, a timeout, the server closing
// the connection mid-pipeline, and reconnecting after a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "corio/corio.hpp"
#include "free_port.hpp"
#include "redis_server.hpp"

using namespace std::chrono_literals;
namespace redis = corio::redis;

namespace {

redis::connection_options tcp_options() {
  redis::connection_options o;
  o.port = corio_tools::redis_server::shared().port();
  return o;
}

redis::connection_options unix_options() {
  redis::connection_options o;
  o.unix_socket = corio_tools::redis_server::shared().socket_path();
  return o;
}

TEST(RedisConnection, CommandsAndHelpers) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    EXPECT_EQ(c.protocol(), 3);
    EXPECT_TRUE(co_await c.set("conn:a", "1"));
    EXPECT_EQ(co_await c.get("conn:a"), "1");
    EXPECT_EQ(co_await c.get("conn:missing"), std::nullopt);
    EXPECT_EQ(co_await c.incr("conn:a"), 2);
    EXPECT_TRUE(co_await c.expire("conn:a", 100s));
    EXPECT_EQ((co_await c.command("TTL", "conn:a")).integer(), 100);
    EXPECT_EQ(co_await c.hset("conn:h", "f", "v"), 1);
    EXPECT_EQ(co_await c.hget("conn:h", "f"), "v");
    EXPECT_EQ(co_await c.del("conn:l"), 0);
    EXPECT_EQ(co_await c.lpush("conn:l", "x"), 1);
    EXPECT_EQ(co_await c.rpop("conn:l"), "x");
    const std::vector<std::string> keys = {"conn:a", "conn:missing", "conn:h"};
    co_await c.set("conn:h2", "h2");
    const auto values = co_await c.mget(keys);
    EXPECT_EQ(values, (std::vector<std::optional<std::string>>{"2", std::nullopt, std::nullopt}))
        << "a hash under MGET is nil";
    EXPECT_EQ(co_await c.publish("conn:channel", "hi"), 0);
    const std::byte raw[] = {std::byte{0}, std::byte{0xff}, std::byte{'\r'}};
    co_await c.command("SET", "conn:bin", std::span<const std::byte>(raw));
    EXPECT_EQ((co_await c.command("STRLEN", "conn:bin")).integer(), 3);
    EXPECT_EQ(co_await c.set("conn:ex", "v", 10s), true);
  }());
}

TEST(RedisConnection, SetOptionsAndAnExplicitPipeline) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    co_await c.del("conn:nx");
    redis::set_options nx;
    nx.only_if_absent = true;
    nx.expire = 1500ms;
    EXPECT_TRUE(co_await c.set("conn:nx", "first", nx));
    EXPECT_FALSE(co_await c.set("conn:nx", "second", nx)) << "NX refuses an existing key";
    EXPECT_EQ(co_await c.get("conn:nx"), "first");
    const std::int64_t pttl = (co_await c.command("PTTL", "conn:nx")).integer();
    EXPECT_GT(pttl, 0);
    EXPECT_LE(pttl, 1500);
    redis::set_options xx;
    xx.only_if_present = true;
    xx.keep_ttl = true;
    EXPECT_TRUE(co_await c.set("conn:nx", "third", xx));
    EXPECT_GT((co_await c.command("PTTL", "conn:nx")).integer(), 0) << "KEEPTTL kept it";
    EXPECT_FALSE(co_await c.set("conn:absent", "x", xx)) << "XX refuses a missing key";

    redis::pipeline p;
    p.set("conn:pl", "1").incr("conn:pl").command("INCRBY", "conn:pl", 40).get("conn:pl");
    const auto writes = c.stats().writes;
    const auto replies = co_await p.exec(c);
    EXPECT_EQ(replies.size(), 4U);
    if (replies.size() != 4U) co_return;
    EXPECT_EQ(replies[2].integer(), 42);
    EXPECT_EQ(replies[3].str(), "42");
    EXPECT_EQ(c.stats().writes - writes, 1U) << "one write for the pipeline";
  }());
}

// NX and XX together can never set anything (the server answers a syntax
// error): refused before anything is sent.
TEST(RedisConnection, SetWithBothNxAndXxIsRefusedBeforeSending) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    redis::set_options both;
    both.only_if_absent = true;
    both.only_if_present = true;
    const auto commands = c.stats().commands;
    EXPECT_THROW(co_await c.set("conn:both", "x", both), std::invalid_argument);
    EXPECT_EQ(c.stats().commands, commands) << "nothing was sent";
    EXPECT_EQ(co_await c.get("conn:both"), std::nullopt);
  }());
}

// Which server could not be reached: the error says (with several
// servers configured, "Connection refused" alone does not).
TEST(RedisConnection, AConnectionThatCannotBeMadeNamesTheAddress) {
  corio::run([]() -> corio::task<> {
    redis::connection_options closed;
    closed.port = corio_tools::free_port();  // nobody listens there
    const std::string closed_address = "127.0.0.1:" + std::to_string(closed.port);
    std::string message;
    try {
      co_await redis::connection::connect(closed);
    } catch (const std::system_error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(closed_address), std::string::npos) << message;

    redis::connection_options missing;
    missing.unix_socket = "/nonexistent/corio-redis.sock";
    message.clear();
    try {
      co_await redis::connection::connect(missing);
    } catch (const std::system_error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(missing.unix_socket), std::string::npos) << message;

    auto slow = tcp_options();
    slow.connect_timeout = 0ns;
    const std::string slow_address = "127.0.0.1:" + std::to_string(slow.port);
    message.clear();
    try {
      co_await redis::connection::connect(slow);
    } catch (const corio::timeout_error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(slow_address), std::string::npos) << message;
  }());
}

TEST(RedisConnection, AuthenticatesAsAnAclUserOnBothProtocols) {
  corio::run([]() -> corio::task<> {
    auto admin = co_await redis::connection::connect(tcp_options());
    co_await admin.command("ACL", "SETUSER", "corio-tester", "on", ">s3cret", "~*", "+@all");
    const std::vector<bool> protocols = {true, false};  // (no braced list across a co_await)
    for (const bool resp3 : protocols) {
      auto o = tcp_options();
      o.resp3 = resp3;
      o.username = "corio-tester";
      o.password = "s3cret";
      auto c = co_await redis::connection::connect(o);
      EXPECT_EQ((co_await c.command("ACL", "WHOAMI")).str(), "corio-tester");
      o.password = "wrong";
      std::string message;
      try {
        co_await redis::connection::connect(o);
      } catch (const redis::error& e) {
        message = e.what();
      }
      EXPECT_NE(message.find("WRONGPASS"), std::string::npos) << message;
    }
  }());
}

TEST(RedisConnection, TheConnectTimeoutBoundsConnectAndHello) {
  corio::run([]() -> corio::task<> {
    auto o = tcp_options();
    o.connect_timeout = 0ns;  // passed at the first wait: connect or HELLO's reply
    EXPECT_THROW(co_await redis::connection::connect(o), corio::timeout_error);
  }());
}

TEST(RedisConnection, AnErrorReplyIsThrownAndTheConnectionStaysUsable) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(unix_options());
    co_await c.set("conn:str", "s");
    std::string message;
    try {
      co_await c.command("LPUSH", "conn:str", "x");
    } catch (const redis::error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("WRONGTYPE"), std::string::npos) << message;
    EXPECT_EQ(co_await c.get("conn:str"), "s");
    EXPECT_FALSE(c.broken());
  }());
}

TEST(RedisConnection, Resp2WhenAsked) {
  corio::run([]() -> corio::task<> {
    auto o = tcp_options();
    o.resp3 = false;
    o.database = 2;
    o.client_name = "corio-test";
    auto c = co_await redis::connection::connect(o);
    EXPECT_EQ(c.protocol(), 2);
    co_await c.set("conn:db2", "two");
    const redis::reply r = co_await c.command("HGETALL", "conn:nohash");
    EXPECT_EQ(r.type(), redis::reply::kind::array);  // a map in RESP3
    const redis::reply name = co_await c.command("CLIENT", "GETNAME");
    EXPECT_EQ(name.str(), "corio-test");
    auto other = co_await redis::connection::connect(tcp_options());
    EXPECT_EQ(co_await other.get("conn:db2"), std::nullopt) << "SELECT 2 took effect";
  }());
}

corio::task<std::int64_t> increment(redis::connection& c) {
  co_return (co_await c.command("INCR", "conn:counter")).integer();
}

TEST(RedisConnection, CommandsOfOneTickGoOutInOneWrite) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    co_await c.del("conn:counter");
    const auto before = c.stats();
    std::vector<corio::task<std::int64_t>> tasks;
    for (int i = 0; i < 200; ++i)
      tasks.push_back(increment(c));
    auto results = co_await corio::gather(std::move(tasks));
    // Every task got its own reply: the counter's values 1..200, each once.
    std::sort(results.begin(), results.end());
    for (std::size_t i = 0; i < results.size(); ++i)
      EXPECT_EQ(results[i], static_cast<std::int64_t>(i + 1));
    const auto after = c.stats();
    EXPECT_EQ(after.commands - before.commands, 200U);
    // 200 commands from 200 tasks: one write per loop tick that issued
    // commands (a tick runs at most 256 tasks), not one per command.
    EXPECT_LE(after.writes - before.writes, 3U);
  }());
}

TEST(RedisConnection, ExplicitPipelineKeepsErrorsInPlace) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    const auto writes = c.stats().writes;
    // (Built before the co_await: GCC 12 rejects a braced list of string
    // literals held across one.)
    const std::vector<std::vector<std::string>> commands = {
        {"SET", "conn:p", "1"}, {"INCR", "conn:p"}, {"HGET", "conn:p", "x"}, {"GET", "conn:p"}};
    const auto replies = co_await c.send_all(commands);
    EXPECT_EQ(replies.size(), 4U);
    if (replies.size() != 4U) co_return;
    EXPECT_EQ(replies[0].str(), "OK");
    EXPECT_EQ(replies[1].integer(), 2);
    EXPECT_TRUE(replies[2].is_error());
    EXPECT_EQ(replies[3].str(), "2");
    EXPECT_EQ(c.stats().writes - writes, 1U);
  }());
}

corio::task<std::string> get_value(redis::connection& c, std::string key) {
  auto v = co_await c.get(key);
  co_return v.value_or("nil");
}

TEST(RedisConnection, ACancelledCommandsReplyIsDroppedAndTheOthersAreServed) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    co_await c.set("conn:x", "X");
    co_await c.set("conn:y", "Y");
    auto first = corio::spawn(get_value(c, "conn:x"));
    auto victim = corio::spawn(get_value(c, "conn:y"));
    auto last = corio::spawn(get_value(c, "conn:x"));
    // A yield lets the three send their commands (the tick's end writes
    // them); the replies come in a later tick, after this cancel.
    co_await corio::yield_now();
    victim.cancel();
    EXPECT_EQ(co_await first, "X");
    EXPECT_THROW(co_await victim, corio::cancelled_error);
    EXPECT_EQ(co_await last, "X");
    EXPECT_EQ(co_await c.get("conn:y"), "Y") << "the replies stay matched to their commands";
    EXPECT_EQ(c.stats().dropped_replies, 1U);
  }());
}

TEST(RedisConnection, ATimeoutLeavesTheConnectionUsable) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    co_await c.del("conn:empty");
    // BLPOP blocks the connection for 1 s; the caller gives up after 20 ms.
    std::vector<std::string> blpop = {"BLPOP", "conn:empty", "1"};
    EXPECT_THROW(co_await corio::timeout(20ms, c.send(std::move(blpop))), corio::timeout_error);
    EXPECT_EQ((co_await c.command("PING")).str(), "PONG")
        << "after the BLPOP's reply was read and dropped";
  }());
}

TEST(RedisConnection, TheServerClosingMidPipelineFailsEveryPendingCommand) {
  corio::run([]() -> corio::task<> {
    auto victim = co_await redis::connection::connect(tcp_options());
    const std::int64_t id = (co_await victim.command("CLIENT", "ID")).integer();
    auto admin = co_await redis::connection::connect(tcp_options());
    std::vector<corio::task<std::string>> tasks;
    co_await victim.del("conn:empty");
    std::vector<std::string> blpop = {"BLPOP", "conn:empty", "5"};
    auto blocked = corio::spawn(victim.send(std::move(blpop)));
    for (int i = 0; i < 10; ++i)
      tasks.push_back(get_value(victim, "conn:x"));
    auto pending = corio::spawn(corio::gather_settled(std::move(tasks)));
    co_await corio::sleep(50ms);
    co_await admin.command("CLIENT", "KILL", "ID", id);
    EXPECT_THROW(co_await blocked, redis::connection_error);
    for (auto& o : co_await pending) {
      EXPECT_TRUE(o.has_error());
      try {
        o.value();
      } catch (const redis::connection_error& e) {
        EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
      }
    }
    EXPECT_TRUE(victim.broken());
    EXPECT_THROW(co_await victim.get("conn:x"), redis::connection_error) << "no reconnect asked";
  }());
}

TEST(RedisConnection, ReconnectsAfterARestartWhenAsked) {
  corio::run([]() -> corio::task<> {
    auto o = tcp_options();
    o.reconnect = true;
    auto c = co_await redis::connection::connect(o);
    co_await c.set("conn:r", "before");
    corio_tools::redis_server::shared().restart();  // no persistence: the data is gone
    // The first command after the restart sees the dead connection (or is
    // sent into it): it fails; the next one connects again.
    try {
      co_await c.get("conn:r");
    } catch (const redis::connection_error&) {
    }
    EXPECT_EQ(co_await c.get("conn:r"), std::nullopt);
    EXPECT_EQ(c.stats().reconnects, 1U);
    EXPECT_FALSE(c.broken());
  }());
}

corio::task<std::vector<redis::message>> listen(redis::connection& c, std::string channel,
                                                bool patterns, std::size_t count) {
  std::vector<std::string> channels = {std::move(channel)};
  auto stream = c.subscribe(std::move(channels), patterns);
  std::vector<redis::message> got;
  while (got.size() < count) {
    auto m = co_await stream.next();
    if (!m) break;
    got.push_back(std::move(*m));
  }
  co_return got;  // the stream ends here: its connection closes
}

// Subscribers of `channel` (PUBSUB NUMSUB), or of patterns (NUMPAT).
corio::task<std::int64_t> subscribers(redis::connection& c, const std::string& channel) {
  if (channel.empty()) co_return (co_await c.command("PUBSUB", "NUMPAT")).integer();
  co_return (co_await c.command("PUBSUB", "NUMSUB", channel))[1].integer();
}

// Waits (bounded) until `channel` has `n` subscribers.
corio::task<bool> until_subscribers(redis::connection& c, const std::string& channel,
                                    std::int64_t n) {
  for (int i = 0; i < 2000; ++i) {
    if (co_await subscribers(c, channel) == n) co_return true;
    co_await corio::sleep(1ms);
  }
  co_return false;
}

TEST(RedisConnection, SubscribeYieldsMessagesAndUnsubscribesWhenTheStreamEnds) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    auto listener = corio::spawn(listen(c, "conn:news", false, 3));
    EXPECT_TRUE(co_await until_subscribers(c, "conn:news", 1));
    const std::vector<std::string> texts = {"one", "two", "three"};
    for (const std::string& text : texts)
      EXPECT_EQ(co_await c.publish("conn:news", text), 1);
    const auto got = co_await listener;
    EXPECT_EQ(got.size(), 3U);
    if (got.size() != 3U) co_return;
    EXPECT_EQ(got[0].payload, "one");
    EXPECT_EQ(got[2].payload, "three");
    EXPECT_EQ(got[1].channel, "conn:news");
    EXPECT_TRUE(co_await until_subscribers(c, "conn:news", 0)) << "the stream's end unsubscribed";

    auto patterns = corio::spawn(listen(c, "conn:sport.*", true, 1));
    EXPECT_TRUE(co_await until_subscribers(c, "", 1));
    EXPECT_EQ(co_await c.publish("conn:sport.chess", "mate"), 1);
    const auto matched = co_await patterns;
    EXPECT_EQ(matched.size(), 1U);
    if (matched.empty()) co_return;
    EXPECT_EQ(matched[0].pattern, "conn:sport.*");
    EXPECT_EQ(matched[0].channel, "conn:sport.chess");
    EXPECT_EQ(matched[0].payload, "mate");
  }());
}

// A server that does not know HELLO (as before Redis 6): the connection
// speaks RESP2, and commands, MGET and pub/sub work the same.
TEST(RedisConnection, AServerWithoutHelloIsSpokenToInResp2) {
  corio::run([]() -> corio::task<> {
    redis::connection_options o;
    o.port = corio_tools::redis_server::without_hello().port();
    auto c = co_await redis::connection::connect(o);
    EXPECT_EQ(c.protocol(), 2);
    EXPECT_TRUE(co_await c.set("resp2:a", "1"));
    EXPECT_EQ(co_await c.incr("resp2:a"), 2);
    EXPECT_EQ(co_await c.hset("resp2:h", "f", "v"), 1);
    const redis::reply all = co_await c.command("HGETALL", "resp2:h");
    EXPECT_EQ(all.type(), redis::reply::kind::array) << "RESP2 has no map";
    EXPECT_EQ(all.size(), 2U);
    const std::vector<std::string> keys = {"resp2:a", "resp2:none"};
    const auto values = co_await c.mget(keys);
    EXPECT_EQ(values.size(), 2U);
    if (values.size() == 2U) {
      EXPECT_EQ(values[0], "2");
      EXPECT_EQ(values[1], std::nullopt);
    }
    try {
      co_await c.command("HELLO", "3");
      ADD_FAILURE() << "HELLO answered";
    } catch (const redis::error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown command"), std::string::npos) << e.what();
    }
    auto listener = corio::spawn(listen(c, "resp2:news", false, 2));
    EXPECT_TRUE(co_await until_subscribers(c, "resp2:news", 1));
    EXPECT_EQ(co_await c.publish("resp2:news", "one"), 1);
    EXPECT_EQ(co_await c.publish("resp2:news", "two"), 1);
    const auto got = co_await listener;
    EXPECT_EQ(got.size(), 2U);
    if (got.size() == 2U) {
      EXPECT_EQ(got[1].payload, "two");
    }
  }());
}

using get_batcher = corio::batcher<std::string, std::optional<std::string>>;

corio::task<std::optional<std::string>> cached_get(get_batcher& gets, int i) {
  co_return co_await gets.load("conn:b" + std::to_string(i % 50));
}

TEST(RedisConnection, ABatcherTurnsConcurrentGetsIntoMgets) {
  corio::run([]() -> corio::task<> {
    auto c = co_await redis::connection::connect(tcp_options());
    std::vector<std::vector<std::string>> sets;
    for (int i = 0; i < 50; ++i)
      sets.push_back({"SET", "conn:b" + std::to_string(i), "v" + std::to_string(i)});
    co_await c.send_all(sets);
    get_batcher gets{get_batcher::batch_function(
        [&c](std::span<const std::string> keys) { return c.mget(keys); })};
    const auto before = c.stats().commands;
    std::vector<corio::task<std::optional<std::string>>> loads;
    for (int i = 0; i < 200; ++i)
      loads.push_back(cached_get(gets, i));
    const auto values = co_await corio::gather(std::move(loads));
    for (int i = 0; i < 200; ++i)
      EXPECT_EQ(values[static_cast<std::size_t>(i)], "v" + std::to_string(i % 50));
    // 200 GETs of 50 keys: one MGET of the 50 per tick that loaded them.
    EXPECT_EQ(c.stats().commands - before, gets.stats().batches);
    EXPECT_LE(gets.stats().batches, 2U);
    EXPECT_LE(gets.stats().keys, 50U * gets.stats().batches) << "each key once per batch";
  }());
}

corio::task<std::string> pop_job(corio::pool<redis::connection>& p) {
  auto c = co_await p.acquire();
  const redis::reply r = co_await c->command("BLPOP", "conn:jobs", 5);
  co_return std::string(r[1].str());
}

TEST(RedisConnection, APoolLendsConnectionsForBlockingCommandsAndTransactions) {
  corio::run([]() -> corio::task<> {
    corio::pool_options po;
    po.name = "redis";
    po.max_size = 2;
    corio::pool<redis::connection> p(redis::pool_hooks(tcp_options()), po);
    auto shared = co_await redis::connection::connect(tcp_options());
    co_await shared.del("conn:jobs");
    auto worker = corio::spawn(pop_job(p));
    co_await corio::sleep(20ms);  // the worker blocks in BLPOP on a connection of its own
    EXPECT_EQ(co_await shared.lpush("conn:jobs", "job-1"), 1);
    EXPECT_EQ(co_await worker, "job-1");
    {
      auto c = co_await p.acquire();
      co_await c->command("MULTI");
      EXPECT_EQ((co_await c->command("SET", "conn:tx", "1")).str(), "QUEUED");
      EXPECT_EQ((co_await c->command("INCR", "conn:tx")).str(), "QUEUED");
      const redis::reply done = co_await c->command("EXEC");
      EXPECT_EQ(done.size(), 2U);
    }
    EXPECT_EQ(co_await shared.get("conn:tx"), "2");
    EXPECT_EQ(p.stats().creations, 1U) << "the same connection, lent twice";
    co_await p.close();
  }());
}

}  // namespace
