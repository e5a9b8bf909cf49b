// The readiness path's system calls (epoll, and the first attempt of each
// operation there).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "corio/loop/detail/loop_core.hpp"
#include "io/backend.hpp"

namespace corio::detail {

namespace {

std::intptr_t perform_once(io_op& op) noexcept {
  ssize_t r = 0;
  switch (op.m_kind) {
    case io_kind::recv:
      r = ::recv(op.m_fd, op.m_buf, op.m_len, 0);
      break;
    case io_kind::send:
      r = ::send(op.m_fd, op.m_buf, op.m_len, MSG_NOSIGNAL);
      break;
    case io_kind::read:
      r = op.m_offset < 0 ? ::read(op.m_fd, op.m_buf, op.m_len)
                          : ::pread(op.m_fd, op.m_buf, op.m_len, op.m_offset);
      break;
    case io_kind::write:
      r = op.m_offset < 0 ? ::write(op.m_fd, op.m_buf, op.m_len)
                          : ::pwrite(op.m_fd, op.m_buf, op.m_len, op.m_offset);
      break;
    case io_kind::recvmsg:
      r = ::recvmsg(op.m_fd, static_cast<msghdr*>(op.m_buf), 0);
      break;
    case io_kind::sendmsg:
      r = ::sendmsg(op.m_fd, static_cast<const msghdr*>(op.m_buf), MSG_NOSIGNAL);
      break;
    case io_kind::poll_in:
    case io_kind::poll_out: {
      pollfd p{op.m_fd, static_cast<short>(op.m_kind == io_kind::poll_in ? POLLIN : POLLOUT), 0};
      r = ::poll(&p, 1, 0);
      if (r == 0) return -EAGAIN;
      if (r > 0) r = p.revents;
      break;
    }
    case io_kind::accept: {
      socklen_t* len = op.m_addr != nullptr ? &op.m_addrlen : nullptr;
      r = ::accept4(op.m_fd, op.m_addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
      break;
    }
    case io_kind::connect:
      // The first call starts the handshake; later ones (when writable)
      // read its outcome. SO_ERROR is cleared by reading it.
      if (op.m_result == -EINPROGRESS) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(op.m_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
        return err == 0 ? 0 : -err;
      }
      r = ::connect(op.m_fd, op.m_addr, op.m_addrlen);
      if (r < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        op.m_result = -EINPROGRESS;
        return -EAGAIN;
      }
      break;
  }
  if (r < 0) {
    const int e = errno;
    return e == EWOULDBLOCK ? -EAGAIN : -e;
  }
  return r;
}

}  // namespace

std::intptr_t perform(io_op& op, std::uint64_t& syscalls) noexcept {
  ++syscalls;
  std::intptr_t r = perform_once(op);
  while (r == -EINTR) {  // a signal landed mid-call: nothing happened, retry
    ++syscalls;
    r = perform_once(op);
  }
  return r;
}

std::intptr_t backend::perform_now(io_op& op) noexcept {
  return perform(op, m_syscalls);
}

std::intptr_t perform_now(io_kind kind, int fd, void* buf, std::size_t len) noexcept {
  io_op op;
  op.m_kind = kind;
  op.m_fd = fd;
  op.m_buf = buf;
  op.m_len = len;
  std::uint64_t uncounted = 0;  // off a loop thread: nobody to count for
  loop_core* const loop = loop_core::current();
  return loop != nullptr ? loop->io().perform_now(op) : perform(op, uncounted);
}

}  // namespace corio::detail
