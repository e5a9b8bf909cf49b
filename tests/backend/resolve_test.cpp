// resolve(): names from /etc/hosts through the blocking pool (no query
// leaves the machine), numeric hosts without it, errors, cancellation, and
// connecting by name.
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/io_support.hpp"

using corio_test::io_test;
using corio_test::listen_any;

namespace {

class Resolve : public io_test {};
CORIO_BOTH_BACKENDS(Resolve);

std::vector<std::string> names(const std::vector<corio::socket_address>& v) {
  std::vector<std::string> out;
  for (const auto& a : v)
    out.push_back(a.to_string());
  return out;
}

// The one address of a list, or how many there were.
std::string only(const std::vector<corio::socket_address>& v) {
  return v.size() == 1 ? v[0].to_string() : std::to_string(v.size()) + " addresses";
}

TEST_P(Resolve, LocalhostComesFromTheHostsFile) {
  run_io([]() -> corio::task<> {
    const auto got = names(co_await corio::resolve("localhost", 8080));
    EXPECT_FALSE(got.empty());
    for (const auto& a : got)
      EXPECT_TRUE(a == "127.0.0.1:8080" || a == "[::1]:8080") << a;
    corio::resolve_options v4;
    v4.family = AF_INET;
    EXPECT_EQ(only(co_await corio::resolve("localhost", 1, v4)), "127.0.0.1:1");
  });
}

TEST_P(Resolve, NumericHostsNeedNoLookup) {
  run_io([]() -> corio::task<> {
    EXPECT_EQ(only(co_await corio::resolve("127.0.0.1", 80)), "127.0.0.1:80");
    EXPECT_EQ(only(co_await corio::resolve("::1", 443)), "[::1]:443");
  });
}

TEST_P(Resolve, AFailedLookupSaysWhy) {
  run_io([]() -> corio::task<> {
    try {
      (void)co_await corio::resolve("", 80);  // no name at all: refused locally
      ADD_FAILURE() << "no resolve_error";
    } catch (const corio::resolve_error& e) {
      EXPECT_EQ(e.code(), EAI_NONAME);
      EXPECT_NE(std::string(e.what()).find("cannot resolve"), std::string::npos);
    }
  });
}

TEST_P(Resolve, ACancelledLookupEndsCleanly) {
  run_io([]() -> corio::task<> {
    std::vector<corio::join_handle<std::vector<corio::socket_address>>> lookups;
    for (int i = 0; i < 20; ++i)
      lookups.push_back(corio::spawn(corio::resolve("localhost", 80)));
    co_await corio::yield_now();
    for (int i = 0; i < 20; i += 2)
      lookups[static_cast<std::size_t>(i)].cancel();
    int cancelled = 0;
    int answered = 0;
    for (auto& h : lookups) {
      try {
        answered += (co_await h).empty() ? 0 : 1;
      } catch (const corio::cancelled_error&) {
        ++cancelled;
      }
    }
    EXPECT_EQ(cancelled, 10);
    EXPECT_EQ(answered, 10);
  });
}

TEST_P(Resolve, ConnectByName) {
  run_io([]() -> corio::task<> {
    auto l = listen_any();
    auto c = co_await corio::tcp_stream::connect("localhost", l.local_address().port());
    auto s = co_await l.accept();
    co_await c.write_all("hi", 2);
    char buf[2];
    co_await s.read_exact(buf, 2);
    EXPECT_EQ(std::string(buf, 2), "hi");
  });
}

}  // namespace
