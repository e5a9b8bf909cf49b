// tcp_stream (tcp_stream.hpp).
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

#include "corio/loop/detail/loop_core.hpp"
#include "corio/net/detail/stream_ops.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/cancel.hpp"
#include "corio/time/sleep.hpp"
#include "io/backend.hpp"
#include "net/detail/sockets.hpp"

namespace corio {

using detail::name_of;
using detail::open_socket;
using detail::throw_errno;

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

task<std::size_t> tcp_stream::write_all(const void* buf, std::size_t len, std::error_code& ec) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  ec.clear();
  while (done < len) {
    done += co_await write_some(p + done, len - done, ec);
    if (ec) break;
  }
  co_return done;
}

std::size_t tcp_stream::try_write_some(const void* buf, std::size_t len,
                                       std::error_code& ec) noexcept {
  ec.clear();
  const std::intptr_t r =
      detail::perform_now(detail::io_kind::send, m_fd.get(), const_cast<void*>(buf), len);
  if (r >= 0) return static_cast<std::size_t>(r);
  if (r != -EAGAIN) ec.assign(static_cast<int>(-r), std::system_category());
  return 0;
}

void tcp_stream::shutdown_write() {
  if (::shutdown(m_fd.get(), SHUT_WR) != 0) throw_errno(errno, "shutdown");
}

void tcp_stream::shutdown_write(std::error_code& ec) noexcept {
  ec.clear();
  if (::shutdown(m_fd.get(), SHUT_WR) != 0) ec.assign(errno, std::system_category());
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

}  // namespace corio
