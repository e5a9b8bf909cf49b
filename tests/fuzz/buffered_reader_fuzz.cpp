// Fuzz target for buffered_reader's limits (a peer's bytes are untrusted).
// The input's first two bytes choose the reader's maximum buffer and the
// seed of a generator that cuts the rest (the stream) into pieces and
// picks each call: read_line, read_until, read_some, read_exact with
// limits, discarding what a limit refused. Built two ways, as
// http_parser_fuzz.cpp: under libFuzzer (tests/fuzz/run_libfuzzer.sh), and
// as a plain program that runs a fixed set of generated inputs in every
// build. The checks: every byte comes out once and in order, a line or
// record never passes its limit or the buffer's, the buffer never holds
// more than its maximum, and a refused line stays whole in the buffer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "corio/net/buffered_reader.hpp"
#include "corio/run.hpp"

#ifdef CORIO_LIBFUZZER
// The libFuzzer build compiles, with clang, only the layers the reader
// needs (base, loop, task: tests/fuzz/run_libfuzzer.sh); run() attaches
// observation, which is not among them and has nothing to observe here.
void corio::detail::attach_observer(corio::event_loop& /*loop*/) {}
#endif

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "buffered_reader_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

// The stream: the input in pieces of 1..64 bytes, each read ready at once.
class piece_stream {
 public:
  piece_stream(std::string_view data, std::minstd_rand& rng) : m_data(data), m_rng(&rng) {}
  struct ready {
    std::size_t n;
    static constexpr bool await_ready() noexcept { return true; }
    static void await_suspend(std::coroutine_handle<>) noexcept {}
    [[nodiscard]] std::size_t await_resume() const noexcept { return n; }
  };
  ready read_some(void* buf, std::size_t len) {
    const std::size_t n = std::min({len, m_data.size(), std::size_t{1} + (*m_rng)() % 64});
    std::memcpy(buf, m_data.data(), n);
    m_data.remove_prefix(n);
    return {n};
  }

 private:
  std::string_view m_data;
  std::minstd_rand* m_rng;
};

corio::task<> drive(std::string_view stream_bytes, std::size_t max_buffer, unsigned seed) {
  std::minstd_rand rng(seed);
  piece_stream stream(stream_bytes, rng);
  corio::buffered_reader<piece_stream> in(stream, max_buffer);
  std::string out;  // everything read or discarded, in order
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  for (int calls = 0; calls < 10000 && !in.at_eof(); ++calls) {
    const std::size_t limit = 1 + pick(max_buffer + 8);
    bool refused = false;
    try {
      switch (pick(4)) {
        case 0: {
          const std::string_view line = co_await in.read_line(limit);
          check(line.size() <= std::min(limit, max_buffer) ||
                    line.find('\n') == std::string_view::npos,
                "a line past its limit");
          check(line.empty() || line.back() == '\n' || in.at_eof(), "a line cut short");
          out.append(line);
          break;
        }
        case 1: {
          const std::string_view delim =
              pick(2) == 0 ? std::string_view("\r\n") : std::string_view("ab");
          const std::string_view record = co_await in.read_until(delim, limit);
          check(record.size() <= std::min(limit, max_buffer), "a record past its limit");
          check(record.ends_with(delim), "a record without its delimiter");
          check(record.find(delim) == record.size() - delim.size(), "a record past its delimiter");
          out.append(record);
          break;
        }
        case 2: {
          char buf[256];
          const std::size_t n = co_await in.read_some(buf, 1 + pick(sizeof buf));
          out.append(buf, n);
          break;
        }
        default: {
          std::string buf(pick(2 * max_buffer), '\0');
          co_await in.read_exact(buf.data(), buf.size());
          out.append(buf);
          break;
        }
      }
    } catch (const corio::limit_overrun_error&) {
      refused = true;
    } catch (const corio::incomplete_read_error& e) {
      // read_exact: what came is consumed and lost to this check, so stop;
      // read_until: the bytes stay buffered.
      check(e.got() <= stream_bytes.size(), "more bytes than were sent");
      check(stream_bytes.starts_with(out), "bytes out of order");
      co_return;
    }
    check(in.buffered().size() <= max_buffer, "the buffer passed its maximum");
    if (refused) {
      check(!in.buffered().empty(), "a refused line left nothing buffered");
      out.append(in.buffered());
      in.discard(in.buffered().size());
    }
  }
  if (in.at_eof()) check(out == stream_bytes, "bytes lost, repeated or reordered");
  check(stream_bytes.starts_with(out), "bytes out of order");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_buffer = 1 + data[0] % 200;
  const unsigned seed = 1U + data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  corio::event_loop loop({.virtual_clock = true});
  corio::run(loop, drive(stream, max_buffer, seed));
  return 0;
}

#ifndef CORIO_LIBFUZZER
int main() {
  // Inputs made of the bytes that matter: line ends, delimiters' parts and
  // letters, in runs long and short.
  // Inputs libFuzzer once found failing, kept: an empty stream read with
  // read_exact (a memcpy from the empty buffer's null pointer).
  const std::string regressions[] = {std::string("\x02n", 2)};
  for (const std::string& input : regressions)
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  std::mt19937_64 rng(20261201);
  const char alphabet[] = "ab\r\n\nxyz";
  for (int i = 0; i < 3000; ++i) {
    std::string input(2 + rng() % 600, '\0');
    for (char& c : input)
      c = alphabet[rng() % (sizeof alphabet - 1)];
    input[0] = static_cast<char>(rng());
    input[1] = static_cast<char>(rng());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::puts("buffered_reader_fuzz: 3000 generated inputs passed");
  return 0;
}
#endif
