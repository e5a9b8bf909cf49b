// spinning_mutex: a mutex that spins briefly before it blocks.
#pragma once

#include <atomic>
#include <cstdint>

#include "corio/detail/cpu_relax.hpp"

namespace corio::detail {

/// A mutex for critical sections of a few dozen instructions shared by
/// loops on different cores (a channel, a loop's queue of balanced
/// spawns): a contended lock() watches the word for a short while before
/// the thread sleeps on a futex, so two loops hand the lock back and forth
/// in user space instead of paying a futex wait and wake-up each time. The
/// uncontended lock and unlock are one inlined locked instruction each
/// (std::mutex's are calls into libpthread), and the whole mutex is one
/// word, so it shares its cache line with what it guards. Lockable, so
/// std::unique_lock and std::condition_variable_any take it.
class spinning_mutex {
 public:
  spinning_mutex() = default;
  spinning_mutex(const spinning_mutex&) = delete;
  spinning_mutex& operator=(const spinning_mutex&) = delete;

  void lock() noexcept {
    if (try_lock()) return;
    // Watch with loads, not locked writes, so that the holder keeps the
    // line until it unlocks.
    for (int i = 0; i < 128; ++i) {
      cpu_relax();
      if (m_state.load(std::memory_order_relaxed) == k_unlocked && try_lock()) return;
    }
    lock_contended();
  }
  bool try_lock() noexcept {
    std::uint32_t expected = k_unlocked;
    return m_state.compare_exchange_strong(expected, k_locked, std::memory_order_acquire,
                                           std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (m_state.exchange(k_unlocked, std::memory_order_release) == k_sleepers) wake_one();
  }
  /// True while the lock is held and a thread may sleep on it (a snapshot,
  /// for tests and diagnostics).
  [[nodiscard]] bool has_sleepers() const noexcept {
    return m_state.load(std::memory_order_relaxed) == k_sleepers;
  }

 private:
  static constexpr std::uint32_t k_unlocked = 0;
  static constexpr std::uint32_t k_locked = 1;
  static constexpr std::uint32_t k_sleepers = 2;  // locked, and a thread may sleep on it

  // Marks the word as having sleepers and sleeps until it is unlocked
  // (src/sync/detail/spinning_mutex.cpp).
  void lock_contended() noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> m_state{k_unlocked};
};

}  // namespace corio::detail
