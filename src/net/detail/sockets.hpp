// Socket helpers that tcp_stream.cpp and tcp_listener.cpp share.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "corio/net/socket_address.hpp"

namespace corio::detail {

[[noreturn]] inline void throw_errno(int e, const char* what) {
  throw std::system_error(e, std::system_category(), what);
}

inline int open_socket(int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  return fd;
}

inline socket_address name_of(int fd, bool peer) {
  socket_address a;
  socklen_t len = socket_address::capacity();
  const int r = peer ? ::getpeername(fd, a.data(), &len) : ::getsockname(fd, a.data(), &len);
  if (r != 0) throw_errno(errno, peer ? "getpeername" : "getsockname");
  a.set_size(len);
  return a;
}

}  // namespace corio::detail
