// spinning_mutex: a mutex that spins briefly before it blocks.
#pragma once

#include <mutex>

#include "corio/detail/cpu_relax.hpp"

namespace corio::detail {

/// std::mutex, but a contended lock() first retries for a short while (the
/// critical sections it guards are a few dozen instructions) before the
/// thread sleeps in the kernel: two loops that share a channel then hand
/// the lock back and forth in user space instead of paying a futex wait
/// and wake-up each time, as glibc's plain mutex does. Lockable, so
/// std::unique_lock and std::condition_variable_any take it.
class spinning_mutex {
 public:
  void lock() noexcept {
    for (int i = 0; i < 128; ++i) {
      if (m_mutex.try_lock()) return;
      cpu_relax();
    }
    m_mutex.lock();
  }
  bool try_lock() noexcept { return m_mutex.try_lock(); }
  void unlock() noexcept { m_mutex.unlock(); }

 private:
  std::mutex m_mutex;
};

}  // namespace corio::detail
