// pg::result and the readers of binary fields.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"
#include "pg/big_endian.hpp"

namespace corio::pg {

namespace detail {

namespace {

// PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in Unix microseconds.
constexpr std::int64_t k_pg_epoch_us = 946'684'800'000'000;

const char* type_name(unsigned type) noexcept {
  switch (type) {
    case oid::boolean:
      return "boolean";
    case oid::bytea:
      return "bytea";
    case oid::name:
      return "name";
    case oid::int8:
      return "int8";
    case oid::int2:
      return "int2";
    case oid::int4:
      return "int4";
    case oid::text:
      return "text";
    case oid::oid:
      return "oid";
    case oid::json:
      return "json";
    case oid::float4:
      return "float4";
    case oid::float8:
      return "float8";
    case oid::bpchar:
      return "char(n)";
    case oid::varchar:
      return "varchar";
    case oid::timestamp:
      return "timestamp";
    case oid::timestamptz:
      return "timestamptz";
    case oid::numeric:
      return "numeric";
    case oid::uuid:
      return "uuid";
    case oid::jsonb:
      return "jsonb";
    default:
      return nullptr;
  }
}

bool is_text(unsigned type) noexcept {
  return type == oid::text || type == oid::varchar || type == oid::bpchar || type == oid::name ||
         type == oid::json || type == oid::unknown || type == 705;
}

void need_length(const field& f, std::size_t n, const char* wanted) {
  if (f.length != n) throw_type_error(f, wanted);
}

// numeric's binary form: ndigits, weight, sign, dscale, then base-10000
// digits, digit i weighing 10000^(weight - i).
std::string numeric_text(const field& f) {
  if (f.length < 8) throw_type_error(f, "a numeric");
  const auto word = [&](std::size_t i) {
    return static_cast<std::uint16_t>(load_big_endian(f.data + 2 * i, 2));
  };
  const int ndigits = word(0);
  const int weight = static_cast<std::int16_t>(word(1));
  const std::uint16_t sign = word(2);
  const int dscale = word(3);
  if (f.length != 8 + 2 * static_cast<std::size_t>(ndigits)) throw_type_error(f, "a numeric");
  if (sign == 0xC000) return "NaN";
  if (sign == 0xD000) return "Infinity";
  if (sign == 0xF000) return "-Infinity";
  auto digit = [&](int i) { return i >= 0 && i < ndigits ? static_cast<int>(word(4 + i)) : 0; };
  std::string out;
  if (sign == 0x4000) out += '-';
  char group[8];
  if (weight < 0) {
    out += '0';
  } else {
    for (int i = 0; i <= weight; ++i) {
      const int d = digit(i);
      if (i == 0) {
        out += std::to_string(d);
      } else {
        std::snprintf(group, sizeof group, "%04d", d);
        out += group;
      }
    }
  }
  if (dscale > 0) {
    out += '.';
    std::string fraction;
    for (int i = weight + 1; static_cast<int>(fraction.size()) < dscale; ++i) {
      std::snprintf(group, sizeof group, "%04d", digit(i));
      fraction += group;
    }
    out.append(fraction, 0, static_cast<std::size_t>(dscale));
  }
  return out;
}

std::string uuid_text(const field& f) {
  need_length(f, 16, "a uuid");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    const auto b = static_cast<unsigned char>(f.data[i]);
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

}  // namespace

void throw_type_error(const field& f, const char* wanted) {
  std::string what = "corio::pg: column " + std::to_string(f.column);
  if (f.res != nullptr && f.column < f.res->columns()) {
    what += " (\"" + std::string(f.res->column_name(f.column)) + "\")";
  }
  what += " of row " + std::to_string(f.row) + " holds ";
  if (f.null) {
    what += "NULL";
  } else if (const char* name = type_name(f.type)) {
    what += name;
  } else {
    what += "a value of type oid " + std::to_string(f.type) + " (cast it to text in SQL)";
  }
  what += ", not ";
  what += wanted;
  throw type_error(what);
}

std::int64_t read_integer(const field& f) {
  switch (f.type) {
    case oid::int2:
      need_length(f, 2, "an int2");
      return static_cast<std::int16_t>(load_big_endian(f.data, 2));
    case oid::int4:
      need_length(f, 4, "an int4");
      return static_cast<std::int32_t>(load_big_endian(f.data, 4));
    case oid::oid:
      need_length(f, 4, "an oid");
      return static_cast<std::int64_t>(load_big_endian(f.data, 4));
    case oid::int8:
      need_length(f, 8, "an int8");
      return static_cast<std::int64_t>(load_big_endian(f.data, 8));
    case oid::numeric: {  // a whole number that fits (sum(int8) is a numeric)
      const std::string text = numeric_text(f);
      const std::size_t dot = text.find('.');
      if (dot != std::string::npos && text.find_first_not_of('0', dot + 1) != std::string::npos) {
        throw_type_error(f, "an integer (it has a fraction)");
      }
      std::int64_t v = 0;
      const char* end = text.data() + (dot == std::string::npos ? text.size() : dot);
      const auto r = std::from_chars(text.data(), end, v);
      if (r.ec != std::errc() || r.ptr != end) throw_type_error(f, "an integer that fits int64");
      return v;
    }
    default:
      throw_type_error(f, "an integer");
  }
}

double read_double(const field& f) {
  switch (f.type) {
    case oid::float4: {
      need_length(f, 4, "a float4");
      const auto bits = static_cast<std::uint32_t>(load_big_endian(f.data, 4));
      float v = 0;
      std::memcpy(&v, &bits, sizeof v);
      return v;
    }
    case oid::float8: {
      need_length(f, 8, "a float8");
      const std::uint64_t bits = load_big_endian(f.data, 8);
      double v = 0;
      std::memcpy(&v, &bits, sizeof v);
      return v;
    }
    case oid::numeric: {
      const std::string text = numeric_text(f);
      double v = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc()) throw_type_error(f, "a double");
      return v;
    }
    case oid::int2:
    case oid::int4:
    case oid::int8:
      return static_cast<double>(read_integer(f));
    default:
      throw_type_error(f, "a floating-point number");
  }
}

bool read_bool(const field& f) {
  if (f.type != oid::boolean || f.length != 1) throw_type_error(f, "a boolean");
  return f.data[0] != 0;
}

std::string_view read_view(const field& f) {
  if (is_text(f.type) || f.type == oid::bytea) return {f.data, f.length};
  if (f.type == oid::jsonb) {  // a version byte, then the text
    if (f.length < 1 || f.data[0] != 1) throw_type_error(f, "jsonb of version 1");
    return {f.data + 1, f.length - 1};
  }
  throw_type_error(f, "text (read it as std::string, or cast it to text in SQL)");
}

std::string read_string(const field& f) {
  if (f.type == oid::numeric) return numeric_text(f);
  if (f.type == oid::uuid) return uuid_text(f);
  if (is_text(f.type) || f.type == oid::bytea || f.type == oid::jsonb) {
    return std::string(read_view(f));
  }
  throw_type_error(f, "text (cast it to text in SQL)");
}

std::vector<std::byte> read_bytes(const field& f) {
  if (f.type != oid::bytea) throw_type_error(f, "bytea");
  const auto* p = reinterpret_cast<const std::byte*>(f.data);
  return {p, p + f.length};
}

std::chrono::system_clock::time_point read_time(const field& f) {
  if (f.type != oid::timestamptz && f.type != oid::timestamp) throw_type_error(f, "a timestamp");
  need_length(f, 8, "a timestamp");
  const auto us = static_cast<std::int64_t>(load_big_endian(f.data, 8));
  using tp = std::chrono::system_clock::time_point;
  if (us == INT64_MAX) return tp::max();  // 'infinity'
  if (us == INT64_MIN) return tp::min();
  // PostgreSQL's range (4713 BC to 294276 AD) is wider than system_clock's.
  constexpr std::int64_t max_us =
      std::chrono::duration_cast<std::chrono::microseconds>(tp::duration::max()).count();
  if (us > max_us - k_pg_epoch_us || us < -max_us - k_pg_epoch_us) {
    throw_type_error(f, "a time point (it is outside system_clock's years 1678 to 2261)");
  }
  return tp(
      std::chrono::duration_cast<tp::duration>(std::chrono::microseconds(us + k_pg_epoch_us)));
}

}  // namespace detail

// ---- row ----------------------------------------------------------------------

int row::size() const noexcept {
  return m_result == nullptr ? 0 : m_result->columns();
}

const result& row::owner() const {
  if (m_result == nullptr)
    throw std::out_of_range("corio::pg: a row of no result (default-constructed) was read");
  return *m_result;
}

detail::field row::field(int column) const {
  const result& r = owner();
  if (m_row < 0 || static_cast<std::size_t>(m_row) >= r.m_rows) {
    throw std::out_of_range("corio::pg: row " + std::to_string(m_row) + " of a result of " +
                            std::to_string(r.m_rows));
  }
  const unsigned type = r.column_at(column).type;
  const detail::field_ref& ref =
      r.m_fields[static_cast<std::size_t>(m_row) * static_cast<std::size_t>(r.columns()) +
                 static_cast<std::size_t>(column)];
  detail::field f;
  f.res = m_result;
  f.row = m_row;
  f.column = column;
  f.type = type;
  f.null = ref.length < 0;
  f.data = f.null ? "" : r.m_data.data() + ref.offset;
  f.length = f.null ? 0 : static_cast<std::size_t>(ref.length);
  return f;
}

int row::column_index(std::string_view name) const {
  return owner().column_index(name);
}

// ---- result -------------------------------------------------------------------

row result::at(std::size_t i) const {
  if (i >= size()) {
    throw std::out_of_range("corio::pg: row " + std::to_string(i) + " of a result of " +
                            std::to_string(size()));
  }
  return {this, static_cast<int>(i)};
}

int result::columns() const noexcept {
  return m_columns == nullptr ? 0 : static_cast<int>(m_columns->size());
}

const detail::column& result::column_at(int column) const {
  if (column < 0 || column >= columns()) {
    throw type_error("corio::pg: no column " + std::to_string(column) + " (the result has " +
                     std::to_string(columns()) + ")");
  }
  return (*m_columns)[static_cast<std::size_t>(column)];
}

std::string_view result::column_name(int column) const {
  return column_at(column).name;
}

int result::column_index(std::string_view name) const {
  for (int i = 0; i < columns(); ++i) {
    if ((*m_columns)[static_cast<std::size_t>(i)].name == name) return i;
  }
  throw type_error("corio::pg: no column named \"" + std::string(name) + "\"");
}

unsigned result::column_type(int column) const {
  return column_at(column).type;
}

}  // namespace corio::pg
