// Combinators: task_group, gather, gather_settled, wait_any, as_completed,
// map_bounded, batched, map_batched.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <ranges>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;
using corio_test::wheel_tick;

namespace {

using ms = std::chrono::milliseconds;

corio::task<int> value_after(ms d, int v) {
  co_await corio::sleep(d);
  co_return v;
}

corio::task<int> fail_after(ms d, const char* what) {
  co_await corio::sleep(d);
  throw std::runtime_error(what);
}

// Sleeps an hour unless cancelled; records the cancellation.
corio::task<int> until_cancelled(bool& cancelled) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
    throw;
  }
  co_return -1;
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "?";
  }
}

// Sleeps an hour unless cancelled; a cancellation makes it fail with
// `what` (a cleanup that breaks), an error nobody asked for.
corio::task<int> fails_when_cancelled(const char* what) {
  bool cancelled = false;
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  if (cancelled) throw std::runtime_error(what);
  co_return -1;
}

// Loop options whose reports land in `reports`.
corio::loop_options reporting_into(std::vector<std::string>& reports) {
  corio::loop_options options;
  options.report = [&reports](const std::string& r) { reports.push_back(r); };
  return options;
}

bool mentions(const std::vector<std::string>& reports, const std::string& what) {
  return std::any_of(reports.begin(), reports.end(),
                     [&](const std::string& r) { return r.find(what) != std::string::npos; });
}

}  // namespace

// ---- outcome ----

TEST(Outcome, ADefaultConstructedOneThrowsWhenRead) {
  corio::outcome<int> o;
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(o.has_error());
  EXPECT_FALSE(o.cancelled());
  EXPECT_THROW((void)o.value(), std::logic_error);
  EXPECT_THROW((void)std::move(o).value(), std::logic_error);
  const corio::outcome<std::string> c;
  EXPECT_THROW((void)c.value(), std::logic_error);
}

TEST(Outcome, AConstOutcomeGivesItsValueOrRethrows) {
  const auto v = corio::outcome<std::string>::from_value("kept");
  static_assert(std::is_same_v<decltype(v.value()), const std::string&>);
  EXPECT_EQ(v.value(), "kept");
  EXPECT_EQ(std::move(v).value(), "kept");  // a const rvalue: nothing is moved out
  EXPECT_EQ(v.value(), "kept");
  const auto e =
      corio::outcome<int>::from_error(std::make_exception_ptr(std::runtime_error("failed")));
  EXPECT_THROW((void)e.value(), std::runtime_error);
}

// ---- task_group ----

TEST(TaskGroup, ReturnsTheBodyValueOnceEveryChildFinished) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    int finished = 0;
    int v = co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<int> {
      for (int i = 1; i <= 3; ++i) {
        g.spawn([](ms d, int& f) -> corio::task<> {
          co_await corio::sleep(d);
          ++f;
        }(ms(i), finished));
      }
      EXPECT_EQ(g.size(), 3U);
      co_return 42;
    });
    EXPECT_EQ(v, 42);
    EXPECT_EQ(finished, 3);
    EXPECT_GE(corio::now() - t0, 3ms);
    EXPECT_LT(corio::now() - t0, 3ms + wheel_tick);
  });
}

TEST(TaskGroup, FirstFailureCancelsTheOthersFast) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool sibling_cancelled = false, body_cancelled = false;
    bool threw = false;
    try {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.spawn(until_cancelled(sibling_cancelled));
        g.spawn(fail_after(2ms, "boom"));
        co_await until_cancelled(body_cancelled);
      });
    } catch (const corio::task_group_error& e) {
      threw = true;
      EXPECT_EQ(e.errors().size(), 1U);
      EXPECT_EQ(message_of(e.errors().at(0)), "boom");
    }
    EXPECT_TRUE(threw);
    EXPECT_TRUE(sibling_cancelled);
    EXPECT_TRUE(body_cancelled);
    EXPECT_LT(corio::now() - t0, 2ms + wheel_tick);  // nobody waited for the hour
  });
}

TEST(TaskGroup, AllFailuresAreCollected) {
  run_virtual([]() -> corio::task<> {
    std::vector<std::string> messages;
    try {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.spawn(fail_after(1ms, "a"));
        // A sibling whose cleanup fails after the cancellation: a second error.
        g.spawn([]() -> corio::task<> {
          try {
            co_await corio::sleep(1h);
          } catch (const corio::cancelled_error&) {
            throw std::runtime_error("b");
          }
        }());
        bool cancelled = false;
        try {
          co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
          cancelled = true;
        }
        if (cancelled) throw std::logic_error("body");
      });
    } catch (const corio::task_group_error& e) {
      for (const auto& err : e.errors())
        messages.push_back(message_of(err));
      EXPECT_NE(std::string(e.what()).find("3 task(s) failed"), std::string::npos) << e.what();
    }
    // The body's error first, then the children's in the order they happened.
    EXPECT_EQ(messages, (std::vector<std::string>{"body", "a", "b"}));
  });
}

TEST(TaskGroup, DeferredCleanupsRunNewestFirstAfterTheChildren) {
  run_virtual([]() -> corio::task<> {
    std::vector<int> order;
    bool child_done = false;
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.spawn([](bool& d) -> corio::task<> {
        co_await corio::sleep(5ms);
        d = true;
      }(child_done));
      for (int i = 1; i <= 3; ++i) {
        g.defer([&order, &child_done, i]() -> corio::task<> {
          EXPECT_TRUE(child_done);
          co_await corio::sleep(1ms);  // cleanups may await
          order.push_back(i);
        });
      }
      co_return;
    });
    EXPECT_EQ(order, (std::vector<int>{3, 2, 1}));
  });
}

TEST(TaskGroup, CleanupsRunOnFailureAndTheirErrorsAreCollected) {
  run_virtual([]() -> corio::task<> {
    std::vector<int> order;
    std::vector<std::string> messages;
    try {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.defer([&order]() -> corio::task<> {
          order.push_back(1);
          co_return;
        });
        g.defer([&order]() -> corio::task<> {
          order.push_back(2);
          throw std::runtime_error("cleanup");
          co_return;
        });
        g.spawn(fail_after(1ms, "child"));
        co_await corio::sleep(1h);
      });
    } catch (const corio::task_group_error& e) {
      for (const auto& err : e.errors())
        messages.push_back(message_of(err));
    }
    EXPECT_EQ(order, (std::vector<int>{2, 1}));  // a failing cleanup does not stop the others
    EXPECT_EQ(messages, (std::vector<std::string>{"child", "cleanup"}));
  });
}

TEST(TaskGroup, CancelStopsChildrenAndBodyWithoutError) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool a = false, b = false, body = false, cleaned = false;
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.spawn(until_cancelled(a));
      g.spawn(until_cancelled(b));
      g.defer([&cleaned]() -> corio::task<> {
        cleaned = true;
        co_return;
      });
      co_await corio::sleep(1ms);
      g.cancel();
      co_await until_cancelled(body);
    });
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    EXPECT_TRUE(body);
    EXPECT_TRUE(cleaned);
    EXPECT_LT(corio::now() - t0, 1ms + wheel_tick);
  });
}

// A body with a value that task_group::cancel() stopped has no value to
// return: the group reports the cancellation instead of inventing one.
TEST(TaskGroup, CancelledBodyWithAValueThrowsCancelled) {
  run_virtual([]() -> corio::task<> {
    bool child = false;
    auto grouped = [](bool& child) -> corio::task<int> {
      co_return co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<int> {
        g.spawn(until_cancelled(child));
        co_await corio::yield_now();  // the child starts
        g.cancel();
        co_await corio::sleep(1h);
        co_return 1;
      });
    };
    EXPECT_THROW(co_await grouped(child), corio::cancelled_error);
    EXPECT_TRUE(child);
    // Cancelled after the value was there: the value stands.
    int v = co_await corio::with_task_group([](corio::task_group& g) -> corio::task<int> {
      g.cancel();
      co_return 2;
    });
    EXPECT_EQ(v, 2);
  });
}

TEST(TaskGroup, CancelFromAChild) {
  run_virtual([]() -> corio::task<> {
    bool other = false;
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.spawn(until_cancelled(other));
      g.spawn([](corio::task_group& g) -> corio::task<> {
        co_await corio::sleep(1ms);
        g.cancel();
      }(g));
      co_return;
    });
    EXPECT_TRUE(other);
  });
}

TEST(TaskGroup, OuterCancelCancelsChildrenRunsCleanupsAndRethrows) {
  run_virtual([]() -> corio::task<> {
    bool child = false, body = false, cleaned = false;
    auto h = corio::spawn([](bool& child, bool& body, bool& cleaned) -> corio::task<> {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.spawn(until_cancelled(child));
        g.defer([&cleaned]() -> corio::task<> {
          co_await corio::sleep(1ms);
          cleaned = true;
        });
        co_await until_cancelled(body);
      });
    }(child, body, cleaned));
    co_await corio::sleep(1ms);
    h.cancel();
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_TRUE(child);
    EXPECT_TRUE(body);
    EXPECT_TRUE(cleaned);
  });
}

TEST(TaskGroup, ChildFailingAfterTheBodyReturnedStillCancelsSiblings) {
  run_virtual([]() -> corio::task<> {
    bool sibling = false;
    bool threw = false;
    try {
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
        g.spawn(until_cancelled(sibling));
        g.spawn(fail_after(1ms, "late"));
        co_return;
      });
    } catch (const corio::task_group_error& e) {
      threw = e.errors().size() == 1;
    }
    EXPECT_TRUE(threw);
    EXPECT_TRUE(sibling);
  });
}

// ---- gather ----

TEST(Gather, VariadicGivesResultsInInputOrder) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    auto [a, b, c] = co_await corio::gather(
        value_after(3ms, 1),
        []() -> corio::task<std::string> {
          co_await corio::sleep(1ms);
          co_return "two";
        }(),
        []() -> corio::task<> { co_await corio::sleep(2ms); }());
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, "two");
    EXPECT_TRUE((std::is_same_v<decltype(c), std::monostate>));
    EXPECT_GE(corio::now() - t0, 3ms);  // concurrently: the longest, not the sum
    EXPECT_LT(corio::now() - t0, 3ms + wheel_tick);
  });
}

TEST(Gather, RangeGivesResultsInInputOrder) {
  run_virtual([]() -> corio::task<> {
    std::vector<corio::task<int>> ts;
    for (int i = 0; i < 10; ++i)
      ts.push_back(value_after(ms(10 - i), i));  // finish in reverse order
    const auto t0 = corio::now();
    std::vector<int> r = co_await corio::gather(std::move(ts));
    EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_LT(corio::now() - t0, 10ms + wheel_tick);
    std::vector<int> none = co_await corio::gather(std::vector<corio::task<int>>{});
    EXPECT_TRUE(none.empty());
    int ran = 0;
    std::vector<corio::task<>> vs;
    for (int i = 0; i < 3; ++i) {
      vs.push_back([](int& r) -> corio::task<> {
        co_await corio::sleep(1ms);
        ++r;
      }(ran));
    }
    co_await corio::gather(std::move(vs));
    EXPECT_EQ(ran, 3);
  });
}

TEST(Gather, FirstErrorCancelsTheRestAndIsRethrownAsIs) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool c0 = false, c2 = false;
    std::vector<corio::task<int>> ts;
    ts.push_back(until_cancelled(c0));
    ts.push_back(fail_after(2ms, "x"));
    ts.push_back(until_cancelled(c2));
    EXPECT_THROW(co_await corio::gather(std::move(ts)), std::runtime_error);
    EXPECT_TRUE(c0);
    EXPECT_TRUE(c2);
    EXPECT_LT(corio::now() - t0, 2ms + wheel_tick);
    bool c = false;
    EXPECT_THROW(co_await corio::gather(until_cancelled(c), fail_after(1ms, "y")),
                 std::runtime_error);
    EXPECT_TRUE(c);
  });
}

TEST(GatherSettled, EveryOutcomeInInputOrder) {
  run_virtual([]() -> corio::task<> {
    std::vector<corio::task<int>> ts;
    ts.push_back(value_after(3ms, 1));
    ts.push_back(fail_after(1ms, "x"));
    ts.push_back(value_after(2ms, 3));
    auto r = co_await corio::gather_settled(std::move(ts));
    EXPECT_EQ(r.size(), 3U);
    if (r.size() == 3) {
      EXPECT_TRUE(r[0].has_value());
      EXPECT_EQ(r[0].value(), 1);  // the failure did not cancel it
      EXPECT_TRUE(r[1].has_error());
      EXPECT_FALSE(r[1].has_value());
      EXPECT_FALSE(r[1].cancelled());
      EXPECT_THROW(r[1].value(), std::runtime_error);
      EXPECT_EQ(r[2].value(), 3);
    }
    std::vector<corio::task<>> vs;
    vs.push_back([]() -> corio::task<> { co_await corio::sleep(1ms); }());
    vs.push_back([]() -> corio::task<> {
      co_await corio::sleep(1ms);
      throw corio::cancelled_error();  // a child that ends as cancelled
    }());
    auto rv = co_await corio::gather_settled(std::move(vs));
    EXPECT_EQ(rv.size(), 2U);
    if (rv.size() == 2) {
      EXPECT_TRUE(rv[0].has_value());
      EXPECT_TRUE(rv[1].cancelled());
    }
  });
}

// The caller's cancellation discards every outcome: a failure among them
// must still be reported, not dropped.
TEST(GatherSettled, AFailureLostToTheCallersCancellationIsReported) {
  std::vector<std::string> reports;
  run_virtual(
      []() -> corio::task<> {
        auto caller = corio::spawn([]() -> corio::task<> {
          std::vector<corio::task<int>> ts;
          ts.push_back(fail_after(1ms, "settled failure"));
          ts.push_back(value_after(1h, 2));
          (void)co_await corio::gather_settled(std::move(ts));
        }());
        co_await corio::sleep(2ms);  // the failure is in; the other child still sleeps
        EXPECT_TRUE(caller.cancel());
        EXPECT_THROW(co_await caller, corio::cancelled_error);
      },
      reporting_into(reports));
  EXPECT_EQ(reports.size(), 1U);
  EXPECT_TRUE(mentions(reports, "settled failure")) << ::testing::PrintToString(reports);
}

// ---- wait_any ----

TEST(WaitAny, FirstToFinishWinsAndTheRestAreCancelled) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool c0 = false, c2 = false;
    std::vector<corio::task<int>> ts;
    ts.push_back(until_cancelled(c0));
    ts.push_back(value_after(10ms, 7));
    ts.push_back(until_cancelled(c2));
    auto r = co_await corio::wait_any(std::move(ts));
    EXPECT_EQ(r.index, 1U);
    EXPECT_EQ(r.value, 7);
    EXPECT_TRUE(c0);
    EXPECT_TRUE(c2);
    EXPECT_LT(corio::now() - t0, 10ms + wheel_tick);

    std::vector<corio::task<>> vs;
    vs.push_back([]() -> corio::task<> { co_await corio::sleep(2ms); }());
    vs.push_back([]() -> corio::task<> { co_await corio::sleep(1ms); }());
    auto rv = co_await corio::wait_any(std::move(vs));
    EXPECT_EQ(rv.index, 1U);
  });
}

TEST(WaitAny, WinnerErrorIsRethrownAndEmptyIsAnError) {
  run_virtual([]() -> corio::task<> {
    bool c = false;
    std::vector<corio::task<int>> ts;
    ts.push_back(until_cancelled(c));
    ts.push_back(fail_after(1ms, "x"));
    EXPECT_THROW(co_await corio::wait_any(std::move(ts)), std::runtime_error);
    EXPECT_TRUE(c);
    EXPECT_THROW(co_await corio::wait_any(std::vector<corio::task<int>>{}), std::invalid_argument);
  });
}

// A task that did not win can still fail (here its cleanup, when it is
// cancelled); nobody gets its result, so the failure is reported. The same
// when wait_any itself is cancelled from outside.
TEST(WaitAny, AFailureOfATaskThatDidNotWinIsReported) {
  std::vector<std::string> reports;
  run_virtual(
      []() -> corio::task<> {
        std::vector<corio::task<int>> ts;
        ts.push_back(value_after(1ms, 7));
        ts.push_back(fails_when_cancelled("loser failure"));
        auto r = co_await corio::wait_any(std::move(ts));
        EXPECT_EQ(r.index, 0U);
        EXPECT_EQ(r.value, 7);

        auto caller = corio::spawn([]() -> corio::task<> {
          std::vector<corio::task<int>> more;
          more.push_back(fails_when_cancelled("overtaken failure"));
          more.push_back(value_after(1h, 1));
          (void)co_await corio::wait_any(std::move(more));
        }());
        co_await corio::sleep(1ms);
        EXPECT_TRUE(caller.cancel());
        EXPECT_THROW(co_await caller, corio::cancelled_error);
      },
      reporting_into(reports));
  EXPECT_EQ(reports.size(), 2U) << ::testing::PrintToString(reports);
  EXPECT_TRUE(mentions(reports, "loser failure")) << ::testing::PrintToString(reports);
  EXPECT_TRUE(mentions(reports, "overtaken failure")) << ::testing::PrintToString(reports);
}

// ---- as_completed ----

TEST(AsCompleted, YieldsInCompletionOrder) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    std::vector<corio::task<int>> ts;
    for (int d : {30, 10, 20, 5})
      ts.push_back(value_after(ms(d), d));
    auto results = corio::as_completed(std::move(ts));
    std::vector<int> order;
    while (auto v = co_await results.next()) {
      order.push_back(*v);
      EXPECT_GE(corio::now() - t0, ms(*v));
      EXPECT_LT(corio::now() - t0, ms(*v) + wheel_tick);
    }
    EXPECT_EQ(order, (std::vector<int>{5, 10, 20, 30}));
  });
}

TEST(AsCompleted, FailureComesOutAtItsTurn) {
  run_virtual([]() -> corio::task<> {
    bool c = false;
    {
      std::vector<corio::task<int>> ts;
      ts.push_back(value_after(1ms, 1));
      ts.push_back(fail_after(2ms, "x"));
      ts.push_back(until_cancelled(c));
      auto results = corio::as_completed(std::move(ts));
      auto first = co_await results.next();
      EXPECT_EQ(first, std::optional<int>(1));
      EXPECT_THROW(co_await results.next(), std::runtime_error);
      EXPECT_FALSE(results.done());  // the stream goes on after a failure
      // Dropped here with the last task still running.
    }
    co_await corio_test::settle();  // dropping the stream cancelled the last task
    EXPECT_TRUE(c);
  });
}

TEST(AsCompleted, DroppingTheStreamCancelsTheRest) {
  run_virtual([]() -> corio::task<> {
    const auto t0 = corio::now();
    bool c1 = false, c2 = false;
    {
      std::vector<corio::task<int>> ts;
      ts.push_back(value_after(1ms, 1));
      ts.push_back(until_cancelled(c1));
      ts.push_back(until_cancelled(c2));
      auto results = corio::as_completed(std::move(ts));
      auto first = co_await results.next();
      EXPECT_EQ(first, std::optional<int>(1));
    }
    co_await corio_test::settle();
    EXPECT_TRUE(c1);
    EXPECT_TRUE(c2);
    EXPECT_LT(corio::now() - t0, 1h);
  });
}

// ---- map_bounded ----

TEST(MapBounded, ResultsInInputOrderAndNeverMoreThanLimitInFlight) {
  run_virtual([]() -> corio::task<> {
    int in_flight = 0, max_in_flight = 0;
    std::vector<int> items(20);
    std::iota(items.begin(), items.end(), 0);
    auto fn = [&](int i) -> corio::task<int> {
      max_in_flight = std::max(max_in_flight, ++in_flight);
      co_await corio::sleep(ms(1 + (i * 7) % 5));  // uneven durations
      --in_flight;
      co_return i * 10;
    };
    std::vector<int> r = co_await corio::map_bounded(items, fn, 3);
    EXPECT_EQ(max_in_flight, 3);
    EXPECT_EQ(in_flight, 0);
    EXPECT_EQ(r.size(), 20U);
    for (std::size_t i = 0; i < r.size(); ++i)
      EXPECT_EQ(r[i], static_cast<int>(i) * 10);
  });
}

TEST(MapBounded, CreatesEachCallOnlyWhenASlotIsFree) {
  run_virtual([]() -> corio::task<> {
    std::vector<corio::event> gates(6);
    int started = 0;
    std::vector<int> items{0, 1, 2, 3, 4, 5};
    auto h = corio::spawn([](std::vector<int>& items, std::vector<corio::event>& gates,
                             int& started) -> corio::task<std::vector<int>> {
      co_return co_await corio::map_bounded(
          items,
          [&](int i) -> corio::task<int> {
            ++started;
            co_await gates[i].wait();
            co_return i;
          },
          2);
    }(items, gates, started));
    co_await corio::yield_now();
    co_await corio::yield_now();
    EXPECT_EQ(started, 2);
    gates[1].set();  // the second finishes first: one new call starts
    co_await corio::yield_now();
    co_await corio::yield_now();
    EXPECT_EQ(started, 3);
    for (auto& g : gates)
      g.set();
    std::vector<int> r = co_await h;
    EXPECT_EQ(started, 6);
    EXPECT_EQ(r, items);
  });
}

TEST(MapBounded, FailureCancelsCallsInFlightAndStartsNoMore) {
  run_virtual([]() -> corio::task<> {
    int started = 0;
    bool cancelled = false;
    std::vector<int> items{0, 1, 2, 3, 4};
    auto fn = [&](int i) -> corio::task<int> {
      ++started;
      if (i == 1) co_return co_await fail_after(1ms, "x");
      co_return co_await until_cancelled(cancelled);
    };
    EXPECT_THROW(co_await corio::map_bounded(items, fn, 2), std::runtime_error);
    EXPECT_EQ(started, 2);
    EXPECT_TRUE(cancelled);
    EXPECT_THROW(co_await corio::map_bounded(items, fn, 0), std::invalid_argument);
  });
}

TEST(MapBounded, VoidCallsAndLazyRanges) {
  run_virtual([]() -> corio::task<> {
    int sum = 0;
    co_await corio::map_bounded(
        std::views::iota(1, 11),
        [&](int i) -> corio::task<> {
          co_await corio::sleep(1ms);
          sum += i;
        },
        4);
    EXPECT_EQ(sum, 55);
    std::vector<int> none;
    std::vector<int> r = co_await corio::map_bounded(
        none, [](int i) { return value_after(1ms, i); }, 3);
    EXPECT_TRUE(r.empty());
  });
}

// ---- batched, map_batched ----

TEST(Batched, CutsIntoSpans) {
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  auto b = corio::batched(v, 4);
  ASSERT_EQ(b.size(), 3U);
  EXPECT_EQ(b[0].size(), 4U);
  EXPECT_EQ(b[1].size(), 4U);
  EXPECT_EQ(b[2].size(), 2U);
  EXPECT_EQ(b[1][0], 4);
  EXPECT_EQ(b[2][1], 9);
  EXPECT_EQ(b[0].data(), v.data());  // views, not copies
  EXPECT_EQ(corio::batched(v, 100).size(), 1U);
  std::vector<int> empty;
  EXPECT_TRUE(corio::batched(empty, 3).empty());
  EXPECT_THROW(corio::batched(v, 0), std::invalid_argument);
  // This test needs no loop; keep the suite's rule anyway.
  run_virtual([]() -> corio::task<> { co_return; });
}

TEST(MapBatched, OneCallPerBatchWithinTheLimit) {
  run_virtual([]() -> corio::task<> {
    std::vector<int> v(10);
    std::iota(v.begin(), v.end(), 1);
    int in_flight = 0, max_in_flight = 0, calls = 0;
    auto sum = [&](std::span<int> s) -> corio::task<int> {
      ++calls;
      max_in_flight = std::max(max_in_flight, ++in_flight);
      co_await corio::sleep(1ms);
      --in_flight;
      co_return std::accumulate(s.begin(), s.end(), 0);
    };
    std::vector<int> r = co_await corio::map_batched(v, 3, sum, 2);
    EXPECT_EQ(r, (std::vector<int>{6, 15, 24, 10}));
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(max_in_flight, 2);
    max_in_flight = 0;
    const auto t0 = corio::now();
    r = co_await corio::map_batched(v, 3, sum);  // no limit: all batches at once
    EXPECT_EQ(r, (std::vector<int>{6, 15, 24, 10}));
    EXPECT_EQ(max_in_flight, 4);
    EXPECT_LT(corio::now() - t0, 1ms + wheel_tick);
  });
}
