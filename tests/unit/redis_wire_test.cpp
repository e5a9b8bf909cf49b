// The RESP reader and command encoding against a real redis-server
// (tests/support/redis_server.hpp starts one): RESP2 and, after HELLO 3,
// RESP3 replies of every kind Redis sends, over TCP and the Unix socket,
// read in whatever pieces the socket gives.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "corio/redis/resp.hpp"
#include "redis_server.hpp"

namespace {

using corio::redis::reply;

// Sends each command and reads its reply, on one connection.
corio::task<std::vector<reply>> round_trips(corio::socket_address at,
                                            std::vector<std::vector<std::string>> commands) {
  auto s = co_await corio::tcp_stream::connect(at);
  corio::redis::resp_reader reader;
  std::vector<reply> replies;
  std::string in;
  char buf[4096];
  for (const auto& c : commands) {
    std::vector<std::string_view> args(c.begin(), c.end());
    std::string out;
    corio::redis::detail::append_command(out, args);
    co_await s.write_all(out.data(), out.size());
    for (;;) {
      if (auto r = reader.next()) {
        replies.push_back(std::move(*r));
        break;
      }
      const std::size_t n = co_await s.read_some(buf, sizeof buf);
      if (n == 0) throw std::runtime_error("redis-server closed the connection");
      in.append(buf, n);
      in.erase(0, reader.feed(in));
    }
  }
  co_return replies;
}

TEST(RedisWire, Resp2RepliesOverTcp) {
  auto& server = corio_tools::redis_server::shared();
  const auto r = corio::run(round_trips(corio::socket_address::loopback(server.port()),
                                        {{"PING"},
                                         {"SET", "wire:k", std::string(100000, 'x')},
                                         {"GET", "wire:k"},
                                         {"GET", "wire:missing"},
                                         {"DEL", "wire:list"},
                                         {"RPUSH", "wire:list", "a", "b", "c"},
                                         {"LRANGE", "wire:list", "0", "-1"},
                                         {"NOSUCHCOMMAND"},
                                         {"INCR", "wire:list"}}));
  ASSERT_EQ(r.size(), 9U);
  EXPECT_EQ(r[0].str(), "PONG");
  EXPECT_EQ(r[1].str(), "OK");
  EXPECT_EQ(r[2].str(), std::string(100000, 'x'));
  EXPECT_TRUE(r[3].is_nil());
  EXPECT_EQ(r[5].integer(), 3);
  ASSERT_EQ(r[6].size(), 3U);
  EXPECT_EQ(r[6][2].str(), "c");
  EXPECT_TRUE(r[7].is_error());
  EXPECT_NE(r[7].str().find("unknown command"), std::string_view::npos) << r[7].describe();
  EXPECT_TRUE(r[8].is_error());  // WRONGTYPE
  EXPECT_NE(r[8].str().find("WRONGTYPE"), std::string_view::npos);
}

TEST(RedisWire, Resp3RepliesOverTheUnixSocket) {
  auto& server = corio_tools::redis_server::shared();
  const auto r = corio::run(round_trips(corio::socket_address::unix_path(server.socket_path()),
                                        {{"HELLO", "3"},
                                         {"DEL", "wire:h", "wire:s", "wire:z"},
                                         {"HSET", "wire:h", "f1", "v1", "f2", "v2"},
                                         {"HGETALL", "wire:h"},
                                         {"SADD", "wire:s", "m"},
                                         {"SMEMBERS", "wire:s"},
                                         {"ZADD", "wire:z", "1.5", "one"},
                                         {"ZSCORE", "wire:z", "one"},
                                         {"GET", "wire:missing"},
                                         {"EXISTS", "wire:h"}}));
  ASSERT_EQ(r.size(), 10U);
  EXPECT_EQ(r[0].type(), reply::kind::map) << r[0].describe();
  EXPECT_EQ(r[3].type(), reply::kind::map);
  EXPECT_EQ(r[3].size(), 4U);
  EXPECT_EQ(r[5].type(), reply::kind::set);
  EXPECT_EQ(r[5][0].str(), "m");
  EXPECT_EQ(r[7].type(), reply::kind::number);
  EXPECT_EQ(r[7].number(), 1.5);
  EXPECT_TRUE(r[8].is_nil());
  EXPECT_EQ(r[8].type(), reply::kind::nil);
  EXPECT_EQ(r[9].integer(), 1);
}

}  // namespace
