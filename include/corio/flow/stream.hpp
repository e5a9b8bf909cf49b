// Stream adapters on async_generator: map, filter, take, chunks,
// chunks_timeout, buffered, buffered_unordered, merge.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "corio/flow/async_generator.hpp"
#include "corio/sync/queue.hpp"
#include "corio/task/cancel.hpp"
#include "corio/task/spawn.hpp"
#include "corio/task/task.hpp"
#include "corio/time/sleep.hpp"

namespace corio {
namespace detail {

/// Marks the adapter objects that `stream | adapter` accepts.
struct stream_adapter {};

/// Cancels spawned helper tasks when the adapter's frame goes away (the
/// consumer finished early, failed or was cancelled): the producers they
/// run stop at their next suspension.
template <class T>
struct cancel_on_exit {
  std::deque<join_handle<T>>* handles;
  ~cancel_on_exit() {
    for (auto& h : *handles)
      h.cancel();
  }
};

/// What a pump task hands to its consumer: an item, the end of its source,
/// or the error its source threw.
template <class T>
using pumped = std::variant<T, std::monostate, std::exception_ptr>;

/// Runs `src` in its own task, pushing into `q` (bounded: the producer runs
/// at most the queue's capacity ahead). `q` is shared so that a pump that
/// outlives its consumer (cancelled, not yet resumed) never touches freed
/// memory.
template <class T>
task<> pump(async_generator<T> src, std::shared_ptr<queue<pumped<std::remove_cvref_t<T>>>> q) {
  using V = std::remove_cvref_t<T>;
  std::exception_ptr error;
  try {
    while (auto v = co_await src.next())
      co_await q->push(pumped<V>(std::in_place_index<0>, std::move(*v)));
  } catch (const cancelled_error&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    co_await q->push(pumped<V>(std::in_place_index<2>, error));
  } else {
    co_await q->push(pumped<V>(std::in_place_index<1>));
  }
}

template <class T, class F>
auto map_stream(async_generator<T> src, F f)
    -> async_generator<std::invoke_result_t<F&, std::remove_cvref_t<T>&&>> {
  while (auto v = co_await src.next()) {
    // Named, not a temporary inside co_yield: GCC 12 has destroyed class
    // temporaries of co_yield / co_await expressions twice.
    auto out = std::invoke(f, std::move(*v));
    co_yield std::move(out);
  }
}

template <class T, class P>
async_generator<T> filter_stream(async_generator<T> src, P pred) {
  while (auto v = co_await src.next())
    if (std::invoke(pred, std::as_const(*v))) co_yield std::move(*v);
}

template <class T>
async_generator<T> take_stream(async_generator<T> src, std::size_t n) {
  if (n == 0) co_return;
  while (auto v = co_await src.next()) {
    co_yield std::move(*v);
    if (--n == 0) co_return;
  }
}

template <class T>
async_generator<std::vector<std::remove_cvref_t<T>>> chunks_stream(async_generator<T> src,
                                                                   std::size_t n) {
  std::vector<std::remove_cvref_t<T>> batch;
  batch.reserve(n);
  while (auto v = co_await src.next()) {
    batch.push_back(std::move(*v));
    if (batch.size() == n) {
      co_yield std::move(batch);
      batch.clear();
      batch.reserve(n);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

/// The next thing a pump handed over: the item, or nullopt at the end;
/// rethrows the source's error.
template <class V>
std::optional<V> unpump(pumped<V>&& p) {
  if (p.index() == 2) std::rethrow_exception(std::get<2>(p));
  if (p.index() == 1) return std::nullopt;
  return std::optional<V>(std::move(std::get<0>(p)));
}

template <class T>
async_generator<std::vector<std::remove_cvref_t<T>>> chunks_timeout_stream(
    async_generator<T> src, std::size_t n, std::chrono::nanoseconds limit) {
  using V = std::remove_cvref_t<T>;
  auto q = std::make_shared<queue<pumped<V>>>(n);
  std::deque<join_handle<void>> pumps;
  const cancel_on_exit<void> guard{&pumps};
  pumps.push_back(spawn(pump(std::move(src), q)));
  std::vector<V> batch;
  batch.reserve(n);
  clock::time_point deadline{};
  for (;;) {
    // The first item of a batch is awaited without limit; the batch then
    // closes when full or when `limit` has passed since that first item.
    std::optional<pumped<V>> got;
    if (batch.empty()) {
      got.emplace(co_await q->pop());
    } else {
      try {
        got.emplace(co_await timeout_at(deadline, q->pop()));
      } catch (const timeout_error&) {  // NOLINT(bugprone-empty-catch): the batch is due
      }
    }
    if (!got) {
      co_yield std::move(batch);
      batch.clear();
      batch.reserve(n);
      continue;
    }
    std::optional<V> v = unpump(std::move(*got));
    if (!v) break;
    if (batch.empty()) deadline = now() + limit;
    batch.push_back(std::move(*v));
    if (batch.size() == n) {
      co_yield std::move(batch);
      batch.clear();
      batch.reserve(n);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

template <class U>
async_generator<U> buffered_stream(async_generator<task<U>> src, std::size_t n) {
  std::deque<join_handle<U>> in_flight;
  const cancel_on_exit<U> guard{&in_flight};
  bool more = true;
  for (;;) {
    while (more && in_flight.size() < n) {
      auto next = co_await src.next();
      if (!next) {
        more = false;
        break;
      }
      in_flight.push_back(spawn(std::move(*next)));
    }
    if (in_flight.empty()) co_return;
    join_handle<U> first = std::move(in_flight.front());
    in_flight.pop_front();
    std::optional<U> v;
    std::exception_ptr error;
    try {
      v.emplace(co_await first);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      for (auto& h : in_flight)  // the stream ends here: stop the rest now
        h.cancel();
      std::rethrow_exception(error);
    }
    co_yield std::move(*v);
  }
}

/// Awaits `t` and hands its outcome to the shared queue (as a pumped item:
/// the value or the error).
template <class U>
task<> settle_into(task<U> t, std::shared_ptr<queue<pumped<U>>> q) {
  std::exception_ptr error;
  std::optional<U> value;
  try {
    value.emplace(co_await std::move(t));
  } catch (const cancelled_error&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  // The queue holds as many items as tasks can be in flight: never waits.
  if (error) {
    q->try_push(pumped<U>(std::in_place_index<2>, error));
  } else {
    q->try_push(pumped<U>(std::in_place_index<0>, std::move(*value)));
  }
}

template <class U>
async_generator<U> buffered_unordered_stream(async_generator<task<U>> src, std::size_t n) {
  auto q = std::make_shared<queue<pumped<U>>>(n);
  std::deque<join_handle<void>> in_flight;
  const cancel_on_exit<void> guard{&in_flight};
  std::size_t running = 0;
  bool more = true;
  for (;;) {
    while (more && running < n) {
      auto next = co_await src.next();
      if (!next) {
        more = false;
        break;
      }
      in_flight.push_back(spawn(settle_into(std::move(*next), q)));
      ++running;
    }
    if (running == 0) co_return;
    // Forget the handles of finished helpers, so that memory stays at n
    // however long one slow task holds the front.
    std::erase_if(in_flight, [](const join_handle<void>& h) { return h.done(); });
    std::optional<U> v = unpump(co_await q->pop());
    --running;
    co_yield std::move(*v);
  }
}

template <class V>
async_generator<V> merge_stream(std::vector<async_generator<V>> sources) {
  auto q = std::make_shared<queue<pumped<V>>>(sources.size());
  std::deque<join_handle<void>> pumps;
  const cancel_on_exit<void> guard{&pumps};
  for (auto& s : sources)
    pumps.push_back(spawn(pump(std::move(s), q)));
  std::size_t live = pumps.size();
  while (live != 0) {
    std::optional<V> v = unpump(co_await q->pop());
    if (!v) {
      --live;
      continue;
    }
    co_yield std::move(*v);
  }
}

template <class F>
struct map_adapter : stream_adapter {
  F f;
  template <class T>
  auto operator()(async_generator<T> g) && {
    return map_stream(std::move(g), std::move(f));
  }
};
template <class P>
struct filter_adapter : stream_adapter {
  P pred;
  template <class T>
  auto operator()(async_generator<T> g) && {
    return filter_stream(std::move(g), std::move(pred));
  }
};
struct take_adapter : stream_adapter {
  std::size_t n;
  template <class T>
  auto operator()(async_generator<T> g) && {
    return take_stream(std::move(g), n);
  }
};
struct chunks_adapter : stream_adapter {
  std::size_t n;
  template <class T>
  auto operator()(async_generator<T> g) && {
    return chunks_stream(std::move(g), n);
  }
};
struct chunks_timeout_adapter : stream_adapter {
  std::size_t n;
  std::chrono::nanoseconds limit;
  template <class T>
  auto operator()(async_generator<T> g) && {
    return chunks_timeout_stream(std::move(g), n, limit);
  }
};
struct buffered_adapter : stream_adapter {
  std::size_t n;
  template <class U>
  auto operator()(async_generator<task<U>> g) && {
    return buffered_stream(std::move(g), n);
  }
};
struct buffered_unordered_adapter : stream_adapter {
  std::size_t n;
  template <class U>
  auto operator()(async_generator<task<U>> g) && {
    return buffered_unordered_stream(std::move(g), n);
  }
};

}  // namespace detail

/// Applies an adapter to a stream: `source | corio::map(f) | corio::take(10)`.
/// Adapters compose left to right, each owning the stream before it, and
/// run inside the consumer's task; the whole chain is one async_generator.
/// Dropping or cancelling the consumer destroys the chain, which stops the
/// producers (tasks an adapter spawned are cancelled). An exception in a
/// producer comes out of the consumer's `next()`.
///
/// \code
///   auto totals = orders(db)                                  // async_generator<order>
///               | corio::filter([](const order& o) { return o.paid; })
///               | corio::map([&](order o) { return enrich(o); })   // task<enriched>
///               | corio::buffered(8)                          // 8 enrich() calls at once, in
///               order | corio::chunks(100);                         // vectors of 100
///   while (auto batch = co_await totals.next()) co_await store(*batch);
/// \endcode
template <class T, class Adapter>
requires std::is_base_of_v<detail::stream_adapter, std::remove_cvref_t<Adapter>>
auto operator|(async_generator<T>&& g, Adapter&& a) {
  return std::remove_cvref_t<Adapter>(std::forward<Adapter>(a))(std::move(g));
}

/// Each item `x` becomes `f(x)`, as it is: a function returning a task gives
/// a stream of tasks, which `buffered` or `buffered_unordered` then run.
template <class F>
[[nodiscard]] detail::map_adapter<std::decay_t<F>> map(F&& f) {
  return {{}, std::forward<F>(f)};
}

/// Keeps the items for which `pred(item)` is true.
template <class P>
[[nodiscard]] detail::filter_adapter<std::decay_t<P>> filter(P&& pred) {
  return {{}, std::forward<P>(pred)};
}

/// The first `n` items; the source is not asked for more.
[[nodiscard]] inline detail::take_adapter take(std::size_t n) {
  return {{}, n};
}

/// Items in vectors of `n` (the last one may be shorter): the guide's
/// batching for streams, so that each batch costs one call downstream.
[[nodiscard]] inline detail::chunks_adapter chunks(std::size_t n) {
  return {{}, n == 0 ? 1 : n};
}

/// Vectors of up to `n` items, cut short when `limit` has passed since the
/// first item of the batch: a slow source still gets its items out on time.
/// The source runs in its own task, at most `n` items ahead.
template <class Rep, class Period>
[[nodiscard]] detail::chunks_timeout_adapter chunks_timeout(
    std::size_t n, std::chrono::duration<Rep, Period> limit) {
  return {{}, n == 0 ? 1 : n, std::chrono::duration_cast<std::chrono::nanoseconds>(limit)};
}

/// For a stream of tasks: runs up to `n` at once, each in its
/// own task, and yields their results in the stream's order. Memory stays at
/// `n` tasks however long the stream is. A failing task's exception comes out
/// in its place; the others still running are cancelled.
[[nodiscard]] inline detail::buffered_adapter buffered(std::size_t n) {
  return {{}, n == 0 ? 1 : n};
}

/// As `buffered`, but yields each result as soon as its task finishes.
[[nodiscard]] inline detail::buffered_unordered_adapter buffered_unordered(std::size_t n) {
  return {{}, n == 0 ? 1 : n};
}

/// Interleaves several streams of the same item type as their items come:
/// each source runs in its own task (one item ahead at most); the merged
/// stream ends when all have ended, or with the first source's error.
template <class V, class... More>
requires(std::is_same_v<async_generator<V>, More>&&...)
    [[nodiscard]] async_generator<V> merge(async_generator<V> first, More... more) {
  std::vector<async_generator<V>> all;
  all.reserve(1 + sizeof...(More));
  all.push_back(std::move(first));
  (all.push_back(std::move(more)), ...);
  return detail::merge_stream(std::move(all));
}

}  // namespace corio
