// Fuzz target for http_request_parser (bytes from the network are
// untrusted). Built two ways:
//  - with clang's libFuzzer (-fsanitize=fuzzer; tests/fuzz/run_libfuzzer.sh
//    runs it for a bounded time in `make test`);
//  - as a plain program (no CORIO_LIBFUZZER) that replays the seed corpus
//    and a fixed number of deterministic mutations of it, so the gcc ASan
//    and TSan builds run the same checks.
// The checks: views stay inside the input, limits hold, and feeding the
// input in pieces to one parser agrees with parsing it whole.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "corio/net/http_parser.hpp"
#include "replay_main.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "http_parser_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_request(const corio::http_request_parser& p, std::string_view data) {
  const corio::http_request& r = p.request();
  check(p.consumed() <= data.size() && p.consumed() > 0, "consumed within the input");
  check(!r.method.empty() && !r.target.empty(), "method and target present");
  check(inside(r.method, data) && inside(r.target, data) && inside(r.body, data), "views inside");
  check(r.headers.size() <= p.limits().max_headers, "header count limit");
  check(r.body.size() <= p.limits().max_body_bytes, "body limit");
  for (const corio::http_header& h : r.headers) {
    check(inside(h.name, data) && inside(h.value, data) && !h.name.empty(), "header views");
    check(h.value.find_first_of("\r\n") == std::string_view::npos, "no line break in a value");
  }
}

void one_input(std::string_view data) {
  corio::http_limits limits;
  limits.max_header_bytes = 512;
  limits.max_headers = 8;
  limits.max_body_bytes = 256;

  // Whole, then the pipelined requests after it.
  corio::http_request_parser whole(limits);
  const corio::http_parse_status s = whole.parse(data);
  const std::size_t consumed = s == corio::http_parse_status::complete ? whole.consumed() : 0;
  if (s == corio::http_parse_status::complete) {
    check_request(whole, data);
    std::string_view rest = data.substr(consumed);
    for (int i = 0; i < 16 && whole.parse(rest) == corio::http_parse_status::complete; ++i) {
      check_request(whole, rest);
      rest.remove_prefix(whole.consumed());
    }
  }

  // In pieces: every prefix is either still incomplete or already gives
  // the whole answer, and the last one gives it.
  corio::http_request_parser pieces(limits);
  const std::size_t step = data.size() < 256 ? 1 : data.size() / 97 + 1;
  for (std::size_t k = 0; k <= data.size(); k += step) {
    const std::string copy(data.substr(0, k));  // a moved buffer, as after a read
    const corio::http_parse_status ps = pieces.parse(copy);
    if (ps == corio::http_parse_status::incomplete) continue;
    check(ps == s, "a prefix gave a different status");
    if (ps == corio::http_parse_status::complete) check(pieces.consumed() == consumed, "consumed");
    return;
  }
  check(pieces.parse(data) == s, "the last piece gave a different status");
}

}  // namespace

namespace {
// The bytes that the replay's mutations insert.
constexpr char k_specials[] = "\r\n: \t\x00\x7f,0123456789";
}  // namespace

CORIO_FUZZ_TARGET("http_parser_fuzz", one_input, k_specials)
