#include "config.hpp"

#include <charconv>
#include <cstdio>
#include <string_view>

namespace service {
namespace {

constexpr const char* k_usage =
    "usage: corio_service [--host ADDR] [--port N] [--metrics-port N] [--pg CONNINFO]\n"
    "                     [--redis HOST:PORT|/unix/path] [--threads N] [--pg-connections N]\n"
    "                     [--cache-ttl SECONDS]\n"
    "  A JSON API over PostgreSQL with a Redis cache, on an event loop per core.\n"
    "  GET /items/<id>, /items/<id>/summary, /health, /stats; metrics on --metrics-port.\n";

template <class T>
bool parse_number(std::string_view text, T& out, T min, T max) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) return false;
  out = v;
  return true;
}

}  // namespace

std::optional<config> parse_command_line(int argc, char** argv, int& exit_code) {
  config c;
  exit_code = 2;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(k_usage, stdout);
      exit_code = 0;
      return std::nullopt;
    }
    // Both "--flag value" and "--flag=value".
    std::string_view value;
    if (const auto eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "corio_service: %s needs a value\n%s", argv[i], k_usage);
      return std::nullopt;
    }
    bool ok = true;
    if (flag == "--host") {
      c.host = value;
    } else if (flag == "--port") {
      ok = parse_number<std::uint16_t>(value, c.port, 0, 65535);
    } else if (flag == "--metrics-port") {
      ok = parse_number<std::uint16_t>(value, c.metrics_port, 0, 65535);
    } else if (flag == "--pg") {
      c.pg = value;
    } else if (flag == "--redis") {
      c.redis = value;
    } else if (flag == "--threads") {
      ok = parse_number<std::size_t>(value, c.threads, 0, 1024);
    } else if (flag == "--pg-connections") {
      ok = parse_number<std::size_t>(value, c.pg_connections, 1, 1000);
    } else if (flag == "--cache-ttl") {
      ok = parse_number<int>(value, c.cache_ttl_seconds, 1, 86400 * 365);
    } else {
      std::fprintf(stderr, "corio_service: unknown flag %.*s\n%s", static_cast<int>(flag.size()),
                   flag.data(), k_usage);
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "corio_service: bad value '%.*s' for %.*s\n",
                   static_cast<int>(value.size()), value.data(), static_cast<int>(flag.size()),
                   flag.data());
      return std::nullopt;
    }
  }
  exit_code = 0;
  return c;
}

}  // namespace service
