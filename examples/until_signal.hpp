// Runs a server until SIGINT or SIGTERM: the graceful shutdown shared by
// examples/echo_server, examples/http_server and corio-bench's network
// workloads.
#pragma once

#include "corio/corio.hpp"

namespace corio_examples {

/// Runs `server` until a signal of `stop` arrives, then cancels it (a
/// server made with corio::serve closes its connections) and waits for it
/// to finish. Returns the signal number.
inline corio::task<int> until_signal(corio::task<> server, corio::signal_set& stop) {
  auto running = corio::spawn(std::move(server));
  const int sig = co_await stop.wait();
  running.cancel();
  try {
    co_await running;
  } catch (const corio::cancelled_error&) {
  }
  co_return sig;
}

}  // namespace corio_examples
