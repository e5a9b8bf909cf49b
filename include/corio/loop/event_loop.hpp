// The event loop: one per thread, it runs tasks, timers and I/O.
//
// One iteration (`event_loop::tick`, src/loop/event_loop.cpp) is, in order:
//   1. read the clock once (the virtual clock does not move here);
//   2. move due timers out of the wheel and fire them (firing only
//      schedules the sleeping tasks);
//   3. run callbacks posted from other threads (`post`);
//   4. poll the backend: blocking until the next timer when nothing is
//      ready, otherwise without blocking, either because io_uring has
//      submissions queued (sent together, one system call per iteration)
//      or every `event_interval` ticks while I/O is pending, so a busy loop makes no
//      other system call;
//      in virtual-clock mode an idle loop jumps to the next timer instead;
//   5. resume ready tasks in FIFO order, at most `budget` of them, so that
//      timers and I/O are looked at again soon under load; the step also
//      ends when a task that yielded (`yield_now`) comes up again, so a
//      yield always lets due timers fire before the yielder goes on.
//   6. run the tick-end callbacks registered during the tick
//      (`loop_core::at_tick_end`): a batcher sends the keys that every task
//      of the tick asked for as one batch; then the messages this tick
//      batched for other loops (`post_batched`) go out, one push per loop.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "corio/detail/clock.hpp"
#include "corio/loop/detail/loop_core.hpp"

namespace corio {

/// Which system interface a loop waits on for I/O.
enum class io_backend_kind : std::uint8_t {
  automatic,  ///< io_uring when the kernel allows it, else epoll
  epoll,      ///< epoll (readiness plus non-blocking system calls)
  uring,      ///< io_uring, falling back to epoll when it is unavailable
};

/// How an event loop runs. The defaults suit production.
struct loop_options {
  /// The I/O backend. `CORIO_BACKEND=epoll|uring` in the environment
  /// overrides it.
  io_backend_kind backend = io_backend_kind::automatic;
  /// Never read the real clock; when nothing is ready the loop jumps to the
  /// next timer. Timer tests become instant and deterministic.
  bool virtual_clock = false;
  /// Where the virtual clock starts: a fixed time, so that a virtual-clock
  /// run (and how its timers fall on the wheel's ticks) is the same every
  /// time.
  clock::time_point virtual_start = clock::time_point(std::chrono::hours(1));
  /// Shuffle the ready tasks of each tick, to shake out code that depends
  /// on same-tick order. Unset: `CORIO_SHUFFLE=1` in the environment turns
  /// it on (the sanitizer test runs do); true or false here wins over the
  /// environment. The seed is logged once per process;
  /// `CORIO_SHUFFLE_SEED` replays it.
  std::optional<bool> shuffle{};
  /// The seed of the shuffle when it is on; 0 (the default) takes the
  /// process-wide seed (`CORIO_SHUFFLE_SEED`, else a random one, logged).
  std::uint64_t shuffle_seed = 0;
  /// Resumptions per iteration before timers and I/O are looked at again.
  std::uint32_t budget = 256;
  /// While tasks stay ready and I/O is pending, the loop polls for I/O
  /// (without blocking) every this many iterations (Tokio's
  /// `event_interval`, also 61 there): a busy loop still sees its sockets,
  /// and makes no system call in the iterations between.
  std::uint32_t event_interval = 61;
  /// How long an idle loop with no I/O in flight watches its inbox before
  /// it blocks: a message from another loop that comes meanwhile is run
  /// without either side making a system call (waking a blocked loop costs
  /// an eventfd write and a wake-up, microseconds). corio::runtime sets it
  /// for its loops; a lone loop has nobody to hear from quickly, so the
  /// default is zero. The spin counts as polling in the statistics, but
  /// for its first few hundred looks (a quick hand-off reads no clock).
  std::chrono::nanoseconds idle_spin{0};
  /// How late a long timer may fire so that nearby timers share one
  /// wake-up. A timer due in d is rounded up to a power-of-two multiple of
  /// at most min(timer_slack, d / 1024) nanoseconds (the kernel's select()
  /// heuristic): a 1 ms sleep stays within a microsecond, a 1 s sleep may
  /// fire up to ~262 us late and shares its wake-up with its neighbours.
  /// Every wake-up of a blocked thread costs microseconds of CPU (tens on a
  /// VM), so a large timer set is much cheaper this way. Timers never fire
  /// early; zero fires each at its exact deadline. Ignored on the virtual
  /// clock.
  std::chrono::nanoseconds timer_slack = std::chrono::microseconds(500);
  /// Loop statistics that read the clock: the timer-lag histogram and the
  /// time spent polling against running (a clock read around each poll that
  /// may block, nothing per resumption). The plain counters are always kept.
  bool stats = true;
  /// Debug mode, also turned on by `CORIO_DEBUG=1` in the environment.
  /// Reports, through `report`: a `task<>` destroyed without ever being
  /// awaited (naming its coroutine function, file and line), one destroyed
  /// while suspended, tasks still running when the main task ends, and
  /// resumptions that run longer than `slow_callback_duration` (naming the
  /// task and its await chain). SIGUSR1 makes the loop write `dump_tasks()`
  /// to the report at its next iteration. Debug mode times every
  /// resumption (two clock reads each), as asyncio's debug mode does.
  bool debug = false;
  /// The threshold of debug mode's slow-resumption report (asyncio's
  /// `loop.slow_callback_duration`).
  std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
  /// Time every resumption and add it to its task's run time (task dumps
  /// show it), without the rest of debug mode.
  bool task_timing = false;
  /// Watch the loop from a separate thread: when one iteration has run
  /// longer than `slow_callback_duration`, report it while it is still
  /// stuck, naming the task that runs and its await chain (captured on the
  /// loop's thread by a signal, SIGRTMIN+4, so nothing is read racily), and
  /// report again when the loop moves. Costs the loop one relaxed store per
  /// iteration. The report sink is then also called from the watchdog
  /// thread. Debug mode turns it on in a quieter form: the chain captured
  /// halfway through a long resumption goes into the slow-resumption report
  /// (it shows the coroutine that blocked even when it has finished by the
  /// end), and the watchdog reports by itself only a loop stuck for ten
  /// times slow_callback_duration.
  bool watchdog = false;
  /// Where reports go, one complete message per call; stderr when empty.
  std::function<void(const std::string&)> report{};
};

/// A loop's figures. The counters of detail::loop_counters are always kept
/// (an increment each): `iterations`, `resumptions`, `polls`,
/// `timers_fired`, `posted_callbacks` (callbacks posted from other threads
/// that have run), `live_tasks`, and the messages sent to other loops with
/// post_batched (`messages_sent`) in `message_batches` pushes; so are the
/// ones below up to
/// `read_buffer_bytes`. The times need `loop_options::stats`, the last two
/// debug mode and the watchdog.
struct loop_stats : detail::loop_counters {
  /// Timers armed on the loop now (sleeps, deadlines of `timeout`s and the like).
  std::size_t pending_timers = 0;
  /// System calls the loop's I/O backend made on this thread: each
  /// non-blocking attempt, epoll_wait and epoll_ctl, io_uring_enter,
  /// eventfd reads. (Descriptor set-up and close are not counted.)
  std::uint64_t syscalls = 0;
  /// Bytes of received data the loop holds for reads not yet made (on
  /// io_uring, the provided buffers that multishot receives filled; at most
  /// a few per socket). Always 0 on epoll, where data waits in the kernel.
  std::size_t read_buffer_bytes = 0;
  /// Since the loop was made: time blocked waiting for I/O or timers. Kept
  /// with `stats`.
  std::chrono::nanoseconds polling{0};
  /// Since the loop was made: the time not spent `polling` (running tasks,
  /// timers, callbacks), up to now (with a virtual clock: to the current
  /// tick's time). Without `stats` it is the whole time since the loop was
  /// made. It never steps back from one reading to the next.
  std::chrono::nanoseconds running{0};
  /// Resumptions longer than slow_callback_duration (debug mode).
  std::uint64_t slow_resumptions = 0;
  /// Await chains the watchdog captured on this loop while a step ran long.
  std::uint64_t watchdog_captures = 0;
};

namespace detail {
class loop_hooks;
std::unique_ptr<backend> make_backend(io_backend_kind wanted);

/// A callback posted from another thread; intrusive so that executors can
/// post completions without allocating.
struct posted_node {
  posted_node* m_next = nullptr;
  void (*m_run)(posted_node&) noexcept = nullptr;
};
}  // namespace detail

class work_guard;
namespace detail {
struct external_work;

/// What a work_guard posts when it lets go: it knows its loop, so the
/// guard needs nothing else.
struct guard_release : posted_node {
  event_loop* m_loop = nullptr;
};

loop_core& core_of(event_loop& loop) noexcept;
const loop_core& core_of(const event_loop& loop) noexcept;
void run_main(event_loop& loop, task_base& main);
void install_hooks(event_loop& loop, std::unique_ptr<loop_hooks> hooks) noexcept;
}  // namespace detail

/// A single-threaded event loop. Most code never names it: `corio::run()`
/// makes one, and awaitables find it through the current loop.
///
/// \code
///   corio::event_loop loop({.virtual_clock = true});
///   int v = corio::run(loop, compute());  // see run.hpp
/// \endcode
class event_loop final : private detail::loop_core {
 public:
  /// Makes a loop with `options` (the environment variables named there may
  /// override them) and opens its I/O backend. Does not run anything: a loop
  /// runs through `corio::run` (run.hpp). Throws std::system_error when the
  /// backend cannot be set up.
  explicit event_loop(loop_options options = {});
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// The loop running on this thread, or nullptr.
  [[nodiscard]] static event_loop* current() noexcept {
    return static_cast<event_loop*>(t_current);
  }

  /// The time of the current tick.
  [[nodiscard]] clock::time_point now() const noexcept {
    return clock::time_point(clock::duration(m_now_ns));
  }

  /// Runs `fn` on the loop's thread soon. Safe from any thread; wakes the
  /// loop (one eventfd write) only when it sleeps.
  void post(std::function<void()> fn);
  /// As above without allocating: `node` must stay alive until it has run.
  void post(detail::posted_node& node) noexcept;
  /// As post(node), from a task or callback of another loop (or of this
  /// one): the node waits in the calling loop's outbox, with the rest of
  /// what that loop's tick sends here, and all of it goes in one push at
  /// the end of the tick (or once 256 have gathered; or, when this loop
  /// waits for work, after the resumption that sent it, once a tick). Off
  /// a loop it is a plain post. The order of one sender's messages is kept.
  void post_batched(detail::posted_node& node) noexcept;
  /// How many tasks this loop holds, as it last published (after running
  /// callbacks posted to it, and before a poll that may block): what a
  /// balanced spawn weighs on other loops.
  [[nodiscard]] std::size_t published_load() const noexcept {
    return m_published_load.load(std::memory_order_relaxed);
  }
  /// True while the loop, out of work, spins or polls for more (a hint,
  /// from any thread): a runtime wakes such a loop to steal queued work.
  [[nodiscard]] bool waiting_for_work() const noexcept {
    return m_waiting.load(std::memory_order_relaxed);
  }

  /// A guard that keeps the loop waiting for work on another thread that
  /// will `post` back (see work_guard). Call it on the loop's thread.
  [[nodiscard]] work_guard keep_alive();

  /// The loop's figures now (see loop_stats). Not synchronised: call it on
  /// the loop's thread (`every_loop_stats()` reads every loop of a runtime).
  [[nodiscard]] loop_stats stats() const noexcept;
  /// Sends a report (debug mode's findings, dumps) to `loop_options::report`.
  using loop_core::report;
  /// The options in effect: as given, except that `CORIO_DEBUG` may have
  /// turned debug mode on, debug mode turns the watchdog on, and a build
  /// with CORIO_NO_OBSERVE turns debug, task_timing, stats and watchdog off.
  /// (`CORIO_BACKEND` and `CORIO_SHUFFLE` are not reflected here.)
  [[nodiscard]] const loop_options& options() const noexcept { return m_options; }
  /// The I/O backend in use, "epoll" or "io_uring" (after any fallback).
  [[nodiscard]] const char* backend_name() const noexcept;

 private:
  friend struct detail::external_work;
  friend detail::loop_core& detail::core_of(event_loop& loop) noexcept;
  friend const detail::loop_core& detail::core_of(const event_loop& loop) noexcept;
  friend void detail::run_main(event_loop& loop, detail::task_base& main);
  friend void detail::install_hooks(event_loop& loop,
                                    std::unique_ptr<detail::loop_hooks> hooks) noexcept;
  friend class detail::loop_core;

  // Counts work outstanding on other threads that will post back, so the
  // loop waits for it instead of reporting a deadlock. Both calls belong on
  // the loop's thread (the remove in the posted completion itself): user
  // code holds a work_guard, corio's executors use detail::external_work.
  // Written by the loop's thread only: a plain add, no locked instruction.
  void add_external_work() noexcept {
    m_external.store(m_external.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void remove_external_work() noexcept {
    m_external.store(m_external.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  // Another thread ends `n` of this loop's outside work without posting
  // here (a loop stealing balanced spawns this loop kept): one locked add
  // on a counter of its own, so that the owner's add and remove stay plain.
  void settle_external_work(std::int64_t n) noexcept {
    m_external_settled.fetch_add(n, std::memory_order_release);
  }
  // The outside work still outstanding, on the loop's thread.
  [[nodiscard]] bool external_work_outstanding() const noexcept {
    return m_external.load(std::memory_order_relaxed) !=
           m_external_settled.load(std::memory_order_acquire);
  }
  /// Runs ticks until `main` is done; then cancels and drains the rest.
  void run_root(detail::task_base& main);
  void tick();
  void run_posted() noexcept;
  // Pushes a chain of nodes (newest first, as the inbox keeps them) at once.
  void post_chain(detail::posted_node& newest, detail::posted_node& oldest) noexcept;
  void queue_outbound(event_loop& target, detail::posted_node& node) noexcept;
  void flush_outbox() noexcept;
  struct outbox_entry;
  // Pushes one target's batch and empties its entry.
  void send_batch(outbox_entry& e) noexcept;
  // Sends entry `i`'s batch; the last entry fills its place.
  void send_entry(std::size_t i) noexcept;
  // Sends at once the batches of loops that wait for work, so a long tick
  // here does not keep them idle until it ends; once per target and tick.
  void send_to_waiting() noexcept;
  // Watches the inbox for up to idle_spin (bounded by `timeout_ns`, -1:
  // none): true when a message came.
  bool spin_for_post(std::int64_t timeout_ns) noexcept;
  // Looks at the inbox `looks` times, pausing between: true when a
  // message came.
  [[nodiscard]] bool look_for_post(int looks) const noexcept;
  void publish_load() noexcept {
    m_published_load.store(m_counters.live_tasks, std::memory_order_relaxed);
  }
  // Relay: send to waiting loops after each resumption (send_to_waiting).
  template <bool Hooked, bool Relay>
  std::uint64_t run_ready();
  void poll_io(std::int64_t timeout_ns);
  /// How long an idle loop may block for a timer due at `deadline_ns`.
  [[nodiscard]] std::int64_t wait_for_timer_ns(std::int64_t deadline_ns) const noexcept;
  void shuffle_ready();
  // Debug mode: a task of another loop was scheduled here (a loop-local
  // primitive used across loops); reports it and posts it back home.
  void send_home(detail::task_base& t);
  void shutdown();
  [[nodiscard]] bool has_ready() const noexcept { return m_ready_head != nullptr; }
  [[nodiscard]] bool idle_forever() const noexcept;

  loop_options m_options;
  bool m_shuffle = false;
  std::unique_ptr<detail::backend> m_backend;
  std::unique_ptr<detail::loop_hooks> m_owned_hooks;
  // What a poster touches, on a line of its own (the loop's own counts and
  // outbox start on the next): whether the loop waits, then the push.
  // The inbox of posted callbacks, a lock-free stack. Posters push with a
  // release CAS (seq_cst: see m_sleeping); the loop takes the whole stack
  // with an acquire exchange, so a node's contents are visible to it.
  alignas(64) std::atomic<detail::posted_node*> m_inbox{nullptr};
  // Set by the loop before a poll that may block, cleared after. seq_cst
  // with the inbox push and load (a Dekker pair): either the poster sees
  // the loop asleep and writes the eventfd, or the loop sees the node and
  // does not block.
  std::atomic<bool> m_sleeping{false};
  // Posters between publishing their node and their last touch of the
  // loop: once a node is published the loop may run it and be destroyed,
  // so the destructor waits for this to reach zero (acquire/release pair
  // with the poster's decrement).
  std::atomic<int> m_posting{0};
  // True while the loop spins or polls with a timeout, out of work: others
  // send it their batches at once instead of at their tick's end (relaxed:
  // a hint; the inbox and m_sleeping carry the correctness).
  std::atomic<bool> m_waiting{false};
  // Outstanding outside work; changed and read on the loop's thread only
  // (posted completions decrement it there), so relaxed suffices; atomic
  // because work_guard's holder may read it for diagnostics.
  alignas(64) std::atomic<std::int64_t> m_external{0};
  // The part of m_external that other threads ended (settle_external_work).
  std::atomic<std::int64_t> m_external_settled{0};
  // Messages for other loops gathered during this tick (post_batched),
  // per target loop, newest first; empty between ticks.
  struct outbox_entry {
    event_loop* m_target = nullptr;
    detail::posted_node* m_newest = nullptr;
    detail::posted_node* m_oldest = nullptr;
    std::uint32_t m_count = 0;
    bool m_relayed = false;  // sent early to a waiting target this tick
  };
  static constexpr std::size_t k_outbox_targets = 8;
  static constexpr std::uint32_t k_outbox_batch = 256;
  std::array<outbox_entry, k_outbox_targets> m_outbox{};
  std::size_t m_outbox_used = 0;
  // Entries not yet relayed this tick (send_to_waiting looks at these).
  std::size_t m_unrelayed = 0;
  // Read by other loops' balanced spawns (relaxed: a hint).
  std::atomic<std::size_t> m_published_load{0};
  std::uint64_t m_rng = 0;
  std::uint32_t m_ticks_since_poll = 0;
  loop_core* m_previous = nullptr;
};

namespace detail {
inline loop_core& core_of(event_loop& loop) noexcept {
  return loop;
}
inline const loop_core& core_of(const event_loop& loop) noexcept {
  return loop;
}
}  // namespace detail

/// Holds a loop open for work running on another thread, and posts that
/// work's results back to it. While a guard is alive the loop waits (it
/// does not report a deadlock when it has nothing else to do); releasing
/// the guard, by `reset()` or its destructor, from any thread, is itself
/// posted, so the loop lets go only after every callback posted through
/// the guard before it has run. Make it on the loop's thread and move it
/// to the thread that does the work.
///
/// \code
///   std::thread worker([guard = corio::event_loop::current()->keep_alive(), &done] {
///     auto value = slow_computation();
///     guard.post([&done, value] { done.set(value); });
///   });  // the guard goes with the thread's lambda
/// \endcode
class work_guard {
 public:
  /// An empty guard that holds no loop (`loop()` is nullptr).
  work_guard() noexcept = default;
  /// Holds `loop` open (as `loop.keep_alive()`). Call it on the loop's
  /// thread; throws std::bad_alloc when it cannot allocate its release message.
  explicit work_guard(event_loop& loop);
  /// Takes over `o`'s hold on its loop; `o` becomes empty.
  work_guard(work_guard&& o) noexcept : m_release(std::exchange(o.m_release, nullptr)) {}
  /// Releases this guard's loop (as `reset()`) and takes over `o`'s hold.
  work_guard& operator=(work_guard&& o) noexcept {
    if (this != &o) {
      reset();
      m_release = std::exchange(o.m_release, nullptr);
    }
    return *this;
  }
  work_guard(const work_guard&) = delete;
  work_guard& operator=(const work_guard&) = delete;
  ~work_guard() { reset(); }

  /// Runs `fn` on the loop's thread soon (event_loop::post). Throws
  /// std::logic_error on an empty or released guard.
  void post(std::function<void()> fn) const;
  /// Lets the loop go, once what was posted before has run. Idempotent.
  void reset() noexcept;
  /// The loop held, or nullptr once released.
  [[nodiscard]] event_loop* loop() const noexcept {
    return m_release != nullptr ? m_release->m_loop : nullptr;
  }

 private:
  detail::guard_release* m_release = nullptr;  // allocated up front: reset() cannot fail
};

namespace detail {

/// The running event loop, for the parts that need more than its core
/// (posting from other threads, the backend's name).
[[nodiscard]] inline event_loop& current_event_loop() noexcept {
  return *event_loop::current();
}

/// For corio's own cross-thread parts (offload, the blocking pool,
/// channel): counts their outstanding work on the loop, on the loop's
/// thread. User code holds a work_guard instead.
struct external_work {
  static void add(event_loop& loop) noexcept { loop.add_external_work(); }
  static void remove(event_loop& loop) noexcept { loop.remove_external_work(); }
  /// From another thread: `n` of `loop`'s outside work ended, and nothing
  /// will be posted there for it.
  static void settle_elsewhere(event_loop& loop, std::int64_t n) noexcept {
    loop.settle_external_work(n);
  }
};

}  // namespace detail
}  // namespace corio
