// pg::param's encodings that are not inline.
#include <charconv>
#include <cstdint>
#include <cstring>

#include "corio/pg/param.hpp"

namespace corio::pg {

namespace {

// PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in Unix microseconds.
constexpr std::int64_t k_pg_epoch_us = 946'684'800'000'000;

}  // namespace

param::param(float v) noexcept {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put(bits, 4);
  binary(oid::float4, 4);
}

param::param(double v) noexcept {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put(bits, 8);
  binary(oid::float8, 8);
}

param::param(std::chrono::system_clock::time_point t) noexcept {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  put(static_cast<std::uint64_t>(us.count() - k_pg_epoch_us), 8);
  binary(oid::timestamptz, 8);
}

void param::set_decimal(std::uint64_t v) noexcept {
  const auto r = std::to_chars(m_buf, m_buf + sizeof m_buf, v);
  m_oid = oid::unknown;
  m_format = 0;
  m_value = m_buf;
  m_length = static_cast<int>(r.ptr - m_buf);
}

void param::adopt(const param& o) noexcept {
  m_oid = o.m_oid;
  m_format = o.m_format;
  m_length = o.m_length;
  std::memcpy(m_buf, o.m_buf, sizeof m_buf);
  const auto at = reinterpret_cast<std::uintptr_t>(o.m_value);
  const auto buf = reinterpret_cast<std::uintptr_t>(o.m_buf);
  const bool in_buffer = at >= buf && at < buf + sizeof o.m_buf;
  m_value = in_buffer ? m_buf + (o.m_value - o.m_buf) : o.m_value;
}

}  // namespace corio::pg
