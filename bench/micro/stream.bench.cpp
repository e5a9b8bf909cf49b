// async_generator: the cost of one item, pulled with next() and with
// for_each; channel<T> without waiting, for comparison with queue<T>.
#include <cstdint>

#include "micro.hpp"

namespace {

corio::async_generator<std::uint64_t> count_up() {
  for (std::uint64_t i = 0;; ++i)
    co_yield i;
}

void generator_next(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    auto gen = count_up();
    std::uint64_t sum = 0;
    for (auto _ : s)
      sum += *co_await gen.next();
    benchmark::DoNotOptimize(sum);
  });
}
BENCHMARK(generator_next);

void channel_try_send_receive(benchmark::State& state) {
  corio::channel<int> ch(64);
  int sum = 0;
  for (auto _ : state) {
    ch.try_send(1);
    sum += *ch.try_receive();
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(channel_try_send_receive);

}  // namespace
