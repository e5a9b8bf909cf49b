// http_request_parser: what it accepts, what it refuses and with which
// status, and that feeding a request byte by byte gives the same result as
// feeding it whole.
#include <gtest/gtest.h>

#include <string>

#include "corio/net/http_parser.hpp"

namespace {

using corio::http_parse_status;
using corio::http_request_parser;

http_parse_status parse_whole(std::string_view s, corio::http_limits limits = {}) {
  http_request_parser p(limits);
  return p.parse(s);
}

TEST(HttpParser, ParsesASimpleGet) {
  http_request_parser p;
  const std::string req = "GET /index.html?q=1 HTTP/1.1\r\nHost: example\r\nAccept:  */* \r\n\r\n";
  ASSERT_EQ(p.parse(req), http_parse_status::complete);
  EXPECT_EQ(p.consumed(), req.size());
  const auto& r = p.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/index.html?q=1");
  EXPECT_EQ(r.version_minor, 1);
  ASSERT_EQ(r.headers.size(), 2U);
  EXPECT_EQ(r.headers[1].name, "Accept");
  EXPECT_EQ(r.headers[1].value, "*/*");
  EXPECT_EQ(r.header("ACCEPT"), "*/*");
  EXPECT_FALSE(r.header("cookie").has_value());
  EXPECT_TRUE(r.keep_alive);
  EXPECT_TRUE(r.body.empty());
}

TEST(HttpParser, ABadRequestLineIsJudgedAsSoonAsItIsWhole) {
  // No blank line follows: the verdict must not wait for one.
  EXPECT_EQ(parse_whole("GET /\r\n"), http_parse_status::bad_request);  // HTTP/0.9
  EXPECT_EQ(parse_whole("GET /\n"), http_parse_status::bad_request);
  EXPECT_EQ(parse_whole("\r\nGARBAGE\r\n"), http_parse_status::bad_request);
  EXPECT_EQ(parse_whole("GET / HTTP/2.0\r\n"), http_parse_status::version_not_supported);
  // A good request line alone is just the start of a request.
  EXPECT_EQ(parse_whole("GET / HTTP/1.1\r\n"), http_parse_status::incomplete);
  EXPECT_EQ(parse_whole("GET / HTTP/1.1\r\nHost: t\r\n"), http_parse_status::incomplete);
  // Fed byte by byte, the error comes with the line's last byte.
  http_request_parser p;
  const std::string line = "GET /\r\n";
  for (std::size_t n = 1; n < line.size(); ++n)
    EXPECT_EQ(p.parse(std::string_view(line).substr(0, n)), http_parse_status::incomplete) << n;
  EXPECT_EQ(p.parse(line), http_parse_status::bad_request);
}

TEST(HttpParser, ExpectContinueIsWantedWhileTheBodyIsMissing) {
  const std::string head =
      "POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  http_request_parser p;
  EXPECT_EQ(p.parse(head), http_parse_status::incomplete);
  EXPECT_TRUE(p.wants_continue());
  EXPECT_EQ(p.parse(head + "hel"), http_parse_status::incomplete);
  EXPECT_TRUE(p.wants_continue());
  const std::string whole = head + "hello";  // the request's views point into it
  EXPECT_EQ(p.parse(whole), http_parse_status::complete);
  EXPECT_FALSE(p.wants_continue()) << "the body is here";
  EXPECT_EQ(p.request().body, "hello");

  http_request_parser no_expect;
  EXPECT_EQ(no_expect.parse("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"),
            http_parse_status::incomplete);
  EXPECT_FALSE(no_expect.wants_continue());
  http_request_parser http10;  // 100 Continue is HTTP/1.1's
  EXPECT_EQ(http10.parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
            http_parse_status::incomplete);
  EXPECT_FALSE(http10.wants_continue());
}

TEST(HttpParser, KeepAliveFollowsVersionAndConnection) {
  struct row {
    const char* text;
    bool keep_alive;
  };
  const row rows[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const row& r : rows) {
    http_request_parser p;
    ASSERT_EQ(p.parse(r.text), http_parse_status::complete) << r.text;
    EXPECT_EQ(p.request().keep_alive, r.keep_alive) << r.text;
  }
}

TEST(HttpParser, ReadsABodyByContentLength) {
  http_request_parser p;
  const std::string req = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
  ASSERT_EQ(p.parse(req), http_parse_status::complete);
  EXPECT_EQ(p.request().body, "hello");
  EXPECT_EQ(p.consumed(), req.size() - 3);
}

TEST(HttpParser, PipelinedRequestsComeOneAtATime) {
  std::string buf =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\n";
  http_request_parser p;
  ASSERT_EQ(p.parse(buf), http_parse_status::complete);
  EXPECT_EQ(p.request().target, "/1");
  buf.erase(0, p.consumed());
  ASSERT_EQ(p.parse(buf), http_parse_status::complete);  // the stray CRLF is skipped
  EXPECT_EQ(p.request().target, "/2");
  buf.erase(0, p.consumed());
  EXPECT_EQ(p.parse(buf), http_parse_status::incomplete);
  buf += "Host: a\r\n\r\n";
  ASSERT_EQ(p.parse(buf), http_parse_status::complete);
  EXPECT_EQ(p.request().target, "/3");
}

TEST(HttpParser, ByteByByteEqualsWhole) {
  const std::string req =
      "PUT /up HTTP/1.1\r\nHost: h\r\nX-A: 1\nContent-Length: 3\r\n\r\nabc";  // one bare LF
  http_request_parser p;
  for (std::size_t k = 0; k < req.size(); ++k) {
    std::string prefix = req.substr(0, k);
    ASSERT_EQ(p.parse(prefix), http_parse_status::incomplete) << k;
  }
  ASSERT_EQ(p.parse(req), http_parse_status::complete);
  EXPECT_EQ(p.request().body, "abc");
  EXPECT_EQ(p.request().header("x-a"), "1");
  EXPECT_EQ(p.consumed(), req.size());
}

TEST(HttpParser, MalformedRequestsAreRefusedWithTheirStatus) {
  struct row {
    const char* text;
    http_parse_status want;
  };
  using enum http_parse_status;
  const row rows[] = {
      {"GET\r\n\r\n", bad_request},
      {"GET /\r\n\r\n", bad_request},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad_request},
      {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", bad_request},
      {"GET / HTTQ/1.1\r\nHost: a\r\n\r\n", bad_request},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", bad_request},
      {"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", bad_request},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", version_not_supported},
      {"GET / HTTP/1.1\r\n\r\n", bad_request},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad_request},  // two
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", bad_request},            // space before ':'
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", bad_request},  // bare CR
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
       bad_request},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", not_implemented},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       body_too_large},
  };
  for (const row& r : rows)
    EXPECT_EQ(parse_whole(r.text), r.want) << r.text;
  EXPECT_EQ(corio::http_error_status(http_parse_status::bad_request), 400);
  EXPECT_EQ(corio::http_error_status(http_parse_status::header_too_large), 431);
}

TEST(HttpParser, LimitsBoundTheHeadTheHeadersAndTheBody) {
  corio::http_limits limits;
  limits.max_header_bytes = 64;
  limits.max_headers = 2;
  limits.max_body_bytes = 10;
  // A head that never ends is refused once it passes the limit, without
  // waiting for the end.
  EXPECT_EQ(parse_whole("GET /" + std::string(100, 'a'), limits),
            http_parse_status::header_too_large);
  EXPECT_EQ(parse_whole("GET /" + std::string(50, 'a'), limits), http_parse_status::incomplete);
  EXPECT_EQ(
      parse_whole("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(60, 'b') + "\r\n\r\n", limits),
      http_parse_status::header_too_large);
  EXPECT_EQ(parse_whole("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits),
            http_parse_status::header_too_large);
  EXPECT_EQ(parse_whole("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n", limits),
            http_parse_status::complete);
  EXPECT_EQ(parse_whole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits),
            http_parse_status::body_too_large);
  // Empty lines before the request line count against the limit too.
  EXPECT_EQ(parse_whole(std::string(70, '\n'), limits), http_parse_status::header_too_large);
}

}  // namespace
