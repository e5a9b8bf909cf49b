// The calls between a runtime's loops: what is not inline.
#include "corio/exec/cross_loop.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace corio::detail {

namespace {

// Registered once per process; false when the kernel refuses.
bool membarrier_ready() noexcept {
  static const bool ready = [] {
    const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ready;
}

}  // namespace

void runtime_state::enable_light_fences() noexcept {
  t_light_fences_ok = membarrier_ready();
}

void runtime_state::heavy_fence() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Every thread of the process passes a full barrier before this returns.
  // Each loop thread chose its fence when it started; one that found no
  // membarrier fences fully itself.
  if (membarrier_ready()) (void)::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

runtime_state& runtime_for(std::size_t target, const char* what) {
  runtime_state* rt = t_runtime;
  if (rt == nullptr) {
    throw std::logic_error(std::string("corio::") + what + ": not on a loop of a corio::runtime");
  }
  if (target >= rt->size()) {
    throw std::out_of_range(std::string("corio::") + what + ": no loop " + std::to_string(target) +
                            " (the runtime has " + std::to_string(rt->size()) + ")");
  }
  return *rt;
}

}  // namespace corio::detail

namespace corio {

task<std::vector<loop_stats>> every_loop_stats() {
  std::vector<loop_stats> all;
  if (detail::t_runtime == nullptr) {
    all.push_back(detail::current_event_loop().stats());
    co_return all;
  }
  all.reserve(loop_count());
  for (std::size_t i = 0; i < loop_count(); ++i)
    all.push_back(co_await submit_to(i, [] { return detail::current_event_loop().stats(); }));
  co_return all;
}

}  // namespace corio
