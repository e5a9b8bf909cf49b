// An item of the catalogue: its JSON, and its form in the Redis cache.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace service {

struct item {
  std::int32_t id = 0;
  std::string name;
  std::int64_t price_cents = 0;
};

/// `text` as a JSON string literal, quotes included.
std::string json_string(std::string_view text);

/// {"id":7,"name":"Oak Chair","price_cents":1299}
std::string to_json(const item& it);

/// The Redis key of item `id`. The format's version is in the key, so a
/// service that changes the format never reads another version's values.
std::string cache_key(std::int32_t id);

/// The cached form: "<price_cents>|<name>" (the name last, so it may hold
/// anything).
std::string to_cache(const item& it);
/// The item a cached value holds, or nullopt when it is not one (then it
/// counts as a miss and is overwritten).
std::optional<item> from_cache(std::int32_t id, std::string_view value);

/// The id in a request path: digits only, 1 to 2^31 - 1; nullopt for
/// anything else ("abc", "-1", "007x", "99999999999").
std::optional<std::int32_t> parse_id(std::string_view text);

}  // namespace service
