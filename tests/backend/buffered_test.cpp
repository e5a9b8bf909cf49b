// buffered_reader and buffered_writer over real sockets on both backends:
// lines and records split across reads, limits, end of stream,
// cancellation that loses nothing, short writes, and backpressure from a
// slow reader keeping the writer's memory bounded.
#include <sys/socket.h>

#include <string>

#include "backend/io_support.hpp"

using corio_test::connect_pair;
using corio_test::io_test;

namespace {

class Buffered : public io_test {};
CORIO_BOTH_BACKENDS(Buffered);

corio::task<> send(corio::tcp_stream& c, std::string_view s) {
  co_await c.write_all(s.data(), s.size());
}

// Sends `parts` one by one, letting the loop run between them, so the
// reader sees them in separate reads; then closes.
corio::task<> trickle(corio::tcp_stream& c, std::vector<std::string> parts) {
  for (const auto& p : parts) {
    co_await send(c, p);
    for (int i = 0; i < 3; ++i)
      co_await corio::yield_now();
  }
  c.close();
}

// Bytes a socket's kernel buffers can hold (send + receive side).
int sock_buf(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  ::getsockopt(fd, SOL_SOCKET, opt, &v, &len);
  return v;
}

void shrink_buffers(corio::tcp_stream& writer, corio::tcp_stream& reader) {
  // Small, fixed buffers (no autotuning); not tiny, or TCP falls back to
  // its persist timer and crawls.
  const int small = 64 * 1024;  // the kernel doubles it
  ::setsockopt(writer.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(reader.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST_P(Buffered, LinesSplitAcrossReadsComeWholeThenTheTailThenEmpty) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto writer = corio::spawn(trickle(c, {"al", "pha\nbe", "ta\r\n", "\n", "tail"}));
    corio::buffered_reader in(s);
    EXPECT_EQ(co_await in.read_line(), "alpha\n");
    EXPECT_EQ(co_await in.read_line(), "beta\r\n");
    EXPECT_EQ(co_await in.read_line(), "\n");
    EXPECT_EQ(co_await in.read_line(), "tail");  // the stream ended without '\n'
    EXPECT_EQ(co_await in.read_line(), "");
    EXPECT_EQ(co_await in.read_line(), "");
    EXPECT_TRUE(in.at_eof());
    co_await writer;
  });
}

TEST_P(Buffered, ALineOverTheLimitIsAnErrorAndStaysBuffered) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    co_await send(c, "0123456789ABCDEF\nok\n");
    corio::buffered_reader in(s);
    try {
      (void)co_await in.read_line(10);
      ADD_FAILURE() << "no limit_overrun_error";
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_GE(e.buffered(), 10U);
    }
    // Nothing was lost: the long line is still there, readable with a
    // larger limit.
    EXPECT_EQ(co_await in.read_line(100), "0123456789ABCDEF\n");
    EXPECT_EQ(co_await in.read_line(3), "ok\n");  // exactly at the limit
  });
}

TEST_P(Buffered, AnEndlessLineNeverTakesMoreThanTheBuffer) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    // 1 MiB without a newline, against a reader that may buffer 4 KiB.
    const std::string flood(std::size_t{1} << 20, 'x');
    auto writer = corio::spawn([](corio::tcp_stream& c, const std::string& d) -> corio::task<> {
      try {
        co_await c.write_all(d.data(), d.size());
      } catch (const std::system_error&) {
        // the reader gives up and closes
      }
    }(c, flood));
    corio::buffered_reader in(s, 4096);
    EXPECT_THROW((void)co_await in.read_line(), corio::limit_overrun_error);
    EXPECT_EQ(in.buffered().size(), 4096U);
    s.close();
    co_await writer;
  });
}

TEST_P(Buffered, ReadUntilFindsADelimiterSplitAcrossReadsAndReportsAnEarlyEnd) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto writer = corio::spawn(trickle(c, {"head one\r\n\r", "\nhead two\r", "\n\r\nrest"}));
    corio::buffered_reader in(s);
    EXPECT_EQ(co_await in.read_until("\r\n\r\n"), "head one\r\n\r\n");
    EXPECT_EQ(co_await in.read_until("\r\n\r\n"), "head two\r\n\r\n");
    try {
      (void)co_await in.read_until("\r\n\r\n");
      ADD_FAILURE() << "no incomplete_read_error";
    } catch (const corio::incomplete_read_error& e) {
      EXPECT_EQ(e.got(), 4U);
    }
    EXPECT_EQ(in.buffered(), "rest");  // kept for the caller
    EXPECT_THROW((void)co_await in.read_until(""), std::invalid_argument);
    co_await writer;
  });
}

TEST_P(Buffered, ReadExactAndReadSomeMixWithLines) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    auto writer = corio::spawn(trickle(c, {"LEN 5\nhel", "lo", "tail"}));
    corio::buffered_reader in(s);
    EXPECT_EQ(co_await in.read_line(), "LEN 5\n");
    char five[5];
    co_await in.read_exact(five, 5);
    EXPECT_EQ(std::string_view(five, 5), "hello");
    char rest[64];
    std::string got;
    for (std::size_t n; (n = co_await in.read_some(rest, sizeof rest)) != 0;)
      got.append(rest, n);
    EXPECT_EQ(got, "tail");
    EXPECT_THROW(co_await in.read_exact(five, 1), corio::incomplete_read_error);
    co_await writer;
  });
}

TEST_P(Buffered, CancellingAPendingReadLineLosesNothing) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    corio::buffered_reader in(s);
    co_await send(c, "hel");
    auto pending = corio::spawn([](corio::buffered_reader<>& in) -> corio::task<std::string> {
      co_return std::string(co_await in.read_line());
    }(in));
    for (int i = 0; i < 3; ++i)
      co_await corio::yield_now();  // it has read "hel" and waits for more
    EXPECT_TRUE(pending.cancel());
    EXPECT_THROW(co_await pending, corio::cancelled_error);
    co_await send(c, "lo\n");
    EXPECT_EQ(co_await in.read_line(), "hello\n");
  });
}

TEST_P(Buffered, CancellingAPendingReadExactLosesNothing) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    corio::buffered_reader in(s);
    co_await send(c, "abc");
    char eight[8] = {};
    auto pending = corio::spawn([](corio::buffered_reader<>& in, char* out) -> corio::task<> {
      co_await in.read_exact(out, 8);
    }(in, eight));
    for (int i = 0; i < 3; ++i)
      co_await corio::yield_now();  // it has read "abc" and waits for more
    EXPECT_TRUE(pending.cancel());
    EXPECT_THROW(co_await pending, corio::cancelled_error);
    co_await send(c, "defgh");
    // Bounded: had "abc" been lost, five bytes would never make eight.
    co_await corio::timeout(std::chrono::seconds(10), in.read_exact(eight, 8));
    EXPECT_EQ(std::string_view(eight, 8), "abcdefgh");
  });
}

TEST_P(Buffered, SmallWritesGoOutTogetherAndPutRefusesWhatDoesNotFit) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    corio::buffered_writer out(c, 16);
    co_await out.write("abc");
    out.put("defgh");
    EXPECT_EQ(out.buffered(), 8U);
    try {
      out.put("0123456789");  // 8 + 10 > 16: refused whole
      ADD_FAILURE() << "no limit_overrun_error";
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_EQ(e.buffered(), 8U);
    }
    EXPECT_EQ(out.buffered(), 8U);
    co_await out.write("0123456789");  // waits: sends the 8, then buffers
    EXPECT_EQ(out.buffered(), 10U);
    co_await out.write(std::string(40, 'L'));  // larger than the buffer: straight out
    co_await out.flush();
    EXPECT_EQ(out.buffered(), 0U);
    c.close();
    corio::buffered_reader in(s);
    EXPECT_EQ(co_await in.read_line(),
              "abcdefgh0123456789" + std::string(40, 'L'));  // no '\n': the whole stream
  });
}

TEST_P(Buffered, ShortWritesAreResumedUntilAllIsSent) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    shrink_buffers(c, s);
    const std::string data = pattern(std::size_t{1} << 20);
    // One write_some into the small buffer takes only part of a megabyte.
    const std::size_t first = co_await c.write_some(data.data(), data.size());
    EXPECT_GT(first, 0U);
    EXPECT_LT(first, data.size());
    auto reader = corio::spawn([](corio::tcp_stream& s, std::size_t n) -> corio::task<std::string> {
      std::string got(n, '\0');
      co_await s.read_exact(got.data(), n);
      co_return got;
    }(s, data.size()));
    corio::buffered_writer out(c, 8192);
    for (std::size_t at = first; at < data.size(); at += 1000)
      co_await out.write(std::string_view(data).substr(at, 1000));
    co_await out.flush();
    EXPECT_TRUE(co_await reader == data);
  });
}

TEST_P(Buffered, ASlowReaderHoldsTheWriterBackWithBoundedMemory) {
  run_io([]() -> corio::task<> {
    auto [l, c, s] = co_await connect_pair();
    shrink_buffers(c, s);
    constexpr std::size_t total = std::size_t{8} << 20;
    constexpr std::size_t capacity = 16 * 1024;
    const std::string data = pattern(total);
    std::size_t accepted = 0;  // bytes the writer has taken from us
    auto producer = corio::spawn(
        [](corio::tcp_stream& c, const std::string& d, std::size_t& accepted) -> corio::task<> {
          corio::buffered_writer out(c, capacity);
          for (std::size_t at = 0; at < d.size(); at += 512) {
            co_await out.write(std::string_view(d).substr(at, 512));
            accepted = at + 512;
          }
          co_await out.flush();
        }(c, data, accepted));
    // The reader reads nothing for a while: the producer fills the
    // kernel's buffers and its own, then waits.
    for (int i = 0; i < 50; ++i)
      co_await corio::yield_now();
    const auto in_kernel = static_cast<std::size_t>(sock_buf(c.native_handle(), SO_SNDBUF) +
                                                    sock_buf(s.native_handle(), SO_RCVBUF));
    EXPECT_FALSE(producer.done());
    EXPECT_LE(accepted, capacity + 2 * in_kernel) << "the writer buffered past its capacity";
    // Now read it all and check every byte.
    corio::buffered_reader in(s, 4096);
    std::string got(total, '\0');
    co_await in.read_exact(got.data(), total);
    co_await producer;
    EXPECT_TRUE(got == data);
  });
}

}  // namespace
