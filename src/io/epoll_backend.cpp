// epoll backend: the fallback, and the choice with CORIO_BACKEND=epoll.
//
// Readiness model. Each descriptor is registered once, edge-triggered, for
// both directions, the first time an operation on it would block; closing
// it (forget_fd) drops the record. Per descriptor and direction we keep a
// FIFO of parked operations and a "maybe ready" bit: set by an event, cleared
// when a call returns EAGAIN or a stream read comes back short (the socket
// buffer was drained; new data makes a new edge). An operation first tries
// its call when the bit is set and nobody is queued before it, so a busy
// connection costs one recv and one send per message and no epoll_ctl.
// Waits with epoll_pwait2 for nanosecond timeouts, so a timer is never late
// by the millisecond rounding of epoll_wait.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <deque>
#include <system_error>

#include "corio/detail/owned_fd.hpp"
#include "corio/loop/event_loop.hpp"
#include "io/backend.hpp"

namespace corio::detail {
namespace {

constexpr std::uint64_t wake_token = ~std::uint64_t{0};

bool is_input(io_kind k) noexcept {
  return k == io_kind::recv || k == io_kind::read || k == io_kind::accept ||
         k == io_kind::recvmsg || k == io_kind::poll_in;
}

struct fd_record {
  intrusive_list<io_op> m_waiting[2];  // 0: input, 1: output
  bool m_ready[2] = {true, true};      // unknown counts as ready: try first
  bool m_registered = false;
  // The peer hung up (or an error is pending): reads never block again, so
  // a short read must not clear input readiness; no new edge would come.
  bool m_hung_up = false;
};

class epoll_backend final : public backend {
 public:
  // The descriptors are owned_fd members: a constructor that throws
  // half-way closes what it opened.
  epoll_backend() {
    m_epfd = owned_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (m_epfd.get() < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    m_eventfd = owned_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (m_eventfd.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_token;
    if (::epoll_ctl(m_epfd.get(), EPOLL_CTL_ADD, m_eventfd.get(), &ev) != 0)
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
  ~epoll_backend() override = default;
  epoll_backend(const epoll_backend&) = delete;
  epoll_backend& operator=(const epoll_backend&) = delete;

  void poll(std::int64_t timeout_ns) override {
    epoll_event events[256];
    int n = 0;
    ++m_syscalls;
    if (m_have_pwait2) {
      timespec ts{};
      if (timeout_ns >= 0) {
        ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
      }
      n = ::epoll_pwait2(m_epfd.get(), events, 256, timeout_ns >= 0 ? &ts : nullptr, nullptr);
      if (n < 0 && errno == ENOSYS) {
        // Kernels before 5.11 (and valgrind): epoll_wait from now on, with
        // the timeout rounded up to whole milliseconds.
        m_have_pwait2 = false;
        ++m_syscalls;
      }
    }
    if (!m_have_pwait2) {
      const int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
      n = ::epoll_wait(m_epfd.get(), events, 256, ms);
    }
    if (n < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == wake_token) {
        std::uint64_t value = 0;
        ++m_syscalls;
        // Drains the counter; EAGAIN when another poll already did.
        [[maybe_unused]] ssize_t r = ::read(m_eventfd.get(), &value, sizeof value);
        continue;
      }
      const int fd = static_cast<int>(events[i].data.u64);
      if (static_cast<std::size_t>(fd) >= m_fds.size()) continue;
      fd_record& rec = m_fds[static_cast<std::size_t>(fd)];
      const std::uint32_t ev = events[i].events;
      const bool trouble = (ev & (EPOLLERR | EPOLLHUP)) != 0;
      if (trouble || (ev & EPOLLRDHUP) != 0) rec.m_hung_up = true;
      if (trouble || (ev & (EPOLLIN | EPOLLRDHUP)) != 0) run_parked(rec, 0);
      if (trouble || (ev & EPOLLOUT) != 0) run_parked(rec, 1);
    }
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(m_eventfd.get(), &one, sizeof one);
  }

  bool start(io_op& op) noexcept override {
    fd_record& rec = record(op.m_fd);
    const int dir = is_input(op.m_kind) ? 0 : 1;
    if (rec.m_waiting[dir].empty() && rec.m_ready[dir]) {
      const std::intptr_t r = perform(op, m_syscalls);
      if (r != -EAGAIN) {
        note_read(rec, op, r);
        op.m_result = r;
        return false;
      }
      rec.m_ready[dir] = false;
    }
    if (!rec.m_registered) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = static_cast<std::uint64_t>(op.m_fd);
      ++m_syscalls;
      if (::epoll_ctl(m_epfd.get(), EPOLL_CTL_ADD, op.m_fd, &ev) != 0) {
        op.m_result = -errno;  // e.g. EPERM: a regular file cannot be polled
        return false;
      }
      rec.m_registered = true;
    }
    rec.m_waiting[dir].push_back(op);
    op.m_in_flight = true;
    ++m_pending;
    return true;
  }

  void cancel(io_op& op) noexcept override {
    if (!op.m_in_flight) return;
    op.unlink();
    op.m_in_flight = false;
    --m_pending;
  }

  void forget_fd(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= m_fds.size()) return;
    fd_record& rec = m_fds[static_cast<std::size_t>(fd)];
    for (auto& list : rec.m_waiting) {
      while (io_op* op = list.pop_front())
        complete(*op, -ECANCELED);
    }
    // close() removes the registration unless the descriptor was dup'ed;
    // then the stale entry's events find m_registered false and no waiters.
    if (rec.m_registered) {
      ++m_syscalls;
      ::epoll_ctl(m_epfd.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
    rec.m_registered = false;
    rec.m_hung_up = false;
    rec.m_ready[0] = rec.m_ready[1] = true;
  }

  [[nodiscard]] std::size_t io_pending() const noexcept override { return m_pending; }
  [[nodiscard]] const char* name() const noexcept override { return "epoll"; }

 private:
  fd_record& record(int fd) {
    const auto i = static_cast<std::size_t>(fd);
    while (m_fds.size() <= i)
      m_fds.emplace_back();
    return m_fds[i];
  }

  // A stream read that came back short drained the socket (or pipe) buffer: new data
  // makes a new edge. Not so once the peer hung up (no edge will come).
  static void note_read(fd_record& rec, const io_op& op, std::intptr_t r) noexcept {
    if ((op.m_kind == io_kind::recv || op.m_kind == io_kind::read) && r > 0 &&
        static_cast<std::size_t>(r) < op.m_len && !rec.m_hung_up)
      rec.m_ready[0] = false;
  }

  void run_parked(fd_record& rec, int dir) noexcept {
    rec.m_ready[dir] = true;
    while (!rec.m_waiting[dir].empty()) {
      io_op& op = rec.m_waiting[dir].front();
      const std::intptr_t r = perform(op, m_syscalls);
      if (r == -EAGAIN) {
        rec.m_ready[dir] = false;
        return;
      }
      note_read(rec, op, r);
      op.unlink();
      complete(op, r);
    }
  }

  void complete(io_op& op, std::intptr_t r) noexcept {
    op.m_result = r;
    op.m_in_flight = false;
    --m_pending;
    op.wake();
  }

  owned_fd m_epfd;
  owned_fd m_eventfd;
  bool m_have_pwait2 = true;  // false once the kernel said ENOSYS
  std::size_t m_pending = 0;
  // A deque: growing it never moves a record, and the waiter lists point
  // at their heads.
  std::deque<fd_record> m_fds;
};

}  // namespace

std::unique_ptr<backend> make_epoll_backend() {
  return std::make_unique<epoll_backend>();
}

}  // namespace corio::detail
