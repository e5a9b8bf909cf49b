// What the micro-benchmarks share: running a benchmark's body as a task on
// a virtual-clock loop, so that timers cost what they cost and no
// benchmark waits for real time.
#pragma once

#include <benchmark/benchmark.h>

#include "corio/corio.hpp"

namespace corio_micro {

/// Runs `body(state)` (a coroutine that iterates `for (auto _ : state)`) to
/// the end on a fresh virtual-clock loop with statistics off, so the
/// figures are the primitives' own.
template <class Body>
void run_on_loop(benchmark::State& state, Body body) {
  corio::event_loop loop({.virtual_clock = true, .shuffle = false, .stats = false});
  corio::run(loop, body(state));
}

}  // namespace corio_micro
