// A deterministic fuzz of buffered_reader, which reads untrusted bytes:
// random inputs cut into random pieces, read with a random mix of
// read_line, read_until, read_some, read_exact and discard under random
// limits. Every byte must come out once, in order; lines and records must
// end where the delimiter does and respect their limits; the buffer must
// never hold more than its maximum. Runs in every build (ASan, TSan too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "corio/corio.hpp"

namespace {

// Bytes in pieces of random sizes, each read_some ready at once.
class chunked_stream {
 public:
  chunked_stream(std::string data, std::mt19937_64& rng) : m_data(std::move(data)), m_rng(&rng) {}

  struct ready {
    std::size_t n;
    static constexpr bool await_ready() noexcept { return true; }
    static void await_suspend(std::coroutine_handle<>) noexcept {}
    [[nodiscard]] std::size_t await_resume() const noexcept { return n; }
  };
  ready read_some(void* buf, std::size_t len) {
    const std::size_t piece = std::uniform_int_distribution<std::size_t>(1, 40)(*m_rng);
    const std::size_t n = std::min({len, piece, m_data.size() - m_pos});
    std::memcpy(buf, m_data.data() + m_pos, n);
    m_pos += n;
    return {n};
  }

 private:
  std::string m_data;
  std::size_t m_pos = 0;
  std::mt19937_64* m_rng;
};

std::string random_input(std::mt19937_64& rng) {
  static const char alphabet[] = {'\n', '\r', 'a', 'b', 'x', '\0', '\xff', ' '};
  const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 600)(rng);
  std::string s(n, ' ');
  for (char& c : s)
    c = alphabet[std::uniform_int_distribution<int>(0, sizeof alphabet - 1)(rng)];
  return s;
}

// One input; failures are counted into `bad` (gtest macros do not work in
// coroutines with ASSERT, and EXPECT would flood on a broken build).
corio::task<> one_run(std::uint64_t seed, int& bad) {
  std::mt19937_64 rng(seed);
  const std::string data = random_input(rng);
  chunked_stream stream(data, rng);
  const std::size_t max_buffer = std::uniform_int_distribution<std::size_t>(1, 200)(rng);
  corio::buffered_reader<chunked_stream> in(stream, max_buffer);
  std::size_t consumed = 0;  // bytes handed out so far
  auto took = [&](std::string_view piece) {
    if (data.compare(consumed, piece.size(), piece) != 0) ++bad;
    consumed += piece.size();
  };
  auto check_buffer = [&] {
    const std::string_view b = in.buffered();
    if (b.size() > max_buffer || data.compare(consumed, b.size(), b) != 0) ++bad;
  };
  static const char* delims[] = {"\n", "\r\n", "ab"};
  for (int step = 0; step < 400 && !in.at_eof(); ++step) {
    const std::size_t limit = std::uniform_int_distribution<std::size_t>(1, 250)(rng);
    const int op = std::uniform_int_distribution<int>(0, 3)(rng);
    try {
      if (op == 0) {
        const std::string_view line = co_await in.read_line(limit);
        const std::size_t nl = line.find('\n');
        if (line.size() > std::min(limit, max_buffer)) ++bad;
        if (nl != std::string_view::npos && nl + 1 != line.size()) ++bad;
        if (nl == std::string_view::npos && consumed + line.size() != data.size()) ++bad;
        took(line);
      } else if (op == 1) {
        const std::string_view delim = delims[std::uniform_int_distribution<int>(0, 2)(rng)];
        const std::string_view rec = co_await in.read_until(delim, limit);
        if (rec.size() > std::min(limit, max_buffer) || rec.size() < delim.size()) ++bad;
        if (rec.substr(rec.size() - delim.size()) != delim) ++bad;
        if (rec.find(delim) + delim.size() != rec.size()) ++bad;  // the first one
        took(rec);
      } else if (op == 2) {
        char buf[64];
        const std::size_t want = std::uniform_int_distribution<std::size_t>(1, sizeof buf)(rng);
        const std::size_t n = co_await in.read_some(buf, want);
        if (n > want || (n == 0 && consumed != data.size())) ++bad;
        took(std::string_view(buf, n));
      } else {
        std::string buf(std::uniform_int_distribution<std::size_t>(0, 100)(rng), '\0');
        co_await in.read_exact(buf.data(), buf.size());
        took(buf);
      }
    } catch (const corio::limit_overrun_error&) {
      check_buffer();
      const std::size_t drop = std::uniform_int_distribution<std::size_t>(1, max_buffer)(rng);
      const std::size_t dropped = std::min(drop, in.buffered().size());
      in.discard(dropped);
      consumed += dropped;
    } catch (const corio::incomplete_read_error& e) {
      // read_until at the end keeps what is left; read_exact consumed it.
      if (op == 1) {
        check_buffer();
        if (consumed + in.buffered().size() != data.size()) ++bad;
        consumed += in.buffered().size();
        in.discard(in.buffered().size());
      } else {
        consumed += e.got();
        if (consumed != data.size()) ++bad;
      }
    }
    check_buffer();
  }
  if (in.at_eof() && consumed != data.size()) ++bad;
}

TEST(BufferedReaderFuzz, EveryByteOnceInOrderWithinTheLimits) {
  corio::event_loop loop({.virtual_clock = true});
  int bad = 0;
  int failed_runs = 0;
  for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
    const int before = bad;
    corio::run(loop, one_run(seed, bad));
    if (bad != before && ++failed_runs <= 5) ADD_FAILURE() << "seed " << seed;
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
