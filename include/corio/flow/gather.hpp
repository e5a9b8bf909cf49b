// gather, gather_settled: run tasks concurrently, results in input order.
#pragma once

#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "corio/flow/detail/child_scope.hpp"
#include "corio/task/outcome.hpp"

namespace corio {

namespace detail {

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gather_value_t<T> take_value(join_handle<T>& h) {
  if constexpr (std::is_void_v<T>) {
    h.result();
    return {};
  } else {
    return h.result();
  }
}

}  // namespace detail

/// Runs the tasks concurrently and returns their results in input order.
/// The first failure cancels the others, waits for them and is rethrown.
/// Cancelling the caller cancels every task (and waits for them).
///
/// \code
///   std::vector<corio::task<int>> jobs = ...;
///   std::vector<int> results = co_await corio::gather(std::move(jobs));
/// \endcode
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> gather(
    std::vector<task<T>> tasks) {
  detail::child_scope scope(true);
  std::vector<join_handle<T>> handles = scope.spawn_all(tasks);
  co_await detail::join_or_rethrow(scope);
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> out;
    out.reserve(handles.size());
    for (auto& h : handles)
      out.push_back(h.result());
    co_return out;
  }
}

/// Variadic gather: a tuple of the results (std::monostate for task<void>).
template <class... Ts>
task<std::tuple<detail::gather_value_t<Ts>...>> gather(task<Ts>... tasks) {
  detail::child_scope scope(true);
  // A braced list is evaluated left to right: the tasks start in argument
  // order (make_tuple's arguments would be evaluated in any order).
  std::tuple<join_handle<Ts>...> handles{scope.spawn(std::move(tasks))...};
  co_await detail::join_or_rethrow(scope);
  co_return std::apply([](auto&... h) { return std::make_tuple(detail::take_value(h)...); },
                       handles);
}

/// Runs the tasks concurrently and returns every outcome, in input order;
/// one failure does not cancel the others. Cancelling the caller cancels
/// every task (and waits for them); the outcomes are then lost, so a task
/// that failed otherwise than by the cancellation is reported (through
/// loop_options::report) as a task error nobody retrieved.
template <class T>
task<std::vector<outcome<T>>> gather_settled(std::vector<task<T>> tasks) {
  // Not collecting: each failure is taken below as its outcome, or, when
  // the caller's cancellation means nobody takes it, left to the loop's
  // "nobody retrieved" report when the handles go.
  detail::child_scope scope(false, false);
  std::vector<join_handle<T>> handles = scope.spawn_all(tasks);
  co_await scope.join();
  std::vector<outcome<T>> out;
  out.reserve(handles.size());
  for (auto& h : handles) {
    try {
      if constexpr (std::is_void_v<T>) {
        h.result();
        out.push_back(outcome<T>::from_value());
      } else {
        out.push_back(outcome<T>::from_value(h.result()));
      }
    } catch (...) {
      out.push_back(outcome<T>::from_error(std::current_exception()));
    }
  }
  co_return out;
}

}  // namespace corio
