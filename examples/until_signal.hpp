// Runs a server until SIGINT or SIGTERM: the graceful shutdown shared by
// examples/echo_server, examples/http_server and corio-bench's network
// workloads.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "corio/corio.hpp"

namespace corio_examples {

/// Waits for a second signal while a graceful shutdown runs; if one comes,
/// says so and exits at once with 128 + its number (as a shell reports a
/// signal), after flushing stdio: an operator who signals twice wants the
/// process gone now, but not killed mid-write.
inline corio::task<> exit_on_second_signal(corio::signal_set& stop) {
  const int sig = co_await stop.wait();
  std::fprintf(stderr,
               "corio: second signal (%d) during the graceful shutdown: exiting now, without "
               "waiting for the open connections\n",
               sig);
  std::fflush(nullptr);
  std::_Exit(128 + sig);
}

/// Runs `server` until a signal of `stop` arrives, then stops it: through
/// `graceful` when the server was given it (requests under way answered,
/// see corio::server_shutdown), else by cancelling it (a server made with
/// corio::serve closes its connections); then waits for it to finish. A
/// second signal meanwhile ends the process at once (see
/// exit_on_second_signal). Returns the first signal's number.
inline corio::task<int> until_signal(corio::task<> server, corio::signal_set& stop,
                                     corio::server_shutdown* graceful = nullptr) {
  auto running = corio::spawn(std::move(server));
  const int sig = co_await stop.wait();
  auto second = corio::spawn(exit_on_second_signal(stop));
  if (graceful != nullptr) {
    graceful->request();
  } else {
    running.cancel();
  }
  try {
    co_await running;
  } catch (const corio::cancelled_error&) {
  }
  second.cancel();
  try {
    co_await second;
  } catch (const corio::cancelled_error&) {
  }
  co_return sig;
}

}  // namespace corio_examples
