#include "item.hpp"

#include <charconv>
#include <cstdio>

namespace service {

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;  // UTF-8 passes through
        }
    }
  }
  out += '"';
  return out;
}

std::string to_json(const item& it) {
  return "{\"id\":" + std::to_string(it.id) + ",\"name\":" + json_string(it.name) +
         ",\"price_cents\":" + std::to_string(it.price_cents) + "}";
}

std::string cache_key(std::int32_t id) {
  return "corio_service:item:v1:" + std::to_string(id);
}

std::string to_cache(const item& it) {
  return std::to_string(it.price_cents) + "|" + it.name;
}

std::optional<item> from_cache(std::int32_t id, std::string_view value) {
  const auto bar = value.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  item it;
  it.id = id;
  const char* end = value.data() + bar;
  const auto [p, ec] = std::from_chars(value.data(), end, it.price_cents);
  if (ec != std::errc() || p != end) return std::nullopt;
  it.name = value.substr(bar + 1);
  return it;
}

std::optional<std::int32_t> parse_id(std::string_view text) {
  // from_chars alone would take a leading '-' and nothing stops "+1".
  if (text.empty() || text.size() > 10) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  if (v < 1 || v > INT32_MAX) return std::nullopt;
  return static_cast<std::int32_t>(v);
}

}  // namespace service
