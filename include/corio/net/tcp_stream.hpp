// tcp_stream: a connected stream socket (TCP or Unix-domain).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

#include "corio/detail/owned_fd.hpp"
#include "corio/errors.hpp"
#include "corio/io/detail/io_op.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// A connected stream socket, owned: the destructor closes it. Its calls
/// suspend the task until the kernel can proceed. Errors come out as
/// std::system_error with the errno (ECONNRESET, EPIPE, ...); a peer that
/// closed is a clean end of stream: `read_some` returns 0. The descriptor
/// is non-blocking and close-on-exec.
///
/// Cancellation: a cancelled call throws cancelled_error and has read or
/// written nothing, or, on io_uring, completed just before the cancel took
/// effect: then its result is returned and the cancellation is thrown at
/// the task's next suspension. No byte is lost either way.
///
/// \code
///   auto s = co_await corio::tcp_stream::connect(corio::socket_address::loopback(8080));
///   co_await s.write_all("ping", 4);
///   char buf[4];
///   co_await s.read_exact(buf, 4);
/// \endcode
class tcp_stream {
 public:
  /// A stream that holds no socket (is_open() is false).
  tcp_stream() noexcept = default;
  /// Adopts a connected, non-blocking descriptor.
  explicit tcp_stream(int fd) noexcept : m_fd(fd) {}

  /// Connects to `addr` (IPv4, IPv6 or Unix). Bound it with
  /// `corio::timeout(d, tcp_stream::connect(a))`.
  [[nodiscard]] static task<tcp_stream> connect(socket_address addr);
  /// Connects, giving up with timeout_error after `limit` (the socket is
  /// closed; nothing leaks).
  [[nodiscard]] static task<tcp_stream> connect(socket_address addr,
                                                std::chrono::nanoseconds limit);
  /// Resolves `host` (see resolve()) and connects to its addresses in
  /// turn until one accepts; the last error when none does.
  [[nodiscard]] static task<tcp_stream> connect(std::string host, std::uint16_t port);

  /// Reads what is available, up to `len` bytes, waiting for at least one;
  /// 0 means the peer closed its side.
  [[nodiscard]] detail::io_awaitable read_some(void* buf, std::size_t len) noexcept {
    return {detail::io_kind::recv, m_fd.get(), buf, len, "recv"};
  }
  /// Writes what the socket buffer takes, at least one byte.
  [[nodiscard]] detail::io_awaitable write_some(const void* buf, std::size_t len) noexcept {
    return {detail::io_kind::send, m_fd.get(), const_cast<void*>(buf), len, "send"};
  }
  /// read_some and write_some without exceptions for I/O errors: a failure
  /// sets `ec` (ECONNRESET, EPIPE, EBADF...) and gives 0; success clears it.
  /// A server's connection loop uses these: a reset connection is routine
  /// there, and an exception per connection is not. (Cancellation still
  /// throws cancelled_error.)
  ///
  /// \code
  ///   std::error_code ec;
  ///   const std::size_t n = co_await s.read_some(buf, sizeof buf, ec);
  ///   if (ec || n == 0) co_return;  // gone, or closed
  /// \endcode
  [[nodiscard]] detail::io_awaitable_ec read_some(void* buf, std::size_t len,
                                                  std::error_code& ec) noexcept {
    return {detail::io_kind::recv, m_fd.get(), buf, len, "recv", ec};
  }
  /// write_some without exceptions for I/O errors: a failure sets `ec` and
  /// gives 0; success clears it (see the read_some overload above).
  [[nodiscard]] detail::io_awaitable_ec write_some(const void* buf, std::size_t len,
                                                   std::error_code& ec) noexcept {
    return {detail::io_kind::send, m_fd.get(), const_cast<void*>(buf), len, "send", ec};
  }
  /// Writes what the socket takes now, without waiting: the bytes written,
  /// 0 when its buffer is full, or 0 with `ec` set on an error. For a writer
  /// that gathers a loop tick's output and sends it in one call, waiting
  /// (write_all) only for what did not fit. Counted in loop_stats::syscalls.
  ///
  /// \code
  ///   const std::size_t n = s.try_write_some(out.data(), out.size(), ec);
  ///   out.erase(0, n);  // the rest waits for the socket
  /// \endcode
  [[nodiscard]] std::size_t try_write_some(const void* buf, std::size_t len,
                                           std::error_code& ec) noexcept;
  /// Reads exactly `len` bytes; incomplete_read_error when the stream ends.
  [[nodiscard]] task<> read_exact(void* buf, std::size_t len);
  /// Writes all `len` bytes, waiting while the peer is slow (the buffer
  /// must stay alive until the task finishes).
  [[nodiscard]] task<> write_all(const void* buf, std::size_t len);
  /// Writes all `len` bytes or stops at the first error, which goes into
  /// `ec`; returns the bytes written.
  [[nodiscard]] task<std::size_t> write_all(const void* buf, std::size_t len, std::error_code& ec);

  /// Ends the sending side (the peer reads end of stream); reading goes on.
  void shutdown_write();
  /// As above; a failure (the peer is gone) goes into `ec`.
  void shutdown_write(std::error_code& ec) noexcept;
  /// Closes now. Calls of other tasks pending on it fail with ECANCELED.
  void close() noexcept;
  /// Gives up the descriptor without closing it (-1 when closed): to hand
  /// the connection to another loop, which makes a tcp_stream of it there.
  [[nodiscard]] int release() noexcept { return m_fd.release(); }
  /// TCP_NODELAY: send small writes at once (no Nagle delay).
  void set_nodelay(bool on);

  /// This end's address. Throws std::system_error (getsockname), as on a
  /// closed stream.
  [[nodiscard]] socket_address local_address() const;
  /// The peer's address. Throws std::system_error (getpeername: ENOTCONN
  /// once the peer is gone, for instance).
  [[nodiscard]] socket_address peer_address() const;
  /// True while the stream holds a descriptor (not default-constructed,
  /// moved from or closed); says nothing about the peer.
  [[nodiscard]] bool is_open() const noexcept { return m_fd.get() >= 0; }
  /// The socket's descriptor, still owned by the stream; -1 when closed.
  [[nodiscard]] int native_handle() const noexcept { return m_fd.get(); }

 private:
  detail::owned_fd m_fd;
};

}  // namespace corio
