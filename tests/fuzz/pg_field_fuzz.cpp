// Fuzz target for the readers of binary result fields (a PostgreSQL
// server's bytes are untrusted): corio frames the messages (pg_wire_fuzz), and decodes
// the values. Built as resp_fuzz.cpp is: under libFuzzer
// (run_libfuzzer.sh) and as a replay of the seed corpus and deterministic
// mutations in every build. The first byte picks the column's type, the
// rest is the field. The checks: every reader either gives a value or
// throws pg::type_error (nothing else, no read past the field), a string
// view stays inside the field, and numeric's text is a number.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"
#include "replay_main.hpp"

namespace {

namespace pg = corio::pg;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pg_field_fuzz: check failed: %s\n", what);
    std::abort();
  }
}

constexpr unsigned k_types[] = {
    pg::oid::boolean, pg::oid::bytea,  pg::oid::name,    pg::oid::int8,      pg::oid::int2,
    pg::oid::int4,    pg::oid::text,   pg::oid::oid,     pg::oid::json,      pg::oid::float4,
    pg::oid::float8,  pg::oid::bpchar, pg::oid::varchar, pg::oid::timestamp, pg::oid::timestamptz,
    pg::oid::numeric, pg::oid::uuid,   pg::oid::jsonb,   pg::oid::unknown,   999999};

bool is_number_text(const std::string& s) {
  if (s == "NaN" || s == "Infinity" || s == "-Infinity") return true;
  std::size_t i = s.empty() || s[0] != '-' ? 0 : 1;
  bool digits = false;
  bool dot = false;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      digits = true;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digits;
}

template <class Read>
void attempt(Read read) {
  try {
    read();
  } catch (const pg::type_error&) {  // the one way a reader refuses
  }
}

void one_input(std::string_view input) {
  if (input.empty()) return;
  const std::string bytes(input.substr(1));  // the field, in a buffer of its own size
  pg::detail::field f;
  f.type = k_types[static_cast<unsigned char>(input[0]) % std::size(k_types)];
  f.data = bytes.data();
  f.length = bytes.size();
  attempt([&] { (void)pg::detail::read_integer(f); });
  attempt([&] { (void)pg::detail::read_double(f); });
  attempt([&] { (void)pg::detail::read_bool(f); });
  attempt([&] { (void)pg::detail::read_bytes(f); });
  attempt([&] { (void)pg::detail::read_time(f); });
  attempt([&] {
    const std::string_view v = pg::detail::read_view(f);
    check(v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size(),
          "a view inside the field");
  });
  attempt([&] {
    const std::string s = pg::detail::read_string(f);
    if (f.type == pg::oid::numeric) check(is_number_text(s), "numeric reads as a number");
    if (f.type == pg::oid::uuid) check(s.size() == 36, "a uuid reads as 36 characters");
  });
  attempt([&] { (void)pg::detail::read_value<std::int16_t>(f); });
}

// The bytes that the replay's mutations insert.
constexpr char k_specials[] = "\x00\x01\x40\xc0\xd0\xf0\xff\x7f\x80";

}  // namespace

CORIO_FUZZ_TARGET("pg_field_fuzz", one_input, k_specials)
