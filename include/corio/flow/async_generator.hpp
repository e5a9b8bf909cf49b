// async_generator<T>: a stream whose body can both co_yield and co_await.
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/detail/awaitable_traits.hpp"
#include "corio/task/task.hpp"

namespace corio {

template <class T>
class async_generator;

namespace detail {

template <class T, class F>
class for_each_awaiter;

/// A failure a generator yields in place of an item (see yield_value). It
/// points at the error rather than holding it: GCC 12 destroys some
/// temporaries of a co_yield twice when the generator is destroyed while
/// suspended there, and a second release of an exception_ptr frees the
/// exception under its other owners (valgrind saw it in as_completed).
struct yielded_error {
  const std::exception_ptr* m_error;
};

// Generator frames do not take part in await chains (a chain ends at the
// task that consumes the stream): recording them would cost the stream's
// hot path two stores and a test per item.
template <class T>
class generator_promise : public frame_allocated {
 public:
  using value_ptr = std::add_pointer_t<std::remove_reference_t<T>>;
  /// How a consumer receives the yielded object: moved from, or, for a
  /// generator of references, the referenced object itself.
  using item_ref =
      std::conditional_t<std::is_lvalue_reference_v<T>, T, std::remove_reference_t<T>&&>;

  async_generator<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }

  // Where a co_yield goes next: the consumer's handle, or none when a
  // for_each body took the item and the body goes on without suspending.
  struct to_consumer {
    std::coroutine_handle<> m_consumer;
    [[nodiscard]] bool await_ready() const noexcept { return !m_consumer; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
      return m_consumer;
    }
    static constexpr void await_resume() noexcept {}
  };
  to_consumer final_suspend() noexcept {
    m_value = nullptr;
    m_live = false;
    return {m_consumer ? m_consumer : m_sink->m_consumer};
  }

  /// `co_yield detail::yielded_error{e}` hands the consumer a failure in
  /// place of an item: `next()` rethrows it and the stream goes on at the
  /// next `next()` (as_completed); a for_each ends with it.
  to_consumer yield_value(yielded_error e) noexcept {
    m_value = nullptr;
    m_error = *e.m_error;
    return {m_consumer ? m_consumer : m_sink->m_consumer};
  }
  to_consumer yield_value(std::remove_reference_t<T>& v) noexcept { return hand_over(v); }
  to_consumer yield_value(std::remove_reference_t<T>&& v) noexcept { return hand_over(v); }
  void return_void() noexcept {}
  void unhandled_exception() noexcept { m_error = std::current_exception(); }

  /// A for_each consumer: takes each item as it is yielded, so the body
  /// runs on without suspending. Its function returns false to stop the
  /// stream: the body then suspends at that co_yield and the consumer
  /// resumes.
  struct sink {
    bool (*m_take)(sink&, value_ptr) noexcept;
    std::coroutine_handle<> m_consumer;
  };

  // Pull mode (next()): m_consumer is the awaiting task. Push mode
  // (for_each): m_consumer is null and m_sink takes the items.
  std::coroutine_handle<> m_consumer;
  sink* m_sink = nullptr;
  value_ptr m_value = nullptr;
  std::exception_ptr m_error;
  // The body has not finished: set by get_return_object, cleared by
  // final_suspend. False in a promise that belongs to no coroutine, so
  // s_empty below needs no initialiser of its own and reads as finished
  // even before static initialisation reaches it.
  bool m_live = false;
  // An empty generator (default-constructed or moved from) points here, so
  // next() tests one flag and no handle: 3 instructions fewer per item on
  // the stream workload (callgrind). Never written after initialisation.
  static generator_promise s_empty;

 private:
  to_consumer hand_over(std::remove_reference_t<T>& v) noexcept {
    m_value = std::addressof(v);
    if (m_consumer) return {m_consumer};
    if (m_sink->m_take(*m_sink, m_value)) return {nullptr};
    return {m_sink->m_consumer};
  }
};

template <class T>
inline generator_promise<T> generator_promise<T>::s_empty;

}  // namespace detail

/// An asynchronous stream: the body `co_yield`s items and may `co_await`
/// anything between them. The producer runs only when the consumer asks for
/// the next item, inside the consumer's task, so a stream of any length
/// takes constant memory and needs no queue or extra task.
///
/// Read it with `corio::for_each` (below; the fastest: each item goes
/// straight into the loop body) or item by item with `next()`. Errors
/// thrown by the body come out of either. Destroying the generator
/// destroys a suspended body (its RAII cleanup runs); cancelling the
/// consumer's task cancels whatever the body awaits. So does a deadline
/// around one `next()` (`corio::timeout(d, g.next())`): unless the body
/// catches the cancelled_error, it ends there and the stream is finished,
/// as an asyncio async generator ends when its `__anext__` is cancelled.
/// To wait for items with a deadline and keep the stream, let a task
/// drain the generator into a `queue` and time the queue's `pop()`.
///
/// \code
///   corio::async_generator<int> numbers(int n) {
///     for (int i = 0; i < n; ++i) co_yield i;
///   }
///   ...
///   co_await corio::for_each(numbers(10), [&](int v) { sum += v; });
///   auto g = numbers(10);
///   while (auto v = co_await g.next()) sum += *v;
/// \endcode
template <class T>
class [[nodiscard]] async_generator {
 public:
  /// The coroutine promise type, required by the C++ coroutine machinery; not for direct use.
  using promise_type = detail::generator_promise<T>;
  /// The item type `next()` gives (in a `std::optional`): `T` without reference or cv.
  using value_type = std::remove_cvref_t<T>;
  /// The coroutine handle type of the body; an implementation detail.
  using handle_type = std::coroutine_handle<promise_type>;

  /// An empty generator: `done()` is true and `next()` gives std::nullopt.
  async_generator() noexcept = default;
  /// Adopts the coroutine `h`; called by the promise, not by user code.
  explicit async_generator(handle_type h) noexcept : m_p(&h.promise()) {}
  /// Takes over `o`'s body; `o` becomes empty.
  async_generator(async_generator&& o) noexcept
      : m_p(std::exchange(o.m_p, &promise_type::s_empty)) {}
  /// Destroys the body this generator holds (if any) and takes over `o`'s.
  async_generator& operator=(async_generator&& o) noexcept {
    if (this != &o) {
      destroy();
      m_p = std::exchange(o.m_p, &promise_type::s_empty);
    }
    return *this;
  }
  async_generator(const async_generator&) = delete;
  async_generator& operator=(const async_generator&) = delete;
  ~async_generator() { destroy(); }

  /// Runs the body to its next `co_yield` and gives the item, or
  /// std::nullopt when the body has finished. Rethrows the body's error.
  auto next() noexcept { return next_awaiter{*m_p}; }

  /// True once the body has finished.
  [[nodiscard]] bool done() const noexcept { return !m_p->m_live; }

 private:
  template <class, class>
  friend class detail::for_each_awaiter;

  struct next_awaiter {
    promise_type& m_p;
    [[nodiscard]] bool await_ready() const noexcept { return !m_p.m_live; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
      m_p.m_consumer = consumer;
      return handle_type::from_promise(m_p);
    }
    // m_value is set by every co_yield and cleared by final_suspend, so a
    // non-null value is the common case and needs no other check.
    std::optional<value_type> await_resume() {
      if (m_p.m_value != nullptr) [[likely]]
        return std::optional<value_type>(
            static_cast<typename promise_type::item_ref>(*m_p.m_value));
      if (m_p.m_error) std::rethrow_exception(std::exchange(m_p.m_error, nullptr));
      return std::nullopt;
    }
  };

  void destroy() noexcept {
    if (m_p != &promise_type::s_empty) handle_type::from_promise(*m_p).destroy();
  }

  promise_type* m_p = &promise_type::s_empty;
};

template <class T>
async_generator<T> detail::generator_promise<T>::get_return_object() noexcept {
  m_live = true;
  return async_generator<T>(std::coroutine_handle<generator_promise>::from_promise(*this));
}

namespace detail {

/// A for_each body that the generator can call from its co_yield: it
/// returns void or bool (false: stop).
template <class F, class Item>
concept is_plain_body = std::is_invocable_v<F&, Item> &&
    (std::is_void_v<std::invoke_result_t<F&, Item>> ||
     std::is_same_v<std::invoke_result_t<F&, Item>, bool>);

/// Runs a generator in push mode: each co_yield calls the body's function
/// directly, so neither side suspends between items.
template <class T, class F>
class for_each_awaiter {
  using generator = async_generator<T>;
  using promise_type = typename generator::promise_type;
  using item_ref = typename promise_type::item_ref;

  struct state : promise_type::sink {
    F m_fn;
    std::exception_ptr m_error;
  };

  // The function's exception must not surface inside the generator's body,
  // where the body's own try blocks would catch it: it is kept here, the
  // stream stops, and await_resume rethrows it in the consumer.
  static bool take(typename promise_type::sink& s, typename promise_type::value_ptr v) noexcept {
    auto& self = static_cast<state&>(s);
    try {
      if constexpr (std::is_same_v<std::invoke_result_t<F&, item_ref>, bool>) {
        return self.m_fn(static_cast<item_ref>(*v));
      } else {
        self.m_fn(static_cast<item_ref>(*v));
        return true;
      }
    } catch (...) {
      self.m_error = std::current_exception();
      return false;
    }
  }

 public:
  for_each_awaiter(generator g, F fn)
      : m_state{{&take, {}}, std::move(fn), {}}, m_gen(std::move(g)) {}

  [[nodiscard]] bool await_ready() const noexcept { return !m_gen.m_p->m_live; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
    promise_type& p = *m_gen.m_p;
    m_state.m_consumer = consumer;
    p.m_consumer = nullptr;
    p.m_sink = &m_state;
    return generator::handle_type::from_promise(p);
  }
  void await_resume() {
    promise_type& p = *m_gen.m_p;
    std::exception_ptr error = std::exchange(m_state.m_error, nullptr);
    if (p.m_error) error = std::exchange(p.m_error, nullptr);  // never the shared empty promise's
    if (p.m_live) m_gen = generator{};  // stopped early: the producer's cleanup runs now
    if (error) std::rethrow_exception(std::move(error));
  }

 private:
  // In this order so that the producer's frame, which may use what the
  // function owns, is destroyed first.
  state m_state;
  generator m_gen;
};

}  // namespace detail

/// The async-for of corio: a task that runs `fn` on every item of `g`, in
/// order, and completes when the stream ends. `fn` receives each item as
/// `next()` would give it: moved from the generator (take it by value,
/// `&&` or `const&`), or for a generator of references, the object itself.
/// Errors from the stream or from `fn` come out of the `co_await`; a `fn`
/// that returns `bool` stops the stream by returning false, which destroys
/// the generator as a `break` out of a `next()` loop would.
///
/// When `fn` returns void or bool, the generator hands each item straight
/// to `fn` as it yields, so neither side suspends between items: the
/// fastest way to consume a stream. When `fn` returns an awaitable (a
/// task), each item waits for it before the next is made.
///
/// \code
///   std::uint64_t sum = 0;
///   co_await corio::for_each(numbers(10), [&](int v) { sum += v; });
///   co_await corio::for_each(urls(), [&](std::string u) { return fetch(u); });
/// \endcode
template <class T, class F>
task<> for_each(async_generator<T> g, F fn) {
  using item_ref = typename async_generator<T>::promise_type::item_ref;
  using value_type = typename async_generator<T>::value_type;
  if constexpr (detail::is_plain_body<F, item_ref>) {
    detail::for_each_awaiter<T, F> pushed(std::move(g), std::move(fn));
    co_await pushed;
  } else {
    static_assert(
        requires(F & f, value_type && v) { detail::get_awaiter(f(std::move(v))); },
        "corio::for_each: fn must take the stream's item and return void, bool or "
        "an awaitable");
    while (auto v = co_await g.next())
      co_await fn(std::move(*v));
  }
}

}  // namespace corio
