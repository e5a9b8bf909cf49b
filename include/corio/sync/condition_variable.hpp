// condition_variable: wait for a notification while releasing a mutex.
#pragma once

#include <exception>

#include "corio/sync/detail/list_waiter.hpp"
#include "corio/sync/mutex.hpp"
#include "corio/task/cancel.hpp"

namespace corio {

/// asyncio.Condition over a `corio::mutex`: `co_await cv.wait(m)` releases
/// `m`, waits for a notification and takes `m` again before it returns
/// (also when it throws).
///
/// \note Notifications wake waiters in FIFO order.
///
/// Cancellation: a cancelled waiter is unlinked at once; one that was
/// notified and cancelled before it resumed passes the notification to the
/// next waiter. The mutex is re-acquired in both cases.
class condition_variable {
  struct wait_waiter : detail::list_waiter {
    condition_variable* m_cv;
    explicit wait_waiter(condition_variable* cv) noexcept : m_cv(cv) {}
    static constexpr bool await_ready() noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return park_in(m_cv->m_waiters, h, "condition_variable");
    }
    void on_pass() noexcept { m_cv->notify_one(); }
    void await_resume() { finish(); }
  };

 public:
  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  /// Releases `m` (which the caller holds), waits for a notification,
  /// re-acquires `m`.
  task<> wait(mutex& m) {
    m.unlock();
    std::exception_ptr error;
    try {
      co_await wait_waiter(this);
    } catch (...) {
      error = std::current_exception();
    }
    co_await shield(m.lock());
    if (error) std::rethrow_exception(error);
  }

  /// Waits until `pred()` is true; `m` is held when `pred` runs and on return.
  template <class Pred>
  task<> wait(mutex& m, Pred pred) {
    while (!pred())
      co_await wait(m);
  }

  /// Wakes the oldest waiter, if any.
  void notify_one() noexcept {
    if (wait_waiter* w = m_waiters.pop_front()) w->wake();
  }
  /// Wakes every waiter.
  void notify_all() noexcept {
    while (wait_waiter* w = m_waiters.pop_front())
      w->wake();
  }
  /// The number of tasks waiting now (not yet notified).
  [[nodiscard]] std::size_t waiters() const noexcept { return m_waiters.size(); }

 private:
  detail::intrusive_list<wait_waiter> m_waiters;
};

}  // namespace corio
