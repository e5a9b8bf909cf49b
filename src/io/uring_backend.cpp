// io_uring backend: the default where the kernel allows it.
//
// Every operation is one SQE whose user_data is its io_op. Submissions are
// queued and sent by the loop's next poll, together with the wait, in one
// io_uring_enter per loop iteration (io_uring_submit_and_wait_timeout); a
// non-blocking poll with nothing to send reads the completion ring from
// shared memory and makes no system call at all.
//
// Cancellation is asynchronous: the kernel may still write into the
// operation's buffer until its completion arrives, so an aborted io_op sets
// m_defer_abort and its root is resumed only by that completion. A
// completion that carries a result despite the cancel is delivered (see
// io_op.hpp). The cross-thread wake-up is an eventfd watched by a multishot
// poll.
//
// Probing (make_uring_backend): io_uring_setup may be missing (old kernel,
// ENOSYS), refused (seccomp or kernel.io_uring_disabled, EPERM) or lack an
// opcode we use (IORING_REGISTER_PROBE); each case returns null with the
// reason, and the loop falls back to epoll.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "corio/event_loop.hpp"
#include "io/backend.hpp"

namespace corio::detail {
namespace {

constexpr std::uint64_t wake_token = 1;    // the eventfd's multishot poll
constexpr std::uint64_t ignore_token = 2;  // cancel requests: their own CQE is not needed

class uring_backend final : public backend {
 public:
  uring_backend() = default;
  ~uring_backend() override {
    if (m_ring_ready) io_uring_queue_exit(&m_ring);
    if (m_eventfd >= 0) ::close(m_eventfd);
  }

  /// Sets the ring up; returns null or why it cannot be used.
  const char* init() noexcept;
  uring_backend(const uring_backend&) = delete;
  uring_backend& operator=(const uring_backend&) = delete;

  bool arm_wakeup() noexcept {
    queue_wakeup_poll();
    return io_uring_submit(&m_ring) >= 0 && (m_queued = 0, true);
  }

  void poll(std::int64_t timeout_ns) override {
    if (timeout_ns == 0) {
      if (m_queued != 0) submit_now();
    } else if (io_uring_cq_ready(&m_ring) == 0) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{};
      __kernel_timespec* tsp = nullptr;
      if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
        tsp = &ts;
      }
      m_queued = 0;
      ++m_syscalls;  // one io_uring_enter: submits and waits
      const int r = io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, tsp, nullptr);
      if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
        throw std::system_error(-r, std::generic_category(), "io_uring_enter");
    } else if (m_queued != 0) {
      submit_now();
    }
    reap();
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(m_eventfd, &one, sizeof one);
  }

  bool start(io_op& op) noexcept override {
    io_uring_sqe* sqe = get_sqe();
    // The SQE's length is 32 bits; Linux moves at most this much per call
    // anyway (MAX_RW_COUNT), so a larger request is a short transfer.
    const auto len = static_cast<unsigned>(std::min<std::size_t>(op.m_len, 0x7ffff000));
    switch (op.m_kind) {
      case io_kind::recv:
        io_uring_prep_recv(sqe, op.m_fd, op.m_buf, len, 0);
        break;
      case io_kind::send:
        io_uring_prep_send(sqe, op.m_fd, op.m_buf, len, MSG_NOSIGNAL);
        break;
      case io_kind::accept:
        io_uring_prep_accept(sqe, op.m_fd, op.m_addr,
                             op.m_addr != nullptr ? &op.m_addrlen : nullptr,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
        break;
      case io_kind::connect:
        io_uring_prep_connect(sqe, op.m_fd, op.m_addr, op.m_addrlen);
        break;
      case io_kind::read:  // offset -1: the file's current position (pipes too)
        io_uring_prep_read(sqe, op.m_fd, op.m_buf, len, static_cast<__u64>(op.m_offset));
        break;
      case io_kind::write:
        io_uring_prep_write(sqe, op.m_fd, op.m_buf, len, static_cast<__u64>(op.m_offset));
        break;
      case io_kind::poll_in:
        io_uring_prep_poll_add(sqe, op.m_fd, POLLIN);
        break;
      case io_kind::recvmsg:
        io_uring_prep_recvmsg(sqe, op.m_fd, static_cast<msghdr*>(op.m_buf), 0);
        break;
      case io_kind::sendmsg:
        io_uring_prep_sendmsg(sqe, op.m_fd, static_cast<const msghdr*>(op.m_buf), MSG_NOSIGNAL);
        break;
    }
    io_uring_sqe_set_data(sqe, &op);
    op.m_in_flight = true;
    op.m_defer_abort = true;
    ++in_flight_on(op.m_fd);
    ++m_pending;
    ++m_queued;
    return true;
  }

  void cancel(io_op& op) noexcept override {
    if (!op.m_in_flight) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel(sqe, &op, 0);
    io_uring_sqe_set_data64(sqe, ignore_token);
    ++m_queued;
  }

  void forget_fd(int fd) noexcept override {
    // Most closes have nothing in flight (a connection closed by the task
    // that used it): they cost no system call.
    if (fd < 0 || static_cast<std::size_t>(fd) >= m_in_flight_by_fd.size() ||
        m_in_flight_by_fd[static_cast<std::size_t>(fd)] == 0)
      return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ignore_token);
    // Sent now: the caller closes fd next, and its number may be reused.
    submit_now();
  }

  [[nodiscard]] std::size_t io_pending() const noexcept override { return m_pending; }
  [[nodiscard]] bool wants_flush() const noexcept override { return m_queued != 0; }
  [[nodiscard]] const char* name() const noexcept override { return "io_uring"; }

 private:
  io_uring_sqe* get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
    while (sqe == nullptr) {  // the submission ring is full: send it
      submit_now();
      sqe = io_uring_get_sqe(&m_ring);
    }
    return sqe;
  }

  void submit_now() noexcept {
    ++m_syscalls;  // io_uring_enter (liburing enters when SQEs are queued)
    int r = io_uring_submit(&m_ring);
    while (r == -EINTR || r == -EAGAIN || r == -EBUSY) {
      reap();  // EBUSY: the completion ring is full; make room
      ++m_syscalls;
      r = io_uring_submit(&m_ring);
    }
    m_queued = 0;
  }

  /// Queues the multishot poll that turns notify()'s eventfd writes into
  /// completions (and so wakes a waiting io_uring_enter).
  void queue_wakeup_poll() noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_multishot(sqe, m_eventfd, POLLIN);
    io_uring_sqe_set_data64(sqe, wake_token);
    ++m_queued;
  }

  std::uint32_t& in_flight_on(int fd) {
    const auto i = static_cast<std::size_t>(fd);
    if (i >= m_in_flight_by_fd.size()) m_in_flight_by_fd.resize(std::max<std::size_t>(64, 2 * i));
    return m_in_flight_by_fd[i];
  }

  void reap() noexcept {
    unsigned head = 0;
    unsigned seen = 0;
    bool rearm = false;  // queued after the loop: get_sqe may reap
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&m_ring, head, cqe) {
      ++seen;
      const std::uint64_t token = cqe->user_data;
      if (token == wake_token) {
        std::uint64_t value = 0;
        ++m_syscalls;
        [[maybe_unused]] ssize_t r = ::read(m_eventfd, &value, sizeof value);
        if ((cqe->flags & IORING_CQE_F_MORE) == 0) rearm = true;
        continue;
      }
      if (token == ignore_token) continue;
      complete(*static_cast<io_op*>(io_uring_cqe_get_data(cqe)), cqe->res);
    }
    io_uring_cq_advance(&m_ring, seen);
    if (rearm) queue_wakeup_poll();
  }

  void complete(io_op& op, int res) noexcept {
    op.m_in_flight = false;
    op.m_defer_abort = false;
    --m_in_flight_by_fd[static_cast<std::size_t>(op.m_fd)];
    --m_pending;
    op.m_result = res;
    if (op.m_state == waiter::state::aborted) {
      // The cancel won (ECANCELED, or EINTR for an interrupted connect),
      // or the call completed first: then its result is kept.
      const bool cancelled = res == -ECANCELED || res == -EINTR;
      if (!cancelled) op.m_state = waiter::state::woken;
      current_loop().schedule(*op.m_task);
      return;
    }
    op.wake();
  }

  io_uring m_ring{};
  bool m_ring_ready = false;
  int m_eventfd = -1;
  std::size_t m_pending = 0;
  unsigned m_queued = 0;
  std::vector<std::uint32_t> m_in_flight_by_fd;  // indexed by descriptor
};

const char* uring_backend::init() noexcept {
  static constexpr int needed[] = {IORING_OP_RECV,     IORING_OP_SEND,         IORING_OP_READ,
                                   IORING_OP_WRITE,    IORING_OP_ACCEPT,       IORING_OP_CONNECT,
                                   IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_RECVMSG,
                                   IORING_OP_SENDMSG};
  io_uring_params params{};
  // Completions are reaped by this thread only, at its own pace: no need for
  // the kernel to interrupt it (COOP_TASKRUN); kernels that do not know the
  // flags get a plain ring.
  params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  int r = io_uring_queue_init_params(1024, &m_ring, &params);
  if (r == -EINVAL) {
    params = {};
    r = io_uring_queue_init_params(1024, &m_ring, &params);
  }
  if (r < 0) {
    return r == -ENOSYS  ? "io_uring is not in this kernel"
           : r == -EPERM ? "io_uring is refused (seccomp or kernel.io_uring_disabled)"
                         : "io_uring_setup failed";
  }
  m_ring_ready = true;
  io_uring_probe* probe = io_uring_get_probe_ring(&m_ring);
  bool ok = probe != nullptr;
  for (int op : needed)
    ok = ok && io_uring_opcode_supported(probe, op) != 0;
  if (probe != nullptr) io_uring_free_probe(probe);
  // EXT_ARG: the wait's timeout travels with io_uring_enter (5.11).
  if (!ok || (params.features & IORING_FEAT_EXT_ARG) == 0)
    return "io_uring lacks an operation corio needs";
  m_eventfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m_eventfd < 0) return "eventfd failed";
  if (!arm_wakeup()) return "io_uring could not watch the wake-up eventfd";
  return nullptr;
}

}  // namespace

std::unique_ptr<backend> make_uring_backend(const char** why) {
  auto b = std::make_unique<uring_backend>();
  if (const char* problem = b->init()) {
    *why = problem;
    return nullptr;
  }
  return b;
}

}  // namespace corio::detail
