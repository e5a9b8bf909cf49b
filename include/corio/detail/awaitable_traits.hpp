// What `co_await x` produces, for the combinators that wrap any awaitable.
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

namespace corio::detail {

template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class A>
using await_result_t = decltype(get_awaiter(std::declval<A>()).await_resume());

/// The value type a combinator stores for an awaitable's result (void ->
/// std::monostate is left to the combinator).
template <class A>
using await_value_t = std::remove_cvref_t<await_result_t<A>>;

}  // namespace corio::detail
