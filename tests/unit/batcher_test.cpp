// batcher<K, V>: coalescing per tick, duplicates, max_batch, max_delay,
// per-key and per-batch errors, cancellation before and after sending,
// the cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

// "v" + the key. (Not `value_of(k)`: GCC 12 warns about that at
// -O3 with a false -Wrestrict, its bug 105329.)
std::string value_of(int k) {
  std::string v = std::to_string(k);
  v.insert(0, 1, 'v');
  return v;
}

// The sanitizer runs shuffle the order in which same-tick tasks start, and
// so the order of keys in a batch and of batches: compare sorted.
std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

struct fake_store {
  std::vector<std::vector<int>> calls;  // the keys of each batch call
  bool fail = false;
  std::chrono::nanoseconds latency = 1ms;
};

corio::task<std::vector<std::string>> fetch(fake_store* store, std::span<const int> keys) {
  store->calls.emplace_back(keys.begin(), keys.end());
  co_await corio::sleep(store->latency);
  if (store->fail) throw std::runtime_error("store down");
  std::vector<std::string> out;
  for (const int k : keys)
    out.push_back(value_of(k));
  co_return out;
}

using string_batcher = corio::batcher<int, std::string>;

string_batcher make(fake_store& store, corio::batcher_options o = {}) {
  return string_batcher(string_batcher::batch_function(
                            [&store](std::span<const int> keys) { return fetch(&store, keys); }),
                        o);
}

corio::task<std::string> load(string_batcher& b, int key) {
  co_return co_await b.load(key);
}

TEST(Batcher, LoadsOfOneTickGoOutInOneCallWithDuplicatesOnce) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    auto b = make(store);
    std::vector<corio::task<std::string>> loads;
    for (const int k : {3, 1, 3, 2, 1})
      loads.push_back(load(b, k));
    const auto values = co_await corio::gather(std::move(loads));
    EXPECT_EQ(values, (std::vector<std::string>{"v3", "v1", "v3", "v2", "v1"}));
    EXPECT_EQ(store.calls.size(), 1U);
    if ((store.calls.size()) != (1U)) co_return;
    EXPECT_EQ(sorted(store.calls[0]), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(b.stats().batches, 1U);
    EXPECT_EQ(b.stats().keys, 3U);
    EXPECT_EQ(b.stats().loads, 5U);
    EXPECT_EQ(b.stats().keys_per_batch[1], 1U);  // 3 keys: the [2, 4) bucket
  });
}

TEST(Batcher, MaxBatchSplitsALargeTick) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    corio::batcher_options o;
    o.max_batch = 4;
    auto b = make(store, o);
    std::vector<corio::task<std::string>> loads;
    for (int k = 0; k < 10; ++k)
      loads.push_back(load(b, k));
    const auto values = co_await corio::gather(std::move(loads));
    EXPECT_EQ(values.size(), 10U);
    if ((values.size()) != (10U)) co_return;
    EXPECT_EQ(values[7], "v7");
    EXPECT_EQ(store.calls.size(), 3U);
    if ((store.calls.size()) != (3U)) co_return;
    std::vector<int> sizes;
    for (const auto& c : store.calls)
      sizes.push_back(static_cast<int>(c.size()));
    EXPECT_EQ(sorted(sizes), (std::vector<int>{2, 4, 4}));
  });
}

TEST(Batcher, MaxDelayGathersAcrossTicks) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    corio::batcher_options o;
    o.max_delay = 5ms;
    auto b = make(store, o);
    auto first = corio::spawn(load(b, 1));
    co_await corio::sleep(2ms);
    auto second = corio::spawn(load(b, 2));
    const auto start = corio::now();
    EXPECT_EQ(co_await first, "v1");
    EXPECT_EQ(co_await second, "v2");
    EXPECT_GE(corio::now() - start, 3ms);
    EXPECT_EQ(store.calls.size(), 1U);
    if ((store.calls.size()) != (1U)) co_return;
    EXPECT_EQ(store.calls[0], (std::vector<int>{1, 2}));
  });
}

TEST(Batcher, AFailedBatchFailsOnlyItsLoads) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    auto b = make(store);
    store.fail = true;
    EXPECT_THROW(co_await b.load(1), std::runtime_error);
    store.fail = false;
    EXPECT_EQ(co_await b.load(1), "v1");
    EXPECT_EQ(b.stats().failed_batches, 1U);
  });
}

corio::task<std::vector<corio::outcome<std::string>>> fetch_some(std::span<const int> keys) {
  co_await corio::sleep(1ms);
  std::vector<corio::outcome<std::string>> out;
  for (const int k : keys) {
    if (k < 0) {
      out.push_back(corio::outcome<std::string>::from_error(
          std::make_exception_ptr(std::out_of_range("no such key"))));
    } else {
      out.push_back(corio::outcome<std::string>::from_value(value_of(k)));
    }
  }
  co_return out;
}

TEST(Batcher, PerKeyErrors) {
  run_virtual([&]() -> corio::task<> {
    string_batcher b{string_batcher::outcome_batch_function(fetch_some)};
    auto bad = corio::spawn(load(b, -1));
    auto good = corio::spawn(load(b, 7));
    EXPECT_THROW(co_await bad, std::out_of_range);
    EXPECT_EQ(co_await good, "v7");
    EXPECT_EQ(b.stats().batches, 1U);
  });
}

TEST(Batcher, WrongNumberOfResultsIsAClearError) {
  run_virtual([&]() -> corio::task<> {
    string_batcher b(string_batcher::batch_function(
        [](std::span<const int>) -> corio::task<std::vector<std::string>> {
          co_return std::vector<std::string>{};
        }));
    EXPECT_THROW(co_await b.load(1), std::logic_error);
  });
}

// Runs after the loads in the same tick, so its cancellations land before
// the batch is sent at the tick's end.
corio::task<> cancel_unsent(corio::join_handle<std::string>* a, corio::join_handle<std::string>* b,
                            const fake_store* store) {
  EXPECT_TRUE(store->calls.empty()) << "sent before the tick ended";
  a->cancel();
  b->cancel();
  co_return;
}

TEST(Batcher, ALoadCancelledBeforeSendingDropsItsKey) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    auto b = make(store);
    auto victim = corio::spawn(load(b, 1));
    auto shared_victim = corio::spawn(load(b, 2));
    auto keeper = corio::spawn(load(b, 2));
    auto other = corio::spawn(load(b, 3));
    co_await corio::spawn(cancel_unsent(&victim, &shared_victim, &store));
    co_await victim.wait();
    co_await shared_victim.wait();
    EXPECT_TRUE(victim.cancelled());
    EXPECT_TRUE(shared_victim.cancelled());
    EXPECT_EQ(co_await keeper, "v2");
    EXPECT_EQ(co_await other, "v3");
    EXPECT_EQ(store.calls.size(), 1U);
    if ((store.calls.size()) != (1U)) co_return;
    EXPECT_EQ(sorted(store.calls[0]), (std::vector<int>{2, 3})) << "key 1 is dropped, 2 is kept";
  });
}

TEST(Batcher, ALoadCancelledAfterSendingIgnoresTheResult) {
  fake_store store;
  store.latency = 10ms;
  run_virtual([&]() -> corio::task<> {
    auto b = make(store);
    auto victim = corio::spawn(load(b, 1));
    auto other = corio::spawn(load(b, 1));
    co_await corio::sleep(5ms);
    EXPECT_EQ(store.calls.size(), 1U);
    if ((store.calls.size()) != (1U)) co_return;
    victim.cancel();
    co_await victim.wait();
    EXPECT_TRUE(victim.cancelled());
    EXPECT_EQ(co_await other, "v1") << "the batch is not cancelled by one waiter";
  });
}

TEST(Batcher, CacheAnswersRepeatsAndForgetsOnClear) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    corio::batcher_options o;
    o.cache = true;
    auto b = make(store, o);
    EXPECT_EQ(co_await b.load(1), "v1");
    EXPECT_EQ(co_await b.load(1), "v1");
    EXPECT_EQ(store.calls.size(), 1U);
    EXPECT_EQ(b.stats().cache_hits, 1U);
    b.clear(1);
    EXPECT_EQ(co_await b.load(1), "v1");
    EXPECT_EQ(store.calls.size(), 2U);
    store.fail = true;
    EXPECT_THROW(co_await b.load(2), std::runtime_error);
    store.fail = false;
    EXPECT_EQ(co_await b.load(2), "v2") << "failures are not cached";
    b.clear_all();
    EXPECT_EQ(co_await b.load(1), "v1");
    EXPECT_EQ(store.calls.size(), 5U);
  });
}

TEST(Batcher, DestroyedWithLoadsUnsentFailsThem) {
  fake_store store;
  run_virtual([&]() -> corio::task<> {
    corio::batcher_options o;
    o.max_delay = 1s;  // the batch waits: the batcher goes first
    std::optional<string_batcher> b;
    b.emplace(string_batcher::batch_function(
                  [&store](std::span<const int> keys) { return fetch(&store, keys); }),
              o);
    auto h = corio::spawn(load(*b, 1));
    co_await corio::sleep(1ms);  // the load waits in the unsent batch
    b.reset();
    EXPECT_THROW(co_await h, corio::batcher_destroyed);
    EXPECT_TRUE(store.calls.empty());
  });
}

}  // namespace
