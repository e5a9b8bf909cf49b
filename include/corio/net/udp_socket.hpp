// udp_socket: datagrams over IPv4 or IPv6.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <system_error>

#include "corio/detail/owned_fd.hpp"
#include "corio/io/detail/io_op.hpp"
#include "corio/net/socket_address.hpp"

namespace corio {

/// One datagram received: its length, who sent it, and whether it was
/// longer than the buffer (the rest of it is then lost, as with recvfrom).
struct datagram {
  std::size_t size = 0;  ///< Bytes placed in the buffer (at most its length, even when truncated).
  socket_address from;   ///< The sender's address.
  bool truncated = false;  ///< True when the datagram was longer than the buffer (MSG_TRUNC).
};

/// Options of udp_socket::bind.
struct udp_options {
  /// SO_REUSEPORT: several sockets (one per loop) share the port.
  bool reuse_port = false;
  /// SO_BROADCAST: allow sending to broadcast addresses.
  bool broadcast = false;
};

namespace detail {

/// A sendmsg or recvmsg in flight, with its message header: no allocation.
struct msg_call : io_call {
  msghdr m_msg{};
  iovec m_iov{};
  msg_call(io_kind kind, int fd, void* buf, std::size_t len) noexcept
      : io_call(kind, fd, nullptr, 0) {
    m_iov.iov_base = buf;
    m_iov.iov_len = len;
    m_msg.msg_iov = &m_iov;
    m_msg.msg_iovlen = 1;
    m_buf = &m_msg;
  }
  msg_call(const msg_call&) = delete;
  msg_call& operator=(const msg_call&) = delete;
  std::size_t checked_result(const char* what) {
    const std::intptr_t r = take_result();
    if (r < 0) throw std::system_error(static_cast<int>(-r), std::system_category(), what);
    return static_cast<std::size_t>(r);
  }
};

struct send_msg_awaitable : msg_call {
  send_msg_awaitable(int fd, const void* buf, std::size_t len, const socket_address* to) noexcept
      : msg_call(io_kind::sendmsg, fd, const_cast<void*>(buf), len) {
    if (to != nullptr) {
      m_msg.msg_name = const_cast<sockaddr*>(to->data());
      m_msg.msg_namelen = to->size();
    }
  }
  std::size_t await_resume() { return checked_result("sendmsg"); }
};

struct recv_msg_awaitable : msg_call {
  socket_address m_from;
  recv_msg_awaitable(int fd, void* buf, std::size_t len) noexcept
      : msg_call(io_kind::recvmsg, fd, buf, len) {
    m_msg.msg_name = m_from.data();
    m_msg.msg_namelen = socket_address::capacity();
  }
  datagram await_resume() {
    datagram d;
    d.size = checked_result("recvmsg");
    m_from.set_size(m_msg.msg_namelen);
    d.from = m_from;
    d.truncated = (m_msg.msg_flags & MSG_TRUNC) != 0;
    return d;
  }
};

}  // namespace detail

/// A UDP socket, owned: the destructor closes it. Non-blocking and
/// close-on-exec; errors come out as std::system_error with the errno
/// (ECONNREFUSED on a connected socket whose peer's port is closed).
/// Each call sends or receives exactly one datagram.
///
/// Cancellation: a cancelled receive takes no datagram (or, on io_uring,
/// returns the one that arrived just before the cancel; the cancellation
/// is then thrown at the next suspension).
///
/// \code
///   auto sock = corio::udp_socket::bind(corio::socket_address::loopback(0));
///   co_await sock.send_to("ping", 4, server);
///   char buf[1500];
///   corio::datagram d = co_await sock.receive_from(buf, sizeof buf);
/// \endcode
class udp_socket {
 public:
  /// A socket object that holds no descriptor (is_open() is false).
  udp_socket() noexcept = default;

  /// A socket bound to `local` (port 0: the kernel picks one).
  [[nodiscard]] static udp_socket bind(const socket_address& local, udp_options options = {});
  /// Sets the default destination, and receives only from it.
  void connect(const socket_address& peer);

  /// Sends one datagram to `to`; the whole of it or an error (EMSGSIZE).
  [[nodiscard]] detail::send_msg_awaitable send_to(const void* buf, std::size_t len,
                                                   const socket_address& to) noexcept {
    return {m_fd.get(), buf, len, &to};
  }
  /// Sends one datagram to the connected peer.
  [[nodiscard]] detail::send_msg_awaitable send(const void* buf, std::size_t len) noexcept {
    return {m_fd.get(), buf, len, nullptr};
  }
  /// Receives one datagram, and who sent it.
  [[nodiscard]] detail::recv_msg_awaitable receive_from(void* buf, std::size_t len) noexcept {
    return {m_fd.get(), buf, len};
  }

  /// The address the socket is bound to (the port chosen, after binding
  /// port 0). Throws std::system_error (getsockname).
  [[nodiscard]] socket_address local_address() const;
  /// Closes the socket now (the destructor does it otherwise); idempotent.
  /// Calls of other tasks pending on it fail with ECANCELED.
  void close() noexcept { m_fd.reset(); }
  /// True while the socket holds a descriptor (not default-constructed,
  /// moved from or closed).
  [[nodiscard]] bool is_open() const noexcept { return m_fd.get() >= 0; }
  /// The socket's descriptor, still owned by the socket; -1 when closed.
  [[nodiscard]] int native_handle() const noexcept { return m_fd.get(); }

 private:
  detail::owned_fd m_fd;
};

}  // namespace corio
