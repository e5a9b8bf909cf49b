// Servers against hostile and careless clients, on both backends: every
// timeout of serve_http (header, body, keep-alive, write) and serve's idle
// watch, the connection cap, the bound on pipelined output, and buffers
// given back when a connection goes idle, and the graceful stop
// (server_shutdown). Deadlines are short and the
// assertions wait for the server's own statistics, so a slow machine only
// makes a test slower, never wrong.
#include <sys/socket.h>

#include <string>

#include "backend/io_support.hpp"

using corio_test::connect_pair;
using corio_test::io_test;
using corio_test::listen_any;
using corio_test::read_response;
using corio_test::response;
using namespace std::chrono_literals;

namespace {

class ServerLimits : public io_test {};
CORIO_BOTH_BACKENDS(ServerLimits);

void hello(const corio::http_request& /*req*/, corio::http_response& res) {
  res.set_body("hello");
}

corio::task<> send(corio::tcp_stream& c, std::string_view s) {
  co_await c.write_all(s.data(), s.size());
}

// Reads until the server closes; what came meanwhile is appended to `in`.
// Unbounded: a virtual-clock test would jump to any timer set here before
// the server's close arrived (ctest's time limit bounds a server that never
// closes).
corio::task<> read_to_end(corio::tcp_stream& c, std::string& in) {
  char buf[4096];
  std::error_code ec;  // a reset is an end too
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) co_return;
    in.append(buf, n);
  }
}

// Waits (bounded) until `done()` holds, polling every millisecond.
template <class F>
corio::task<bool> eventually(F done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) co_return true;
    co_await corio::sleep(1ms);
  }
  co_return done();
}

// Options where every deadline but the one under test is far away.
corio::http_options far_deadlines(corio::server_stats& stats) {
  corio::http_options o;
  o.header_timeout = o.body_timeout = o.keep_alive_timeout = o.write_timeout = 1h;
  o.stats = &stats;
  return o;
}

TEST_P(ServerLimits, AHeaderTricklingInIsCutOffWith408) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.header_timeout = 200ms;
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), hello, o));
    // Slowloris: one byte of header every 20 ms, for ever. A deadline per
    // read would never fire; the total one does.
    auto drip = corio::spawn([](corio::tcp_stream& c) -> corio::task<> {
      co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n");
      std::error_code ec;
      for (int i = 0; i < 100000 && !ec; ++i) {
        (void)co_await c.write_some("X", 1, ec);
        co_await corio::sleep(20ms);
      }
    }(c));
    std::string in;
    co_await read_to_end(c, in);
    EXPECT_EQ(in.substr(0, 30), "HTTP/1.1 408 Request Timeout\r\n");
    EXPECT_NE(in.find("Connection: close\r\n"), std::string::npos);
    drip.cancel();
    EXPECT_THROW(co_await drip, corio::cancelled_error);
    c.close();
    co_await conn;
    EXPECT_EQ(stats.timed_out, 1U);
    EXPECT_EQ(stats.idle_closed, 0U);
  });
}

TEST_P(ServerLimits, AConnectionThatSendsNothingIsClosedWithoutAWord) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.header_timeout = 100ms;
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), hello, o));
    std::string in;
    co_await read_to_end(c, in);
    EXPECT_EQ(in, "");
    co_await conn;
    EXPECT_EQ(stats.timed_out, 1U);
  });
}

TEST_P(ServerLimits, AnIdleKeepAliveConnectionIsClosedQuietly) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.keep_alive_timeout = 100ms;
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), hello, o));
    co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "hello");
    co_await read_to_end(c, in);
    EXPECT_EQ(in, "") << "an idle close says nothing";
    co_await conn;
    EXPECT_EQ(stats.idle_closed, 1U);
    EXPECT_EQ(stats.timed_out, 0U);
  });
}

TEST_P(ServerLimits, ABodyThatStopsComingGets408) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.body_timeout = 100ms;
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), hello, o));
    co_await send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly ten b");
    std::string in;
    co_await read_to_end(c, in);
    EXPECT_EQ(in.substr(0, 12), "HTTP/1.1 408");
    c.close();
    co_await conn;
    EXPECT_EQ(stats.timed_out, 1U);
  });
}

TEST_P(ServerLimits, AClientThatStopsReadingIsDropped) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.write_timeout = 100ms;
    auto [l, c, s] = co_await connect_pair();
    // Small socket buffers, so that the response cannot all sit in them.
    const int small = 4096;
    ::setsockopt(c.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    auto big = [](const corio::http_request&, corio::http_response& res) {
      res.set_body(std::string(std::size_t{16} << 20, 'x'));
    };
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), big, o));
    co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    // The client never reads: the connection ends by itself.
    co_await conn;
    EXPECT_EQ(stats.timed_out, 1U);
    EXPECT_EQ(stats.buffer_bytes, 0U) << "the connection's buffers are all given back";
  });
}

TEST_P(ServerLimits, TheHandlerHasNoDeadline) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o;
    // The head must arrive within its deadline, which a slow sanitizer
    // build's first io_uring round can take a millisecond for: 200 ms, and
    // a handler longer than that. The other deadlines are 1 ms.
    o.header_timeout = 200ms;
    o.body_timeout = o.keep_alive_timeout = o.write_timeout = 1ms;
    o.stats = &stats;
    auto [l, c, s] = co_await connect_pair();
    auto slow = [](const corio::http_request&, corio::http_response& res) -> corio::task<> {
      co_await corio::sleep(250ms);  // longer than every deadline
      res.set_body("late but whole");
    };
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), slow, o));
    co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "late but whole");
    co_await conn;  // then the keep-alive deadline closes it
    EXPECT_EQ(stats.idle_closed, 1U);
  });
}

TEST_P(ServerLimits, PipelinedResponsesAreSentInBoundedBatches) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    o.max_output_bytes = 32 * 1024;
    auto [l, c, s] = co_await connect_pair();
    auto large = [](const corio::http_request&, corio::http_response& res) {
      res.set_body(std::string(16 * 1024, 'r'));
    };
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), large, o));
    // 400 requests in one write: 6.4 MiB of responses if they were all
    // built before the first write.
    std::string burst;
    for (int i = 0; i < 400; ++i)
      burst += "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    co_await send(c, burst);
    std::string in;
    for (int i = 0; i < 400; ++i)
      EXPECT_EQ((co_await read_response(c, in)).body.size(), 16384U);
    c.close();
    co_await conn;
    EXPECT_GT(stats.peak_connection_buffer_bytes, 32U * 1024);
    EXPECT_LE(stats.peak_connection_buffer_bytes, 256U * 1024);
  });
}

TEST_P(ServerLimits, AnIdleConnectionGivesBackWhatALargeRequestGrew) {
  run_io([]() -> corio::task<> {
    corio::server_stats stats;
    corio::http_options o = far_deadlines(stats);
    auto [l, c, s] = co_await connect_pair();
    auto conn = corio::spawn(corio::serve_http_connection(std::move(s), hello, o));
    const std::size_t body = 1000 * 1000;
    co_await send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body) +
                         "\r\n\r\n" + std::string(body, 'b'));
    std::string in;
    EXPECT_EQ((co_await read_response(c, in)).body, "hello");
    // Then a pipelined burst grows the output; and the connection idles.
    std::string burst;
    for (int i = 0; i < 2000; ++i)
      burst += "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    co_await send(c, burst);
    for (int i = 0; i < 2000; ++i)
      (void)co_await read_response(c, in);
    EXPECT_TRUE(co_await eventually([&] { return stats.buffer_bytes <= 32U * 1024; }))
        << stats.buffer_bytes << " bytes held by an idle connection";
    EXPECT_GE(stats.peak_connection_buffer_bytes, body);
    c.close();
    co_await conn;
    EXPECT_EQ(stats.buffer_bytes, 0U);
  });
}

// An echo connection for serve's own tests.
corio::task<> echo(corio::tcp_stream s) {
  char buf[256];
  std::error_code ec;
  for (;;) {
    const std::size_t n = co_await s.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) co_return;
    (void)co_await s.write_all(buf, n, ec);
    if (ec) co_return;
  }
}

corio::task<std::string> round_trip(corio::tcp_stream& c, std::string_view what) {
  co_await send(c, what);
  std::string got(what.size(), '\0');
  co_await c.read_exact(got.data(), got.size());
  co_return got;
}

TEST_P(ServerLimits, AtTheCapNewConnectionsWaitInTheBacklog) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    corio::server_stats stats;
    auto server = corio::spawn(corio::serve(l, echo, {.max_connections = 2, .stats = &stats}));
    auto c1 = co_await corio::tcp_stream::connect(l.local_address());
    auto c2 = co_await corio::tcp_stream::connect(l.local_address());
    EXPECT_EQ(co_await round_trip(c1, "one"), "one");
    EXPECT_EQ(co_await round_trip(c2, "two"), "two");
    EXPECT_TRUE(co_await eventually([&] { return stats.at_capacity == 1; }));
    // The kernel completes the third handshake; the server does not take it.
    auto c3 = co_await corio::tcp_stream::connect(l.local_address());
    co_await send(c3, "three");
    c1.close();  // a slot frees: the third is served
    std::string got(5, '\0');
    co_await c3.read_exact(got.data(), got.size());
    EXPECT_EQ(got, "three");
    EXPECT_EQ(stats.accepted, 3U);
    EXPECT_EQ(stats.peak_connections, 2U);
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
    EXPECT_EQ(stats.connections, 0U);
  });
}

// On the virtual clock: the client talks every 150 ms for 1.5 s under a
// 200 ms idle timeout and is served throughout; once it stops, the watch
// closes the connection. The watch asks the kernel whether bytes moved, so
// a jump of the clock past a read the loop has not yet seen cannot cut a
// live connection.
TEST_P(ServerLimits, ServeClosesAConnectionOnlyAfterItFallsIdle) {
  run_io(
      []() -> corio::task<> {
        auto l = listen_any();
        corio::server_stats stats;
        auto server = corio::spawn(corio::serve(l, echo, {.idle_timeout = 200ms, .stats = &stats}));
        auto c = co_await corio::tcp_stream::connect(l.local_address());
        for (int i = 0; i < 10; ++i) {
          EXPECT_EQ(co_await round_trip(c, "ping"), "ping");
          co_await corio::sleep(150ms);
        }
        const auto quiet = corio::now();
        std::string in;
        co_await read_to_end(c, in);
        EXPECT_GE(corio::now() - quiet, 200ms - 150ms);
        EXPECT_EQ(stats.timed_out, 1U);
        EXPECT_TRUE(co_await eventually([&] { return stats.connections == 0; }));
        server.cancel();
        EXPECT_THROW(co_await server, corio::cancelled_error);
      },
      /*virtual_clock=*/true);
}

// ---- graceful stop (server_shutdown) ------------------------------------------

// Runs `server` and sets `returned` when it returns normally.
corio::task<> note_return(corio::task<> server, bool& returned) {
  co_await std::move(server);
  returned = true;
}

// Options of a graceful-stop test: far deadlines, `stop` as the shutdown,
// and a drain timeout that only a broken drain would reach.
corio::http_options stopped_by(corio::server_stats& stats, corio::server_shutdown& stop) {
  corio::http_options o = far_deadlines(stats);
  o.shutdown = &stop;
  o.drain_timeout = 1h;
  return o;
}

// Waits for a server that returned; cancels one that did not (the test
// has failed already) so that the test ends.
corio::task<> finish(corio::join_handle<void>& server, bool returned) {
  if (!returned) server.cancel();
  try {
    co_await server;
  } catch (const corio::cancelled_error&) {
  }
}

TEST_P(ServerLimits, AGracefulStopClosesIdleConnectionsAtOnceAndReturns) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    corio::server_stats stats;
    corio::server_shutdown stop;
    const corio::http_options o = stopped_by(stats, stop);
    bool returned = false;
    auto server = corio::spawn(note_return(corio::serve_http(l, hello, o), returned));
    auto kept_alive = co_await corio::tcp_stream::connect(l.local_address());
    co_await send(kept_alive, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string in;
    EXPECT_EQ((co_await read_response(kept_alive, in)).body, "hello");
    auto silent = co_await corio::tcp_stream::connect(l.local_address());
    EXPECT_TRUE(co_await eventually([&] { return stats.connections == 2; }));
    stop.request();
    std::string rest;
    co_await read_to_end(kept_alive, rest);
    co_await read_to_end(silent, rest);
    EXPECT_EQ(rest, "") << "an idle connection closes without a word";
    kept_alive.close();  // the server waits a moment for the client's end
    silent.close();
    EXPECT_TRUE(co_await eventually([&] { return returned; }));
    EXPECT_EQ(stats.connections, 0U);
    EXPECT_EQ(stats.timed_out + stats.idle_closed, 0U);
    co_await finish(server, returned);
  });
}

TEST_P(ServerLimits, AGracefulStopAnswersTheRequestUnderWayThenCloses) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    corio::server_stats stats;
    corio::server_shutdown stop;
    const corio::http_options o = stopped_by(stats, stop);
    corio::event release;
    int entered = 0;
    auto slow = [&](const corio::http_request& /*req*/,
                    corio::http_response& res) -> corio::task<> {
      ++entered;
      co_await release.wait();
      res.set_body("late");
    };
    bool returned = false;
    auto server = corio::spawn(note_return(corio::serve_http(l, slow, o), returned));
    auto busy = co_await corio::tcp_stream::connect(l.local_address());
    auto idle = co_await corio::tcp_stream::connect(l.local_address());
    // Two pipelined requests: the first is under way when the stop comes,
    // the second is never started.
    co_await send(busy, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_TRUE(co_await eventually([&] { return entered == 1 && stats.connections == 2; }));
    stop.request();
    std::string idle_in;
    co_await read_to_end(idle, idle_in);  // closed while the busy one waits
    EXPECT_EQ(idle_in, "");
    idle.close();
    EXPECT_TRUE(co_await eventually([&] { return stats.connections == 1; }));
    EXPECT_FALSE(returned);
    release.set();
    std::string in;
    const corio_test::response r = co_await read_response(busy, in);
    EXPECT_EQ(r.body, "late");
    EXPECT_TRUE(r.has("Connection: close\r\n"));
    co_await read_to_end(busy, in);
    EXPECT_EQ(in, "") << "the second request is not answered";
    EXPECT_EQ(entered, 1);
    busy.close();
    EXPECT_TRUE(co_await eventually([&] { return returned; }));
    EXPECT_EQ(stats.connections, 0U);
    co_await finish(server, returned);
  });
}

TEST_P(ServerLimits, AGracefulStopCancelsWhatOutlivesTheDrainTimeout) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    corio::server_stats stats;
    corio::server_shutdown stop;
    bool returned = false;
    auto server = corio::spawn(note_return(
        corio::serve(l, echo, {.stats = &stats, .shutdown = &stop, .drain_timeout = 20ms}),
        returned));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    EXPECT_EQ(co_await round_trip(c, "ping"), "ping");
    stop.request();
    std::string in;
    co_await read_to_end(c, in);  // the echo never ends by itself: cancelled
    EXPECT_EQ(in, "");
    EXPECT_TRUE(co_await eventually([&] { return returned; }));
    EXPECT_EQ(stats.connections, 0U);
    EXPECT_EQ(stats.timed_out, 0U) << "cancelled by the drain, not by the idle watch";
    co_await finish(server, returned);
  });
}

TEST_P(ServerLimits, CancellingAServerWhileItDrainsCancelsItsConnections) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    corio::server_stats stats;
    corio::server_shutdown stop;
    const corio::http_options o = stopped_by(stats, stop);
    corio::event never;
    int entered = 0;
    auto stuck = [&](const corio::http_request& /*req*/,
                     corio::http_response& /*res*/) -> corio::task<> {
      ++entered;
      co_await never.wait();
    };
    auto server = corio::spawn(corio::serve_http(l, stuck, o));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    auto idle = co_await corio::tcp_stream::connect(l.local_address());
    co_await send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_TRUE(co_await eventually([&] { return entered == 1 && stats.connections == 2; }));
    stop.request();
    std::string idle_in;
    co_await read_to_end(idle, idle_in);  // the drain has begun
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
    EXPECT_EQ(stats.connections, 0U);
    std::string in;
    co_await read_to_end(c, in);
    EXPECT_EQ(in, "");
  });
}

}  // namespace
