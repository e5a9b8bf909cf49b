// The I/O backend interface (private). The loop owns one backend: io_uring
// when the kernel allows it, epoll otherwise (src/io/select.cpp decides).
// A backend also owns the loop's cross-thread wake-up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "corio/io/detail/io_op.hpp"

namespace corio::detail {

class backend {
 public:
  virtual ~backend() = default;

  /// Waits up to `timeout_ns` (-1: no limit, 0: just look) for I/O or a
  /// wake-up, and wakes the operations that completed. Sends queued
  /// submissions in the same system call.
  ///
  /// Throws std::system_error only when the wait itself fails in a way the
  /// loop cannot go on from (epoll_wait or io_uring_enter returning an
  /// error other than EINTR, ETIME, EBUSY or EAGAIN: a bad descriptor or
  /// ring, or EFAULT, never a property of one socket). The exception leaves
  /// the loop's run() and the loop unusable; every per-operation error is
  /// an operation's result (-errno) instead.
  virtual void poll(std::int64_t timeout_ns) = 0;

  /// Interrupts a poll() that blocks or is about to. Safe from any thread.
  virtual void notify() noexcept = 0;

  /// Starts `op`. Returns true when it is pending (the backend will set
  /// m_result and wake it, or after cancel() schedule its root), false when
  /// it completed at once with m_result set.
  virtual bool start(io_op& op) noexcept = 0;

  /// Cancels a pending op (its waiter's on_abort). Either unlinks it at
  /// once, or, with op.m_defer_abort set, asks the kernel and completes it
  /// when the kernel answers.
  virtual void cancel(io_op& op) noexcept = 0;

  /// Called before `fd` is closed: its pending operations complete with
  /// -ECANCELED and the backend drops what it knows of the descriptor.
  virtual void forget_fd(int fd) noexcept = 0;

  /// Operations started and not yet completed (the loop polls only when
  /// non-zero or when it has nothing else to do).
  [[nodiscard]] virtual std::size_t io_pending() const noexcept = 0;

  /// True when submissions wait to be sent: the loop then polls (without
  /// blocking) in this iteration rather than a later one.
  [[nodiscard]] virtual bool wants_flush() const noexcept { return false; }

  [[nodiscard]] virtual const char* name() const noexcept = 0;

  /// loop_stats::read_buffer_bytes.
  [[nodiscard]] virtual std::size_t read_buffer_bytes() const noexcept { return 0; }

  /// System calls made so far (loop_stats::syscalls).
  [[nodiscard]] std::uint64_t syscalls() const noexcept { return m_syscalls; }

  /// Does `op`'s call now on its non-blocking fd, whatever the backend
  /// (perform()): for a caller that must not wait, counted with the rest.
  std::intptr_t perform_now(io_op& op) noexcept;

 protected:
  std::uint64_t m_syscalls = 0;
};

std::unique_ptr<backend> make_epoll_backend();
/// Null when io_uring is missing, refused (seccomp, sysctl) or lacks an
/// opcode corio needs; `why` then says which.
std::unique_ptr<backend> make_uring_backend(const char** why);

/// The system call an io_op stands for, done now on a non-blocking fd:
/// the result, or -errno (-EAGAIN: it would block). Adds the calls it
/// made (retries after EINTR included) to `syscalls`.
std::intptr_t perform(io_op& op, std::uint64_t& syscalls) noexcept;

/// One call of `kind` on the non-blocking `fd`, done now: the result or
/// -errno (-EAGAIN: it would block), counted by the current loop's
/// backend (off a loop, by nobody). For a caller that must not wait: a
/// tick's flush.
std::intptr_t perform_now(io_kind kind, int fd, void* buf, std::size_t len) noexcept;

}  // namespace corio::detail
