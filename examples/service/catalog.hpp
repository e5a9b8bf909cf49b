// The catalogue: the items table in PostgreSQL, read through the loop's
// Redis cache (cache-aside: Redis first, PostgreSQL on a miss, then the
// item is cached with a TTL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends.hpp"
#include "corio/corio.hpp"
#include "item.hpp"

namespace service {

/// Where an item came from.
enum class cache_outcome : std::uint8_t {
  hit,     ///< Redis had it
  miss,    ///< read from PostgreSQL, then cached
  bypass,  ///< Redis failed: read from PostgreSQL, not cached
};
[[nodiscard]] const char* to_string(cache_outcome c) noexcept;

struct lookup {
  std::optional<item> found;  ///< nullopt: no such item
  cache_outcome cache = cache_outcome::miss;
};

/// Item `id`. Redis failing costs only the cache (the item comes from
/// PostgreSQL); PostgreSQL failing throws (pg::error, connection_broken,
/// timeout_error: the caller answers 500 or 503).
corio::task<lookup> find_item(backends& app, loop_backends& b, std::int32_t id);

/// Creates the items table if it is missing, and seeds it with 1,000 items
/// if it is empty; on a connection of its own, before serving.
corio::task<> prepare_schema(std::string conninfo);

}  // namespace service
