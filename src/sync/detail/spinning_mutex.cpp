#include "corio/sync/detail/spinning_mutex.hpp"

#include <cerrno>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace corio::detail {

namespace {
long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, nullptr, nullptr,
                 0);
}
}  // namespace

void spinning_mutex::lock_contended() noexcept {
  // Whoever takes the lock from here leaves it marked as having sleepers
  // (it cannot know whether others still sleep), so its unlock wakes one;
  // a spurious wake-up costs a system call, a lost one would hang. A lock
  // leaves errno as it found it, as std::mutex's does.
  const int saved_errno = errno;
  while (m_state.exchange(k_sleepers, std::memory_order_acquire) != k_unlocked) {
    (void)futex(m_state, FUTEX_WAIT_PRIVATE, k_sleepers);  // EAGAIN when it changed meanwhile
  }
  errno = saved_errno;
}

void spinning_mutex::wake_one() noexcept {
  (void)futex(m_state, FUTEX_WAKE_PRIVATE, 1);
}

}  // namespace corio::detail
