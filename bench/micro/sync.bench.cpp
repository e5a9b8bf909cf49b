// semaphore, mutex and event: the uncontended paths (no suspension) and a
// mutex handed between two tasks (a suspension and a wake-up each).
#include "micro.hpp"

namespace {

void semaphore_uncontended(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::semaphore sem(1);
    for (auto _ : s) {
      co_await sem.acquire();
      sem.release();
    }
  });
}
BENCHMARK(semaphore_uncontended);

corio::task<> contender(corio::mutex& m, const bool& stop, long& turns) {
  while (!stop) {
    co_await m.lock();
    ++turns;
    co_await corio::yield_now();  // hold it across a suspension: the other waits
    m.unlock();
  }
}

void mutex_handoff(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::mutex m;
    bool stop = false;
    long turns = 0;
    auto other = corio::spawn(contender(m, stop, turns));
    for (auto _ : s) {
      co_await m.lock();
      co_await corio::yield_now();
      m.unlock();
    }
    stop = true;
    co_await other;
    benchmark::DoNotOptimize(turns);
  });
}
BENCHMARK(mutex_handoff);

void event_set_wait(benchmark::State& state) {
  corio_micro::run_on_loop(state, [](benchmark::State& s) -> corio::task<> {
    corio::event e;
    for (auto _ : s) {
      e.set();
      co_await e.wait();
      e.clear();
    }
  });
}
BENCHMARK(event_set_wait);

}  // namespace
