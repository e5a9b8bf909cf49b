// tcp_listener (tcp_listener.hpp).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include "corio/net/detail/stream_ops.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/cancel.hpp"
#include "corio/time/sleep.hpp"
#include "net/detail/sockets.hpp"

namespace corio {

using detail::name_of;
using detail::open_socket;
using detail::throw_errno;

tcp_listener tcp_listener::bind(const socket_address& addr, listen_options options) {
  tcp_listener l;
  l.m_fd = detail::owned_fd(open_socket(addr.family()));
  const int fd = l.m_fd.get();
  const int one = 1;
  if (addr.family() != AF_UNIX) {
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
      throw_errno(errno, "setsockopt(SO_REUSEADDR)");
    if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      throw_errno(errno, "setsockopt(SO_REUSEPORT)");
  }
  if (::bind(fd, addr.data(), addr.size()) != 0) throw_errno(errno, "bind");
  if (::listen(fd, options.backlog) != 0) throw_errno(errno, "listen");
  return l;
}

bool tcp_listener::reuses_port() const {
  int on = 0;
  socklen_t len = sizeof on;
  if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, &len) != 0)
    throw_errno(errno, "getsockopt(SO_REUSEPORT)");
  return on != 0;
}

task<tcp_stream> tcp_listener::accept() {
  std::chrono::milliseconds backoff(10);
  for (;;) {
    const std::intptr_t r =
        co_await detail::io_call(detail::io_kind::accept, m_fd.get(), nullptr, 0);
    if (r >= 0) co_return tcp_stream(static_cast<int>(r));
    const int e = static_cast<int>(-r);
    if (e == ECONNABORTED || e == EPROTO) continue;
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
      // Out of descriptors or memory: the pending connection stays queued.
      // Wait for some to be released instead of spinning on the error.
      co_await sleep(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    throw_errno(e, "accept");
  }
}

socket_address tcp_listener::local_address() const {
  return name_of(m_fd.get(), false);
}

void tcp_listener::close() noexcept {
  m_fd.reset();
}

}  // namespace corio
