// event: a flag that tasks can wait for.
#pragma once

#include "corio/sync/detail/list_waiter.hpp"

namespace corio {

/// asyncio.Event: `set()` wakes every waiter and lets later `wait()`s pass
/// until `clear()`.
///
/// Cancellation: a cancelled waiter is unlinked at once; the event stays
/// set for the others.
class event {
  struct wait_waiter : detail::list_waiter {
    event* m_event;
    explicit wait_waiter(event* e) noexcept : m_event(e) {}
    [[nodiscard]] bool await_ready() const noexcept { return m_event->m_set; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return park_in(m_event->m_waiters, h, "event");
    }
    void await_resume() { finish(); }
  };

 public:
  event() noexcept = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// Waits until the event is set (at once if it is).
  [[nodiscard]] wait_waiter wait() noexcept { return wait_waiter(this); }
  /// Sets the event and wakes all waiters.
  void set() noexcept {
    m_set = true;
    while (wait_waiter* w = m_waiters.pop_front())
      w->wake();
  }
  /// Resets the flag: later wait()s wait again for the next set().
  void clear() noexcept { m_set = false; }
  /// True between set() and clear().
  [[nodiscard]] bool is_set() const noexcept { return m_set; }

 private:
  bool m_set = false;
  detail::intrusive_list<wait_waiter> m_waiters;
};

}  // namespace corio
