// xorshift64: the cheap generator behind corio's shuffles and jitter.
#pragma once

#include <cstdint>

namespace corio::detail {

/// Advances `state` (never 0) by Marsaglia's xorshift64 (13, 7, 17) and
/// returns it: not for anything that needs real randomness, only to spread
/// choices (ready-order shuffles, pool expiry jitter, balanced spawns).
inline std::uint64_t xorshift64(std::uint64_t& state) noexcept {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

}  // namespace corio::detail
