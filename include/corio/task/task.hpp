// task<T>: a lazy coroutine that produces a T.
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "corio/cancelled_error.hpp"
#include "corio/detail/frame_pool.hpp"
#include "corio/loop/detail/loop_core.hpp"

namespace corio {

template <class T = void>
class task;

namespace detail {

template <class T>
class task_promise;

// Frees frames through the per-thread frame pool.
struct frame_allocated {
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

struct initial_awaiter {
  task_base* m_promise;
  static constexpr bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { m_promise->set_resume_point(h); }
  // A root cancelled before its first step throws here, inside the body's
  // implicit try block, so it finishes as cancelled without running.
  void await_resume() const {
    if ((m_promise->m_flags & tf_root) != 0 && m_promise->cancel_effective()) {
      throw_cancelled(*m_promise);
    }
  }
};

template <class Promise>
struct final_awaiter {
  static constexpr bool await_ready() noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    Promise& p = h.promise();
    if ((p.m_flags & tf_root) == 0) {
      return p.m_link != nullptr ? p.continuation() : std::noop_coroutine();
    }
    if (complete_root(p)) {
      before_destroy_root(p);
      h.destroy();
    }
    return std::noop_coroutine();
  }
  static constexpr void await_resume() noexcept {}
};

template <class T>
class task_promise_storage : public task_base {
 public:
  task_promise_storage() noexcept {}  // NOLINT: the union member starts empty
  task_promise_storage(const task_promise_storage&) = delete;
  task_promise_storage& operator=(const task_promise_storage&) = delete;
  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(&m_value)) T(std::forward<U>(v));
    m_flags |= tf_has_value;
  }
  T take() {
    m_flags |= tf_retrieved;
    if ((m_flags & tf_has_error) != 0) std::rethrow_exception(m_error);
    return std::move(m_value);
  }
  ~task_promise_storage() {
    if ((m_flags & tf_has_value) != 0) m_value.~T();
  }

 private:
  union {
    T m_value;
  };
};

template <class T>
class task_promise_storage<T&> : public task_base {
 public:
  void return_value(T& v) noexcept {
    m_value = std::addressof(v);
    m_flags |= tf_has_value;
  }
  T& take() {
    m_flags |= tf_retrieved;
    if ((m_flags & tf_has_error) != 0) std::rethrow_exception(m_error);
    return *m_value;
  }

 private:
  T* m_value = nullptr;
};

template <>
class task_promise_storage<void> : public task_base {
 public:
  void return_void() noexcept { m_flags |= tf_has_value; }
  void take() {
    m_flags |= tf_retrieved;
    if ((m_flags & tf_has_error) != 0) std::rethrow_exception(m_error);
  }
};

/// Called when a root's body has finished: marks it done, unlinks it from its
/// owner, tells listeners. Returns true when nobody else refers to the frame
/// (the caller destroys it).
bool complete_root(task_base& t) noexcept;

/// Called just before a root's frame is destroyed: reports an error nobody
/// retrieved (with the task's name) and tells the loop.
void before_destroy_root(task_base& t) noexcept;

void store_error(task_base& t) noexcept;  // current exception -> t (classifies cancellation)

/// Debug mode: a task object destroyed its frame before the body finished
/// (never awaited, or destroyed while suspended). Reports it when the
/// current loop is in debug mode.
void on_task_dropped(task_base& t, bool started) noexcept;

/// Records, in the awaiting coroutine's frame_info (when it has one), which
/// frame it awaits now; the awaiter clears it again when it resumes.
template <class Promise>
frame_info* note_awaiting(std::coroutine_handle<Promise> parent, frame_info& child) noexcept {
  if constexpr (observe_enabled && std::is_base_of_v<frame_info, Promise>) {
    frame_info& p = parent.promise();
    p.set_awaiting(&child);
    return &p;
  } else {
    return nullptr;
  }
}

template <class T>
class task_promise final : public task_promise_storage<T>, public frame_allocated {
 public:
  // The default argument is evaluated where the compiler constructs the
  // promise: inside the coroutine, so it names the coroutine's function.
  explicit task_promise(detail::code_site where = detail::code_site::current()) noexcept {
    this->set_where(where);
  }
  task<T> get_return_object() noexcept;
  initial_awaiter initial_suspend() noexcept { return {this}; }
  final_awaiter<task_promise> final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { store_error(*this); }
};

}  // namespace detail

/// A lazy coroutine producing a `T` (or nothing, for `task<>`).
///
/// A task starts when it is awaited, and runs inside its awaiter's task (no
/// scheduling, symmetric transfer); exceptions propagate to the awaiter. To
/// run it concurrently, `spawn()` it. A task is move-only; destroying one
/// that never ran destroys its frame.
///
/// \code
///   corio::task<int> add(int a, int b) { co_return a + b; }
///   corio::task<> main_task() { int s = co_await add(1, 2); assert(s == 3); }
/// \endcode
#ifndef CORIO_DOXYGEN  // internal; Doxygen mistakes the friend below for a second task
namespace detail {
/// The code site of `t`'s coroutine (its function, file and line).
template <class T>
[[nodiscard]] const code_site& site_of(const task<T>& t) noexcept;
}  // namespace detail
#endif

template <class T>
class [[nodiscard]] task {
 public:
  /// The coroutine promise type, required by the C++ coroutine machinery; not for direct use.
  using promise_type = detail::task_promise<T>;
  /// The type the task produces (what `co_await` on it returns).
  using value_type = T;
  /// The coroutine handle type the task owns; an implementation detail.
  using handle_type = std::coroutine_handle<promise_type>;

  /// An empty task (`valid()` is false); awaiting it is a bug.
  task() noexcept = default;
  /// Adopts the coroutine `h`; called by the promise, not by user code.
  explicit task(handle_type h) noexcept : m_handle(h) {}
  /// Takes over `other`'s coroutine; `other` becomes empty.
  task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
  /// Destroys the coroutine this task holds (if any) and takes over `other`'s.
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      reset();
      m_handle = std::exchange(other.m_handle, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  /// True when the task holds a coroutine (not moved from, not spawned).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_handle); }

  /// Starts the task inside the awaiting coroutine and resumes it with the
  /// task's result; an exception the body threw (including `cancelled_error`)
  /// is rethrown at the `co_await`. Await a task once: awaiting an empty task
  /// is a bug (it asserts in debug builds), and so is awaiting it again.
  auto operator co_await() & noexcept { return awaiter{m_handle}; }
  /// As the lvalue overload, for a temporary such as `co_await f()`.
  auto operator co_await() && noexcept { return awaiter{m_handle}; }

  /// Gives up ownership of the coroutine (used by spawn()).
  handle_type release() noexcept { return std::exchange(m_handle, {}); }

 private:
#ifndef CORIO_DOXYGEN
  template <class U>
  friend const detail::code_site& detail::site_of(const task<U>& t) noexcept;
#endif

  struct awaiter {
    handle_type m_child;
    detail::frame_info* m_parent = nullptr;
    [[nodiscard]] bool await_ready() const noexcept { return !m_child; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
      m_child.promise().set_continuation(parent);
      m_parent = detail::note_awaiting(parent, m_child.promise());
      return m_child;
    }
    T await_resume() {
      assert(m_child && "awaited an empty task");
      if (m_parent != nullptr) m_parent->set_awaiting(nullptr);
      return m_child.promise().take();
    }
  };

  void reset() noexcept {
    if (m_handle) {
      handle_type h = std::exchange(m_handle, {});
      // A task that was never awaited still has its own frame as its link
      // (initial_suspend put it there); awaiting replaces it by the parent.
      if constexpr (detail::observe_enabled) {
        if (!h.done()) [[unlikely]]
          detail::on_task_dropped(h.promise(), h.promise().continuation() != h);
      }
      h.destroy();
    }
  }
  handle_type m_handle;
};

template <class T>
task<T> detail::task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}

#ifndef CORIO_DOXYGEN
template <class T>
const detail::code_site& detail::site_of(const task<T>& t) noexcept {
  return t.m_handle.promise().where();
}

namespace detail {

/// Called first by a root whose body only awaits `inner` (spawn_on's and
/// submit_to's wrappers): task dumps, reports and the dashboard then show
/// the root by `inner`'s function and leave the wrapper's frame out of its
/// await chain, so a task spawned on another loop reads like one spawned
/// here.
template <class T>
void forward_to(const task<T>& inner) noexcept {
  task_base& self = current_task();
  self.set_where(site_of(inner));
  self.m_flags |= tf_forwarding;
}
/// Any other awaitable has no frame to show: the wrapper stays as it is.
template <class Awaitable>
void forward_to(const Awaitable& /*inner*/) noexcept {}

}  // namespace detail
#endif  // CORIO_DOXYGEN

}  // namespace corio
