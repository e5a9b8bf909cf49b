// TCP over 127.0.0.1 on both backends: data, end of stream, resets,
// half-close, closing under a pending call, and cancellation of every
// pending call (read, write, accept, connect) without losing a descriptor,
// and 10,000 connections open at once.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "backend/io_support.hpp"

using corio_test::connect_pair;
using corio_test::io_test;
using corio_test::listen_any;
using namespace std::chrono_literals;

namespace {

class Tcp : public io_test {};
CORIO_BOTH_BACKENDS(Tcp);

corio::task<> echo_until_eof(corio::tcp_stream s) {
  std::vector<char> buf(65536);
  for (;;) {
    const std::size_t n = co_await s.read_some(buf.data(), buf.size());
    if (n == 0) co_return;
    co_await s.write_all(buf.data(), n);
  }
}

// One read; the errno it failed with, or 0.
corio::task<int> read_error(corio::tcp_stream& c) {
  char buf[16];
  try {
    co_await c.read_some(buf, sizeof buf);
  } catch (const std::system_error& e) {
    co_return e.code().value();
  }
  co_return 0;
}

// Resets the connection: SO_LINGER 0 makes close() send RST.
void reset(corio::tcp_stream& s) {
  linger l{1, 0};
  ASSERT_EQ(::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  s.close();
}

TEST_P(Tcp, EchoOfAMegabyteComesBackIntact) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    const auto addr = l.local_address();
    EXPECT_EQ(addr.to_string().rfind("127.0.0.1:", 0), 0U);
    auto server = corio::spawn([](corio::tcp_listener& l) -> corio::task<> {
      co_await echo_until_eof(co_await l.accept());
    }(l));
    auto c = co_await corio::tcp_stream::connect(addr);
    c.set_nodelay(true);
    EXPECT_EQ(c.peer_address().port(), addr.port());
    std::vector<char> out(1 << 20);
    std::iota(out.begin(), out.end(), 0);
    // Write and read concurrently: a megabyte does not fit the socket buffers.
    auto writer = corio::spawn([](corio::tcp_stream& c, std::vector<char>& out) -> corio::task<> {
      co_await c.write_all(out.data(), out.size());
      c.shutdown_write();
    }(c, out));
    std::vector<char> in(out.size());
    co_await c.read_exact(in.data(), in.size());
    EXPECT_EQ(in, out);
    char extra = 0;
    EXPECT_EQ(co_await c.read_some(&extra, 1), 0U);  // the server saw EOF and closed
    co_await writer;
    co_await server;
  });
}

TEST_P(Tcp, PeerCloseIsACleanEndOfStream) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    {
      auto s = co_await l.accept();
      co_await s.write_all("bye", 3);
    }  // closed
    char buf[8];
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf), 3U);
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf), 0U);
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf), 0U);  // and stays so
    try {
      co_await c.read_exact(buf, 1);
      ADD_FAILURE() << "read_exact past the end did not throw";
    } catch (const corio::incomplete_read_error& e) {
      EXPECT_EQ(e.got(), 0U);
      EXPECT_EQ(e.wanted(), 1U);
    }
  });
}

TEST_P(Tcp, ResetMidReadIsConnectionReset) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    auto reader = corio::spawn(read_error(c));
    co_await corio::yield_now();  // the read is pending now
    auto s = co_await l.accept();
    reset(s);
    EXPECT_EQ(co_await reader, ECONNRESET);
  });
}

TEST_P(Tcp, ErrorCodeReadsReportResetAndEndOfStreamWithoutThrowing) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    char buf[16];
    std::error_code ec = std::make_error_code(std::errc::io_error);
    co_await s.write_all("hi", 2);
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf, ec), 2U);
    EXPECT_FALSE(ec) << "success clears the error code";
    reset(s);
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf, ec), 0U);
    EXPECT_EQ(ec.value(), ECONNRESET);
    c.close();
    EXPECT_EQ(co_await c.read_some(buf, sizeof buf, ec), 0U);
    EXPECT_EQ(ec.value(), EBADF) << "a closed stream fails the call, it does not crash";
  });
}

TEST_P(Tcp, ErrorCodeWriteAllStopsAtTheFirstErrorAndSaysHowFarItGot) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    std::vector<char> chunk(65536, 'x');
    std::error_code ec;
    EXPECT_EQ(co_await c.write_all(chunk.data(), 10, ec), 10U);
    EXPECT_FALSE(ec);
    reset(s);
    std::size_t written = chunk.size();
    for (int i = 0; i < 1000 && !ec; ++i)  // the first writes may still be accepted
      written = co_await c.write_all(chunk.data(), chunk.size(), ec);
    EXPECT_TRUE(ec.value() == EPIPE || ec.value() == ECONNRESET) << ec.message();
    EXPECT_LT(written, chunk.size());
    c.shutdown_write(ec);  // on a reset connection: an error code, not an exception
  });
}

TEST_P(Tcp, WritingToAResetPeerFailsWithoutSigpipe) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    reset(s);
    std::vector<char> chunk(65536, 'x');
    int error = 0;
    try {
      for (int i = 0; i < 1000; ++i)  // the first write may still be accepted
        co_await c.write_all(chunk.data(), chunk.size());
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;
  });
}

TEST_P(Tcp, HalfCloseLetsThePeerAnswerAfterEndOfStream) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto server = corio::spawn([](corio::tcp_listener& l) -> corio::task<> {
      auto s = co_await l.accept();
      std::string got;
      char buf[64];
      while (std::size_t n = co_await s.read_some(buf, sizeof buf))
        got.append(buf, n);
      const std::string reply = "got " + std::to_string(got.size());
      co_await s.write_all(reply.data(), reply.size());
    }(l));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    co_await c.write_all("hello world", 11);
    c.shutdown_write();
    std::string reply;
    char buf[64];
    while (std::size_t n = co_await c.read_some(buf, sizeof buf))
      reply.append(buf, n);
    EXPECT_EQ(reply, "got 11");
    co_await server;
  });
}

TEST_P(Tcp, ConnectionRefusedIsASystemError) {
  run_io([]() -> corio::task<> {
    std::uint16_t port = 0;
    {
      auto l = listen_any();
      port = l.local_address().port();
    }  // nobody listens there now
    int error = 0;
    try {
      auto c = co_await corio::tcp_stream::connect(corio::socket_address::loopback(port));
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    EXPECT_EQ(error, ECONNREFUSED);
  });
}

TEST_P(Tcp, ClosingUnderAPendingReadFailsItWithEcanceled) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto reader = corio::spawn(read_error(c));
    co_await corio::yield_now();
    c.close();
    EXPECT_EQ(co_await reader, ECANCELED);
    char buf[4];
    try {  // a closed stream fails cleanly
      co_await c.read_some(buf, sizeof buf);
      ADD_FAILURE() << "read on a closed stream did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
  });
}

// Cancellation at each suspension point of a connection's life: a pending
// accept, connect, read and write. Each is cancelled while it waits; the
// task sees cancelled_error, and afterwards the same socket still works,
// with no byte lost (the data that arrives later is all read).
TEST_P(Tcp, CancellingAPendingAcceptTakesNoConnection) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto h = corio::spawn(
        [](corio::tcp_listener& l) -> corio::task<> { auto s = co_await l.accept(); }(l));
    co_await corio::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_THROW(co_await h, corio::cancelled_error);
    // The next connection goes to the next accept.
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    auto s = co_await l.accept();
    co_await c.write_all("k", 1);
    char b = 0;
    EXPECT_EQ(co_await s.read_some(&b, 1), 1U);
    EXPECT_EQ(b, 'k');
  });
}

TEST_P(Tcp, CancellingAPendingReadLosesNoData) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto h = corio::spawn([](corio::tcp_stream& s) -> corio::task<> {
      char buf[16];
      co_await s.read_some(buf, sizeof buf);
    }(s));
    co_await corio::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_THROW(co_await h, corio::cancelled_error);
    co_await c.write_all("abc", 3);
    char buf[4] = {};
    co_await s.read_exact(buf, 3);
    EXPECT_STREQ(buf, "abc");
  });
}

TEST_P(Tcp, CancellingAPendingWriteKeepsTheStreamUsable) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    // Nobody reads s, so a big write blocks once the buffers are full.
    std::vector<char> big(64 << 20, 'x');
    std::size_t written = 0;
    auto h = corio::spawn(
        [](corio::tcp_stream& c, std::vector<char>& big, std::size_t& written) -> corio::task<> {
          while (written < big.size())
            written += co_await c.write_some(big.data() + written, big.size() - written);
        }(c, big, written));
    for (int i = 0; i < 50 && !h.done(); ++i)
      co_await corio::yield_now();
    EXPECT_FALSE(h.done()) << "64 MiB fit in the socket buffers";
    EXPECT_TRUE(h.cancel());
    EXPECT_THROW(co_await h, corio::cancelled_error);
    // Everything counted as written arrives, and nothing more.
    c.shutdown_write();
    std::size_t got = 0;
    std::vector<char> buf(1 << 16);
    while (std::size_t n = co_await s.read_some(buf.data(), buf.size()))
      got += n;
    EXPECT_EQ(got, written);
  });
}

TEST_P(Tcp, CancellingAPendingConnectLeaksNoDescriptor) {
  run_io([]() -> corio::task<> {
    // Backlog 0: one connection completes; the next handshake is dropped by
    // the full accept queue, so its connect stays pending.
    auto l = listen_any(0);
    auto first = co_await corio::tcp_stream::connect(l.local_address());
    std::vector<corio::join_handle<>> pending;
    pending.reserve(3);
    for (int i = 0; i < 3; ++i)
      pending.push_back(corio::spawn([](corio::socket_address a) -> corio::task<> {
        auto c = co_await corio::tcp_stream::connect(a);
      }(l.local_address())));
    for (int i = 0; i < 10; ++i)
      co_await corio::yield_now();
    int cancelled = 0;
    for (auto& h : pending) {
      const bool was_pending = h.cancel();
      try {
        co_await h;
      } catch (const corio::cancelled_error&) {
        ++cancelled;
      }
      (void)was_pending;
    }
    EXPECT_GE(cancelled, 2);  // at most one more fits the queue
  });
}

TEST_P(Tcp, TimeoutBoundsAConnect) {
  run_io([]() -> corio::task<> {
    auto l = listen_any(0);
    auto first = co_await corio::tcp_stream::connect(l.local_address());
    auto second =
        co_await corio::move_on_after(50ms, corio::tcp_stream::connect(l.local_address()));
    // The second may fit the queue; a third cannot.
    auto third = co_await corio::move_on_after(50ms, corio::tcp_stream::connect(l.local_address()));
    EXPECT_FALSE(third.has_value() && second.has_value());
    // With the limit as an argument: timeout_error, and no descriptor left
    // (run_io counts them).
    if (!third) {
      EXPECT_THROW((void)co_await corio::tcp_stream::connect(l.local_address(), 50ms),
                   corio::timeout_error);
    }
  });
}

}  // namespace

namespace {

TEST_P(Tcp, UnixStreamSocketsWorkTheSameWay) {
  run_io([]() -> corio::task<> {
    const std::string path = "/tmp/corio-test-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    auto l = corio::tcp_listener::bind(corio::socket_address::unix_path(path));
    EXPECT_EQ(l.local_address().to_string(), path);
    auto server = corio::spawn([](corio::tcp_listener& l) -> corio::task<> {
      co_await echo_until_eof(co_await l.accept());
    }(l));
    auto c = co_await corio::tcp_stream::connect(corio::socket_address::unix_path(path));
    co_await c.write_all("over unix", 9);
    char buf[10] = {};
    co_await c.read_exact(buf, 9);
    EXPECT_STREQ(buf, "over unix");
    c.close();
    co_await server;
    ::unlink(path.c_str());
  });
}

}  // namespace

namespace {

// At the descriptor limit, accept() neither fails nor spins: it backs off
// and takes the connection once a descriptor is free again.
TEST_P(Tcp, AcceptAtTheDescriptorLimitBacksOffAndRecovers) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto client = co_await corio::tcp_stream::connect(l.local_address());
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit tight = saved;
    // The limit bounds descriptor numbers: the lowest free one is the limit
    // at which the next accept fails with EMFILE.
    const int lowest_free = ::dup(0);
    ::close(lowest_free);
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    ::setrlimit(RLIMIT_NOFILE, &tight);
    auto acceptor = corio::spawn([](corio::tcp_listener& l) -> corio::task<corio::tcp_stream> {
      co_return co_await l.accept();
    }(l));
    // While out of descriptors the acceptor sleeps between tries: the loop
    // turns a few times in 50 ms (a spinning acceptor: hundreds
    // on epoll, tens of thousands on io_uring).
    const auto before = corio::event_loop::current()->stats().iterations;
    co_await corio::sleep(50ms);
    const auto spent = corio::event_loop::current()->stats().iterations - before;
    EXPECT_FALSE(acceptor.done());
    ::setrlimit(RLIMIT_NOFILE, &saved);  // descriptors are available again
    auto s = co_await acceptor;
    EXPECT_TRUE(s.is_open());
    EXPECT_LT(spent, 100U) << "accept spun while out of descriptors";  // backing off: ~10-15
  });
}

}  // namespace

namespace {

// SO_REUSEPORT lets two listeners share a port (one per loop); without it
// the second bind fails with EADDRINUSE.
TEST_P(Tcp, ReusePortLetsTwoListenersShareAPort) {
  run_io([]() -> corio::task<> {
    corio::listen_options shared;
    shared.reuse_port = true;
    auto a = corio::tcp_listener::bind(corio::socket_address::loopback(0), shared);
    const auto addr = a.local_address();
    auto b = corio::tcp_listener::bind(addr, shared);
    EXPECT_EQ(b.local_address().port(), addr.port());
    int error = 0;
    try {
      auto c = corio::tcp_listener::bind(addr);
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    EXPECT_EQ(error, EADDRINUSE);
    // Connections reach one of them.
    auto client = co_await corio::tcp_stream::connect(addr);
    std::vector<corio::task<corio::tcp_stream>> accepts;
    accepts.push_back(a.accept());
    accepts.push_back(b.accept());
    auto first = co_await corio::wait_any(std::move(accepts));  // cancels the other accept
    EXPECT_TRUE(first.value.is_open());
  });
}

}  // namespace

namespace {

// The clients of TenThousandConcurrentConnections, run in a child
// process (each process may open 20,000 descriptors here, and
// CAP_SYS_RESOURCE is not ours to raise that). They connect, each
// exchanges a message, all wait until every one has, then each exchanges a
// second message and closes. Exit status 0 when every byte came back.
int run_clients(corio::io_backend_kind backend, corio::socket_address to, int n) {
  corio::loop_options options;
  options.backend = backend;
  corio::event_loop loop(options);
  struct state {
    int ready = 0;
    corio::event all_ready;
  } st;
  auto client = [](corio::socket_address to, int i, int n, state& st) -> corio::task<int> {
    auto c = co_await corio::tcp_stream::connect(to);
    const std::string msg = "client " + std::to_string(i) + ";";
    std::string back(msg.size(), '\0');
    int good = 0;
    for (int round = 0; round < 2; ++round) {
      co_await c.write_all(msg.data(), msg.size());
      co_await c.read_exact(back.data(), back.size());
      good += back == msg ? 1 : 0;
      if (round == 0 && ++st.ready == n) st.all_ready.set();
      if (round == 0) co_await st.all_ready.wait();
    }
    co_return good;
  };
  try {
    const int good = corio::run(
        loop, [](auto client, corio::socket_address to, int n, state& st) -> corio::task<int> {
          std::vector<corio::task<int>> clients;
          clients.reserve(static_cast<std::size_t>(n));
          for (int i = 0; i < n; ++i)
            clients.push_back(client(to, i, n, st));
          const std::vector<int> good = co_await corio::gather(std::move(clients));
          co_return std::accumulate(good.begin(), good.end(), 0);
        }(client, to, n, st));
    return good == 2 * n ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clients failed: %s\n", e.what());
    return 2;
  }
}

// The byte at `offset` of connection `conn`'s stream: a pattern that a
// lost, repeated or reordered chunk breaks.
char pattern_byte(std::size_t conn, std::size_t offset) {
  return static_cast<char>((offset * 31 + conn * 7 + offset / 4093) & 0xff);
}

// Many connections receive far more than they read for a while: on io_uring
// their multishot receives fill their queues, are stopped (flow control),
// run the shared buffer ring dry and fall back to one-shot reads. Every
// stream must still arrive whole and in order, on both backends.
TEST_P(Tcp, ManyFastSendersAndSlowReadersLoseAndReorderNothing) {
  run_io([]() -> corio::task<> {
    static constexpr std::size_t conns = 150;
    static constexpr std::size_t bytes = 200 * 1024;
    auto l = listen_any(conns);
    std::vector<corio::tcp_stream> clients;
    std::vector<corio::tcp_stream> servers;
    for (std::size_t i = 0; i < conns; ++i) {
      clients.push_back(co_await corio::tcp_stream::connect(l.local_address()));
      servers.push_back(co_await l.accept());
    }
    std::size_t intact = 0;
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      for (std::size_t i = 0; i < conns; ++i) {
        g.spawn([](corio::tcp_stream& c, std::size_t conn) -> corio::task<> {
          std::vector<char> data(bytes);
          for (std::size_t k = 0; k < bytes; ++k)
            data[k] = pattern_byte(conn, k);
          co_await c.write_all(data.data(), data.size());
          c.shutdown_write();
        }(clients[i], i));
        g.spawn([](corio::tcp_stream& s, std::size_t conn, std::size_t& intact) -> corio::task<> {
          // One small read first (it arms a multishot on io_uring), then
          // let data pile up before reading the rest in odd-sized pieces.
          char first = 0;
          std::size_t got = co_await s.read_some(&first, 1);
          bool ok = got == 1 && first == pattern_byte(conn, 0);
          for (int k = 0; k < 20; ++k)
            co_await corio::yield_now();
          std::vector<char> buf(7001);
          for (std::size_t n; (n = co_await s.read_some(buf.data(), buf.size())) != 0; got += n)
            for (std::size_t k = 0; k < n; ++k)
              ok = ok && buf[k] == pattern_byte(conn, got + k);
          if (ok && got == bytes) ++intact;
        }(servers[i], i, intact));
      }
      co_return;
    });
    EXPECT_EQ(intact, conns);
    EXPECT_EQ(corio::event_loop::current()->stats().read_buffer_bytes, 0U);
  });
}

// Connections queued by a multishot accept and never taken are closed with
// the listener (no descriptor leaks: run_io counts them), and their
// clients see the connection end.
TEST_P(Tcp, ClosingAListenerClosesTheConnectionsItAcceptedButNobodyTook) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    std::vector<corio::tcp_stream> clients;
    for (int i = 0; i < 8; ++i)
      clients.push_back(co_await corio::tcp_stream::connect(l.local_address()));
    auto first = co_await l.accept();
    for (int k = 0; k < 5; ++k)
      co_await corio::yield_now();
    l.close();
    for (std::size_t i = 1; i < clients.size(); ++i) {
      char b = 0;
      std::size_t n = 1;
      try {
        n = co_await clients[i].read_some(&b, 1);
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET);
        n = 0;
      }
      EXPECT_EQ(n, 0U) << "client " << i;
    }
    co_await clients[0].write_all("x", 1);
    char b = 0;
    EXPECT_EQ(co_await first.read_some(&b, 1), 1U);
  });
}

// Closing a stream whose unread data sits in the loop's buffers (io_uring
// multishot) releases them: thousands of such closes later, reads still
// work (the buffers came back), with nothing leaked.
TEST_P(Tcp, ClosingStreamsWithUnreadDataReleasesTheirBuffers) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    std::vector<char> chunk(48 * 1024, 'z');
    for (int round = 0; round < 200; ++round) {
      auto c = co_await corio::tcp_stream::connect(l.local_address());
      auto s = co_await l.accept();
      co_await c.write_all("a", 1);
      char b = 0;
      EXPECT_EQ(co_await s.read_some(&b, 1), 1U);  // arms the multishot
      co_await c.write_all(chunk.data(), chunk.size());
      for (int k = 0; k < 3; ++k)
        co_await corio::yield_now();
      if (round == 0 && runs_uring() && corio_test::uring_multishot_on()) {
        // Bounded wait for the kernel's completions (not a timing check).
        for (int k = 0; k < 5000 && corio::event_loop::current()->stats().read_buffer_bytes == 0;
             ++k)
          co_await corio::sleep(1ms);
        EXPECT_GT(corio::event_loop::current()->stats().read_buffer_bytes, 0U)
            << "the unread data should be held by the loop (multishot receive)";
      }
      s.close();  // 48 KiB unread
      EXPECT_EQ(corio::event_loop::current()->stats().read_buffer_bytes, 0U);
    }
    auto [l2, c, s] = co_await connect_pair();
    co_await c.write_all("end", 3);
    char buf[4] = {};
    co_await s.read_exact(buf, 3);
    EXPECT_STREQ(buf, "end");
  });
}

// 10,000 connections open at once: a child process holds the clients,
// this one serves them and counts how many are open together.
TEST_P(Tcp, TenThousandConcurrentConnections) {
  static constexpr int n = 10'000;
  rlimit fds{};
  ::getrlimit(RLIMIT_NOFILE, &fds);
  if (fds.rlim_cur < n + 256) {
    fds.rlim_cur = std::min<rlim_t>(fds.rlim_max, n + 256);
    ::setrlimit(RLIMIT_NOFILE, &fds);
  }
  if (fds.rlim_cur < n + 256) GTEST_SKIP() << "RLIMIT_NOFILE is below " << n + 256;
  auto l = listen_any(4096);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto to = l.local_address();
    l.close();
    ::_exit(run_clients(GetParam(), to, n));
  }
  int peak = 0;
  run_io([&]() -> corio::task<> {
    struct shared_state {
      int live = 0;  // server connections open now
      int peak = 0;
      int closed = 0;
      corio::event all_closed;
    } st;
    auto server = corio::spawn(corio::serve(l, [&st](corio::tcp_stream s) -> corio::task<> {
      st.peak = std::max(st.peak, ++st.live);
      char buf[64];
      try {
        for (std::size_t got; (got = co_await s.read_some(buf, sizeof buf)) != 0;)
          co_await s.write_all(buf, got);
      } catch (const std::system_error&) {
      }
      --st.live;
      if (++st.closed == n) st.all_closed.set();
    }));
    // Bounded (a guard against a hang, not a timing check): the clients'
    // process ends within seconds, and its exit closes whatever it opened.
    try {
      co_await corio::timeout(
          45s, [](corio::event& e) -> corio::task<> { co_await e.wait(); }(st.all_closed));
    } catch (const corio::timeout_error&) {
      ADD_FAILURE() << "only " << st.closed << " connections were served";
    }
    peak = st.peak;
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
  });
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "client status " << status;
  EXPECT_EQ(peak, n) << "not every connection was open at once";
}

// A loop busy with ready tasks still looks for I/O: at least every 61
// iterations on either backend, and on io_uring (kernel 6.1+) in the very
// next one, because the kernel flags completions it holds for us. (Before
// deferred task work, such a completion waited for the thread's next
// kernel entry, a timer tick later: ~50,000 iterations here.) Counted in
// loop iterations after the bytes are in the socket (a Unix-socket send
// wakes the reader's watchers before it returns), so no clock is involved.
TEST_P(Tcp, ACompletionReachesItsTaskWhileTheLoopIsBusy) {
  if (runs_uring() && !corio_test::kernel_defers_uring_task_work())
    GTEST_SKIP() << "this kernel's io_uring reports completions only at kernel entries";
  const int limit = runs_uring() ? 2 : 62;
  run_io([limit]() -> corio::task<> {
    for (int round = 0; round < 20; ++round) {
      int sv[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
      corio::tcp_stream ours(sv[0]);
      bool got = false;
      auto reader = corio::spawn([](corio::tcp_stream& s, bool& got) -> corio::task<> {
        char c = 0;
        EXPECT_EQ(co_await s.read_some(&c, 1), 1U);
        got = true;
      }(ours, got));
      co_await corio::yield_now();  // the read is pending now
      std::atomic<bool> sent{false};
      std::thread peer([&sent, fd = sv[1]] {
        const char c = 'x';
        EXPECT_EQ(::send(fd, &c, 1, 0), 1);
        sent.store(true, std::memory_order_release);
      });
      int busy_after_send = 0;
      while (!got) {  // NOLINT(bugprone-infinite-loop): the reader task sets it
        if (sent.load(std::memory_order_acquire)) ++busy_after_send;
        co_await corio::yield_now();
      }
      peer.join();
      co_await reader;
      ::close(sv[1]);
      EXPECT_LE(busy_after_send, limit) << "round " << round;
    }
  });
}

}  // namespace
