// Tasks: awaiting a nested task, spawning and joining a root, yielding.
#include "micro.hpp"

namespace {

corio::task<int> value(int v) {
  co_return v;
}

void nested_await(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    int sum = 0;
    for (auto _ : s)
      sum += co_await value(1);
    benchmark::DoNotOptimize(sum);
  });
}
BENCHMARK(nested_await);

void spawn_and_join(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    int sum = 0;
    for (auto _ : s)
      sum += co_await corio::spawn(value(1));
    benchmark::DoNotOptimize(sum);
  });
}
BENCHMARK(spawn_and_join);

// A batch of spawns before the joins: the ready queue's FIFO at work.
void spawn_batch_of_100(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    std::vector<corio::join_handle<int>> handles;
    handles.reserve(100);
    int sum = 0;
    for (auto _ : s) {
      for (int i = 0; i < 100; ++i)
        handles.push_back(corio::spawn(value(i)));
      for (auto& h : handles)
        sum += co_await h;
      handles.clear();
    }
    benchmark::DoNotOptimize(sum);
    s.SetItemsProcessed(s.iterations() * 100);
  });
}
BENCHMARK(spawn_batch_of_100);

void yield_now(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    for (auto _ : s)
      co_await corio::yield_now();
  });
}
BENCHMARK(yield_now);

}  // namespace
