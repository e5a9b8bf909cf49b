// serve: the accept loop every stream server shares.
#pragma once

#include <exception>
#include <utility>

#include "corio/flow/detail/child_scope.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/time/sleep.hpp"

namespace corio {

/// Accepts connections on `listener` for ever and runs
/// `on_connection(tcp_stream)` (which returns a `task<>`) for each as a
/// child task: Trio's `serve_tcp`, asyncio's `start_server`.
///
/// The connections belong to the server: cancelling `serve` cancels every
/// connection task, waits for them to finish (their descriptors closed),
/// then throws `cancelled_error`. A connection task that fails ends that
/// connection only; its exception is reported as an unretrieved task
/// failure, and the server goes on. Running out of descriptors does not
/// stop it either (see tcp_listener::accept).
///
/// \code
///   auto l = corio::tcp_listener::bind(corio::socket_address::loopback(8000));
///   co_await corio::serve(l, [](corio::tcp_stream s) { return echo(std::move(s)); });
/// \endcode
template <class F>
task<> serve(tcp_listener& listener, F on_connection) {
  detail::child_scope connections(/*fail_fast=*/false, /*collect=*/false);
  std::exception_ptr stopped;
  try {
    for (unsigned accepted = 1;; ++accepted) {
      connections.spawn(on_connection(co_await listener.accept()));
      // A burst of queued connections is accepted without suspending: let
      // the loop run the new connections (and everything else) between
      // batches, and keep the stack flat where the compiler does not turn
      // symmetric transfer into tail calls (sanitizer and -O0 builds).
      if (accepted % 32 == 0) co_await yield_now();
    }
  } catch (...) {
    stopped = std::current_exception();
  }
  connections.cancel_all();
  co_await shield(connections.wait_until(&detail::child_scope::all_done));
  std::rethrow_exception(stopped);
}

}  // namespace corio
