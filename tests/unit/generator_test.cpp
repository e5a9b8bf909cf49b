// async_generator<T>: demand-driven producer, awaits in the body, early
// destruction, errors, and cancellation of the consumer.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;
using corio_test::wheel_tick;

namespace {

// Sets a flag when destroyed: shows that a producer frame was destroyed.
struct on_destroy {
  bool* flag;
  explicit on_destroy(bool& f) : flag(&f) {}
  on_destroy(const on_destroy&) = delete;
  on_destroy& operator=(const on_destroy&) = delete;
  ~on_destroy() { *flag = true; }
};

corio::async_generator<int> counted(int& steps, int n) {
  for (int i = 0; i < n; ++i) {
    ++steps;
    co_yield i;
  }
}

corio::async_generator<int> endless(bool& destroyed) {
  on_destroy guard(destroyed);
  for (int i = 0;; ++i)
    co_yield i;
}

corio::async_generator<int> sleepy(bool& destroyed, bool& saw_cancel) {
  on_destroy guard(destroyed);
  for (int i = 0;; ++i) {
    try {
      co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
      saw_cancel = true;
      throw;
    }
    co_yield i;
  }
}

corio::task<> consume_by_next(corio::async_generator<int> g, int& n) {
  while (auto v = co_await g.next())
    ++n;
}

corio::task<> consume_by_for_each(corio::async_generator<int> g, int& n) {
  co_await corio::for_each(std::move(g), [&](int) { ++n; });
}

// Cancels a task consuming `sleepy` while the producer sleeps: the
// cancellation is delivered inside the producer, and its frame goes with
// the consumer's.
void cancel_while_the_producer_sleeps(corio::task<> (*consume)(corio::async_generator<int>, int&)) {
  run_virtual([consume]() -> corio::task<> {
    bool destroyed = false, saw_cancel = false;
    int consumed = 0;
    auto consumer = corio::spawn(consume(sleepy(destroyed, saw_cancel), consumed));
    co_await corio::sleep(2h + 30min);
    EXPECT_EQ(consumed, 2);
    EXPECT_EQ(corio_test::stats().pending_timers, 1U);  // the producer's sleep
    consumer.cancel();
    EXPECT_EQ(corio_test::stats().pending_timers, 0U);  // removed at once
    EXPECT_THROW(co_await consumer, corio::cancelled_error);
    EXPECT_TRUE(saw_cancel);  // delivered inside the producer
    EXPECT_TRUE(destroyed);   // and its frame went with the consumer's
    EXPECT_EQ(consumed, 2);
  });
}

}  // namespace

TEST(AsyncGenerator, ProducerRunsOnlyOnDemand) {
  run_virtual([]() -> corio::task<> {
    int steps = 0;
    auto g = counted(steps, 3);
    co_await corio::sleep(1ms);
    EXPECT_EQ(steps, 0);  // lazy
    EXPECT_FALSE(g.done());
    for (int i = 0; i < 3; ++i) {
      auto v = co_await g.next();
      EXPECT_EQ(v, std::optional<int>(i));
      EXPECT_EQ(steps, i + 1);  // exactly one step per request
      co_await corio::yield_now();
      EXPECT_EQ(steps, i + 1);  // and none in the background
    }
    EXPECT_FALSE((co_await g.next()).has_value());
    EXPECT_TRUE(g.done());
    EXPECT_FALSE((co_await g.next()).has_value());  // stays finished
    EXPECT_EQ(steps, 3);
  });
}

TEST(AsyncGenerator, ProducerMayAwaitBetweenItems) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q;
    auto relay = [](corio::queue<int>& q) -> corio::async_generator<int> {
      for (;;) {
        int v = co_await q.pop();
        if (v < 0) co_return;
        co_await corio::sleep(1ms);
        co_yield v * 2;
      }
    };
    auto feeder = corio::spawn([](corio::queue<int>& q) -> corio::task<> {
      for (int v : {1, 2, 3, -1}) {
        co_await corio::sleep(10ms);
        co_await q.push(v);
      }
    }(q));
    const auto t0 = corio::now();
    auto g = relay(q);
    std::vector<int> got;
    while (auto v = co_await g.next()) {
      got.push_back(*v);
      // Item k arrives at 10 k ms and is relayed 1 ms later; each of those
      // k + 1 sleeps may end up to one wheel tick late.
      const int k = static_cast<int>(got.size());
      const auto expected = std::chrono::milliseconds(10 * k + 1);
      EXPECT_GE(corio::now() - t0, expected);
      EXPECT_LT(corio::now() - t0, expected + (k + 1) * wheel_tick);
    }
    EXPECT_EQ(got, (std::vector<int>{2, 4, 6}));
    co_await feeder;
  });
}

TEST(AsyncGenerator, DroppingItEarlyDestroysTheProducerFrame) {
  run_virtual([]() -> corio::task<> {
    bool destroyed = false;
    {
      auto g = endless(destroyed);
      for (int i = 0; i < 3; ++i) {
        auto v = co_await g.next();
        EXPECT_EQ(v, std::optional<int>(i));
      }
      EXPECT_FALSE(destroyed);
    }
    EXPECT_TRUE(destroyed);

    // A permit held across a co_yield is given back when the frame goes.
    corio::semaphore sem(1);
    {
      auto g = [](corio::semaphore& s) -> corio::async_generator<int> {
        auto permit = co_await s.acquire_guard();
        co_yield 1;
        co_yield 2;
      }(sem);
      EXPECT_EQ(co_await g.next(), std::optional<int>(1));
      EXPECT_EQ(sem.available(), 0U);
    }
    EXPECT_EQ(sem.available(), 1U);

    // A generator that never ran: its body never starts, its arguments go.
    auto arg = std::make_shared<int>(0);
    int steps = 0;
    {
      auto g = [](std::shared_ptr<int> a, int& s) -> corio::async_generator<int> {
        ++s;
        co_yield *a;
      }(arg, steps);
      EXPECT_EQ(arg.use_count(), 2);
    }
    EXPECT_EQ(arg.use_count(), 1);
    EXPECT_EQ(steps, 0);
  });
}

TEST(AsyncGenerator, ProducerErrorComesOutOfNext) {
  run_virtual([]() -> corio::task<> {
    auto g = []() -> corio::async_generator<int> {
      co_yield 1;
      co_await corio::sleep(1ms);
      throw std::runtime_error("producer");
    }();
    EXPECT_EQ(co_await g.next(), std::optional<int>(1));
    EXPECT_THROW(co_await g.next(), std::runtime_error);
    EXPECT_TRUE(g.done());
    EXPECT_FALSE((co_await g.next()).has_value());  // the error is reported once
  });
}

TEST(AsyncGenerator, CancellingTheConsumerCancelsTheProducersAwait) {
  cancel_while_the_producer_sleeps(consume_by_next);
}

// A deadline around next() cancels what the body awaits, as cancelling
// the consumer does: the body ends there and the stream is finished (an
// asyncio async generator ends alike when its __anext__ is cancelled).
TEST(AsyncGenerator, ATimedOutNextEndsTheStream) {
  run_virtual([]() -> corio::task<> {
    bool destroyed = false, saw_cancel = false;
    auto g = sleepy(destroyed, saw_cancel);
    EXPECT_EQ(co_await corio::timeout(2h, g.next()), std::optional<int>(0));
    EXPECT_THROW(co_await corio::timeout(30min, g.next()), corio::timeout_error);
    EXPECT_TRUE(saw_cancel) << "delivered inside the body";
    EXPECT_TRUE(g.done());
    EXPECT_EQ(co_await g.next(), std::nullopt);
  });
}

TEST(AsyncGenerator, MoveOnlyItems) {
  run_virtual([]() -> corio::task<> {
    auto g = []() -> corio::async_generator<std::unique_ptr<int>> {
      for (int i = 0; i < 3; ++i)
        co_yield std::make_unique<int>(i);
    }();
    int sum = 0;
    while (auto v = co_await g.next())
      sum += **v;
    EXPECT_EQ(sum, 3);
  });
}

TEST(AsyncGenerator, EmptyAndMovedFromGeneratorsAreFinished) {
  run_virtual([]() -> corio::task<> {
    corio::async_generator<int> empty;
    EXPECT_TRUE(empty.done());
    EXPECT_FALSE((co_await empty.next()).has_value());
    int steps = 0;
    auto g = counted(steps, 3);
    EXPECT_EQ(co_await g.next(), std::optional<int>(0));
    auto h = std::move(g);
    EXPECT_TRUE(g.done());  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_FALSE((co_await g.next()).has_value());
    EXPECT_FALSE(h.done());
    EXPECT_EQ(co_await h.next(), std::optional<int>(1));
    g = std::move(h);  // h's producer moves back; g had none to destroy
    EXPECT_EQ(co_await g.next(), std::optional<int>(2));
    EXPECT_FALSE((co_await g.next()).has_value());
    EXPECT_TRUE(g.done());
    EXPECT_EQ(steps, 3);
  });
}

// ---- for_each: the generator hands each item to the body as it yields ----

TEST(ForEach, RunsTheBodyOnEveryItemInOrder) {
  run_virtual([]() -> corio::task<> {
    int steps = 0;
    std::vector<int> got;
    co_await corio::for_each(counted(steps, 5), [&](int v) { got.push_back(v); });
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(steps, 5);

    // A finished or empty stream: the body never runs.
    co_await corio::for_each(corio::async_generator<int>{}, [&](int) { ADD_FAILURE(); });
    co_await corio::for_each(counted(steps, 0), [&](int) { ADD_FAILURE(); });

    // A stream partly read with next() goes on from where it was.
    auto g = counted(steps, 4);
    EXPECT_EQ(co_await g.next(), std::optional<int>(0));
    got.clear();
    co_await corio::for_each(std::move(g), [&](int v) { got.push_back(v); });
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));

    // Move-only items are moved into the body.
    int sum = 0;
    co_await corio::for_each(
        []() -> corio::async_generator<std::unique_ptr<int>> {
          for (int i = 1; i <= 3; ++i)
            co_yield std::make_unique<int>(i);
        }(),
        [&](std::unique_ptr<int> p) { sum += *p; });
    EXPECT_EQ(sum, 6);

    // A generator of references hands the body the producer's own object;
    // next() hands out a copy and leaves the producer's object as it was.
    std::string kept = "kept";
    auto refs = [](std::string& s) -> corio::async_generator<std::string&> {
      co_yield s;
      co_yield s;
    };
    co_await corio::for_each(refs(kept), [&](std::string& s) {
      EXPECT_EQ(&s, &kept);
      s += "!";
    });
    EXPECT_EQ(kept, "kept!!");
    auto r = refs(kept);
    EXPECT_EQ(co_await r.next(), std::optional<std::string>("kept!!"));
    EXPECT_EQ(kept, "kept!!");  // copied, not moved from
  });
}

TEST(ForEach, TheBodyRunsInsideTheProducersYield) {
  run_virtual([]() -> corio::task<> {
    // The body sees the very object the producer yields, before the
    // producer has gone on: no copy and no suspension in between.
    const std::string* yielded = nullptr;
    int checked = 0;
    co_await corio::for_each(
        [](const std::string*& at) -> corio::async_generator<std::string> {
          for (int i = 0; i < 3; ++i) {
            std::string item(100, static_cast<char>('a' + i));  // not a short string
            at = &item;
            co_yield std::move(item);
            at = nullptr;
          }
        }(yielded),
        [&](std::string&& s) {
          EXPECT_EQ(&s, yielded);
          ++checked;
        });
    EXPECT_EQ(checked, 3);

    // It is a task like any other: it can be spawned, and waits to be awaited.
    int sum = 0, steps = 0;
    auto running = corio::spawn(corio::for_each(counted(steps, 4), [&](int v) { sum += v; }));
    co_await running;
    EXPECT_EQ(sum, 6);
    auto lazy = corio::for_each(counted(steps, 4), [&](int v) { sum += v; });
    co_await corio::yield_now();
    EXPECT_EQ(steps, 4);  // not started
    co_await std::move(lazy);
    EXPECT_EQ(sum, 12);
  });
}

TEST(ForEach, ProducerMayAwaitBetweenItems) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<int> got;
    co_await corio::for_each(
        []() -> corio::async_generator<int> {
          for (int i = 1; i <= 3; ++i) {
            co_await corio::sleep(10ms);
            co_yield i;
          }
        }(),
        [&](int v) {
          got.push_back(v);
          // Item k comes after k sleeps of 10 ms, each up to a tick late.
          const int k = static_cast<int>(got.size());
          EXPECT_GE(corio::now() - t0, k * 10ms);
          EXPECT_LT(corio::now() - t0, k * (10ms + wheel_tick));
        });
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  });
}

TEST(ForEach, ABodyReturningFalseStopsAndDestroysTheProducer) {
  run_virtual([]() -> corio::task<> {
    bool destroyed = false;
    std::vector<int> got;
    co_await corio::for_each(endless(destroyed), [&](int v) {
      got.push_back(v);
      return v < 2;
    });
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
    EXPECT_TRUE(destroyed);

    // Also when the for_each task outlives its co_await: the producer (and
    // what it holds) goes when the stream stops, not with the task.
    destroyed = false;
    auto stopper = corio::for_each(endless(destroyed), [](int v) { return v < 5; });
    co_await stopper;
    EXPECT_TRUE(destroyed);
  });
}

TEST(ForEach, ErrorsFromEitherSideReachTheConsumer) {
  run_virtual([]() -> corio::task<> {
    // The producer's error.
    int seen = 0;
    EXPECT_THROW(co_await corio::for_each(
                     []() -> corio::async_generator<int> {
                       co_yield 1;
                       co_await corio::sleep(1ms);
                       throw std::runtime_error("producer");
                     }(),
                     [&](int) { ++seen; }),
                 std::runtime_error);
    EXPECT_EQ(seen, 1);

    // The body's error stops the stream and is not seen by the producer's
    // own try blocks around its co_yield.
    bool producer_caught = false, destroyed = false;
    auto guarded = [](bool& caught, bool& d) -> corio::async_generator<int> {
      on_destroy guard(d);
      for (int i = 0;; ++i) {
        try {
          co_yield i;
        } catch (...) {
          caught = true;
        }
      }
    };
    seen = 0;
    EXPECT_THROW(co_await corio::for_each(guarded(producer_caught, destroyed),
                                          [&](int v) {
                                            ++seen;
                                            if (v == 3) throw std::logic_error("body");
                                          }),
                 std::logic_error);
    EXPECT_EQ(seen, 4);
    EXPECT_FALSE(producer_caught);
    EXPECT_TRUE(destroyed);
  });
}

TEST(ForEach, CancellingTheConsumerCancelsTheProducersAwait) {
  cancel_while_the_producer_sleeps(consume_by_for_each);
}

TEST(ForEach, AnAsyncBodyIsAwaitedBeforeTheNextItem) {
  run_virtual([]() -> corio::task<> {
    int steps = 0;
    std::vector<std::pair<int, int>> log;  // (item, producer steps when it finished)
    const auto t0 = corio::now();
    co_await corio::for_each(counted(steps, 3), [&](int v) -> corio::task<> {
      co_await corio::sleep(5ms);
      log.emplace_back(v, steps);
    });
    EXPECT_EQ(log, (std::vector<std::pair<int, int>>{{0, 1}, {1, 2}, {2, 3}}));
    EXPECT_GE(corio::now() - t0, 15ms);

    // On a generator of references it gets its own copy of each item.
    std::string kept = "kept";
    std::string got;
    co_await corio::for_each(
        [](std::string& s) -> corio::async_generator<std::string&> { co_yield s; }(kept),
        [&](std::string&& s) -> corio::task<> {
          co_await corio::yield_now();
          got = std::move(s);
        });
    EXPECT_EQ(got, "kept");
    EXPECT_EQ(kept, "kept");

    // Its error stops the stream and reaches the consumer.
    bool destroyed = false;
    EXPECT_THROW(co_await corio::for_each(endless(destroyed),
                                          [](int v) -> corio::task<> {
                                            co_await corio::yield_now();
                                            if (v == 2) throw std::runtime_error("body");
                                          }),
                 std::runtime_error);
    EXPECT_TRUE(destroyed);
  });
}
