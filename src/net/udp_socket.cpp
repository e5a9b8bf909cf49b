#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "corio/net/udp_socket.hpp"

namespace corio {
namespace {

[[noreturn]] void throw_errno(int e, const char* what) {
  throw std::system_error(e, std::system_category(), what);
}

void set_flag(int fd, int option, const char* what) {
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, option, &one, sizeof one) != 0) throw_errno(errno, what);
}

}  // namespace

udp_socket udp_socket::bind(const socket_address& local, udp_options options) {
  udp_socket s;
  const int fd = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  s.m_fd = detail::owned_fd(fd);
  if (options.reuse_port) set_flag(fd, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)");
  if (options.broadcast) set_flag(fd, SO_BROADCAST, "setsockopt(SO_BROADCAST)");
  if (::bind(fd, local.data(), local.size()) != 0) throw_errno(errno, "bind");
  return s;
}

void udp_socket::connect(const socket_address& peer) {
  // A datagram connect only records the peer: it never blocks.
  if (::connect(m_fd.get(), peer.data(), peer.size()) != 0) throw_errno(errno, "connect");
}

socket_address udp_socket::local_address() const {
  socket_address a;
  socklen_t len = socket_address::capacity();
  if (::getsockname(m_fd.get(), a.data(), &len) != 0) throw_errno(errno, "getsockname");
  a.set_size(len);
  return a;
}

}  // namespace corio
