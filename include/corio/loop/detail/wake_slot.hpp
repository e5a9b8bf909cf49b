// wake_slot: one task waits until a condition that another part of the
// program signals holds (a stream's consumer for its next item, a reader
// paused until its consumer catches up).
#pragma once

#include <coroutine>
#include <utility>

#include "corio/loop/detail/loop_core.hpp"

namespace corio::detail {

/// A slot for at most one waiting task of the loop. `co_await
/// slot.wait(ready, what)` suspends unless `ready()` holds already;
/// `notify()` wakes the waiter, which then looks at its condition again.
/// Cancellation empties the slot.
///
/// \code
///   while (queue.empty()) co_await arrival.wait([&] { return !queue.empty(); }, "item");
///   // elsewhere: queue.push_back(x); arrival.notify();
/// \endcode
class wake_slot {
 public:
  template <class Ready>
  class awaiter final : public waiter {
   public:
    awaiter(wake_slot& slot, Ready ready, const char* label) noexcept
        : m_slot(&slot), m_ready(std::move(ready)), m_label(label) {}
    [[nodiscard]] bool await_ready() { return m_ready(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (!park(*this, h, m_label)) return false;
      m_slot->m_waiting = this;
      return true;
    }
    void on_abort() noexcept { m_slot->m_waiting = nullptr; }
    void await_resume() { finish(); }

   private:
    wake_slot* m_slot;
    Ready m_ready;
    const char* m_label;
  };

  /// Waits until `ready()` (tested now, then after each notify()).
  template <class Ready>
  [[nodiscard]] awaiter<Ready> wait(Ready ready, const char* label) noexcept {
    return {*this, std::move(ready), label};
  }

  /// Wakes the waiting task, if any.
  void notify() noexcept {
    if (waiter* w = std::exchange(m_waiting, nullptr)) w->wake();
  }

 private:
  waiter* m_waiting = nullptr;
};

}  // namespace corio::detail
