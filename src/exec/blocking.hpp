// run_blocking: a blocking call (getaddrinfo, a file operation on epoll)
// on a small pool of threads, awaited from a task without blocking the
// loop. Private to the library until the executors layer makes the pools
// public; the pool here is the "separate pool for blocking calls".
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "corio/detail/task_base.hpp"
#include "corio/event_loop.hpp"

namespace corio::detail {

/// One call to run on the blocking pool, and the way back to its loop.
struct blocking_job : posted_node {
  blocking_job* m_queue_next = nullptr;
  void (*m_work)(blocking_job&) noexcept = nullptr;  // on a pool thread
  event_loop* m_loop = nullptr;
};

/// Queues `job`; a pool thread runs m_work, then posts the job back to
/// m_loop (whose m_run the caller set). Threads start on demand, up to a
/// fixed maximum, and live until the process exits.
void submit_blocking(blocking_job& job);

/// The awaitable: runs `fn()` on the pool and resumes the task on its loop
/// with the value or the exception. Cancellation waits for the call to
/// return (a blocking call cannot be interrupted), then throws
/// cancelled_error; the result is dropped.
template <class F>
struct blocking_call : waiter, blocking_job {
  using result_type = decltype(std::declval<F&>()());
  F m_fn;
  std::optional<result_type> m_value;
  std::exception_ptr m_error;

  explicit blocking_call(F fn) : m_fn(std::move(fn)) {}
  blocking_call(const blocking_call&) = delete;
  blocking_call& operator=(const blocking_call&) = delete;

  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    if (!begin(h)) return false;
    m_defer_abort = true;  // the pool thread still writes into this frame
    m_loop = &current_loop();
    m_work = [](blocking_job& j) noexcept {
      auto& self = static_cast<blocking_call&>(j);
      try {
        self.m_value.emplace(self.m_fn());
      } catch (...) {
        self.m_error = std::current_exception();
      }
    };
    m_run = [](posted_node& n) noexcept {
      auto& self = static_cast<blocking_call&>(static_cast<blocking_job&>(n));
      self.m_loop->remove_external_work();
      if (self.m_state == waiter::state::aborted) {
        self.m_loop->schedule(*self.m_task);  // finish() throws cancelled_error
      } else {
        self.wake();
      }
    };
    m_loop->add_external_work();
    submit_blocking(*this);
    return true;
  }
  result_type await_resume() {
    if (m_state != waiter::state::idle) finish();
    if (m_error) std::rethrow_exception(m_error);
    return std::move(*m_value);
  }
};

template <class F>
blocking_call<F> run_blocking(F fn) {
  return blocking_call<F>(std::move(fn));
}

}  // namespace corio::detail
