// map_bounded, batched, map_batched: bounded concurrency over a range.
#pragma once

#include <deque>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "corio/flow/detail/child_scope.hpp"

namespace corio {

namespace detail {

// What fn returns for one item (an awaitable), and what awaiting it gives.
template <class Range, class F>
using map_awaitable_t = std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>;
template <class Range, class F>
using map_call_t = await_result_t<map_awaitable_t<Range, F>>;

template <class Range, class F>
using map_bounded_result_t =
    std::conditional_t<std::is_void_v<map_call_t<Range, F>>, void,
                       std::vector<await_value_t<map_awaitable_t<Range, F>>>>;

// `Stored` is a reference for an lvalue range and a value for an rvalue
// one: the coroutine frame then owns a temporary range, which must outlive
// the call that made it (the task may be awaited much later).
template <class Stored, class F>
task<map_bounded_result_t<Stored, F>> map_bounded_impl(Stored range, F fn, std::size_t limit) {
  using R = map_call_t<Stored, F>;
  if (limit == 0) throw std::invalid_argument("corio::map_bounded: limit must be positive");
  auto it = std::ranges::begin(range);
  auto end = std::ranges::end(range);
  std::size_t next_index = 0;
  using slot_t = std::conditional_t<std::is_void_v<R>, char, std::optional<std::remove_cvref_t<R>>>;
  std::deque<slot_t> results;
  bool stop = false;

  auto worker = [&]() -> task<> {
    while (!stop && it != end) {
      const std::size_t i = next_index++;
      auto&& item = *it;
      ++it;
      if constexpr (std::is_void_v<R>) {
        co_await fn(item);
      } else {
        if (results.size() <= i) results.resize(i + 1);
        auto v = co_await fn(item);
        results[i].emplace(std::move(v));
      }
    }
  };

  detail::child_scope scope(true);
  scope.m_user = &stop;
  scope.m_on_child_done = [](detail::child_scope& s, detail::task_base&) noexcept {
    if (!s.errors().empty()) *static_cast<bool*>(s.m_user) = true;
  };
  for (std::size_t w = 0; w < limit && it != end; ++w)
    scope.spawn(worker());
  co_await detail::join_or_rethrow(scope, "a map_bounded");
  if constexpr (!std::is_void_v<R>) {
    std::vector<std::remove_cvref_t<R>> out;
    out.reserve(results.size());
    for (auto& r : results)
      out.push_back(std::move(*r));
    co_return out;
  }
}

}  // namespace detail

/// Calls `fn(item)` (which returns an awaitable) for each item of `range`,
/// with at most `limit` in flight, and returns the results in input order.
/// Each coroutine is created only when a slot is free, so a million items
/// never means a million frames (the guide's controlled_gather, done
/// right). The first failure cancels the calls in flight and is rethrown.
/// A range passed as an lvalue is read in place (it must outlive the
/// task); one passed as an rvalue (a temporary) is moved into the task.
///
/// \code
///   auto pages = co_await corio::map_bounded(urls, fetch, 50);
/// \endcode
template <std::ranges::input_range Range, class F>
auto map_bounded(Range&& range, F fn, std::size_t limit) {
  using stored =
      std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>>;
  return detail::map_bounded_impl<stored>(std::forward<Range>(range), std::move(fn), limit);
}

/// Cuts a contiguous range into spans of at most `n` items (the last may be
/// shorter): the guide's batching, for handing one task many small items.
template <std::ranges::contiguous_range Range>
auto batched(Range& range, std::size_t n)
    -> std::vector<std::span<std::remove_reference_t<std::ranges::range_reference_t<Range>>>> {
  if (n == 0) throw std::invalid_argument("corio::batched: batch size must be positive");
  using E = std::remove_reference_t<std::ranges::range_reference_t<Range>>;
  std::span<E> all(std::ranges::data(range), std::ranges::size(range));
  std::vector<std::span<E>> out;
  out.reserve((all.size() + n - 1) / n);
  for (std::size_t i = 0; i < all.size(); i += n)
    out.push_back(all.subspan(i, std::min(n, all.size() - i)));
  return out;
}

/// `map_bounded` over `batched(range, n)`: `fn(span)` handles one batch; at
/// most `limit` batches run at once (0: all at once). Results per batch.
template <std::ranges::contiguous_range Range, class F>
auto map_batched(Range& range, std::size_t n, F fn, std::size_t limit = 0) {
  auto batches = batched(range, n);
  const std::size_t bound = limit == 0 ? std::max<std::size_t>(batches.size(), 1) : limit;
  return [](auto batches, F fn, std::size_t bound) -> decltype(map_bounded(batches, fn, bound)) {
    co_return co_await map_bounded(batches, fn, bound);
  }(std::move(batches), std::move(fn), bound);
}

}  // namespace corio
