// io_uring backend: the default where the kernel allows it.
//
// Every operation is one SQE whose user_data is its io_op. Submissions are
// queued and sent by the loop's next poll, together with the wait, in one
// io_uring_enter per loop iteration (io_uring_submit_and_wait_timeout); a
// non-blocking poll with nothing to send reads the completion ring from
// shared memory and makes no system call at all.
//
// Completion work is deferred (DEFER_TASKRUN, 6.1): the kernel finishes our
// completions only inside our own io_uring_enter, in a batch, and raises a
// flag in the shared ring when some wait (TASKRUN_FLAG); the loop reads the
// flag each iteration and enters only then. Without it (COOP_TASKRUN), a
// completion that arrived while the loop was busy running tasks waited for
// the thread's next kernel entry, often a timer tick: ~50,000 loop
// iterations, where it now takes one.
//
// Cancellation is asynchronous: the kernel may still write into the
// operation's buffer until its completion arrives, so an aborted io_op sets
// m_defer_abort and its root is resumed only by that completion. A
// completion that carries a result despite the cancel is delivered (see
// io_op.hpp). The cross-thread wake-up is an eventfd watched by a multishot
// poll.
//
// Multishot (kernel 5.19+): a socket read with nothing buffered arms one
// multishot receive that stays armed across reads, the kernel choosing a
// buffer from a ring of provided buffers for each arrival; a listener's
// accept arms one multishot accept. Their completions queue per descriptor
// (fd_stream) and reads are served from the queue, so a steady connection
// costs one completion per arrival and no re-armed poll per call. A waiting
// read or accept is cancelled at once (it is only unlinked; the data or
// descriptor stays queued for the next call). A socket may hold only a few
// unread buffers before its multishot is stopped (flow control: the kernel's
// socket buffer, not ours, absorbs a fast sender). When the ring runs dry, or
// a read asks for more than one buffer holds, the read is an ordinary
// one-shot recv into the caller's buffer.
//
// Probing (make_uring_backend): io_uring_setup may be missing (old kernel,
// ENOSYS), refused (seccomp or kernel.io_uring_disabled, EPERM) or lack an
// opcode we use (IORING_REGISTER_PROBE); each case returns null with the
// reason, and the loop falls back to epoll.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "corio/loop/event_loop.hpp"
#include "detail/environment.hpp"
#include "io/backend.hpp"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace corio::detail {
namespace {

// liburing maps and unmaps the rings with raw system calls, which
// ThreadSanitizer does not see: when a loop on one thread closes its ring
// and a loop on another maps a new one at the same address, TSan takes the
// new ring's first writes for a race with the old ring's last ones. Every
// ring's teardown releases, and every ring's set-up acquires, this one
// object: the set-up can only reuse the memory after a teardown unmapped it.
#if defined(__SANITIZE_THREAD__)
char g_ring_memory_handover;
void ring_memory_released() noexcept {
  __tsan_release(&g_ring_memory_handover);
}
void ring_memory_acquired() noexcept {
  __tsan_acquire(&g_ring_memory_handover);
}
#else
void ring_memory_released() noexcept {}
void ring_memory_acquired() noexcept {}
#endif

// user_data: an io_op's address (8-aligned, so its low 3 bits are 0), or a
// token whose low 3 bits say what it is.
constexpr std::uint64_t wake_token = 1;    // the eventfd's multishot poll
constexpr std::uint64_t ignore_token = 2;  // cancel requests: their own CQE is not needed
constexpr std::uint64_t stream_tag = 3;  // a multishot: | accept << 3 | fd << 4 | generation << 32

constexpr unsigned k_buf_size = 16 * 1024;  // one provided buffer
constexpr unsigned k_buf_count = 256;       // a power of two; 4 MiB, touched as used
constexpr unsigned k_buf_low_water = 16;    // below this many free, reads go one-shot
constexpr unsigned k_max_armed_receives = k_buf_count / 2;
constexpr std::size_t k_recv_queue_max = 4;     // unread buffers a socket may hold
constexpr std::size_t k_accept_queue_max = 64;  // accepted descriptors a listener may hold

/// The provided buffers of multishot receives: k_buf_count buffers of
/// k_buf_size in one mapping, lent to the kernel through a buffer ring
/// (group 0). A completion names the buffer it filled; give_back() returns
/// it once its bytes are consumed.
class buffer_ring {
 public:
  buffer_ring() = default;
  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;
  ~buffer_ring() {
    if (m_memory != nullptr) ::munmap(m_memory, bytes());
  }

  /// Maps and registers the ring; false when the kernel cannot (before 5.19).
  bool init(io_uring& ring) noexcept {
    void* mem =
        ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return false;
    m_memory = mem;
    m_ring = static_cast<io_uring_buf_ring*>(mem);
    m_data = static_cast<char*>(mem) + ring_bytes();
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(m_ring);
    reg.ring_entries = k_buf_count;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&ring, &reg, 0) != 0) return false;
    io_uring_buf_ring_init(m_ring);
    for (unsigned bid = 0; bid < k_buf_count; ++bid)
      io_uring_buf_ring_add(m_ring, data(bid), k_buf_size, static_cast<unsigned short>(bid),
                            io_uring_buf_ring_mask(k_buf_count), static_cast<int>(bid));
    io_uring_buf_ring_advance(m_ring, k_buf_count);
    m_free = k_buf_count;
    return true;
  }

  [[nodiscard]] char* data(unsigned bid) const noexcept {
    return m_data + std::size_t{bid} * k_buf_size;
  }
  /// The kernel filled `bid` (a completion said so).
  void taken() noexcept { --m_free; }
  void give_back(unsigned bid) noexcept {
    io_uring_buf_ring_add(m_ring, data(bid), k_buf_size, static_cast<unsigned short>(bid),
                          io_uring_buf_ring_mask(k_buf_count), 0);
    io_uring_buf_ring_advance(m_ring, 1);
    ++m_free;
  }
  [[nodiscard]] unsigned free_count() const noexcept { return m_free; }

 private:
  static constexpr std::size_t ring_bytes() { return 4096; }  // >= k_buf_count * 16, page-aligned
  static constexpr std::size_t bytes() {
    return ring_bytes() + std::size_t{k_buf_count} * k_buf_size;
  }
  static_assert(k_buf_count * sizeof(io_uring_buf) <= 4096);

  void* m_memory = nullptr;
  io_uring_buf_ring* m_ring = nullptr;
  char* m_data = nullptr;
  unsigned m_free = 0;
};

/// One queued multishot completion: bytes in a buffer (recv, res > 0), an
/// accepted descriptor (accept, res >= 0), end of stream (0) or -errno.
struct stream_entry {
  std::int32_t res = 0;
  std::uint32_t consumed = 0;  // bytes of the buffer already read
  std::uint16_t bid = 0;
  bool has_buffer = false;
};

/// A descriptor's multishot: whether one is armed, its queued completions
/// and the reads or accepts waiting for one. `generation` changes when the
/// descriptor is closed, so late completions of the old one are recognised.
struct fd_stream {
  std::uint32_t generation = 0;
  bool armed = false;
  bool stopping = false;  // we asked the kernel to stop it (flow control)
  bool accept = false;
  intrusive_list<io_op> waiters;
  std::vector<stream_entry> queue;
  std::size_t head = 0;

  [[nodiscard]] std::size_t queued() const noexcept { return queue.size() - head; }
  stream_entry& front() noexcept { return queue[head]; }
  void pop() noexcept {
    if (++head == queue.size()) {
      queue.clear();
      head = 0;
    }
  }
};

std::uint64_t stream_token(int fd, const fd_stream& s) noexcept {
  return stream_tag | (std::uint64_t{s.accept} << 3) | (static_cast<std::uint64_t>(fd) << 4) |
         (std::uint64_t{s.generation} << 32);
}

class uring_backend final : public backend {
 public:
  uring_backend() = default;
  ~uring_backend() override {
    for (auto& st : m_streams)  // descriptors accepted and never taken
      if (st && st->accept)
        for (std::size_t i = st->head; i < st->queue.size(); ++i)
          if (st->queue[i].res >= 0) ::close(st->queue[i].res);
    if (m_ring_ready) {
      ring_memory_released();
      io_uring_queue_exit(&m_ring);
    }
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
      if (m_queued != 0) {
        submit_now();
      } else if (work_pending()) {
        ++m_syscalls;
        io_uring_get_events(&m_ring);
      }
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
    if (m_multishot &&
        (op.m_kind == io_kind::recv || (op.m_kind == io_kind::accept && op.m_addr == nullptr))) {
      switch (start_on_stream(op)) {
        case outcome::done:
          return false;
        case outcome::parked:
          return true;
        case outcome::one_shot:
          break;
      }
    }
    submit_one_shot(op);
    ++m_pending;
    return true;
  }

  void cancel(io_op& op) noexcept override {
    if (op.linked()) {  // waiting on a multishot: nothing of it is in the kernel
      op.unlink();
      op.m_in_flight = false;
      --m_pending;
      return;
    }
    if (!op.m_in_flight) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel(sqe, &op, 0);
    io_uring_sqe_set_data64(sqe, ignore_token);
    ++m_queued;
  }

  void forget_fd(int fd) noexcept override {
    if (fd < 0) return;
    const auto i = static_cast<std::size_t>(fd);
    const bool multishot = i < m_streams.size() && m_streams[i] && close_stream(*m_streams[i]);
    // Most closes have nothing in flight (a connection closed by the task
    // that used it): they cost no system call.
    if (i >= m_in_flight_by_fd.size() || m_in_flight_by_fd[i] == 0) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ignore_token);
    // Sent now: the caller closes fd next, and its number may be reused.
    submit_now();
    // The disowned multishot's late completions carry the old generation
    // and are not counted back.
    if (multishot) --m_in_flight_by_fd[i];
  }

  [[nodiscard]] std::size_t io_pending() const noexcept override { return m_pending; }
  [[nodiscard]] bool wants_flush() const noexcept override {
    return m_queued != 0 || work_pending();
  }
  [[nodiscard]] const char* name() const noexcept override { return "io_uring"; }
  [[nodiscard]] std::size_t read_buffer_bytes() const noexcept override {
    return m_buffers_ok ? std::size_t{k_buf_count - m_buffers.free_count()} * k_buf_size : 0;
  }

  /// CORIO_URING_MULTISHOT=0 keeps every read and accept one-shot (for
  /// comparing the two in benchmarks).
  void set_multishot(bool on) noexcept { m_multishot = on; }

 private:
  enum class outcome : std::uint8_t { done, parked, one_shot };

  /// The one SQE of an ordinary operation: its completion wakes `op`.
  void submit_one_shot(io_op& op) noexcept {
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
      case io_kind::poll_out:
        io_uring_prep_poll_add(sqe, op.m_fd, POLLOUT);
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
    ++m_queued;
  }

  // ---- multishot streams (see the file comment) ----

  outcome start_on_stream(io_op& op) noexcept {
    const bool accept = op.m_kind == io_kind::accept;
    fd_stream& st = stream_of(op.m_fd);
    if (st.queued() != 0) {
      if (st.accept != accept)
        return outcome::one_shot;  // a recv on a listener: let the kernel say
      take_queued(st, op);
      return outcome::done;
    }
    if (st.armed) {
      if (st.accept != accept) return outcome::one_shot;
    } else {
      if (!buffers_ready()) return outcome::one_shot;
      if (!accept && (op.m_len > k_buf_size || !buffers_plentiful())) return outcome::one_shot;
      arm(st, op.m_fd, accept);
    }
    park(st, op);
    return outcome::parked;
  }

  /// Whether a new multishot receive may start: not more of them than half
  /// the buffers (with thousands of connections, the others read one-shot),
  /// and after the ring ran dry none until half of it is free again, so they
  /// do not keep racing for the last few.
  bool buffers_plentiful() noexcept {
    if (m_starved) m_starved = m_buffers.free_count() < k_buf_count / 2;
    return !m_starved && m_buffers.free_count() >= k_buf_low_water &&
           m_armed_receives < k_max_armed_receives;
  }

  void park(fd_stream& st, io_op& op) noexcept {
    st.waiters.push_back(op);
    op.m_in_flight = true;
    op.m_defer_abort = false;  // cancelling it is only unlinking it
    ++m_pending;
  }

  /// Multishot needs kernel 5.19, the same as buffer rings: registering the
  /// ring (on first use) is the probe for both.
  bool buffers_ready() noexcept {
    if (!m_buffers_tried) {
      m_buffers_tried = true;
      m_buffers_ok = m_buffers.init(m_ring);
      if (!m_buffers_ok) m_multishot = false;
    }
    return m_buffers_ok;
  }

  void arm(fd_stream& st, int fd, bool accept) noexcept {
    io_uring_sqe* sqe = get_sqe();
    st.accept = accept;
    if (accept) {
      io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    } else {
      io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
    }
    io_uring_sqe_set_data64(sqe, stream_token(fd, st));
    if (!accept) ++m_armed_receives;
    st.armed = true;
    ++in_flight_on(fd);
    ++m_queued;
  }

  /// Serves `op` from the queue (which is not empty): an accepted
  /// descriptor or error, or as many queued bytes as fit.
  void take_queued(fd_stream& st, io_op& op) noexcept {
    if (st.accept || !st.front().has_buffer) {
      op.m_result = st.front().res;
      st.pop();
      return;
    }
    auto* out = static_cast<char*>(op.m_buf);
    std::size_t got = 0;
    while (got < op.m_len && st.queued() != 0 && st.front().has_buffer) {
      stream_entry& e = st.front();
      const std::size_t n = std::min(op.m_len - got, static_cast<std::size_t>(e.res) - e.consumed);
      std::memcpy(out + got, m_buffers.data(e.bid) + e.consumed, n);
      got += n;
      e.consumed += static_cast<std::uint32_t>(n);
      if (e.consumed == static_cast<std::uint32_t>(e.res)) {
        m_buffers.give_back(e.bid);
        st.pop();
      }
    }
    op.m_result = static_cast<std::intptr_t>(got);
  }

  void stream_completion(std::uint64_t token, int res, unsigned flags) noexcept {
    const bool accept = ((token >> 3) & 1) != 0;
    const auto fd = static_cast<std::size_t>((token >> 4) & 0x0fff'ffff);
    const auto generation = static_cast<std::uint32_t>(token >> 32);
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
    const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (has_buffer) m_buffers.taken();
    fd_stream* st = fd < m_streams.size() ? m_streams[fd].get() : nullptr;
    if (st == nullptr || st->generation != generation) {  // its descriptor was closed
      if (has_buffer) m_buffers.give_back(bid);
      if (accept && res >= 0) ::close(res);
      return;
    }
    if (res == -ENOBUFS) m_starved = true;
    const bool ours = res == -ENOBUFS || (res == -ECANCELED && st->stopping);
    if (!more) {
      if (!accept) --m_armed_receives;
      st->armed = false;
      st->stopping = false;
      --m_in_flight_by_fd[fd];
    }
    if (has_buffer && res > 0) {
      st->queue.push_back({res, 0, bid, true});
    } else {
      if (has_buffer) m_buffers.give_back(bid);
      if (!ours) st->queue.push_back({res, 0, 0, false});
    }
    while (!st->waiters.empty() && st->queued() != 0) {
      io_op& op = *st->waiters.pop_front();
      take_queued(*st, op);
      finish_parked(op);
    }
    if (!st->waiters.empty() && !st->armed) {
      restart(*st, static_cast<int>(fd), res == -ENOBUFS);
    } else if (st->armed && !st->stopping &&
               st->queued() >= (st->accept ? k_accept_queue_max : k_recv_queue_max)) {
      // Nobody reads: stop taking more than a few buffers; the socket's own
      // buffer holds the rest and the sender slows down.
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, token, 0);
      io_uring_sqe_set_data64(sqe, ignore_token);
      ++m_queued;
      st->stopping = true;
    }
  }

  /// The multishot ended (stopped, or out of buffers) with calls still
  /// waiting: arm it again, or give each its own one-shot call. After
  /// ENOBUFS it is one-shot: many sockets received at once and re-arming
  /// them all would only race for the same few buffers again.
  void restart(fd_stream& st, int fd, bool starved) noexcept {
    if (st.accept || (!starved && buffers_plentiful())) {
      arm(st, fd, st.accept);
      return;
    }
    while (io_op* op = st.waiters.pop_front())
      submit_one_shot(*op);  // still counted in m_pending
  }

  void finish_parked(io_op& op) noexcept {
    op.m_in_flight = false;
    --m_pending;
    op.wake();
  }

  /// The descriptor is being closed: release what is queued, fail the
  /// waiting calls with ECANCELED, and disown the multishot (forget_fd
  /// cancels it in the kernel; its late completions see a new generation).
  /// Returns whether a multishot was armed (the kernel still holds it).
  bool close_stream(fd_stream& st) noexcept {
    for (std::size_t i = st.head; i < st.queue.size(); ++i) {
      const stream_entry& e = st.queue[i];
      if (e.has_buffer)
        m_buffers.give_back(e.bid);
      else if (st.accept && e.res >= 0)
        ::close(e.res);
    }
    st.queue.clear();
    st.head = 0;
    while (io_op* op = st.waiters.pop_front()) {
      op->m_result = -ECANCELED;
      finish_parked(*op);
    }
    ++st.generation;
    const bool was_armed = st.armed;
    if (was_armed && !st.accept) --m_armed_receives;
    st.armed = false;
    st.stopping = false;
    return was_armed;
  }

  fd_stream& stream_of(int fd) {
    const auto i = static_cast<std::size_t>(fd);
    if (i >= m_streams.size()) m_streams.resize(std::max<std::size_t>(64, 2 * i));
    if (!m_streams[i]) m_streams[i] = std::make_unique<fd_stream>();
    return *m_streams[i];
  }
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
    int r = submit_and_collect();
    while (r == -EINTR || r == -EAGAIN || r == -EBUSY) {
      reap();  // EBUSY: the completion ring is full; make room
      ++m_syscalls;
      r = submit_and_collect();
    }
    m_queued = 0;
  }

  /// With deferred task work, the same system call that submits also posts
  /// the completions the kernel holds for us.
  int submit_and_collect() noexcept {
    return m_deferred ? io_uring_submit_and_get_events(&m_ring) : io_uring_submit(&m_ring);
  }

  /// Deferred task work: completions wait in the kernel until we enter it,
  /// and the kernel raises IORING_SQ_TASKRUN when some do.
  [[nodiscard]] bool work_pending() const noexcept {
    return m_deferred && (IO_URING_READ_ONCE(*m_ring.sq.kflags) & IORING_SQ_TASKRUN) != 0;
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
      if ((token & 7) == stream_tag) {
        stream_completion(token, cqe->res, cqe->flags);
        continue;
      }
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
  bool m_deferred = false;  // IORING_SETUP_DEFER_TASKRUN
  int m_eventfd = -1;
  std::size_t m_pending = 0;
  unsigned m_queued = 0;
  std::vector<std::uint32_t> m_in_flight_by_fd;       // indexed by descriptor
  std::vector<std::unique_ptr<fd_stream>> m_streams;  // indexed by descriptor
  buffer_ring m_buffers;  // unmapped after the destructor body exits the ring
  bool m_multishot = true;
  bool m_buffers_tried = false;
  bool m_buffers_ok = false;
  bool m_starved = false;  // the ring ran dry (see buffers_plentiful)
  unsigned m_armed_receives = 0;
};

const char* uring_backend::init() noexcept {
  static constexpr int needed[] = {IORING_OP_RECV,     IORING_OP_SEND,         IORING_OP_READ,
                                   IORING_OP_WRITE,    IORING_OP_ACCEPT,       IORING_OP_CONNECT,
                                   IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_RECVMSG,
                                   IORING_OP_SENDMSG};
  // Completions are reaped by this thread only, at its own pace: the kernel
  // need not interrupt it. Best (6.1): DEFER_TASKRUN, completion work runs
  // only when we enter the kernel, batched, and TASKRUN_FLAG tells us when
  // some waits; else COOP_TASKRUN (5.19); older kernels get a plain ring.
  static constexpr unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, 0};
  io_uring_params params{};
  int r = -EINVAL;
  for (unsigned flags : flag_sets) {
    params = {};
    params.flags = flags;
    r = io_uring_queue_init_params(1024, &m_ring, &params);
    if (r != -EINVAL) break;
  }
  m_deferred = r == 0 && (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  if (r == 0) ring_memory_acquired();
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
  if (!env_flag("CORIO_URING_MULTISHOT", true)) b->set_multishot(false);
  if (const char* problem = b->init()) {
    *why = problem;
    return nullptr;
  }
  return b;
}

}  // namespace corio::detail
