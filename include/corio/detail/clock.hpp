// The loop's clock type, apart from the loop so that headers which only
// name time points need not include it.
#pragma once

#include <chrono>

namespace corio {

/// The loop's clock. Under `loop_options::virtual_clock` its time points are
/// virtual: they start at `loop_options::virtual_start` and only jump.
using clock = std::chrono::steady_clock;

}  // namespace corio
