#include "corio/os/signal.hpp"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "corio/io/detail/io_op.hpp"

namespace corio {

signal_set::signal_set(std::initializer_list<int> signals) {
  sigemptyset(&m_signals);
  sigemptyset(&m_newly_blocked);
  for (const int s : signals) {
    if (s == SIGKILL || s == SIGSTOP || sigaddset(&m_signals, s) != 0)
      throw std::system_error(EINVAL, std::generic_category(),
                              "signal_set: signal cannot be caught");
  }
  sigset_t before;
  if (const int e = pthread_sigmask(SIG_BLOCK, &m_signals, &before); e != 0)
    throw std::system_error(e, std::generic_category(), "pthread_sigmask");
  for (const int s : signals) {
    if (sigismember(&before, s) == 0) sigaddset(&m_newly_blocked, s);
  }
  const int fd = ::signalfd(-1, &m_signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    pthread_sigmask(SIG_UNBLOCK, &m_newly_blocked, nullptr);
    throw std::system_error(e, std::generic_category(), "signalfd");
  }
  m_fd = detail::owned_fd(fd);
}

signal_set::~signal_set() {
  // Signals that arrived after the last wait() (a second SIGTERM during a
  // graceful shutdown) are still pending: unblocked, they would take their
  // default action and kill the process mid-flush. Read them off first.
  if (m_fd.get() >= 0) {
    signalfd_siginfo info{};
    while (::read(m_fd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    }
  }
  m_fd.reset();
  pthread_sigmask(SIG_UNBLOCK, &m_newly_blocked, nullptr);
}

task<int> signal_set::wait() {
  signalfd_siginfo info{};
  // One record per read: a signalfd read never returns part of one.
  detail::io_awaitable op(detail::io_kind::read, m_fd.get(), &info, sizeof info, "read(signalfd)");
  co_await op;
  co_return static_cast<int>(info.ssi_signo);
}

}  // namespace corio
