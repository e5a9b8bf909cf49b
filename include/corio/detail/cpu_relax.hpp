// cpu_relax: the pause between two looks of a spin loop.
#pragma once

namespace corio::detail {

/// Tells the CPU this thread is spinning (x86 `pause`, Arm `yield`): the
/// sibling hyperthread gets the core's resources and the loop exits without
/// a memory-order mis-speculation when the awaited store comes.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace corio::detail
