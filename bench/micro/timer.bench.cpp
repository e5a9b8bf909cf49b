// Timers: the wheel alone (insert and cancel, the path of every timeout
// that does not fire) and a sleep that fires, on the virtual clock.
#include <chrono>
#include <cstdint>
#include <vector>

#include "micro.hpp"

namespace {

void wheel_insert_cancel(benchmark::State& state) {
  corio::detail::timer_wheel wheel;
  wheel.reset(0);
  std::vector<corio::detail::timer_node> nodes(1024);
  std::uint64_t x = 88172645463325252ULL;
  for (auto _ : state) {
    for (auto& n : nodes) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      n.m_when_ns = static_cast<std::int64_t>(x % 1'000'000'000'000ULL);  // within ~17 min
      wheel.insert(n);
    }
    for (auto& n : nodes)
      wheel.cancel(n);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(nodes.size()));
}
BENCHMARK(wheel_insert_cancel);

void sleep_1ms(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    for (auto _ : s)
      co_await corio::sleep(std::chrono::milliseconds(1));
  });
}
BENCHMARK(sleep_1ms);

// A timeout that does not fire: its timer is inserted and cancelled.
void timeout_not_firing(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    for (auto _ : s)
      co_await corio::timeout(std::chrono::seconds(1), corio::yield_now());
  });
}
BENCHMARK(timeout_not_firing);

}  // namespace
