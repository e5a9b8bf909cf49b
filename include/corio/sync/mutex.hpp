// mutex: a FIFO-fair lock for tasks of one loop.
#pragma once

#include "corio/sync/semaphore.hpp"

namespace corio {

/// An asyncio-style lock: `co_await m.lock()` ... `m.unlock()`, or
/// `auto g = co_await m.scoped_lock();`. It is not reentrant and not for
/// threads: it serialises tasks of one loop across their awaits.
///
/// \note FIFO: unlock hands the lock to the oldest waiter.
///
/// Cancellation: a cancelled waiter is unlinked at once; one that was handed
/// the lock and cancelled before it resumed hands it on.
class mutex {
 public:
  mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// Waits for the lock and takes it.
  [[nodiscard]] auto lock() noexcept { return m_sem.acquire(); }
  /// Waits for the lock; the guard unlocks at scope end.
  [[nodiscard]] auto scoped_lock() noexcept { return m_sem.acquire_guard(); }
  /// Takes the lock if it is free and nobody waits.
  bool try_lock() noexcept { return m_sem.try_acquire(); }
  /// Releases the lock (to the oldest waiter, if any). Unlocking a mutex
  /// that is not locked is a bug in the caller: it throws std::logic_error
  /// and changes nothing (asyncio raises RuntimeError).
  void unlock() {
    if (!locked()) detail::throw_logic_error("corio::mutex::unlock: the mutex is not locked");
    m_sem.release();
  }
  /// True while a task holds the lock (or it was handed to a waiter that
  /// has not resumed yet).
  [[nodiscard]] bool locked() const noexcept { return m_sem.available() == 0; }

 private:
  semaphore m_sem{1};
};

}  // namespace corio
