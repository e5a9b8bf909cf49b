// The echo service of WORKLOADS.md: every connection gets back all it
// sends (reads up to 64 KiB, writes all of it). Shared by
// examples/echo_server and `corio-bench --workload echo`.
#pragma once

#include <memory>

#include "corio/corio.hpp"

namespace corio_examples {

/// Echoes one connection until the peer closes it or it fails.
inline corio::task<> echo_connection(corio::tcp_stream stream) {
  corio::tcp_stream s = std::move(stream);  // closed as the task ends
  constexpr std::size_t buffer_size = 64 * 1024;
  // For overwrite: a zero-filled buffer is resident in full for as long as
  // the connection lives, even when its messages are small.
  const auto buf = std::make_unique_for_overwrite<char[]>(buffer_size);
  std::error_code ec;  // a reset or broken connection ends this client only
  for (;;) {
    const std::size_t n = co_await s.read_some(buf.get(), buffer_size, ec);
    if (ec || n == 0) co_return;  // gone, or closed
    (void)co_await s.write_all(buf.get(), n, ec);
    if (ec) co_return;
  }
}

/// Accepts for ever (from a tcp_listener, or the handed_connections of
/// serve_from_one_acceptor); each connection runs as its own task,
/// cancelled with the server.
template <class Listener = corio::tcp_listener>
corio::task<> serve_echo(Listener& listener) {
  return corio::serve(listener, [](corio::tcp_stream s) {
    s.set_nodelay(true);
    return echo_connection(std::move(s));
  });
}

}  // namespace corio_examples
