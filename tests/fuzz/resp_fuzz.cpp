// Fuzz target for resp_reader (a server's bytes are untrusted). Built two
// ways, as http_parser_fuzz.cpp: under libFuzzer (run_libfuzzer.sh) and as
// a plain program that replays the seed corpus and deterministic mutations
// in every build (replay_main.hpp). The checks: the reader never takes
// more bytes than it was given, limits hold in every reply, and feeding
// the input in pieces (through a buffer that keeps what was not taken, as
// a connection does) gives the same replies, or the same failure, as
// feeding it whole.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "corio/redis/resp.hpp"
#include "replay_main.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "resp_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

corio::redis::resp_limits fuzz_limits() {
  corio::redis::resp_limits l;
  l.max_bulk = 256;
  l.max_depth = 6;
  l.max_elements = 64;
  l.max_line = 64;
  return l;
}

// Depth and size of a reply, to check the limits.
void measure(const corio::redis::reply& r, std::size_t depth, std::size_t& max_depth,
             std::size_t& count) {
  ++count;
  if (depth > max_depth) max_depth = depth;
  if (r.is_aggregate()) {
    for (const corio::redis::reply& e : r.elements())
      measure(e, depth + 1, max_depth, count);
  } else if (!r.is_nil() && r.type() != corio::redis::reply::kind::integer &&
             r.type() != corio::redis::reply::kind::number &&
             r.type() != corio::redis::reply::kind::boolean) {
    check(r.str().size() <= 256 + 64, "a string within the limits");
  }
}

// The replies, described, and whether the stream failed.
struct outcome {
  std::vector<std::string> replies;
  bool failed = false;
};

outcome read(std::string_view data, std::size_t piece) {
  corio::redis::resp_reader r(fuzz_limits());
  outcome o;
  std::string buffer;
  std::size_t at = 0;
  try {
    while (at < data.size()) {
      const std::size_t n = piece == 0 ? data.size() : std::min(piece, data.size() - at);
      buffer.append(data.substr(at, n));
      at += n;
      const std::size_t used = r.feed(buffer);
      check(used <= buffer.size(), "took no more than it was given");
      buffer.erase(0, used);
      while (auto x = r.next()) {
        std::size_t depth = 0;
        std::size_t count = 0;
        measure(*x, 0, depth, count);
        check(depth <= 6, "nesting within max_depth (6 aggregates, then leaves)");
        check(count <= 64, "elements within max_elements");
        o.replies.push_back(x->describe());
      }
    }
  } catch (const corio::redis::protocol_error&) {
    o.failed = true;
    bool still_failed = false;
    try {
      r.feed("+OK\r\n");
    } catch (const corio::redis::protocol_error&) {
      still_failed = true;
    }
    check(still_failed, "a failed reader stays failed");
  }
  return o;
}

void one_input(std::string_view data) {
  const outcome whole = read(data, 0);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{17}}) {
    const outcome parts = read(data, piece);
    // A stream that fails may fail at a later reply when cut (a line limit
    // is seen only once the line is long enough): the replies before the
    // failure must agree.
    check(parts.failed == whole.failed, "pieces and whole agree on failing");
    if (!whole.failed) check(parts.replies == whole.replies, "pieces and whole agree");
  }
}

}  // namespace

namespace {
// The bytes that the replay's mutations insert.
constexpr char k_specials[] = "\r\n*$%~>|!=(+-:_,#0123456789";
}  // namespace

CORIO_FUZZ_TARGET("resp_fuzz", one_input, k_specials)
