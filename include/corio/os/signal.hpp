// signal_set: POSIX signals as awaitables (graceful shutdown on SIGINT and
// SIGTERM), through a signalfd watched by the loop's backend.
#pragma once

#include <signal.h>

#include <initializer_list>

#include "corio/detail/owned_fd.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Receives the listed signals as values instead of handlers: while the
/// set exists, the signals are blocked on this thread and `wait()` returns
/// the number of the next one to arrive. Signals that arrive while nobody
/// waits are kept by the kernel (one pending instance per signal number,
/// as POSIX has it) and returned by the next `wait()`.
///
/// \note Signals are blocked for the thread that makes the set, and for
/// threads it starts afterwards (they inherit the mask). Make the set
/// before starting other threads, or a process-directed signal may go to a
/// thread that does not block it and take its default action there.
/// Destroying the set discards the listed signals still pending, then
/// unblocks the ones it blocked: a second SIGTERM that arrived during a
/// graceful shutdown must not take its default action and kill the
/// process mid-flush. To let a second signal force a prompt exit, keep a
/// wait() going during the shutdown (examples/until_signal.hpp does).
///
/// Cancellation: a cancelled `wait()` throws cancelled_error and consumes
/// no signal.
///
/// \code
///   corio::signal_set stop{SIGINT, SIGTERM};
///   co_await corio::wait_any(std::move(work_and_stop));  // or:
///   int sig = co_await stop.wait();   // then shut down gracefully
/// \endcode
class signal_set {
 public:
  /// Blocks `signals` on this thread and opens the signalfd. Throws
  /// std::system_error (EINVAL for a signal that cannot be caught, such as
  /// SIGKILL).
  signal_set(std::initializer_list<int> signals);
  ~signal_set();
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;

  /// The next signal's number, waiting for one to arrive.
  [[nodiscard]] task<int> wait();

 private:
  sigset_t m_signals{};
  sigset_t m_newly_blocked{};  // what the destructor unblocks
  detail::owned_fd m_fd;
};

}  // namespace corio
