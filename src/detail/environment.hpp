// The CORIO_* environment variables, read in one place so that each means
// the same everywhere: a flag is on when it is set to anything but "" or
// "0" (CORIO_DEBUG=0 used to mean off for the loop and on for the backend
// report).
#pragma once

#include <cstdlib>
#include <cstring>
#include <optional>

namespace corio::detail {

/// Whether the flag `name` is set on; `fallback` when it is not set at all.
[[nodiscard]] inline bool env_flag(const char* name, bool fallback) noexcept {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  return *v != '\0' && std::strcmp(v, "0") != 0;
}

/// The value of `name`, or nullptr when unset or empty.
[[nodiscard]] inline const char* env_value(const char* name) noexcept {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

}  // namespace corio::detail
