// semaphore: counts permits; waiters are served in FIFO order.
#pragma once

#include <cstddef>
#include <utility>

#include "corio/detail/throw.hpp"
#include "corio/sync/detail/list_waiter.hpp"

namespace corio {

class semaphore;

/// Releases one permit of a semaphore when destroyed (see
/// `semaphore::acquire_guard`).
class [[nodiscard]] semaphore_guard {
 public:
  /// Owns one permit already taken from `s` (nullptr: owns none); made by
  /// acquire_guard(), rarely by user code.
  explicit semaphore_guard(semaphore* s) noexcept : m_sem(s) {}
  /// Takes over `o`'s permit; `o` then releases nothing.
  semaphore_guard(semaphore_guard&& o) noexcept : m_sem(std::exchange(o.m_sem, nullptr)) {}
  /// Releases this guard's permit, if any, and takes over `o`'s.
  semaphore_guard& operator=(semaphore_guard&& o) noexcept;
  semaphore_guard(const semaphore_guard&) = delete;
  semaphore_guard& operator=(const semaphore_guard&) = delete;
  ~semaphore_guard();
  /// Releases the permit now.
  void release() noexcept;

 private:
  semaphore* m_sem;
};

/// An asyncio-style semaphore: `co_await s.acquire()` takes a permit,
/// waiting while none is free; `release()` gives one back.
///
/// \note Waiters are served in FIFO order: a release hands its permit
/// straight to the oldest waiter, so a newcomer cannot overtake it.
///
/// Cancellation: a cancelled waiter is unlinked at once. A waiter that was
/// handed a permit and is cancelled before it resumed gives the permit to the
/// next waiter, so no permit is ever lost.
///
/// \code
///   corio::semaphore limit(10);
///   auto permit = co_await limit.acquire_guard();  // released at scope end
/// \endcode
class semaphore {
  struct acquire_waiter : detail::list_waiter {
    semaphore* m_sem;
    explicit acquire_waiter(semaphore* s) noexcept : m_sem(s) {}
    [[nodiscard]] bool await_ready() const noexcept { return m_sem->try_acquire(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return park_in(m_sem->m_waiters, h, "semaphore");
    }
    void on_pass() noexcept { m_sem->release(); }
    void await_resume() { finish(); }
  };

 public:
  /// A semaphore with `permits` free permits (0: every acquire waits for a release).
  explicit semaphore(std::size_t permits) noexcept : m_count(permits) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  /// Waits for a permit and takes it.
  [[nodiscard]] acquire_waiter acquire() noexcept { return acquire_waiter(this); }

  /// Waits for a permit; the guard releases it at scope end.
  [[nodiscard]] auto acquire_guard() noexcept {
    struct awaiter : acquire_waiter {
      using acquire_waiter::acquire_waiter;
      semaphore_guard await_resume() {
        acquire_waiter::await_resume();
        return semaphore_guard(m_sem);
      }
    };
    return awaiter(this);
  }

  /// Takes a permit if one is free and nobody waits; never suspends.
  bool try_acquire() noexcept {
    if (m_count == 0 || !m_waiters.empty()) return false;
    --m_count;
    return true;
  }

  /// Gives `n` permits back, handing each to the oldest waiter first.
  void release(std::size_t n = 1) noexcept {
    for (; n > 0; --n) {
      if (acquire_waiter* w = m_waiters.pop_front()) {
        w->wake();
      } else {
        m_count += n;
        return;
      }
    }
  }

  /// Free permits now.
  [[nodiscard]] std::size_t available() const noexcept { return m_count; }
  /// Tasks waiting now.
  [[nodiscard]] std::size_t waiters() const noexcept { return m_waiters.size(); }

 private:
  std::size_t m_count;
  detail::intrusive_list<acquire_waiter> m_waiters;
};

/// asyncio's BoundedSemaphore: a semaphore that never holds more than the
/// permits it started with. A release without a matching acquire is a bug
/// in the caller: it throws std::logic_error and changes nothing, where a
/// plain semaphore would silently grow.
///
/// \code
///   corio::bounded_semaphore slots(4);
///   co_await slots.acquire();
///   ...
///   slots.release();
/// \endcode
class bounded_semaphore {
 public:
  /// A semaphore with `permits` free permits, which is also its bound.
  explicit bounded_semaphore(std::size_t permits) noexcept : m_sem(permits), m_bound(permits) {}
  bounded_semaphore(const bounded_semaphore&) = delete;
  bounded_semaphore& operator=(const bounded_semaphore&) = delete;

  /// Waits for a permit and takes it.
  [[nodiscard]] auto acquire() noexcept { return m_sem.acquire(); }
  /// Waits for a permit; the guard releases it at scope end.
  [[nodiscard]] auto acquire_guard() noexcept { return m_sem.acquire_guard(); }
  /// Takes a permit if one is free and nobody waits; never suspends.
  bool try_acquire() noexcept { return m_sem.try_acquire(); }
  /// Gives a permit back; throws std::logic_error when every permit is
  /// already free.
  void release() {
    if (m_sem.available() >= m_bound)
      detail::throw_logic_error("corio::bounded_semaphore::release: more releases than acquires");
    m_sem.release();
  }
  /// Free permits now.
  [[nodiscard]] std::size_t available() const noexcept { return m_sem.available(); }
  /// Tasks waiting now.
  [[nodiscard]] std::size_t waiters() const noexcept { return m_sem.waiters(); }
  /// The permits it started with, which it never exceeds.
  [[nodiscard]] std::size_t bound() const noexcept { return m_bound; }

 private:
  semaphore m_sem;
  std::size_t m_bound;
};

inline semaphore_guard& semaphore_guard::operator=(semaphore_guard&& o) noexcept {
  if (this != &o) {
    release();
    m_sem = std::exchange(o.m_sem, nullptr);
  }
  return *this;
}
inline semaphore_guard::~semaphore_guard() {
  release();
}
inline void semaphore_guard::release() noexcept {
  if (semaphore* s = std::exchange(m_sem, nullptr)) s->release();
}

}  // namespace corio
