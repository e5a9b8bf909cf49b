// queue<T>: FIFO order, backpressure, try_ variants, close(), move-only items.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

corio::task<> push_all(corio::queue<int>& q, std::vector<int> items, int& pushed) {
  for (int v : items) {
    co_await q.push(v);
    ++pushed;
  }
}

corio::task<int> pop_one(corio::queue<int>& q) {
  co_return co_await q.pop();
}

// Pops until the queue is closed and empty.
corio::task<std::vector<int>> drain(corio::queue<int>& q) {
  std::vector<int> out;
  bool closed = false;
  while (!closed) {
    try {
      out.push_back(co_await q.pop());
    } catch (const corio::queue_closed&) {
      closed = true;
    }
  }
  co_return out;
}

}  // namespace

TEST(Queue, UnboundedIsFifoAndNeverBlocks) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q;
    EXPECT_EQ(q.capacity(), 0U);
    const auto t0 = corio::now();
    for (int i = 0; i < 1000; ++i)
      co_await q.push(i);
    EXPECT_EQ(corio::now(), t0);
    EXPECT_EQ(q.size(), 1000U);
    EXPECT_FALSE(q.full());
    for (int i = 0; i < 1000; ++i)
      EXPECT_EQ(co_await q.pop(), i);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, BoundedPushWaitsForRoom) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(2);
    int pushed = 0;
    auto producer = corio::spawn(push_all(q, {0, 1, 2, 3, 4, 5}, pushed));
    co_await corio::sleep(1h);
    EXPECT_EQ(pushed, 2);  // the third push waits
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.size(), 2U);
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(co_await q.pop(), i);
      co_await corio::sleep(1ms);
      EXPECT_EQ(pushed, std::min(6, i + 3));  // each pop lets exactly one push in
      EXPECT_LE(q.size(), 2U);
    }
    co_await producer;
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, PopWaitsForAnItem) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(4);
    auto popper = corio::spawn(pop_one(q));
    co_await corio::sleep(1h);
    EXPECT_FALSE(popper.done());
    co_await q.push(42);
    EXPECT_EQ(q.size(), 1U);                // promised to the waiting popper, taken when it resumes
    EXPECT_FALSE(q.try_pop().has_value());  // nobody else may take it
    EXPECT_EQ(co_await popper, 42);
  });
}

TEST(Queue, TryPushAndTryPop) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    EXPECT_FALSE(q.try_pop().has_value());
    EXPECT_TRUE(q.try_push(1));
    const int two = 2;
    EXPECT_FALSE(q.try_push(two));  // full
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.try_pop(), std::optional<int>(1));
    EXPECT_TRUE(q.try_push(two));
    EXPECT_EQ(q.try_pop(), std::optional<int>(2));

    // try_push hands the item to a waiting popper.
    auto popper = corio::spawn(pop_one(q));
    co_await corio::yield_now();
    EXPECT_TRUE(q.try_push(5));
    EXPECT_TRUE(q.full());  // 5 is promised to the popper and still counts
    EXPECT_EQ(co_await popper, 5);

    // try_pop frees a slot for a waiting pusher.
    EXPECT_TRUE(q.try_push(6));
    int pushed = 0;
    auto pusher = corio::spawn(push_all(q, {7}, pushed));
    co_await corio::yield_now();
    EXPECT_EQ(pushed, 0);
    EXPECT_FALSE(q.try_push(8));  // a slot about to be granted is not free
    EXPECT_EQ(q.try_pop(), std::optional<int>(6));
    EXPECT_FALSE(q.try_push(9));  // the freed slot is granted to the waiting pusher
    co_await pusher;
    EXPECT_EQ(q.try_pop(), std::optional<int>(7));
    q.close();
    EXPECT_FALSE(q.try_push(10));
  });
}

TEST(Queue, WaitingPushersAndPoppersAreServedInArrivalOrder) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(-1);
    int pushed = 0;
    std::vector<corio::join_handle<>> pushers;
    for (int i = 0; i < 4; ++i) {
      pushers.push_back(corio::spawn(push_all(q, {i}, pushed)));
      co_await corio::yield_now();  // arrives before the next one
    }
    for (int i = -1; i < 4; ++i)
      EXPECT_EQ(co_await q.pop(), i);
    for (auto& h : pushers)
      co_await h;

    std::vector<corio::join_handle<int>> poppers;
    for (int i = 0; i < 4; ++i) {
      poppers.push_back(corio::spawn(pop_one(q)));
      co_await corio::yield_now();
    }
    for (int i = 0; i < 4; ++i)
      co_await q.push(10 + i);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(co_await poppers[i], 10 + i);
  });
}

TEST(Queue, CloseWakesWaitingPoppers) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q;
    auto a = corio::spawn(pop_one(q));
    auto b = corio::spawn(pop_one(q));
    co_await corio::sleep(1ms);
    EXPECT_FALSE(a.done());
    q.close();
    EXPECT_TRUE(q.closed());
    EXPECT_THROW(co_await a, corio::queue_closed);
    EXPECT_THROW(co_await b, corio::queue_closed);
    EXPECT_THROW(co_await q.pop(), corio::queue_closed);
  });
}

TEST(Queue, CloseWakesWaitingPushersWithoutEnqueueing) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(1);
    int pushed = 0;
    auto p = corio::spawn(push_all(q, {2}, pushed));
    co_await corio::sleep(1ms);
    q.close();
    EXPECT_THROW(co_await p, corio::queue_closed);
    EXPECT_EQ(pushed, 0);
    EXPECT_EQ(q.size(), 1U);
    EXPECT_THROW(co_await q.push(3), corio::queue_closed);
    const std::vector<int> rest = co_await drain(q);
    EXPECT_EQ(rest, (std::vector<int>{1}));
  });
}

TEST(Queue, ItemsQueuedBeforeCloseStillDrain) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(8);
    for (int i = 0; i < 5; ++i)
      co_await q.push(i);
    q.close();
    q.close();  // idempotent
    EXPECT_EQ(q.try_pop(), std::optional<int>(0));
    const std::vector<int> rest = co_await drain(q);
    EXPECT_EQ(rest, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_FALSE(q.try_pop().has_value());
  });
}

// A pusher that was granted a slot before close() enqueues its item (the
// header documents this); a pop after close() must still get that item
// rather than queue_closed, or the item is stranded.
TEST(Queue, PushGrantedBeforeCloseIsDrained) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(1);
    int pushed = 0;
    auto p = corio::spawn(push_all(q, {2}, pushed));
    co_await corio::yield_now();
    EXPECT_EQ(co_await q.pop(), 1);  // grants the slot to p, which has not run yet
    q.close();
    const std::vector<int> rest = co_await drain(q);
    EXPECT_EQ(rest, (std::vector<int>{2}));
    co_await p;
    EXPECT_EQ(pushed, 1);
    EXPECT_TRUE(q.empty());
  });
}

// The same with the consumers already waiting when close() comes: the
// oldest gets the granted item, the other one queue_closed.
TEST(Queue, WaitingPopperGetsAPushGrantedBeforeClose) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(1);
    corio::event go;
    auto consume = [](corio::event& go, corio::queue<int>& q) -> corio::task<std::vector<int>> {
      co_await go.wait();
      co_return co_await drain(q);
    };
    auto consumer = corio::spawn(consume(go, q));
    auto extra = corio::spawn(consume(go, q));
    int pushed = 0;
    bool pusher_had_run = true;
    auto closer = corio::spawn(
        [](corio::event& go, corio::queue<int>& q, int& pushed, bool& had_run) -> corio::task<> {
          co_await go.wait();
          had_run = pushed != 0;
          q.close();  // both consumers wait in pop(); the pusher has a slot, not yet used
        }(go, q, pushed, pusher_had_run));
    auto p = corio::spawn(push_all(q, {2}, pushed));
    co_await corio::yield_now();
    go.set();                                       // wakes consumer, extra, closer in order,
    EXPECT_EQ(q.try_pop(), std::optional<int>(1));  // then grants the slot to p
    co_await p;
    co_await closer;
    EXPECT_FALSE(pusher_had_run);
    const std::vector<int> got = co_await consumer;
    const std::vector<int> got_extra = co_await extra;
    EXPECT_EQ(got, (std::vector<int>{2}));
    EXPECT_TRUE(got_extra.empty());
    EXPECT_TRUE(q.empty());
  });
}

// A pop after close() waits for a granted pusher's item; if that pusher is
// cancelled instead, the pop ends with queue_closed (no hang).
TEST(Queue, CancelledGrantedPushAfterCloseEndsWaitingPops) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(1);
    co_await q.push(1);
    int pushed = 0;
    auto p = corio::spawn(push_all(q, {2}, pushed));
    co_await corio::yield_now();
    EXPECT_EQ(q.try_pop(), std::optional<int>(1));  // grants the slot to p
    q.close();
    p.cancel();  // before it used the slot
    EXPECT_THROW(co_await q.pop(), corio::queue_closed);
    EXPECT_THROW(co_await p, corio::cancelled_error);
    EXPECT_EQ(pushed, 0);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, MoveOnlyItems) {
  run_virtual([]() -> corio::task<> {
    corio::queue<std::unique_ptr<int>> q(1);
    co_await q.push(std::make_unique<int>(1));
    auto p = std::make_unique<int>(2);
    EXPECT_FALSE(q.try_push(std::move(p)));
    EXPECT_TRUE(p != nullptr && *p == 2);  // not moved from on failure
    auto pusher = corio::spawn(
        [](corio::queue<std::unique_ptr<int>>& q, std::unique_ptr<int> v) -> corio::task<> {
          co_await q.push(std::move(v));
        }(q, std::move(p)));
    co_await corio::yield_now();
    EXPECT_EQ(*co_await q.pop(), 1);
    co_await pusher;
    EXPECT_EQ(*co_await q.pop(), 2);

    auto popper = corio::spawn(
        [](corio::queue<std::unique_ptr<int>>& q) -> corio::task<std::unique_ptr<int>> {
          co_return co_await q.pop();
        }(q));
    co_await corio::yield_now();
    EXPECT_TRUE(q.try_push(std::make_unique<int>(3)));
    EXPECT_EQ(*co_await popper, 3);

    // Items left in a queue are destroyed with it.
    auto alive = std::make_shared<int>(0);
    {
      corio::queue<std::shared_ptr<int>> q2;
      co_await q2.push(alive);
      co_await q2.push(alive);
      EXPECT_EQ(alive.use_count(), 3);
    }
    EXPECT_EQ(alive.use_count(), 1);
  });
}

TEST(Queue, ManyProducersAndConsumersConserveItems) {
  run_virtual([]() -> corio::task<> {
    corio::queue<int> q(3);
    std::vector<int> pushed(4, 0);
    std::vector<corio::join_handle<>> producers;
    for (int p = 0; p < 4; ++p) {
      std::vector<int> items;
      for (int i = 0; i < 25; ++i)
        items.push_back(p * 100 + i);
      producers.push_back(corio::spawn(push_all(q, items, pushed[p])));
    }
    std::vector<corio::join_handle<std::vector<int>>> consumers;
    for (int c = 0; c < 3; ++c)
      consumers.push_back(corio::spawn(drain(q)));
    for (auto& h : producers)
      co_await h;
    q.close();
    std::vector<int> all;
    for (auto& h : consumers) {
      std::vector<int> got = co_await h;
      // Each producer's items reach any one consumer in the order pushed.
      for (std::size_t i = 1; i < got.size(); ++i) {
        if (got[i] / 100 == got[i - 1] / 100) {
          EXPECT_LT(got[i - 1], got[i]);
        }
      }
      all.insert(all.end(), got.begin(), got.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<int> expected;
    for (int p = 0; p < 4; ++p)
      for (int i = 0; i < 25; ++i)
        expected.push_back(p * 100 + i);
    EXPECT_EQ(all, expected);
  });
}
