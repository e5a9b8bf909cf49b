#include "corio/io/detail/io_op.hpp"

#include <unistd.h>

#include <cerrno>

#include "corio/detail/owned_fd.hpp"

#include "corio/loop/event_loop.hpp"
#include "io/backend.hpp"

namespace corio::detail {

bool io_op::start(std::coroutine_handle<> h) noexcept {
  if (!park(*this, h, m_what)) return false;
  if (m_fd < 0) {
    m_result = -EBADF;  // a closed stream: fail the call, do not crash
  } else if (current_loop().io().start(*this)) {
    return true;
  }
  // Done without blocking: the task goes on at once, as if never parked.
  m_state = state::woken;
  m_task->m_waiter = nullptr;
  return false;
}

void io_op::on_abort() noexcept {
  current_loop().io().cancel(*this);
}

std::intptr_t io_op::take_result() {
  if (m_state == state::aborted) throw_cancelled(*m_task);
  return m_result;
}

void forget_descriptor(int fd) noexcept {
  if (loop_core* loop = loop_core::current()) loop->io().forget_fd(fd);
}

void close_descriptor(int fd) noexcept {
  forget_descriptor(fd);
  ::close(fd);
}

}  // namespace corio::detail
