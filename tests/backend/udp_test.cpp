// udp_socket on 127.0.0.1 on both backends: datagram boundaries and
// senders, truncation, empty datagrams, connected sockets and
// ECONNREFUSED, and a cancelled receive that loses no datagram.
#include <cerrno>
#include <string>
#include <system_error>

#include "backend/io_support.hpp"

using corio_test::io_test;

namespace {

class Udp : public io_test {};
CORIO_BOTH_BACKENDS(Udp);

corio::udp_socket bind_any() {
  return corio::udp_socket::bind(corio::socket_address::loopback(0));
}

TEST_P(Udp, DatagramsKeepTheirBoundariesAndTheirSender) {
  run_io([]() -> corio::task<> {
    auto a = bind_any();
    auto b = bind_any();
    const std::string msgs[] = {"one", "", std::string(1200, 'x'), "four"};
    for (const auto& m : msgs)
      EXPECT_EQ(co_await a.send_to(m.data(), m.size(), b.local_address()), m.size());
    char buf[2048];
    for (const auto& m : msgs) {
      const corio::datagram d = co_await b.receive_from(buf, sizeof buf);
      EXPECT_EQ(std::string(buf, d.size), m);
      EXPECT_FALSE(d.truncated);
      EXPECT_EQ(d.from.to_string(), a.local_address().to_string());
    }
    // Answer the sender at the address it came from.
    const corio::datagram d = co_await
        [](corio::udp_socket& a, corio::udp_socket& b, char* buf) -> corio::task<corio::datagram> {
      co_await a.send_to("ping", 4, b.local_address());
      char in[16];
      const corio::datagram got = co_await b.receive_from(in, sizeof in);
      co_await b.send_to("pong", 4, got.from);
      co_return co_await a.receive_from(buf, 16);
    }(a, b, buf);
    EXPECT_EQ(std::string(buf, d.size), "pong");
  });
}

TEST_P(Udp, ALongDatagramIsTruncatedAndTheNextArrivesWhole) {
  run_io([]() -> corio::task<> {
    auto a = bind_any();
    auto b = bind_any();
    const std::string big(100, 'b');
    co_await a.send_to(big.data(), big.size(), b.local_address());
    co_await a.send_to("next", 4, b.local_address());
    char small[10];
    const corio::datagram d = co_await b.receive_from(small, sizeof small);
    EXPECT_EQ(d.size, 10U);
    EXPECT_TRUE(d.truncated);
    char buf[64];
    const corio::datagram n = co_await b.receive_from(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n.size), "next");
    EXPECT_FALSE(n.truncated);
  });
}

TEST_P(Udp, AConnectedSocketTalksToItsPeerAndHearsARefusal) {
  run_io([]() -> corio::task<> {
    auto a = bind_any();
    auto b = bind_any();
    a.connect(b.local_address());
    co_await a.send("hello", 5);
    char buf[16];
    const corio::datagram d = co_await b.receive_from(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, d.size), "hello");
    // A closed port answers with ICMP port unreachable: the next call on
    // the connected socket fails with ECONNREFUSED.
    const auto gone = b.local_address();
    b.close();
    a.connect(gone);
    int error = 0;
    try {
      co_await a.send("anyone?", 7);
      (void)co_await a.receive_from(buf, sizeof buf);
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    EXPECT_EQ(error, ECONNREFUSED);
  });
}

TEST_P(Udp, CancellingAPendingReceiveLosesNoDatagram) {
  run_io([]() -> corio::task<> {
    auto a = bind_any();
    auto b = bind_any();
    char buf[16];
    auto pending = corio::spawn([](corio::udp_socket& b, char* buf) -> corio::task<std::size_t> {
      co_return (co_await b.receive_from(buf, 16)).size;
    }(b, buf));
    co_await corio::yield_now();
    EXPECT_TRUE(pending.cancel());
    EXPECT_THROW(co_await pending, corio::cancelled_error);
    co_await a.send_to("kept", 4, b.local_address());
    const corio::datagram d = co_await b.receive_from(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, d.size), "kept");
  });
}

TEST_P(Udp, ManyRoundTrips) {
  run_io([]() -> corio::task<> {
    auto client = bind_any();
    auto server = bind_any();
    auto echo = corio::spawn([](corio::udp_socket& s) -> corio::task<> {
      char buf[64];
      for (;;) {
        const corio::datagram d = co_await s.receive_from(buf, sizeof buf);
        co_await s.send_to(buf, d.size, d.from);
      }
    }(server));
    client.connect(server.local_address());
    int good = 0;
    for (int i = 0; i < 1000; ++i) {
      const std::string m = std::to_string(i);
      co_await client.send(m.data(), m.size());
      char buf[64];
      const corio::datagram d = co_await client.receive_from(buf, sizeof buf);
      good += std::string(buf, d.size) == m ? 1 : 0;
    }
    EXPECT_EQ(good, 1000);
    echo.cancel();
    EXPECT_THROW(co_await echo, corio::cancelled_error);
  });
}

}  // namespace
