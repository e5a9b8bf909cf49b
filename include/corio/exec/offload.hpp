// offload: run a function on a thread pool and await its result.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "corio/detail/frame_pool.hpp"
#include "corio/exec/thread_pool.hpp"
#include "corio/loop/detail/task_base.hpp"
#include "corio/loop/event_loop.hpp"

namespace corio {
namespace detail {

/// The job of one offload. It lives apart from the awaiting frame (from the
/// loop thread's frame pool) because a cancelled task does not wait for
/// it: the worker may still be running `fn` when the frame is gone. Both
/// `m_awaiter` and the job's release are touched on the loop thread only
/// (the cancel, and the posted completion), so no atomics are needed.
template <class Fn, class... Args>
struct offload_job final : pool_job {
  using result_type = std::invoke_result_t<Fn&, Args&...>;

  Fn m_fn;
  std::tuple<Args...> m_args;
  call_result<result_type> m_result;
  waiter* m_awaiter = nullptr;  // null once the awaiting task gave up

  template <class F, class... A>
  explicit offload_job(F&& fn, A&&... args)
      : m_fn(std::forward<F>(fn)), m_args(std::forward<A>(args)...) {
    m_work = [](pool_job& j) noexcept {
      auto& self = static_cast<offload_job&>(j);
      self.m_result.capture([&self] { return std::apply(self.m_fn, self.m_args); });
    };
    m_run = [](posted_node& n) noexcept {
      auto& self = static_cast<offload_job&>(static_cast<pool_job&>(n));
      detail::external_work::remove(*self.m_loop);
      if (self.m_awaiter == nullptr) {
        destroy(&self);  // cancelled meanwhile: the result is dropped here
      } else {
        self.m_awaiter->wake();
      }
    };
  }

  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
  static void destroy(offload_job* j) noexcept { delete j; }
};

template <class Fn, class... Args>
class offload_awaitable : public waiter {
  using job_type = offload_job<Fn, Args...>;

 public:
  template <class F, class... A>
  offload_awaitable(thread_pool& pool, F&& fn, A&&... args)
      : m_pool(&pool), m_job(new job_type(std::forward<F>(fn), std::forward<A>(args)...)) {}
  offload_awaitable(offload_awaitable&& o) noexcept
      : waiter(), m_pool(o.m_pool), m_job(std::exchange(o.m_job, nullptr)) {}
  offload_awaitable(const offload_awaitable&) = delete;
  offload_awaitable& operator=(const offload_awaitable&) = delete;
  offload_awaitable& operator=(offload_awaitable&&) = delete;
  ~offload_awaitable() {
    // Not submitted (never awaited, or refused), or the job came back: ours
    // to free. A job still out after a cancel frees itself.
    if (m_job != nullptr && (!m_submitted || m_job->m_awaiter != nullptr)) job_type::destroy(m_job);
  }

  static constexpr bool await_ready() noexcept { return false; }

  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(*this, h, "offload")) return false;
    m_job->m_loop = &current_event_loop();
    m_job->m_awaiter = this;
    if (!m_pool->submit(*m_job)) {
      end_without_suspending();
      throw pool_overloaded_error();
    }
    m_submitted = true;
    detail::external_work::add(*m_job->m_loop);
    return true;
  }

  void on_abort() noexcept {
    m_job->m_awaiter = nullptr;  // the job frees itself when it is done
    m_job = nullptr;
  }

  typename job_type::result_type await_resume() {
    finish();  // cancelled_error; the job is freed as arranged
    return m_job->m_result.take();
  }

 private:
  thread_pool* m_pool;
  job_type* m_job;
  bool m_submitted = false;
};

}  // namespace detail

/// Runs `fn(args...)` on `pool` and resumes the awaiting task on its own
/// loop with the value, or rethrows the exception `fn` threw. `fn` and the
/// arguments are moved (or copied) into the job: pass pointers or
/// references (`std::ref`) only to data that outlives the call.
///
/// Cancellation is immediate: the awaiting task gets cancelled_error at
/// once, while the job runs to its end on the worker and its result is
/// dropped (a thread cannot be interrupted safely). `corio::run` waits for
/// such jobs before it returns. A full queue (thread_pool_options::
/// queue_limit) throws pool_overloaded_error and runs nothing.
///
/// \code
///   corio::thread_pool pool(2);
///   auto digest = co_await corio::offload(pool, sha256, std::move(bytes));
///   auto rows = co_await corio::offload(corio::blocking_pool(), legacy_query, sql);
/// \endcode
template <class F, class... Args>
[[nodiscard]] auto offload(thread_pool& pool, F&& fn, Args&&... args) {
  return detail::offload_awaitable<std::decay_t<F>, std::decay_t<Args>...>(
      pool, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// `offload(cpu_pool(), fn, args...)`: CPU work on the process's CPU pool.
template <class F, class... Args>
requires std::is_invocable_v < std::decay_t<F>
&, std::decay_t<Args>&... > [[nodiscard]] auto offload(F&& fn, Args&&... args) {
  return offload(cpu_pool(), std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace corio
