// owned_fd: a move-only descriptor that tells the loop's backend before it
// closes (pending calls on it fail with ECANCELED; io_uring cancels them).
#pragma once

namespace corio::detail {

/// Closes `fd` after telling the current loop's backend, if any.
void close_descriptor(int fd) noexcept;

/// Tells the current loop's backend, if any, to forget `fd`: for a
/// descriptor a library owns and closes itself (libpq's socket), before or
/// just after it does. Pending calls on it fail with ECANCELED.
void forget_descriptor(int fd) noexcept;

class owned_fd {
 public:
  owned_fd() noexcept = default;
  explicit owned_fd(int fd) noexcept : m_fd(fd) {}
  owned_fd(owned_fd&& o) noexcept : m_fd(o.release()) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    if (this != &o) {
      reset();
      m_fd = o.release();
    }
    return *this;
  }
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return m_fd; }
  int release() noexcept {
    const int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  void reset() noexcept {
    if (m_fd >= 0) close_descriptor(release());
  }

 private:
  int m_fd = -1;
};

}  // namespace corio::detail
