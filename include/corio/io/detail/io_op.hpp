// One I/O operation in flight: the record that the socket, pipe and file
// awaitables embed and hand to the loop's backend.
//
// An io_op is a `waiter` (so it suspends through the one primitive and is
// cancellable like any other wait) plus what the backend needs to perform
// the call. Its life:
//   idle --start--> done at once (the call did not block: no suspension)
//              \--> waiting --backend completes--> woken (result set)
//                          \--cancel--> aborted (epoll: unlinked at once;
//                                       io_uring: async cancel, and the root
//                                       is resumed only by the completion)
// A completion that arrives after a cancel but carries a real result (the
// kernel read the data, or accepted the connection, before the cancel took
// effect) is delivered, not dropped: the cancellation stays pending and is
// thrown at the task's next suspension. So no byte and no descriptor is
// ever lost to a cancellation.
#pragma once

#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "corio/detail/intrusive_list.hpp"
#include "corio/loop/detail/task_base.hpp"

namespace corio::detail {

enum class io_kind : std::uint8_t {
  recv,      // recv(fd, buf, len, 0): sockets
  send,      // send(fd, buf, len, MSG_NOSIGNAL): sockets; never raises SIGPIPE
  accept,    // accept4(fd, ..., SOCK_CLOEXEC | SOCK_NONBLOCK): result is the new fd
  connect,   // connect(fd, addr, addrlen): result 0
  read,      // read(fd, buf, len), or pread at m_offset >= 0: pipes, signalfd, files
  write,     // write(fd, buf, len), or pwrite at m_offset >= 0
  recvmsg,   // recvmsg(fd, (msghdr*)buf, 0): datagrams with their sender
  sendmsg,   // sendmsg(fd, (msghdr*)buf, MSG_NOSIGNAL)
  poll_in,   // waits until fd is readable (a pidfd, say): result is the poll revents
  poll_out,  // waits until fd is writable: result is the poll revents
};

/// The call's name, for task dumps ("recv", "accept").
[[nodiscard]] constexpr const char* io_kind_name(io_kind k) noexcept {
  constexpr const char* names[] = {"recv",  "send",    "accept",  "connect", "read",
                                   "write", "recvmsg", "sendmsg", "poll_in", "poll_out"};
  return names[static_cast<std::size_t>(k)];
}

/// See the file comment.
struct io_op : waiter, list_node {
  io_kind m_kind = io_kind::recv;
  bool m_in_flight = false;  // the backend holds it (parked or submitted)
  int m_fd = -1;
  void* m_buf = nullptr;
  std::size_t m_len = 0;
  sockaddr* m_addr = nullptr;  // connect: input; accept: output (optional)
  socklen_t m_addrlen = 0;
  std::int64_t m_offset = -1;  // read/write: file position, -1 for the current one
  std::intptr_t m_result = 0;  // >= 0: the call's result; < 0: -errno

  /// Performs the call, suspending `h`'s task when it would block. Returns
  /// false when the task must not suspend (done at once, or already
  /// cancelled): then await_resume runs straight away.
  bool start(std::coroutine_handle<> h) noexcept;
  /// Cancellation: the backend cancels the call (io_uring: asynchronously).
  void on_abort() noexcept;

  /// The result (>= 0) or -errno. Throws cancelled_error when the wait was
  /// aborted before the call completed.
  std::intptr_t take_result();
};

/// One call as an awaitable giving the raw result: >= 0, or -errno.
struct io_call : io_op {
  io_call(io_kind kind, int fd, void* buf, std::size_t len) noexcept {
    m_kind = kind;
    m_what = io_kind_name(kind);
    m_fd = fd;
    m_buf = buf;
    m_len = len;
  }
  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return start(h); }
  std::intptr_t await_resume() { return take_result(); }
};

/// The awaitable of read_some, write_some and the like: the byte count or
/// new descriptor; an error comes out as std::system_error with the errno,
/// `what` naming the call (it is also what task dumps show).
struct io_awaitable : io_call {
  io_awaitable(io_kind kind, int fd, void* buf, std::size_t len, const char* what) noexcept
      : io_call(kind, fd, buf, len) {
    m_what = what;
  }
  std::size_t await_resume() {
    const std::intptr_t r = take_result();
    if (r < 0) throw std::system_error(static_cast<int>(-r), std::system_category(), m_what);
    return static_cast<std::size_t>(r);
  }
};

/// As io_awaitable, without exceptions for I/O errors (a server's hot path,
/// where a reset connection is routine): the errno goes into `ec` and the
/// count is 0; `ec` is cleared on success. Cancellation still throws
/// cancelled_error: it is not an I/O error.
struct io_awaitable_ec : io_call {
  std::error_code* m_ec;
  io_awaitable_ec(io_kind kind, int fd, void* buf, std::size_t len, const char* what,
                  std::error_code& ec) noexcept
      : io_call(kind, fd, buf, len), m_ec(&ec) {
    m_what = what;
  }
  std::size_t await_resume() {
    const std::intptr_t r = take_result();
    if (r < 0) {
      *m_ec = std::error_code(static_cast<int>(-r), std::system_category());
      return 0;
    }
    m_ec->clear();
    return static_cast<std::size_t>(r);
  }
};

}  // namespace corio::detail
