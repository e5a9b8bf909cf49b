// spawn(): run a task concurrently; join_handle<T>: await or cancel it.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "corio/detail/throw.hpp"
#include "corio/task/task.hpp"

namespace corio {

template <class T = void>
class join_handle;

namespace detail {

template <class T>
join_handle<T> spawn_into(task_owner& owner, loop_core& loop, task<T> t, const char* name);

}  // namespace detail

/// A reference to a spawned task: await it for the result, or cancel it.
///
/// The loop owns the task; dropping the handle never kills it (as asyncio
/// and Tokio do). Awaiting the handle of a task that was cancelled throws
/// `cancelled_error`; awaiting one that failed rethrows its exception.
/// Cancelling the task that awaits a handle cancels the awaited task too.
///
/// \code
///   auto h = corio::spawn(fetch(url), "fetch");
///   ...
///   std::string body = co_await h;
/// \endcode
template <class T>
class join_handle {
  using promise = detail::task_promise<T>;

 public:
  /// An empty handle (`valid()` is false) that refers to no task.
  join_handle() noexcept = default;
  /// Adopts the spawned task `p`; called by `spawn()`, not by user code.
  explicit join_handle(promise* p) noexcept : m_promise(p) {}
  /// Takes over `o`'s task; `o` becomes empty.
  join_handle(join_handle&& o) noexcept : m_promise(std::exchange(o.m_promise, nullptr)) {}
  /// Drops the task this handle referred to (which keeps running) and takes
  /// over `o`'s.
  join_handle& operator=(join_handle&& o) noexcept {
    if (this != &o) {
      reset();
      m_promise = std::exchange(o.m_promise, nullptr);
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  /// True when the handle refers to a task (not default-constructed or moved
  /// from). Awaiting an invalid handle is a bug; the other queries return false.
  [[nodiscard]] bool valid() const noexcept { return m_promise != nullptr; }
  /// True once the task has finished (value, error or cancelled).
  [[nodiscard]] bool done() const noexcept { return m_promise != nullptr && m_promise->done(); }
  /// True when the task was asked to cancel.
  [[nodiscard]] bool cancel_requested() const noexcept {
    return m_promise != nullptr && (m_promise->m_flags & detail::tf_cancel_requested) != 0;
  }
  /// True when the task finished by a cancellation.
  [[nodiscard]] bool cancelled() const noexcept {
    return done() && (m_promise->m_flags & detail::tf_error_is_cancel) != 0;
  }

  /// Requests cancellation: the task's current (or next) suspension throws
  /// `cancelled_error`. Returns false when the task has already finished.
  bool cancel() noexcept { return m_promise != nullptr && m_promise->request_cancel(); }

  /// The result of a finished task (moves it out); rethrows its error. A
  /// value can be taken once: a second `result()` or `co_await` of a task
  /// that produced a value throws `std::logic_error` (an error is rethrown
  /// every time, and a `void` or reference result can be taken again).
  T result() {
    if (!done()) detail::throw_logic_error("corio::join_handle::result: task not finished");
    return take(m_promise);
  }

  /// Waits for the task and gives its result (see result()). Cancellation:
  /// the waiting task is unlinked at once and the awaited task is
  /// cancelled as well.
  auto operator co_await() noexcept { return awaiter<true>{m_promise}; }

  /// Waits for the task to finish without taking its result, and without
  /// cancelling it when the waiter is cancelled: a deadline on the wait
  /// leaves the task running (asyncio's `wait_for(shield(t))`).
  ///
  /// \code
  ///   if (co_await corio::move_on_after(1s, h.wait())) use(h.result());
  ///   else log("still running");
  /// \endcode
  [[nodiscard]] auto wait() noexcept { return awaiter<false>{m_promise}; }

  /// The promise behind the handle (for corio's combinators).
  [[nodiscard]] promise* get() const noexcept { return m_promise; }

 private:
  static T take(promise* p) {
    if constexpr (!std::is_void_v<T> && !std::is_reference_v<T>) {
      constexpr std::uint32_t taken_or_failed = detail::tf_value_taken | detail::tf_has_error;
      if ((p->m_flags & taken_or_failed) == detail::tf_value_taken) {
        detail::throw_logic_error(
            "corio::join_handle: the task's value was already taken by an earlier co_await or "
            "result(); take it once (or share it), or wait() without taking it");
      }
      p->m_flags |= detail::tf_value_taken;
    }
    return p->take();
  }

  // Takes the result and cancels the task when the waiter is cancelled
  // (co_await), or neither (wait()).
  template <bool Joining>
  struct awaiter : detail::waiter, detail::done_listener {
    promise* m_child;
    explicit awaiter(promise* c) noexcept : m_child(c) {}
    [[nodiscard]] bool await_ready() const noexcept { return m_child->done(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (!detail::park(*this, h, Joining ? "join_handle" : "join_handle wait")) return false;
      if constexpr (detail::observe_enabled) m_waiting = m_task;
      m_on_done = [](detail::done_listener& l) noexcept { static_cast<awaiter&>(l).wake(); };
      done_listener::m_next = m_child->m_listeners;
      m_child->m_listeners = this;
      return true;
    }
    void on_abort() noexcept {
      unlisten();
      if constexpr (Joining) m_child->request_cancel();
    }
    decltype(auto) await_resume() {
      finish();
      if constexpr (Joining) return take(m_child);
    }
    void unlisten() noexcept {
      for (detail::done_listener** p = &m_child->m_listeners; *p != nullptr; p = &(*p)->m_next) {
        if (*p == this) {
          *p = done_listener::m_next;
          return;
        }
      }
    }
  };

  void reset() noexcept {
    if (promise* p = std::exchange(m_promise, nullptr)) {
      p->m_flags &= ~detail::tf_handle;
      if (p->done()) {
        detail::before_destroy_root(*p);
        std::coroutine_handle<promise>::from_promise(*p).destroy();
      }
    }
  }

  promise* m_promise = nullptr;
};

namespace detail {

template <class T>
join_handle<T> spawn_into(task_owner& owner, loop_core& loop, task<T> t, const char* name) {
  auto h = t.release();
  if (!h) detail::throw_invalid_argument("corio::spawn: empty task");
  task_promise<T>& p = h.promise();
  p.m_flags |= tf_root | tf_handle;
  p.m_owner = &owner;
  owner.m_members.push_back(p);
  ++owner.m_count;
  loop.note_spawned();
  p.set_name(name);
  p.m_spawned_ticks = loop.ticks_since_start();
  loop.schedule(p);
  return join_handle<T>(&p);
}

[[noreturn]] void throw_no_loop(const char* what);

}  // namespace detail

/// Schedules `t` to run concurrently on the current loop and returns its
/// handle. `name` (a string that outlives the task, such as a literal) shows
/// in error reports.
///
/// \code
///   auto h = corio::spawn(worker(queue), "worker");
/// \endcode
template <class T>
join_handle<T> spawn(task<T> t, const char* name = nullptr) {
  detail::loop_core* loop = detail::loop_core::current();
  if (loop == nullptr) detail::throw_no_loop("corio::spawn");
  join_handle<T> h = detail::spawn_into(*loop->owner_for_spawn(), *loop, std::move(t), name);
  return h;
}

}  // namespace corio
