// server_shutdown: asks servers on any loop to stop gracefully.
#pragma once

#include <atomic>

#include "corio/sync/channel.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Asks servers to stop gracefully. Give one to every server it should stop
/// (`serve_options::shutdown`, `http_options::shutdown`; the servers of
/// every loop may share one) and call request() from any thread or loop.
/// Each server then stops accepting, closes its listener, tells its
/// connections (an HTTP connection answers the request under way with
/// `Connection: close`; an idle one closes at once), waits up to its
/// `drain_timeout` for them to end, cancels those left, and returns
/// normally. Go's
/// `http.Server.Shutdown`, hyper's graceful shutdown; asyncio's
/// `Server.close()` then `wait_closed()` with a deadline.
///
/// \code
///   corio::server_shutdown stop;
///   auto server = corio::spawn(corio::serve_http(listener, handler, {.shutdown = &stop}));
///   co_await signals.wait();  // SIGTERM
///   stop.request();
///   co_await server;          // requests under way answered, connections closed
/// \endcode
class server_shutdown {
 public:
  server_shutdown() = default;
  server_shutdown(const server_shutdown&) = delete;
  server_shutdown& operator=(const server_shutdown&) = delete;

  /// Starts the graceful stop of every server given this object. From any
  /// thread; later calls do nothing.
  void request();
  /// True once request() was called.
  [[nodiscard]] bool requested() const noexcept {
    return m_requested.load(std::memory_order_acquire);
  }
  /// From a task on any loop: completes once request() was called (at once
  /// if it was). A plain `serve` handler can await it to end its
  /// connection early. Cancellation: at once.
  task<> wait();

 private:
  std::atomic<bool> m_requested{false};
  // Never sent to: its close() is the signal, and wakes the waiters of
  // every loop through their own loop's post().
  channel<char> m_signal{1};
};

}  // namespace corio
