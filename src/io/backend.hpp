// The I/O backend interface (private). The loop owns one backend; the epoll
// implementation is here now, io_uring comes with the I/O layer. A backend
// also owns the loop's cross-thread wake-up (an eventfd).
#pragma once

#include <cstdint>
#include <memory>

namespace corio::detail {

class backend {
 public:
  virtual ~backend() = default;

  /// Waits up to `timeout_ns` (-1: no limit, 0: just look) for I/O or a
  /// wake-up, and schedules what became ready.
  virtual void poll(std::int64_t timeout_ns) = 0;

  /// Interrupts a poll() that blocks or is about to. Safe from any thread.
  virtual void notify() noexcept = 0;

  /// Number of registered I/O waits (the loop polls only when non-zero or
  /// when it has nothing else to do).
  [[nodiscard]] virtual std::size_t io_pending() const noexcept = 0;

  [[nodiscard]] virtual const char* name() const noexcept = 0;
};

std::unique_ptr<backend> make_epoll_backend();

}  // namespace corio::detail
