// Network byte order, as PostgreSQL's protocol and binary values use it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace corio::pg::detail {

/// The `n` (at most 8) bytes at `p` as a big-endian unsigned number.
inline std::uint64_t load_big_endian(const char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// Writes the low `n` bytes of `v` at `p`, most significant first.
inline void store_big_endian(char* p, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = n; i > 0; --i, v >>= 8)
    p[i - 1] = static_cast<char>(v & 0xff);
}

}  // namespace corio::pg::detail
