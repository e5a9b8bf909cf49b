// serve's non-template parts: the connection cap and the kernel's count of
// a socket's progress.
#include "corio/net/serve.hpp"

#include <linux/in.h>
#include <linux/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

namespace corio::detail {

std::size_t connection_cap(std::size_t max_connections) noexcept {
  if (max_connections != 0) return max_connections;
  // Descriptors the server needs besides its connections: up to 64 that
  // io_uring's multishot accept takes from the backlog before the server
  // asks (uring_backend's accept queue), the listener, the loop's own,
  // files and logs the handlers open.
  constexpr rlim_t reserve = 128;
  rlimit fds{};
  if (::getrlimit(RLIMIT_NOFILE, &fds) != 0 || fds.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return fds.rlim_cur > reserve * 2 ? static_cast<std::size_t>(fds.rlim_cur - reserve)
                                    : static_cast<std::size_t>(fds.rlim_cur / 2);
}

std::uint64_t tcp_bytes_moved(int fd) noexcept {
  // <linux/tcp.h>'s tcp_info: glibc's copy predates the byte counters
  // (Linux 4.1 and 4.2).
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_bytes_received + info.tcpi_bytes_acked;
}

}  // namespace corio::detail
