// Fuzz target for the reading of a PostgreSQL server's messages (its bytes
// are untrusted): the framing (next_message, with a small limit here) and
// each decoder corio uses (RowDescription, DataRow into a result,
// CommandComplete, ErrorResponse, NotificationResponse, ReadyForQuery).
// Built as resp_fuzz.cpp is: under libFuzzer (run_libfuzzer.sh) and as a
// replay of the seed corpus and deterministic mutations in every build.
// The checks: every decoder gives a value or throws protocol_error (nothing
// else, no read outside the input), a refused row leaves the result as it
// was, and every field of every row reads within the result.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "pg/wire.hpp"
#include "replay_main.hpp"

namespace {

namespace pg = corio::pg;
namespace wire = corio::pg::detail;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pg_wire_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

// Reads every field of `r` in the ways a user would: NULLs are NULLs, the
// rest reads as bytes of the length the row said, or throws type_error.
void read_back(const pg::result& r) {
  for (std::size_t i = 0; i < r.size(); ++i) {
    const pg::row row = r[i];
    check(row.size() == r.columns(), "a row as wide as its result");
    for (int c = 0; c < row.size(); ++c) {
      try {
        const auto v = row.get<std::optional<std::string>>(c);
        check(!v || v->size() < (std::size_t{1} << 20), "a field inside the input");
      } catch (const pg::type_error&) {  // a type std::string does not read
      }
    }
  }
}

void one_input(std::string_view input) {
  std::string_view data = input;
  std::shared_ptr<const pg::detail::columns> cols;
  pg::result r;
  for (;;) {
    std::optional<wire::message> m;
    try {
      m = wire::next_message(data, std::size_t{1} << 16);
    } catch (const wire::protocol_error&) {
      return;  // the framing refused the rest
    }
    if (!m) break;
    check(m->size() <= data.size(), "a message inside the input");
    data.remove_prefix(m->size());
    try {
      switch (m->type) {
        case 'T':
          cols = wire::read_row_description(m->body);
          wire::start_result(r, cols);
          break;
        case 'D': {
          const std::size_t before = r.size();
          try {
            wire::append_row(r, m->body);
            check(r.size() == before + 1, "a row taken");
          } catch (const wire::protocol_error&) {
            check(r.size() == before, "a refused row leaves the result");
            throw;
          }
          break;
        }
        case 'C':
          wire::set_command_tag(r, m->body);
          break;
        case 'E':
        case 'N': {
          const wire::server_error e = wire::read_error(m->body);
          check(e.message.size() <= m->body.size(), "an error's message inside it");
          break;
        }
        case 'A': {
          const pg::notification n = wire::read_notification(m->body);
          check(n.channel.size() + n.payload.size() <= m->body.size(), "a notification inside it");
          break;
        }
        case 'Z':
          (void)wire::read_ready(m->body);
          break;
        default:
          break;
      }
    } catch (const wire::protocol_error&) {  // the one way a decoder refuses
    }
  }
  read_back(r);
}

// The bytes that the replay's mutations insert.
constexpr char k_specials[] = "\x00\x01\x04\x05\xff\x7f\x80TDCEAZ";

}  // namespace

CORIO_FUZZ_TARGET("pg_wire_fuzz", one_input, k_specials)
