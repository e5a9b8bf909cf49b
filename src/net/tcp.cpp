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

#include "corio/cancel.hpp"
#include "corio/detail/stream_ops.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/time.hpp"

namespace corio {
namespace {

[[noreturn]] void throw_errno(int e, const char* what) {
  throw std::system_error(e, std::system_category(), what);
}

int open_socket(int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  return fd;
}

socket_address name_of(int fd, bool peer) {
  socket_address a;
  socklen_t len = socket_address::capacity();
  const int r = peer ? ::getpeername(fd, a.data(), &len) : ::getsockname(fd, a.data(), &len);
  if (r != 0) throw_errno(errno, peer ? "getpeername" : "getsockname");
  a.set_size(len);
  return a;
}

}  // namespace

incomplete_read_error::incomplete_read_error(std::size_t got, std::size_t wanted)
    : std::runtime_error("corio: stream ended after " + std::to_string(got) + " of " +
                         std::to_string(wanted) + " bytes"),
      m_got(got),
      m_wanted(wanted) {}

task<tcp_stream> tcp_stream::connect(socket_address addr) {
  tcp_stream s(open_socket(addr.family()));  // closed by RAII on error or cancel
  detail::io_awaitable op(detail::io_kind::connect, s.m_fd.get(), nullptr, 0, "connect");
  op.m_addr = addr.data();
  op.m_addrlen = addr.size();
  co_await op;
  co_return s;
}

task<tcp_stream> tcp_stream::connect(socket_address addr, std::chrono::nanoseconds limit) {
  co_return co_await timeout(limit, connect(addr));
}

task<tcp_stream> tcp_stream::connect(std::string host, std::uint16_t port) {
  const std::vector<socket_address> addrs = co_await resolve(std::move(host), port);
  std::exception_ptr last;
  for (const socket_address& a : addrs) {
    try {
      co_return co_await connect(a);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);  // resolve() never returns an empty list
}

task<> tcp_stream::read_exact(void* buf, std::size_t len) {
  return detail::read_exact(*this, buf, len);
}

task<> tcp_stream::write_all(const void* buf, std::size_t len) {
  return detail::write_all(*this, buf, len);
}

void tcp_stream::shutdown_write() {
  if (::shutdown(m_fd.get(), SHUT_WR) != 0) throw_errno(errno, "shutdown");
}

void tcp_stream::close() noexcept {
  m_fd.reset();
}

void tcp_stream::set_nodelay(bool on) {
  const int v = on ? 1 : 0;
  if (::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
    throw_errno(errno, "setsockopt(TCP_NODELAY)");
}

socket_address tcp_stream::local_address() const {
  return name_of(m_fd.get(), false);
}
socket_address tcp_stream::peer_address() const {
  return name_of(m_fd.get(), true);
}

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
