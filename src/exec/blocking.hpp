// run_blocking: a blocking call of corio's own (getaddrinfo, a file
// operation on epoll) on blocking_pool(), awaited from a task without
// blocking the loop. Unlike offload(), a cancelled run_blocking waits for
// the call to return: these calls write into the caller's buffers.
#pragma once

#include <coroutine>
#include <utility>

#include "corio/exec/thread_pool.hpp"
#include "corio/loop/detail/task_base.hpp"
#include "corio/loop/event_loop.hpp"

namespace corio::detail {

/// The awaitable: runs `fn()` on the pool and resumes the task on its loop
/// with the value or the exception. Cancellation waits for the call to
/// return (a blocking call cannot be interrupted), then throws
/// cancelled_error; the result is dropped.
template <class F>
struct blocking_call : waiter, pool_job {
  using result_type = decltype(std::declval<F&>()());
  F m_fn;
  call_result<result_type> m_result;

  explicit blocking_call(F fn) : m_fn(std::move(fn)) {}
  blocking_call(const blocking_call&) = delete;
  blocking_call& operator=(const blocking_call&) = delete;

  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(*this, h, "blocking call")) return false;
    m_defer_abort = true;  // the pool thread still writes into this frame
    m_loop = &current_event_loop();
    m_work = [](pool_job& j) noexcept {
      auto& self = static_cast<blocking_call&>(j);
      self.m_result.capture(self.m_fn);
    };
    m_run = [](posted_node& n) noexcept {
      auto& self = static_cast<blocking_call&>(static_cast<pool_job&>(n));
      detail::external_work::remove(*self.m_loop);
      if (self.m_state == waiter::state::aborted) {
        core_of(*self.m_loop).schedule(*self.m_task);  // finish() throws cancelled_error
      } else {
        self.wake();
      }
    };
    if (!blocking_pool().submit(*this)) {
      end_without_suspending();
      throw pool_overloaded_error();
    }
    detail::external_work::add(*m_loop);
    return true;
  }
  result_type await_resume() {
    finish();
    return m_result.take();
  }
};

template <class F>
blocking_call<F> run_blocking(F fn) {
  return blocking_call<F>(std::move(fn));
}

}  // namespace corio::detail
