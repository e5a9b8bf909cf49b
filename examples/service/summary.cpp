#include "summary.hpp"

#include <cinttypes>
#include <cstdint>
#include <cstdio>

namespace service {
namespace {

constexpr int k_rounds = 100'000;
constexpr std::int64_t k_vat_percent = 20;

std::uint64_t fingerprint(const std::string& record) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then splitmix rounds
  for (const char c : record) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  for (int i = 0; i < k_rounds; ++i) {
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
  }
  return h;
}

std::string money(std::int64_t cents) {
  const std::uint64_t a = cents < 0 ? 0 - static_cast<std::uint64_t>(cents) : cents;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%02" PRIu64, cents < 0 ? "-" : "", a / 100,
                a % 100);
  return buf;
}

}  // namespace

std::string render_summary(const item& it) {
  const std::int64_t with_vat = (it.price_cents * (100 + k_vat_percent) + 50) / 100;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, fingerprint(to_json(it)));
  return "{\"id\":" + std::to_string(it.id) + ",\"name\":" + json_string(it.name) +
         ",\"price\":\"" + money(it.price_cents) + "\",\"price_with_vat\":\"" + money(with_vat) +
         "\",\"vat_percent\":" + std::to_string(k_vat_percent) + ",\"fingerprint\":\"" + hex +
         "\"}";
}

}  // namespace service
