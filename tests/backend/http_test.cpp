// The HTTP server over 127.0.0.1 on both backends, driven by a raw TCP
// client: keep-alive, pipelining, HTTP/1.0, Connection: close, malformed
// requests (an error status, the connection closed, the server unharmed),
// limits, bodies, coroutine handlers, handler failures and cancellation.
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/io_support.hpp"

using corio_test::connect_pair;
using corio_test::io_test;
using corio_test::listen_any;
using corio_test::read_response;
using corio_test::response;
using namespace std::chrono_literals;

namespace {

class Http : public io_test {};
CORIO_BOTH_BACKENDS(Http);

// Answers with the method, target and body it got.
void echo_request(const corio::http_request& req, corio::http_response& res) {
  res.add_header("Content-Type", "text/plain");
  res.set_body(std::string(req.method) + " " + std::string(req.target) + " " +
               std::string(req.body));
}

// True when the server closed its side (nothing more arrives).
corio::task<bool> closed_by_server(corio::tcp_stream& c, std::string& in) {
  char buf[256];
  const std::size_t n = co_await c.read_some(buf, sizeof buf);
  in.append(buf, n);
  co_return n == 0;
}

corio::task<> send(corio::tcp_stream& c, std::string_view s) {
  co_await c.write_all(s.data(), s.size());
}

TEST_P(Http, KeepAliveServesManyRequestsOnOneConnection) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn(corio::serve_http(l, echo_request));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    std::string in;
    for (int i = 0; i < 3; ++i) {
      co_await send(c, "GET /n" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
      const response r = co_await read_response(c, in);
      EXPECT_EQ(r.head.substr(0, 17), "HTTP/1.1 200 OK\r\n");
      EXPECT_TRUE(r.has("Content-Type: text/plain\r\n"));
      EXPECT_FALSE(r.has("Connection:"));
      EXPECT_EQ(r.body, "GET /n" + std::to_string(i) + " ");
    }
    // The server owns its connections: cancelling it closes this one.
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
    EXPECT_TRUE(co_await closed_by_server(c, in));
  });
}

TEST_P(Http, PipelinedRequestsAreAnsweredInOrderInOneWrite) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), echo_request));
    co_await send(c,
                  "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                  "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                  "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "GET /a ");
    EXPECT_EQ((co_await read_response(c, in)).body, "POST /b body");
    const response last = co_await read_response(c, in);
    EXPECT_EQ(last.body, "GET /c ");
    EXPECT_TRUE(last.has("Connection: close\r\n"));
    EXPECT_TRUE(co_await closed_by_server(c, in));
    c.close();  // else the server lingers a second for us to close
    co_await conn;
  });
}

TEST_P(Http, Http10ClosesUnlessAskedToKeepAlive) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn(corio::serve_http(l, echo_request));
    {
      auto c = co_await corio::tcp_stream::connect(l.local_address());
      co_await send(c, "GET /old HTTP/1.0\r\n\r\n");
      std::string in;
      const response r = co_await read_response(c, in);
      EXPECT_EQ(r.body, "GET /old ");
      EXPECT_TRUE(r.has("Connection: close\r\n"));
      EXPECT_TRUE(co_await closed_by_server(c, in));
    }
    {
      auto c = co_await corio::tcp_stream::connect(l.local_address());
      std::string in;
      for (int i = 0; i < 2; ++i) {
        co_await send(c, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        const response r = co_await read_response(c, in);
        EXPECT_TRUE(r.has("Connection: keep-alive\r\n"));
        EXPECT_EQ(r.body, "GET /ka ");
      }
    }
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
  });
}

TEST_P(Http, MalformedRequestsGetAnErrorAndACloseAndTheServerGoesOn) {
  struct row {
    const char* request;
    const char* status_line;
  };
  static const row rows[] = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
      {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},  // no Host
      {"GET / HTTP/3.0\r\nHost: t\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "HTTP/1.1 501 Not Implemented\r\n"},
  };
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn(corio::serve_http(l, echo_request));
    for (const row& r : rows) {
      auto c = co_await corio::tcp_stream::connect(l.local_address());
      // A good request first: its answer still arrives before the error.
      co_await send(c, std::string("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n") + r.request);
      std::string in;
      EXPECT_EQ((co_await read_response(c, in)).body, "GET /ok ");
      const response bad = co_await read_response(c, in);
      EXPECT_EQ(bad.head.substr(0, std::string_view(r.status_line).size()), r.status_line);
      EXPECT_TRUE(bad.has("Connection: close\r\n"));
      EXPECT_TRUE(co_await closed_by_server(c, in)) << r.request;
    }
    // The server is unaffected.
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    co_await send(c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "GET /after ");
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
  });
}

TEST_P(Http, AnHttp09RequestLineIsAnsweredWithoutWaitingForMore) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn(corio::serve_http(l, echo_request));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    co_await send(c, "GET /\r\n");  // and nothing more: the client waits
    std::string in;
    const response bad = co_await read_response(c, in);
    EXPECT_EQ(bad.head.substr(0, 26), "HTTP/1.1 400 Bad Request\r\n");
    EXPECT_TRUE(co_await closed_by_server(c, in));
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
  });
}

TEST_P(Http, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn(corio::serve_http(l, echo_request));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    // A client that waits for 100 Continue before it sends the body, twice
    // on one connection: the interim answer comes once per request.
    for (int i = 0; i < 2; ++i) {
      co_await send(c,
                    "POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                    "Content-Length: 5\r\n\r\n");
      std::string in;
      const response interim = co_await read_response(c, in);
      EXPECT_EQ(interim.head, "HTTP/1.1 100 Continue\r\n");
      co_await send(c, "hello");
      const response final_response = co_await read_response(c, in);
      EXPECT_EQ(final_response.head.substr(0, 17), "HTTP/1.1 200 OK\r\n");
      EXPECT_EQ(final_response.body, "POST /up hello");
    }
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
  });
}

TEST_P(Http, OversizedHeadsAndBodiesAreRefusedWithoutBufferingThem) {
  run_io([]() -> corio::task<> {
    corio::http_options limits;
    limits.limits.max_header_bytes = 1024;
    limits.limits.max_body_bytes = 100;
    {
      auto [l, c, s] = co_await connect_pair();
      auto conn = corio::spawn(corio::serve_http_connection(std::move(s), echo_request, limits));
      // 64 KiB of one header that never ends: refused after the first KiB.
      co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(64 * 1024, 'x'));
      std::string in;
      const response r = co_await read_response(c, in);
      EXPECT_EQ(r.head.substr(0, 12), "HTTP/1.1 431");
      EXPECT_TRUE(co_await closed_by_server(c, in));
      c.close();
      co_await conn;
    }
    {
      auto [l, c, s] = co_await connect_pair();
      auto conn = corio::spawn(corio::serve_http_connection(std::move(s), echo_request, limits));
      co_await send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n");
      std::string in;
      EXPECT_EQ((co_await read_response(c, in)).head.substr(0, 12), "HTTP/1.1 413");
      EXPECT_TRUE(co_await closed_by_server(c, in));
      c.close();
      co_await conn;
    }
  });
}

TEST_P(Http, ABodyArrivingInPiecesIsWholeForTheHandler) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), echo_request));
    const std::string body(50'000, 'z');
    co_await send(c, "PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n");
    for (std::size_t at = 0; at < body.size(); at += 7'000) {
      co_await send(c, std::string_view(body).substr(at, 7'000));
      co_await corio::yield_now();
    }
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "PUT /big " + body);
    c.close();
    co_await conn;
  });
}

TEST_P(Http, CoroutineHandlersAndHeadRequests) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto handler = [](const corio::http_request& req, corio::http_response& res) -> corio::task<> {
      co_await corio::sleep(1ms);  // e.g. a database call
      res.set_status(req.target == "/missing" ? 404 : 200);
      res.set_body("later");
    };
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), handler));
    co_await send(c, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    const response missing = co_await read_response(c, in);
    EXPECT_EQ(missing.head.substr(0, 24), "HTTP/1.1 404 Not Found\r\n");
    EXPECT_EQ(missing.body, "later");
    // HEAD: the length a GET would have, and no body bytes after the head.
    while (in.find("\r\n\r\n") == std::string::npos)
      if (co_await closed_by_server(c, in)) break;
    EXPECT_NE(in.find("Content-Length: 5\r\n"), std::string::npos);
    EXPECT_EQ(in.size(), in.find("\r\n\r\n") + 4) << in;
    c.close();
    co_await conn;
  });
}

TEST_P(Http, AFailingHandlerAnswers500AndItsErrorPropagates) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(
        std::move(s), [](const corio::http_request&, corio::http_response&) {
          throw std::logic_error("handler bug");
        }));
    co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    const response r = co_await read_response(c, in);
    EXPECT_EQ(r.head.substr(0, 12), "HTTP/1.1 500");
    EXPECT_TRUE(co_await closed_by_server(c, in));
    c.close();
    EXPECT_THROW(co_await conn, std::logic_error);
  });
}

TEST_P(Http, CancellingAConnectionClosesIt) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), echo_request));
    co_await send(c, "GET /half HTTP/1.1\r\nHost:");  // the server waits for the rest
    co_await corio::yield_now();
    EXPECT_TRUE(conn.cancel());
    EXPECT_THROW(co_await conn, corio::cancelled_error);
    std::string in;
    EXPECT_TRUE(co_await closed_by_server(c, in));
    EXPECT_TRUE(in.empty());
  });
}

TEST(HttpResponse, HeadersCannotSmuggleLineBreaks) {
  corio::http_response r;
  EXPECT_THROW(r.add_header("X-A", "ok\r\nSet-Cookie: x"), std::invalid_argument);
  EXPECT_THROW(r.add_header("Bad Name", "v"), std::invalid_argument);
  EXPECT_THROW(r.set_status(42), std::invalid_argument);
  r.add_header("X-A", "fine");
  EXPECT_EQ(r.header_lines(), "X-A: fine\r\n");
}

// The server writes the framing headers itself: a second Content-Length,
// Connection or Transfer-Encoding from a handler would contradict them (a
// client and a proxy could then split the stream differently).
TEST(HttpResponse, HeadersTheServerWritesItselfAreRefusedByName) {
  corio::http_response r;
  for (const char* name : {"Content-Length", "content-length", "CONNECTION", "Connection",
                           "Transfer-Encoding", "transfer-encoding"}) {
    bool refused = false;
    try {
      r.add_header(name, "1");
    } catch (const std::invalid_argument& e) {
      refused = true;
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    EXPECT_TRUE(refused) << name;
  }
  EXPECT_EQ(r.header_lines(), "");
  r.add_header("Content-Type", "text/plain");  // a name that only starts alike is fine
  r.add_header("Connection-Id", "7");
  EXPECT_EQ(r.header_lines(), "Content-Type: text/plain\r\nConnection-Id: 7\r\n");
}

}  // namespace
