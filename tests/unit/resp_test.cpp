// RESP: replies of every RESP2 and RESP3 type, fed whole and byte by byte;
// limits; malformed input; the command encoding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "corio/redis/resp.hpp"

namespace {

using corio::redis::reply;
using corio::redis::resp_limits;
using corio::redis::resp_reader;

// Every reply in `bytes`, fed in pieces of `piece` bytes (0: whole) through
// a buffer that keeps what the reader did not take, as a connection does.
std::vector<reply> read_all(std::string_view bytes, std::size_t piece = 0,
                            resp_limits limits = {}) {
  resp_reader r(limits);
  std::vector<reply> out;
  std::string buffer;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t n = piece == 0 ? bytes.size() : std::min(piece, bytes.size() - at);
    buffer.append(bytes.substr(at, n));
    at += n;
    buffer.erase(0, r.feed(buffer));
    while (auto x = r.next())
      out.push_back(std::move(*x));
  }
  EXPECT_TRUE(buffer.empty()) << "bytes left over: " << buffer.size();
  EXPECT_FALSE(r.in_reply());
  return out;
}

const std::string_view k_sample =
    "+OK\r\n"
    "-ERR unknown command\r\n"
    ":-42\r\n"
    "$5\r\nhe\r\no\r\n"
    "$0\r\n\r\n"
    "$-1\r\n"
    "*-1\r\n"
    "*3\r\n:1\r\n$1\r\na\r\n*0\r\n"
    "_\r\n"
    ",3.25\r\n"
    ",inf\r\n"
    "#t\r\n"
    "#f\r\n"
    "!9\r\nERR boom!\r\n"
    "=8\r\ntxt:hi!!\r\n"
    "(3492890328409238509324850943850943825024385\r\n"
    "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n_\r\n"
    "~2\r\n:1\r\n:2\r\n"
    ">2\r\n+message\r\n$2\r\nhi\r\n"
    "|1\r\n+ttl\r\n:3600\r\n:7\r\n";  // an attribute, dropped, then its reply

void check_sample(const std::vector<reply>& r) {
  ASSERT_EQ(r.size(), 20U);
  EXPECT_EQ(r[0].type(), reply::kind::simple_string);
  EXPECT_EQ(r[0].str(), "OK");
  EXPECT_TRUE(r[1].is_error());
  EXPECT_EQ(r[1].str(), "ERR unknown command");
  EXPECT_EQ(r[2].integer(), -42);
  EXPECT_EQ(r[3].str(), "he\r\no");
  EXPECT_EQ(r[4].type(), reply::kind::bulk_string);
  EXPECT_EQ(r[4].str(), "");
  EXPECT_TRUE(r[5].is_nil());
  EXPECT_TRUE(r[6].is_nil());
  ASSERT_EQ(r[7].size(), 3U);
  EXPECT_EQ(r[7][0].integer(), 1);
  EXPECT_EQ(r[7][1].str(), "a");
  EXPECT_EQ(r[7][2].size(), 0U);
  EXPECT_TRUE(r[8].is_nil());
  EXPECT_EQ(r[9].number(), 3.25);
  EXPECT_TRUE(std::isinf(r[10].number()));
  EXPECT_TRUE(r[11].boolean());
  EXPECT_FALSE(r[12].boolean());
  EXPECT_TRUE(r[13].is_error());
  EXPECT_EQ(r[13].str(), "ERR boom!");
  EXPECT_EQ(r[14].format(), "txt");
  EXPECT_EQ(r[14].str(), "hi!!");
  EXPECT_EQ(r[15].type(), reply::kind::big_number);
  EXPECT_EQ(r[16].type(), reply::kind::map);
  ASSERT_EQ(r[16].size(), 4U);
  EXPECT_EQ(r[16][2].str(), "b");
  EXPECT_TRUE(r[16][3][0].is_nil());
  EXPECT_EQ(r[17].type(), reply::kind::set);
  EXPECT_EQ(r[18].type(), reply::kind::push);
  EXPECT_EQ(r[18][1].str(), "hi");
  EXPECT_EQ(r[19].integer(), 7);  // the reply the attribute annotated
}

TEST(Resp, EveryTypeWhole) {
  const auto r = read_all(std::string(k_sample) + "*2\r\n|1\r\n+a\r\n+b\r\n:8\r\n:9\r\n");
  ASSERT_EQ(r.size(), 21U);
  check_sample(std::vector<reply>(r.begin(), r.begin() + 20));
  // An attribute inside an array is dropped; the array keeps its two.
  ASSERT_EQ(r[20].size(), 2U);
  EXPECT_EQ(r[20][0].integer(), 8);
  EXPECT_EQ(r[20][1].integer(), 9);
}

TEST(Resp, EveryTypeInPiecesOfEverySize) {
  for (std::size_t piece = 1; piece <= 16; ++piece) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    check_sample(read_all(k_sample, piece));
  }
}

TEST(Resp, ABulkStringIsTakenAsItArrives) {
  resp_reader r;
  EXPECT_EQ(r.feed("$10\r\nabc"), 8U) << "the header and the bytes so far";
  EXPECT_EQ(r.feed("defg"), 4U);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.feed("hij\r"), 3U) << "the CRLF is taken whole";
  EXPECT_EQ(r.feed("\r\n"), 2U);
  auto x = r.next();
  ASSERT_TRUE(x);
  EXPECT_EQ(x->str(), "abcdefghij");
}

// Replies are taken while the next one is half read: the half-read one
// (an aggregate, a bulk string) moves to the front of the reader's queue and
// goes on filling where it now is.
TEST(Resp, AReplyHalfReadSurvivesTakingTheOnesBeforeIt) {
  resp_reader r;
  EXPECT_EQ(r.feed("+a\r\n+b\r\n*2\r\n$3\r\nfoo\r\n*1\r\n"), 25U);
  EXPECT_EQ(r.ready(), 2U);
  EXPECT_TRUE(r.in_reply());
  EXPECT_EQ(r.next()->str(), "a");
  EXPECT_EQ(r.next()->str(), "b");
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.feed(":7\r\n+c\r\n$6\r\nba"), 14U);
  auto array = r.next();
  ASSERT_TRUE(array);
  ASSERT_EQ(array->size(), 2U);
  EXPECT_EQ((*array)[0].str(), "foo");
  EXPECT_EQ((*array)[1][0].integer(), 7);
  EXPECT_EQ(r.next()->str(), "c");
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.feed("rbaz\r\n"), 6U);
  EXPECT_FALSE(r.in_reply());
  EXPECT_EQ(r.next()->str(), "barbaz");
  EXPECT_EQ(r.ready(), 0U);
}

void expect_protocol_error(std::string_view bytes, const std::string& says, resp_limits l = {}) {
  resp_reader r(l);
  try {
    r.feed(bytes);
    ADD_FAILURE() << "accepted: " << bytes;
  } catch (const corio::redis::protocol_error& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.feed("+OK\r\n"), corio::redis::protocol_error) << "a failed reader stays failed";
}

TEST(Resp, MalformedInputIsAProtocolError) {
  expect_protocol_error("?what\r\n", "unknown type byte 0x3f");
  expect_protocol_error(":12a\r\n", "integer");
  expect_protocol_error(":\r\n", "integer");
  expect_protocol_error("$x\r\n", "bulk length");
  expect_protocol_error("$-2\r\n", "bulk string of -2");
  expect_protocol_error("$3\r\nabcd\r\n", "not ended by CRLF");
  expect_protocol_error("*-2\r\n", "aggregate of -2");
  expect_protocol_error("+OK\rX", "CR not followed by LF");
  expect_protocol_error("#x\r\n", "boolean");
  expect_protocol_error("_x\r\n", "null with content");
  expect_protocol_error(",1.5x\r\n", "double");
  expect_protocol_error("(12x\r\n", "big number");
  expect_protocol_error("=2\r\nab\r\n", "verbatim");
  expect_protocol_error("connection refused\r\n", "unknown type byte");
}

TEST(Resp, LimitsAreProtocolErrors) {
  resp_limits l;
  l.max_bulk = 100;
  expect_protocol_error("$101\r\n", "bulk string of 101 bytes", l);
  EXPECT_EQ(read_all("$100\r\n" + std::string(100, 'x') + "\r\n", 7, l).size(), 1U);

  l = {};
  l.max_depth = 3;
  expect_protocol_error("*1\r\n*1\r\n*1\r\n*1\r\n", "deeper than 3", l);
  EXPECT_EQ(read_all("*1\r\n*1\r\n*1\r\n:1\r\n", 0, l).size(), 1U);

  l = {};
  l.max_elements = 10;
  expect_protocol_error("*11\r\n", "aggregate of 11 elements", l);
  std::string nested = "*3\r\n";  // 1 + 3 x 4 = 13 elements in all
  for (int i = 0; i < 3; ++i)
    nested += "*3\r\n:1\r\n:1\r\n:1\r\n";
  expect_protocol_error(nested, "more than 10 elements", l);
  EXPECT_EQ(read_all("*9\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n", 3, l).size(),
            1U);

  l = {};
  l.max_line = 16;
  expect_protocol_error(std::string(18, '+'), "longer than 16", l);  // no CRLF yet: still refused
  EXPECT_EQ(read_all("+" + std::string(16, 'a') + "\r\n", 1, l).size(), 1U);
  expect_protocol_error("+" + std::string(20, 'a') + "\r\n", "longer than 16", l);
}

TEST(Resp, AHugeDeclaredCountAllocatesNothingUpFront) {
  // A count of a million elements with none sent: the reader takes the
  // header and waits, holding one small vector.
  resp_reader r;
  EXPECT_EQ(r.feed("*1000000\r\n"), 10U);
  EXPECT_TRUE(r.in_reply());
  EXPECT_FALSE(r.next());
}

TEST(Resp, CommandsAreArraysOfBulkStrings) {
  std::string out;
  corio::redis::append_command(out, "SET", std::string("key"), std::string_view("v\r\n"), "EX", 10,
                               -3L, 2.5);
  EXPECT_EQ(out,
            "*7\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nv\r\n\r\n$2\r\nEX\r\n$2\r\n10\r\n$2\r\n-3\r\n"
            "$3\r\n2.5\r\n");
  const std::byte raw[] = {std::byte{0}, std::byte{0xff}};
  out.clear();
  corio::redis::append_command(out, "GET", std::span<const std::byte>(raw));
  EXPECT_EQ(out, std::string("*2\r\n$3\r\nGET\r\n$2\r\n\0\xff\r\n", 21));
}

TEST(Resp, ReplyAccessorsSayWhatDidNotMatch) {
  const auto r = read_all("$3\r\nabc\r\n");
  try {
    (void)r[0].integer();
    ADD_FAILURE();
  } catch (const corio::redis::reply_type_error& e) {
    EXPECT_NE(std::string(e.what()).find("wanted an integer, got bulk string \"abc\""),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_all("*2\r\n:1\r\n$1\r\nx\r\n")[0].describe(), "[1, \"x\"]");
  EXPECT_EQ(read_all("%1\r\n+k\r\n#t\r\n")[0].describe(), "{\"k\": true}");
}

}  // namespace
