// queue<T>: a round trip through two capacity-1 queues (two suspensions
// and two wake-ups), and try_push/try_pop without waiting.
#include "micro.hpp"

namespace {

corio::task<> echo(corio::queue<int>& in, corio::queue<int>& out) {
  for (;;) {
    int v = 0;
    try {
      v = co_await in.pop();
    } catch (const corio::queue_closed&) {
      co_return;
    }
    co_await out.push(v + 1);
  }
}

void pingpong(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::queue<int> there(1);
    corio::queue<int> back(1);
    auto peer = corio::spawn(echo(there, back));
    int v = 0;
    for (auto _ : s) {
      co_await there.push(v);
      v = co_await back.pop();
    }
    there.close();
    co_await peer;
    benchmark::DoNotOptimize(v);
  });
}
BENCHMARK(pingpong);

void try_push_pop(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::queue<int> q(64);
    int sum = 0;
    for (auto _ : s) {
      q.try_push(1);
      sum += *q.try_pop();
    }
    benchmark::DoNotOptimize(sum);
    co_return;
  });
}
BENCHMARK(try_push_pop);

}  // namespace
