// pool<T> and batcher<K, V>: a lease taken and returned with nobody
// waiting, and the cost of a load through a batcher against calling the
// batch function directly with the same keys (the tasks the loads run in
// measured apart).
#include <numeric>
#include <span>
#include <vector>

#include "micro.hpp"

namespace {

struct conn {
  int uses = 0;
};

corio::task<conn> open_conn() {
  co_return conn{};
}

void pool_acquire_release(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::pool_hooks<conn> hooks;
    hooks.create = open_conn;
    corio::pool<conn> pool(std::move(hooks));
    { auto first = co_await pool.acquire(); }  // created once, idle from here on
    for (auto _ : s) {
      auto lease = co_await pool.acquire();
      ++lease->uses;
    }
    co_await pool.close();
  });
}
BENCHMARK(pool_acquire_release);

constexpr int k_keys = 100;

corio::task<std::vector<int>> double_all(std::span<const int> keys) {
  std::vector<int> out(keys.begin(), keys.end());
  for (int& v : out)
    v *= 2;
  co_return out;
}

// One call of the batch function with all the keys: the floor.
void batch_function_direct(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    std::vector<int> keys(k_keys);
    std::iota(keys.begin(), keys.end(), 0);
    for (auto _ : s) {
      auto values = co_await double_all(keys);
      benchmark::DoNotOptimize(values.data());
    }
    s.SetItemsProcessed(s.iterations() * k_keys);
  });
}
BENCHMARK(batch_function_direct);

corio::task<> add_key(int key, long& sum) {
  sum += 2L * key;
  co_return;
}

// 100 tasks gathered, each computing its value itself: what the loads'
// own tasks cost.
void gather_of_tasks(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    long sum = 0;
    for (auto _ : s) {
      std::vector<corio::task<>> tasks;
      tasks.reserve(k_keys);
      for (int k = 0; k < k_keys; ++k)
        tasks.push_back(add_key(k, sum));
      co_await corio::gather(std::move(tasks));
    }
    benchmark::DoNotOptimize(sum);
    s.SetItemsProcessed(s.iterations() * k_keys);
  });
}
BENCHMARK(gather_of_tasks);

corio::task<> load_key(corio::batcher<int, int>& b, int key, long& sum) {
  sum += co_await b.load(key);
}

// 100 gathered tasks, each loading one key through the batcher: one batch
// call per iteration.
void batcher_load(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::batcher<int, int> b{corio::batcher<int, int>::batch_function(double_all)};
    long sum = 0;
    for (auto _ : s) {
      std::vector<corio::task<>> loads;
      loads.reserve(k_keys);
      for (int k = 0; k < k_keys; ++k)
        loads.push_back(load_key(b, k, sum));
      co_await corio::gather(std::move(loads));
    }
    benchmark::DoNotOptimize(sum);
    s.SetItemsProcessed(s.iterations() * k_keys);
    // 1 when every iteration's loads went out together (a tick's budget
    // of 256 resumptions can split them).
    s.counters["batches_per_iteration"] =
        static_cast<double>(b.stats().batches) / static_cast<double>(s.iterations());
  });
}
BENCHMARK(batcher_load);

}  // namespace
