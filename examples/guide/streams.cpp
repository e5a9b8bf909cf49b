// The examples of docs/guide/streams.md: async generators, stream adapters,
// back-pressure with queue and channel. Each snippet checks what the guide
// says of it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;
using guide::check;

//! [generator]
corio::async_generator<int> countdown(int from) {
  for (int i = from; i > 0; --i) {
    co_await corio::sleep(1ms);  // a generator may await between items
    co_yield i;
  }
}

corio::task<> read_a_generator() {
  int sum = 0;
  co_await corio::for_each(countdown(3), [&sum](int v) { sum += v; });
  check(sum == 6, "for_each: the body runs on every item");

  auto g = countdown(3);
  std::vector<int> seen;
  while (auto v = co_await g.next())
    seen.push_back(*v);
  check(seen == std::vector<int>{3, 2, 1} && g.done(), "next(): item by item, then nullopt");
}
//! [generator]

//! [on_demand]
corio::async_generator<int> naturals(int& produced) {
  for (int i = 0;; ++i) {
    ++produced;
    co_yield i;
  }
}

corio::task<> producer_runs_on_demand() {
  int produced = 0;
  auto g = naturals(produced);
  check(produced == 0, "nothing runs before the first next()");
  const auto a = co_await g.next();
  const auto b = co_await g.next();
  check(a == 0 && b == 1 && produced == 2, "one item per next(), never ahead");

  int last = 0;
  co_await corio::for_each(naturals(produced), [&last](int v) {
    last = v;
    return v < 9;  // false stops the stream (and destroys the generator)
  });
  check(last == 9, "a bool body stops an endless stream");
}
//! [on_demand]

//! [generator_error]
corio::async_generator<int> flaky() {
  co_yield 1;
  throw std::runtime_error("source went away");
}

corio::task<> errors_reach_the_consumer() {
  std::vector<int> got;
  std::string error;
  try {
    co_await corio::for_each(flaky(), [&got](int v) { got.push_back(v); });
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  check(got == std::vector<int>{1} && error == "source went away",
        "the body's exception comes out of for_each (or next())");
}
//! [generator_error]

//! [adapters]
corio::async_generator<int> numbers(int n, int& produced) {
  for (int i = 0; i < n; ++i) {
    ++produced;
    co_yield i;
  }
}

corio::task<> adapter_chain() {
  int produced = 0;
  const auto even = [](int v) { return v % 2 == 0; };
  const auto square = [](int v) { return v * v; };
  auto batches = numbers(1000, produced) | corio::filter(even) | corio::map(square) |
                 corio::take(5) | corio::chunks(2);
  std::vector<std::vector<int>> got;
  co_await corio::for_each(std::move(batches),
                           [&got](std::vector<int> b) { got.push_back(std::move(b)); });
  const std::vector<std::vector<int>> expected{{0, 4}, {16, 36}, {64}};
  check(got == expected, "filter, map, take(5), chunks(2)");
  check(produced == 9, "take(5) asked the source for no more than it needed");
}
//! [adapters]

//! [buffered]
corio::task<int> enrich(int v, int& in_flight, int& peak) {
  peak = std::max(peak, ++in_flight);
  co_await corio::sleep(1ms * (3 - v % 3));  // later items may finish first
  --in_flight;
  co_return v * 10;
}

corio::task<> bounded_pipeline() {
  int produced = 0;
  int in_flight = 0;
  int peak = 0;
  // map() makes a stream of tasks; buffered(4) runs at most 4 of them, results in order
  const auto make_call = [&](int v) { return enrich(v, in_flight, peak); };
  auto enriched = numbers(12, produced) | corio::map(make_call) | corio::buffered(4);
  std::vector<int> got;
  co_await corio::for_each(std::move(enriched), [&got](int v) { got.push_back(v); });
  check(got.size() == 12 && std::is_sorted(got.begin(), got.end()), "the stream's order");
  check(peak == 4, "4 enrich() calls at once, never more");
}
//! [buffered]

//! [merge]
corio::async_generator<std::string> ticks(std::string name, std::chrono::milliseconds first,
                                          std::chrono::milliseconds every, int n) {
  co_await corio::sleep(first);
  for (int i = 0; i < n; ++i) {
    if (i > 0) co_await corio::sleep(every);
    co_yield name + std::to_string(i);
  }
}

corio::task<> merged_streams() {
  // a at 2, 4, 6 ms; b at 3, 5 ms
  auto both = corio::merge(ticks("a", 2ms, 2ms, 3), ticks("b", 3ms, 2ms, 2));
  std::vector<std::string> got;
  while (auto v = co_await both.next())
    got.push_back(std::move(*v));
  const std::vector<std::string> expected{"a0", "b0", "a1", "b1", "a2"};
  check(got == expected, "merge: items as they come, from every source");
}
//! [merge]

//! [chunks_timeout]
corio::async_generator<int> bursty() {
  for (int i = 0; i < 3; ++i)
    co_yield i;               // a burst of three
  co_await corio::sleep(1s);  // then a long pause
  co_yield 3;
}

corio::task<> batches_on_time() {
  auto batches = bursty() | corio::chunks_timeout(10, 5ms);
  std::vector<std::size_t> sizes;
  std::vector<corio::clock::duration> when;
  const auto start = corio::now();
  while (auto b = co_await batches.next()) {
    sizes.push_back(b->size());
    when.push_back(corio::now() - start);
  }
  check(sizes == std::vector<std::size_t>{3, 1}, "the burst goes out without its 10th item");
  check(when[0] >= 5ms && when[0] < 1s, "cut 5 ms after its first item, not after the pause");
}
//! [chunks_timeout]

//! [timed_next]
corio::async_generator<int> slow_source() {
  for (int i = 0; i < 3; ++i) {
    co_await corio::sleep(10ms);
    co_yield i;
  }
}

corio::task<> a_timed_out_next_ends_the_stream() {
  auto g = slow_source();
  const auto first = co_await corio::move_on_after(2ms, g.next());
  check(!first.has_value(), "no item within 2 ms");
  check(g.done(), "the cancelled next() ended the generator: its body saw the cancellation");
  const auto later = co_await g.next();
  check(!later.has_value(), "a later next() reads as the end of the stream");
}
//! [timed_next]

//! [timed_pop]
corio::task<> pump(corio::async_generator<int> g, corio::queue<int>& q) {
  while (auto v = co_await g.next())
    co_await q.push(*v);
  q.close();
}

corio::task<> time_limits_on_a_queue() {
  corio::queue<int> q(1);
  auto feeder = corio::spawn(pump(slow_source(), q));
  std::vector<int> got;
  int timeouts = 0;
  try {
    for (;;) {
      const std::optional<int> v = co_await corio::move_on_after(2ms, q.pop());
      if (v) {
        got.push_back(*v);
      } else {
        ++timeouts;  // nothing lost: the next pop takes the item when it comes
      }
    }
  } catch (const corio::queue_closed&) {
  }
  co_await feeder;
  check(got == std::vector<int>{0, 1, 2} && timeouts > 0, "every item, despite the timeouts");
}
//! [timed_pop]

//! [queue_backpressure]
corio::task<> produce(corio::queue<int>& q, int n, std::size_t& peak) {
  for (int i = 1; i <= n; ++i) {
    co_await q.push(i);  // waits while the queue is full: the producer slows down
    peak = std::max(peak, q.size());
  }
  q.close();  // the consumer takes what is left, then gets queue_closed
}

corio::task<> consume(corio::queue<int>& q, int& sum) {
  try {
    for (;;) {
      const int v = co_await q.pop();
      co_await corio::sleep(100us);  // a slow consumer
      sum += v;
    }
  } catch (const corio::queue_closed&) {
  }
}

corio::task<> bounded_queue() {
  corio::queue<int> q(4);
  std::size_t peak = 0;
  int sum = 0;
  co_await corio::gather(produce(q, 50, peak), consume(q, sum));
  check(sum == 50 * 51 / 2, "every item arrived");
  check(peak == 4, "the queue never held more than its capacity");
}
//! [queue_backpressure]

//! [channel]
corio::task<> from_a_thread() {
  corio::channel<int> ch(8);
  std::jthread producer([&ch] {
    for (int i = 1; i <= 100; ++i)
      ch.send_blocking(i);  // blocks this thread while the channel is full
    ch.close();
  });
  int sum = 0;
  try {
    for (;;) {
      const int v = co_await ch.receive();  // suspends only this task
      sum += v;
    }
  } catch (const corio::channel_closed&) {
  }
  check(sum == 5050, "every item crossed, in order, with at most 8 in the channel");
}
//! [channel]

corio::task<> real_clock_examples() {
  co_await read_a_generator();
  co_await producer_runs_on_demand();
  co_await errors_reach_the_consumer();
  co_await adapter_chain();
  co_await bounded_pipeline();
  co_await bounded_queue();
  co_await from_a_thread();
}

// The examples whose checks compare times run on the virtual clock: they
// take no real time and give the same order every run.
corio::task<> virtual_clock_examples() {
  co_await merged_streams();
  co_await batches_on_time();
  co_await a_timed_out_next_ends_the_stream();
  co_await time_limits_on_a_queue();
}

int main() {
  corio::run(real_clock_examples());
  corio::run(virtual_clock_examples(), corio::loop_options{.virtual_clock = true});
  std::printf("streams: every example checked\n");
}
