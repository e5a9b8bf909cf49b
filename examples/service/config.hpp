// The service's settings, from its command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace service {

struct config {
  std::string host = "127.0.0.1";  ///< where both listeners bind
  std::uint16_t port = 8080;       ///< the JSON API
  std::uint16_t metrics_port = 9464;
  std::string pg = "host=127.0.0.1 dbname=postgres";  ///< a libpq connection string or URL
  std::string redis = "127.0.0.1:6379";               ///< host:port, or a Unix socket path
  std::size_t threads = 0;                            ///< event loops; 0: one per CPU
  std::size_t pg_connections = 4;                     ///< per loop
  int cache_ttl_seconds = 60;
};

/// The settings `argv` asks for, or nullopt after printing why not (or the
/// usage, for --help; then `exit_code` is 0, else 2).
std::optional<config> parse_command_line(int argc, char** argv, int& exit_code);

}  // namespace service
