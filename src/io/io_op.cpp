#include "corio/detail/io_op.hpp"

#include <cerrno>

#include "corio/event_loop.hpp"
#include "io/backend.hpp"

namespace corio::detail {

bool io_op::start(std::coroutine_handle<> h) noexcept {
  if (!begin(h)) return false;
  if (m_fd < 0) {  // a closed stream: fail the call, do not crash
    m_result = -EBADF;
    m_state = state::woken;
    m_task->m_waiter = nullptr;
    return false;
  }
  backend& b = current_loop().io();
  if (!b.start(*this)) {
    // Done without blocking: the task goes on at once, as if never parked.
    m_state = state::woken;
    m_task->m_waiter = nullptr;
    return false;
  }
  m_on_abort = [](waiter& w) noexcept { current_loop().io().cancel(static_cast<io_op&>(w)); };
  return true;
}

std::intptr_t io_op::take_result() {
  if (m_state == state::aborted) throw_cancelled(*m_task);
  return m_result;
}

}  // namespace corio::detail
