// The messages that carry work between the event loops of a runtime
// (corio/runtime.hpp): submit_to, spawn_on, invoke_on_all.
#pragma once

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/cancelled_error.hpp"
#include "corio/detail/frame_pool.hpp"
#include "corio/detail/xorshift.hpp"
#include "corio/exec/thread_pool.hpp"
#include "corio/flow/gather.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/sync/detail/spinning_mutex.hpp"
#include "corio/task/spawn.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Thrown by submit_to and spawn_on once the runtime is stopping (its main
/// task ended): no new work crosses loops then.
class runtime_stopping_error : public std::runtime_error {
 public:
  runtime_stopping_error() : std::runtime_error("corio: the runtime is stopping") {}
};

namespace detail {

class runtime_state;
struct remote_base;
/// The runtime of the loop on this thread (nullptr: none), and its index.
inline thread_local constinit runtime_state* t_runtime = nullptr;
inline thread_local constinit std::size_t t_loop_index = 0;

/// What the loops of one runtime share: their addresses, their published
/// loads, and the counts of calls between them, which the shutdown waits
/// for.
class runtime_state {
 public:
  runtime_state(const runtime_state&) = delete;
  runtime_state& operator=(const runtime_state&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return m_loops.size(); }
  [[nodiscard]] event_loop& loop(std::size_t i) const noexcept { return *m_loops[i]; }

  /// On a loop of this runtime: a call is about to cross to another loop;
  /// false when the runtime is stopping (then nothing may be posted). Pairs
  /// with end_call. Each loop counts in its own slot, so calls in flight
  /// share no written cache line between loops.
  bool begin_call() noexcept {
    bump(m_slots[t_loop_index].m_begun);
    light_fence();
    if (!m_stopping.load(std::memory_order_relaxed)) return true;
    end_call();
    return false;
  }
  /// On a loop of this runtime: a call's last message was posted (where it
  /// waits in this loop's outbox until the tick ends: a loop flushes it
  /// before it can end). Once the runtime stops and none is in flight, the
  /// loops may end.
  void end_call() noexcept {
    bump(m_slots[t_loop_index].m_ended);
    light_fence();
    if (!m_workers_ended.load(std::memory_order_relaxed)) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (nothing_in_flight()) release_loops();
  }

  /// The main task ended: no call may cross loops from now on; each loop
  /// cancels and drains its tasks, and ends once no call is in flight.
  void stop() noexcept {
    if (m_stopping.exchange(true, std::memory_order_seq_cst)) return;
    heavy_fence();
    // A loop's end message goes before its release (else it could see no
    // work left while its main task still waits for the end): the calls'
    // last end_call releases only once the end messages are out.
    end_workers();
    m_workers_ended.store(true, std::memory_order_seq_cst);
    heavy_fence();
    if (nothing_in_flight()) release_loops();
  }

  /// Where a balanced spawn from this loop goes: the power of two choices
  /// between this loop (its exact task count, and the balanced spawns it
  /// keeps queued) and another one at random
  /// (the larger of the count it last published and the calls this loop
  /// sent it that have not come back: a loop that has not yet read a burst
  /// of spawns still counts them); this loop on a tie.
  [[nodiscard]] std::size_t pick_loop() noexcept {
    const std::size_t self = t_loop_index;
    const std::size_t n = m_loops.size();
    if (n == 1) return self;
    const std::size_t other = (self + 1 + xorshift64(t_pick_rng) % (n - 1)) % n;
    const std::size_t theirs = std::max(m_loops[other]->published_load(), out_to(self, other));
    const std::size_t ours = core_of(*m_loops[self]).live_tasks() + kept_count(self);
    return theirs < ours ? other : self;
  }

  /// True once the runtime is stopping.
  [[nodiscard]] bool stopping() const noexcept {
    return m_stopping.load(std::memory_order_relaxed);
  }

  /// On the origin loop: queues `call` (a balanced spawn kept there) and
  /// wakes a loop that waits for work to steal from it.
  void queue_kept(remote_base& call) noexcept;
  /// On the origin loop: true when `call` was still queued (now marked:
  /// whoever takes it replies cancelled); false once a loop took it.
  [[nodiscard]] bool cancel_queued(remote_base& call) noexcept;

  /// Balanced spawns kept on loop `i` and not started yet (a hint).
  [[nodiscard]] std::size_t kept_count(std::size_t i) const noexcept {
    return m_queues[i].m_size.load(std::memory_order_relaxed);
  }

  /// Loop `i`'s task count as this loop sees it: exact for this loop, the
  /// count it last published (at its last tick) for another.
  [[nodiscard]] std::size_t load_of(std::size_t i) const noexcept {
    return i == t_loop_index ? core_of(*m_loops[i]).live_tasks() : m_loops[i]->published_load();
  }

  /// Calls loop `from` sent to loop `to` that loop `to` has not finished,
  /// as loop `to` last told (once per tick of its own).
  [[nodiscard]] std::size_t out_to(std::size_t from, std::size_t to) const noexcept {
    return out_cell(from, to).load(std::memory_order_relaxed);
  }
  /// On loop `from`: a call went out to loop `to`.
  void note_sent(std::size_t from, std::size_t to) noexcept {
    out_cell(from, to).fetch_add(1, std::memory_order_relaxed);
  }
  /// On this loop: a call from loop `from` finished here; told to the
  /// counts at this tick's end, together with the tick's others.
  void note_finished(std::size_t from) noexcept {
    const std::size_t here = t_loop_index;
    slot& mine = m_slots[here];
    ++mine.m_finished_from[from];
    if (!mine.m_tell_finished.linked()) core_of(*m_loops[here]).at_tick_end(mine.m_tell_finished);
  }

 protected:
  explicit runtime_state(std::size_t loops)
      : m_loops(loops, nullptr),
        m_out_stride((loops + 7) / 8 * 8),  // a row per loop, in lines of its own
        m_out(std::make_unique<std::atomic<std::size_t>[]>(loops * m_out_stride)),
        m_slots(std::make_unique<slot[]>(loops)),
        m_queues(std::make_unique<call_queue[]>(loops)),
        m_work(std::make_unique<loop_work[]>(loops)) {
    for (std::size_t i = 0; i < loops; ++i) {
      loop_work& w = m_work[i];
      w.m_take = &take_work;
      w.m_runtime = this;
      w.m_index = i;
      w.m_nudge.m_work = &w;
      // The nudge only wakes the loop: once out of ready tasks (it may
      // have got some in the same batch) it steals, before it polls.
      w.m_nudge.m_run = [](posted_node& n) noexcept {
        loop_work& self = *static_cast<nudge_message&>(n).m_work;
        // Release: this run's reads of the node come before the next
        // nudger (acquire) writes its link again.
        self.m_nudged.store(false, std::memory_order_release);
        self.m_runtime->end_call();
      };
      slot& s = m_slots[i];
      s.m_finished_from = std::make_unique<std::size_t[]>(loops);
      s.m_tell_finished.m_runtime = this;
      s.m_tell_finished.m_index = i;
      s.m_tell_finished.m_fire = [](tick_end_node& n) noexcept {
        auto& t = static_cast<finished_notice&>(n);
        t.m_runtime->tell_finished(t.m_index);
      };
    }
  }
  virtual ~runtime_state() = default;

  /// What loop `i` takes work from when out of ready tasks (runtime.cpp).
  [[nodiscard]] loop_core::work_source& work_source_of(std::size_t i) noexcept { return m_work[i]; }

  // Ends the other loops' main tasks (their tasks are then cancelled).
  virtual void end_workers() noexcept = 0;
  // Lets every loop end once its own tasks are done (each held one guard
  // until now); idempotent.
  virtual void release_loops() noexcept = 0;

  std::vector<event_loop*> m_loops;

 private:
  struct finished_notice : tick_end_node {
    runtime_state* m_runtime = nullptr;
    std::size_t m_index = 0;
  };
  // One loop's counts, written by that loop's thread only.
  struct alignas(64) slot {
    std::atomic<std::uint64_t> m_begun{0};
    std::atomic<std::uint64_t> m_ended{0};
    // Calls from each loop finished here this tick, and what tells them.
    std::unique_ptr<std::size_t[]> m_finished_from;
    finished_notice m_tell_finished;
  };

  void tell_finished(std::size_t here) noexcept {
    std::size_t* finished = m_slots[here].m_finished_from.get();
    for (std::size_t from = 0; from < m_loops.size(); ++from) {
      if (finished[from] == 0) continue;
      out_cell(from, here).fetch_sub(finished[from], std::memory_order_relaxed);
      finished[from] = 0;
    }
  }

  // A loop's balanced spawns kept there and not started, oldest first,
  // linked through their posted_node link. The size is read unlocked by
  // loops looking for work: a hint.
  struct alignas(64) call_queue {
    spinning_mutex m_mutex;
    posted_node* m_head = nullptr;
    posted_node* m_tail = nullptr;
    std::atomic<std::size_t> m_size{0};
  };
  // Loop i's way to its own queue and the others' (take_work), and the
  // message that wakes it to steal (at most one in flight).
  struct loop_work;
  struct nudge_message : posted_node {
    loop_work* m_work = nullptr;
  };
  struct loop_work : loop_core::work_source {
    runtime_state* m_runtime = nullptr;
    std::size_t m_index = 0;
    nudge_message m_nudge;
    std::atomic<bool> m_nudged{false};
  };

  static bool take_work(loop_core::work_source& w, bool idle) noexcept;
  // Takes up to `most` calls from the front of `q` for loop `to`, oldest
  // first, under the lock cancel_queued takes too (so a cancel after it
  // sees where they went); `got` says how many.
  posted_node* claim(call_queue& q, std::size_t most, std::size_t to, std::size_t& got) noexcept;
  // On the loop that took `call` from a queue (by claim): starts it, or
  // replies cancelled when it was cancelled there or the runtime stops.
  void start_kept(remote_base& call) noexcept;
  // On loop `here`, out of work: takes half of another loop's queue and
  // starts those calls here. True when it took any.
  bool steal(std::size_t here) noexcept;
  // Wakes one other loop that waits for work, to steal from loop `from`.
  void nudge_a_waiting_loop(std::size_t from) noexcept;

  std::atomic<std::size_t>& out_cell(std::size_t from, std::size_t to) const noexcept {
    return m_out[from * m_out_stride + to];
  }

  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The counts and the stop flags form Dekker pairs (a loop writes its
  // count then reads the flag; stop() writes the flag then reads the
  // counts). The busy side, every call, pays only a compiler barrier: the
  // rare side makes every thread of the process pass a full barrier
  // (membarrier), as liburcu does. Where the kernel lacks it, both sides
  // use full fences.
  static void light_fence() noexcept {
    if (t_light_fences_ok) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
  }
  static void heavy_fence() noexcept;

  // Ended counts are read before begun ones: a call ends after it began, so
  // a call seen ended is seen begun, and equal sums mean none in flight (a
  // call begun after the reads sees m_stopping and is refused).
  [[nodiscard]] bool nothing_in_flight() const noexcept {
    std::uint64_t ended = 0;
    std::uint64_t begun = 0;
    for (std::size_t i = 0; i < m_loops.size(); ++i)
      ended += m_slots[i].m_ended.load(std::memory_order_seq_cst);
    for (std::size_t i = 0; i < m_loops.size(); ++i)
      begun += m_slots[i].m_begun.load(std::memory_order_seq_cst);
    return begun == ended;
  }

  static inline thread_local constinit std::uint64_t t_pick_rng = 0x9E3779B97F4A7C15ULL;
  // Set on each loop's thread when the runtime starts, if membarrier
  // works in this process.
  static inline thread_local constinit bool t_light_fences_ok = false;

 protected:
  /// On each loop's thread before it runs: sets t_light_fences_ok.
  static void enable_light_fences() noexcept;

 private:
  std::size_t m_out_stride;
  std::unique_ptr<std::atomic<std::size_t>[]> m_out;
  std::unique_ptr<slot[]> m_slots;
  std::unique_ptr<call_queue[]> m_queues;
  std::unique_ptr<loop_work[]> m_work;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_workers_ended{false};
};

[[nodiscard]] runtime_state& runtime_for(std::size_t target, const char* what);

template <class Fn>
struct remote_call_traits {
  using returned = std::invoke_result_t<Fn&>;
  static constexpr bool is_task = false;
  using value = returned;
};
template <class Fn>
requires requires {
  typename std::invoke_result_t<Fn&>::value_type;
} && std::is_same_v<std::invoke_result_t<Fn&>, task<typename std::invoke_result_t<Fn&>::value_type>>
struct remote_call_traits<Fn> {
  using returned = std::invoke_result_t<Fn&>;
  static constexpr bool is_task = true;
  using value = typename returned::value_type;
};

/// A function run in a task on another loop (or this one), as the origin
/// loop sees it: whether the result came, and who waits for it. It is its
/// own message (the request to the target, then the reply back) and its
/// own done listener on the remote task: one allocation per call, kept
/// small because a million calls in flight are a million of them. A call
/// that ends before its origin awaits it sends nothing back: it stores its
/// outcome and the origin finds it when it looks (m_reply; Tokio's
/// JoinHandle works the same way), so a burst of spawns collected later
/// costs the origin no message per call. Counted: the origin's handle
/// holds one reference, the target side another until the reply has run
/// on the origin or, with nobody waiting, until the origin collects the
/// stored outcome (the origin drops it then), a cancel message in flight
/// one. So the origin frees every call, from its own thread's frame pool,
/// except after a late cancel: a handle dropped before its call ends asks
/// for the reply (collect_when_dropped). The result's type is
/// remote_state's; everything else is here, for the runtime's queues.
struct remote_base : posted_node, done_listener {
  struct operations {
    void (*start)(remote_base&) noexcept;  // on the target: spawns the task
    void (*destroy)(remote_base&) noexcept;
    void (*reply)(remote_base&) noexcept;  // on the target: the outcome goes back
  };
  struct cancel_message : posted_node {
    remote_base* m_state;
  };
  // Of a call that may end on another thread: the origin, about to wait,
  // moves pending to awaited; the target, done, moves it to stored and
  // posts the reply only if it was awaited.
  enum reply_state : std::uint8_t { reply_pending, reply_awaited, reply_stored };

  event_loop* m_origin = nullptr;
  event_loop* m_target;
  waiter* m_waiter = nullptr;     // the origin's thread only
  task_base* m_remote = nullptr;  // the task running it, until it ends (the target's thread only)
  const operations* m_ops;
  const char* m_name;
  std::atomic<int> m_refs{2};
  std::atomic<std::uint8_t> m_reply{reply_pending};
  std::uint32_t m_from = 0;  // the loops' indexes (remote calls)
  std::uint32_t m_to = 0;
  bool m_local = false;  // the target is the origin: no messages
  bool m_done = false;   // the outcome was collected on the origin (its thread only)
  // The origin counts the wait for a reply that crosses loops as outside
  // work, so that it cannot end while the reply is on its way.
  bool m_wait_counted = false;  // the origin's thread only
  bool m_cancel_sent = false;
  // A balanced spawn kept on its loop: queued there (the runtime's queue,
  // linked through m_next) until that loop starts it or another steals it.
  // m_queued, m_cancelled_in_queue, and for a stolen call m_target, m_to
  // and m_local are written under the queue's lock.
  bool m_kept_here = false;
  bool m_went_through_queue = false;  // the origin's thread only
  bool m_queued = false;
  bool m_cancelled_in_queue = false;

  remote_base(event_loop& target, std::size_t target_index, const operations& ops,
              const char* name) noexcept
      : m_target(&target),
        m_ops(&ops),
        m_name(name),
        m_to(static_cast<std::uint32_t>(target_index)) {
    m_run = [](posted_node& n) noexcept {
      auto& s = static_cast<remote_base&>(n);
      s.m_ops->start(s);
    };
    m_on_done = [](done_listener& l) noexcept {
      auto& s = static_cast<remote_base&>(l);
      s.m_ops->reply(s);
    };
  }
  remote_base(const remote_base&) = delete;
  remote_base& operator=(const remote_base&) = delete;

  void release() noexcept {
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) m_ops->destroy(*this);
  }

  /// On the origin loop: sends the request (on this loop: starts it here).
  /// Throws runtime_stopping_error once the runtime is stopping.
  void send() {
    m_origin = &current_event_loop();
    if (m_target == m_origin) {
      m_local = true;
      m_kept_here = true;
      m_ops->start(*this);
      return;
    }
    // No outside work counted on the origin: the runtime keeps every loop
    // alive while a call is in flight (begin_call, end_call).
    runtime_state& rt = *t_runtime;
    if (!rt.begin_call()) throw runtime_stopping_error();
    m_from = static_cast<std::uint32_t>(t_loop_index);
    rt.note_sent(m_from, m_to);
    m_target->post_batched(*this);
  }

  /// On the origin loop, of a runtime of several loops: queues the call
  /// here, where this loop starts it when out of ready tasks, unless an
  /// idle loop steals it first (runtime_state::take_work).
  void keep_here() noexcept {
    m_origin = &current_event_loop();
    m_from = m_to = static_cast<std::uint32_t>(t_loop_index);
    m_kept_here = true;
    m_went_through_queue = true;
    external_work::add(*m_origin);  // until it is started here or stolen
    t_runtime->queue_kept(*this);
  }

  // On the target: the task runs as `t`, and tells this listener when it
  // ends.
  void started(task_base& t) noexcept {
    m_remote = &t;
    done_listener::m_next = t.m_listeners;
    t.m_listeners = this;
  }

  /// On the origin: true once the outcome is here (the reply ran, or the
  /// call ended while nobody waited for it).
  [[nodiscard]] bool arrived() const noexcept {
    return m_done ||
           (m_waiter == nullptr && m_reply.load(std::memory_order_acquire) == reply_stored);
  }

  /// On the origin, once arrived(): takes the stored outcome over, and with
  /// it the target side's reference (the target lets go of the call when
  /// it stores, without a locked instruction of its own).
  void collect() noexcept {
    if (std::exchange(m_done, true)) return;
    release();  // the target side's reference
  }

  /// On the origin: asks for the reply to be posted back (`w` waits for it,
  /// or nobody: a dropped handle). False when the outcome was stored
  /// meanwhile; then nothing will be posted and collect() takes it.
  bool await_reply(waiter* w) noexcept {
    std::uint8_t seen = reply_pending;
    if (!m_reply.compare_exchange_strong(seen, reply_awaited, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      return false;
    }
    m_waiter = w;
    // A call kept here may be stolen, and a thief writes m_local: such a
    // call is counted without reading it.
    if (m_went_through_queue || !m_local) {
      external_work::add(*m_origin);
      m_wait_counted = true;
    }
    return true;
  }

  /// On the origin, the handle going: a call not yet ended is asked for its
  /// reply, so that the origin frees it (its memory is from this thread's
  /// frame pool); an outcome already stored is collected.
  void collect_when_dropped() noexcept {
    if (!m_done && m_waiter == nullptr) {
      if (m_reply.load(std::memory_order_acquire) == reply_stored || !await_reply(nullptr)) {
        collect();
      }
    }
    release();  // the handle's reference
  }

  /// On the origin: asks the remote task to stop (once).
  void cancel() noexcept {
    if (arrived() || std::exchange(m_cancel_sent, true)) return;
    // Not started yet: whoever takes it from the queue replies cancelled.
    if (m_went_through_queue && t_runtime->cancel_queued(*this)) return;
    if (m_local) {
      if (m_remote != nullptr) m_remote->request_cancel();
      return;
    }
    auto* c = new (std::nothrow) cancel_message;
    if (c == nullptr) {
      report_current(std::string_view("corio: no memory to cancel a remote task; it runs on"));
      return;
    }
    if (!t_runtime->begin_call()) {  // stopping: every loop cancels its tasks anyway
      delete c;
      return;
    }
    c->m_state = this;
    c->m_run = [](posted_node& n) noexcept {
      auto* msg = static_cast<cancel_message*>(&n);
      remote_base* s = msg->m_state;
      delete msg;
      if (s->m_remote != nullptr) s->m_remote->request_cancel();
      s->release();
      t_runtime->end_call();
    };
    m_refs.fetch_add(1, std::memory_order_relaxed);
    m_target->post_batched(*c);
  }

  // On the target, the task done (its outcome stored): if the origin waits,
  // the result goes back in the same node the request came in; if not, the
  // origin finds it when it looks and drops the target side's reference
  // then. Nothing here touches the call after the post or the exchange but
  // through locals.
  void send_reply() noexcept {
    m_remote = nullptr;
    if (m_local) {
      replied();
      return;
    }
    runtime_state& rt = *t_runtime;
    rt.note_finished(m_from);
    event_loop* origin = m_origin;
    m_run = [](posted_node& n) noexcept { static_cast<remote_base&>(n).replied(); };
    if (m_reply.exchange(reply_stored, std::memory_order_acq_rel) == reply_awaited) {
      origin->post_batched(*this);
    }
    rt.end_call();
  }

  // On the origin: the reply to a waiting origin, or a local call's end.
  void replied() noexcept {
    if (std::exchange(m_wait_counted, false)) external_work::remove(*m_origin);
    m_done = true;
    if (waiter* w = std::exchange(m_waiter, nullptr)) {
      if (w->m_state == waiter::state::aborted) {
        core_of(*m_origin).schedule(*w->m_task);  // finish() throws cancelled_error
      } else {
        w->wake();
      }
    }
    release();  // the target side's reference
  }
};

/// A remote call's result, of type T.
template <class T>
struct remote_state : remote_base {
  call_result<T> m_result;

  using remote_base::remote_base;

  // On the target, the task done (or never started): stores "cancelled"
  // when no outcome came, then replies.
  static void reply(remote_base& b) noexcept {
    auto& s = static_cast<remote_state&>(b);
    if (!s.m_result.m_value && !s.m_result.m_error) {  // cancelled before it ran
      s.m_result.m_error = std::make_exception_ptr(cancelled_error());
    }
    s.send_reply();
  }
};

/// One call: the function and how it runs on the target.
template <class Fn>
struct remote_call final : remote_state<typename remote_call_traits<Fn>::value> {
  using traits = remote_call_traits<Fn>;
  using value = typename traits::value;
  using state = remote_state<value>;

  Fn m_fn;

  remote_call(event_loop& target, std::size_t target_index, Fn fn, const char* name)
      : state(target, target_index, k_ops, name), m_fn(std::move(fn)) {}

  static void destroy(remote_base& s) noexcept { delete static_cast<remote_call*>(&s); }

  // From the spawning thread's frame pool, like a task's frame: the
  // spawning loop frees it too, but after a late cancel.
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

  // On the target: runs the function in a task of its own there.
  static void start(remote_base& s) noexcept {
    auto& self = static_cast<remote_call&>(s);
    try {
      loop_core& core = core_of(*self.m_target);
      join_handle<void> h = spawn_into(*core.owner_for_spawn(), core, body(&self), self.m_name);
      self.started(*h.get());
    } catch (...) {  // out of memory: the caller gets it
      self.m_result.m_error = std::current_exception();
      state::reply(self);
    }
  }

  // Every outcome is caught; the reply goes when the task ends.
  static task<void> body(remote_call* self) {
    if constexpr (traits::is_task) {
      try {
        auto inner = self->m_fn();
        forward_to(inner);
        if constexpr (std::is_void_v<value>) {
          co_await std::move(inner);
          self->m_result.m_value.emplace(true);
        } else {
          self->m_result.m_value.emplace(co_await std::move(inner));
        }
      } catch (...) {
        self->m_result.m_error = std::current_exception();
      }
    } else {
      self->m_result.capture(self->m_fn);
    }
  }

  static constexpr remote_base::operations k_ops{&start, &destroy, &state::reply};
};

/// Waits for a remote call's reply, through a cancellation too: the remote
/// task is cancelled and awaited (what it borrowed from the waiter stays
/// valid), then cancelled_error.
template <class T>
class remote_wait : public waiter {
 public:
  explicit remote_wait(remote_state<T>* s) noexcept : m_state(s) {}

  [[nodiscard]] bool await_ready() const noexcept { return m_state->arrived(); }
  bool await_suspend(std::coroutine_handle<> h) {
    if (m_state->m_waiter != nullptr) {
      throw std::logic_error("corio: a remote_handle awaited by two tasks at once");
    }
    if (!park(*this, h, "remote call")) return false;
    return wait_for_reply();
  }
  void on_abort() noexcept { m_state->cancel(); }
  T await_resume() {
    finish();
    m_state->collect();
    return m_state->m_result.take();
  }

 protected:
  // Parked: the reply resumes it, cancelled or not.
  bool wait_for_reply() noexcept {
    if (m_state->arrived() || !m_state->await_reply(this)) {
      end_without_suspending();
      return false;
    }
    m_defer_abort = true;
    return true;
  }

  remote_state<T>* m_state;
};

/// submit_to's awaitable: the call goes out when it is awaited.
template <class Fn>
class submit_awaitable : public remote_wait<typename remote_call<Fn>::value> {
  using call = remote_call<Fn>;
  using base = remote_wait<typename call::value>;

 public:
  submit_awaitable(event_loop& target, std::size_t target_index, Fn fn)
      : base(new call(target, target_index, std::move(fn), "submit_to")) {}
  submit_awaitable(submit_awaitable&& o) noexcept
      : base(std::exchange(o.m_state, nullptr)), m_sent(o.m_sent) {}
  submit_awaitable(const submit_awaitable&) = delete;
  submit_awaitable& operator=(const submit_awaitable&) = delete;
  submit_awaitable& operator=(submit_awaitable&&) = delete;
  ~submit_awaitable() {
    if (this->m_state == nullptr) return;
    if (m_sent) {
      this->m_state->collect_when_dropped();
    } else {
      this->m_state->m_ops->destroy(*this->m_state);  // never went out
    }
  }

  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(*this, h, "submit_to")) return false;
    try {
      this->m_state->send();
    } catch (...) {
      this->end_without_suspending();
      throw;
    }
    m_sent = true;
    return this->wait_for_reply();
  }

 private:
  bool m_sent = false;
};

/// spawn_on's message: makes the task on the target loop and spawns it
/// there, detached.
template <class Fn>
struct remote_spawn final : posted_node {
  // The task, with the callable that made it kept in the frame: a
  // coroutine lambda's captures live in the lambda object.
  static task<void> keep(Fn fn) {
    auto inner = fn();
    forward_to(inner);
    (void)co_await std::move(inner);
  }

  Fn m_fn;
  runtime_state* m_runtime;
  event_loop* m_target;
  const char* m_name;
  remote_spawn(runtime_state& rt, event_loop& target, Fn fn, const char* name)
      : m_fn(std::move(fn)), m_runtime(&rt), m_target(&target), m_name(name) {
    m_run = [](posted_node& n) noexcept {
      auto* self = static_cast<remote_spawn*>(&n);
      runtime_state* rt = self->m_runtime;
      try {
        loop_core& core = core_of(*self->m_target);
        (void)spawn_into(*core.owner_for_spawn(), core, keep(std::move(self->m_fn)), self->m_name);
      } catch (...) {
        report_current(std::string_view(
            "corio: spawn_on could not start its task (out of memory); the task is dropped"));
      }
      delete self;
      rt->end_call();
    };
  }
};

}  // namespace detail

/// The handle of a task that spawn_balanced started, maybe on another loop
/// of the runtime: await it for the result (an error the task ended with
/// is rethrown here), or cancel it. Like join_handle, dropping it leaves
/// the task running. Cancelling the task that awaits it cancels the remote
/// task and waits for it to end, then throws cancelled_error. Belongs to
/// the loop that spawned: await and cancel it there.
///
/// \code
///   std::vector<corio::remote_handle<std::uint64_t>> hs;
///   for (std::uint64_t i = 0; i < n; ++i)
///     hs.push_back(corio::spawn_balanced([i] { return checksum(i); }));
///   std::uint64_t x = 0;
///   for (auto& h : hs) x ^= co_await h;
/// \endcode
template <class T>
class remote_handle {
 public:
  /// An empty handle (`valid()` is false) that refers to no task.
  remote_handle() noexcept = default;
  /// Adopts the shared state `s`; called by `spawn_balanced`, not by user code.
  explicit remote_handle(detail::remote_state<T>* s) noexcept : m_state(s) {}
  /// Takes over `o`'s task; `o` becomes empty.
  remote_handle(remote_handle&& o) noexcept : m_state(std::exchange(o.m_state, nullptr)) {}
  /// Drops the task this handle referred to (which keeps running) and takes
  /// over `o`'s.
  remote_handle& operator=(remote_handle&& o) noexcept {
    if (this != &o) {
      reset();
      m_state = std::exchange(o.m_state, nullptr);
    }
    return *this;
  }
  remote_handle(const remote_handle&) = delete;
  remote_handle& operator=(const remote_handle&) = delete;
  ~remote_handle() { reset(); }

  /// True when the handle refers to a task (not default-constructed or moved from).
  [[nodiscard]] bool valid() const noexcept { return m_state != nullptr; }
  /// True once the task has ended and its outcome is stored: awaiting the
  /// handle then gives it without suspending.
  [[nodiscard]] bool done() const noexcept { return m_state != nullptr && m_state->arrived(); }
  /// True when the task was kept on this loop: it runs here, unless an
  /// idle loop of the runtime steals it before it starts.
  [[nodiscard]] bool local() const noexcept { return m_state != nullptr && m_state->m_kept_here; }
  /// Asks the task to stop (its next suspension throws cancelled_error);
  /// awaiting the handle then gives cancelled_error unless it finished
  /// first. A task that has not started never runs: one still queued here,
  /// or one on its way to another loop (the cancel follows it). A kept
  /// task that an idle loop stole has started there once it was taken.
  void cancel() noexcept {
    if (m_state != nullptr) m_state->cancel();
  }
  /// Waits for the task's outcome; its value can be taken once.
  [[nodiscard]] detail::remote_wait<T> operator co_await() noexcept {
    return detail::remote_wait<T>(m_state);
  }

 private:
  void reset() noexcept {
    if (detail::remote_state<T>* s = std::exchange(m_state, nullptr)) s->collect_when_dropped();
  }
  detail::remote_state<T>* m_state = nullptr;
};

/// The index of the loop running this code in its runtime (0 on a loop of
/// its own, as corio::run makes, and off any loop).
[[nodiscard]] inline std::size_t this_loop_index() noexcept {
  return detail::t_loop_index;
}
/// The number of loops of this loop's runtime (1 on a loop of its own).
[[nodiscard]] inline std::size_t loop_count() noexcept {
  return detail::t_runtime != nullptr ? detail::t_runtime->size() : 1;
}

/// Runs `fn()` on loop `loop` of this runtime, in a task of its own there,
/// and gives its result back here (`fn` may return a value or a task,
/// which is awaited there). An exception `fn` throws is rethrown here.
/// Cancelling the awaiting task cancels the remote one and waits for it,
/// so what `fn` borrowed from the caller outlives it; then
/// `cancelled_error`. `fn` is moved to the other loop: it must not touch
/// the caller's loop-local state (tasks, sync primitives) there. Calls
/// are one post each way, and a loop that is awake reads its posts
/// without a system call. Throws runtime_stopping_error once the runtime
/// is stopping.
///
/// \code
///   std::size_t hits =
///       co_await corio::submit_to(2, [&key] { return cache_of_loop_2.count(key); });
///   auto page = co_await corio::submit_to(1, [url]() -> corio::task<std::string> {
///     co_return co_await fetch(url);
///   });
/// \endcode
template <class Fn>
[[nodiscard]] auto submit_to(std::size_t loop, Fn fn) {
  detail::runtime_state& rt = detail::runtime_for(loop, "submit_to");
  return detail::submit_awaitable<Fn>(rt.loop(loop), loop, std::move(fn));
}

/// Runs `make()` in a task on a lightly loaded loop of this runtime, now,
/// and returns its handle: the power of two choices between this loop and
/// another at random, by their task counts (the other's as it last
/// published it, about once a tick), this loop on a tie. `make` may return
/// a task or a value; it is called on the chosen loop, so the task's frame
/// is made and freed by that loop's thread (coroutine frames are pooled
/// per thread), and it must not touch this loop's tasks or sync primitives.
/// A task sent to another loop travels in that tick's batch of messages to
/// it. A task kept here waits in this loop's queue of balanced spawns:
/// this loop starts them one at a time whenever it runs out of ready
/// tasks, and a loop out of work steals half of the queue (a loop waiting
/// for work is woken for it), so uneven tasks even out across the loops.
/// Cancelling one that has not started yet ends it as cancelled_error
/// without running it. A task that ends before its handle is awaited
/// leaves its outcome in the handle and sends this loop no message, so a
/// burst of spawns collected afterwards costs this loop nothing per task
/// until it reads them. Off a runtime, and on a runtime of one loop, it
/// spawns here. Throws runtime_stopping_error once the runtime is
/// stopping.
///
/// \code
///   auto h = corio::spawn_balanced([&img] { return render(img); });
///   auto pixels = co_await h;
/// \endcode
template <class Make>
[[nodiscard]] auto spawn_balanced(Make make, const char* name = "spawn_balanced") {
  using call = detail::remote_call<Make>;
  event_loop* here = event_loop::current();
  if (here == nullptr) detail::throw_no_loop("corio::spawn_balanced");
  detail::runtime_state* rt = detail::t_runtime;
  const std::size_t index = rt != nullptr ? rt->pick_loop() : 0;
  auto* c = new call(rt != nullptr ? rt->loop(index) : *here, index, std::move(make), name);
  if (rt != nullptr && rt->size() > 1 && &rt->loop(index) == here) {
    if (rt->stopping()) {
      delete c;
      throw runtime_stopping_error();
    }
    c->keep_here();
    return remote_handle<typename call::value>(c);
  }
  try {
    c->send();
  } catch (...) {
    delete c;
    throw;
  }
  return remote_handle<typename call::value>(c);
}

/// Starts the task `make()` returns on loop `loop`, detached: that loop
/// owns it (like spawn), and an error it ends with is reported there. The
/// task is made on the target loop, so its frame is allocated and freed
/// by the same thread. For its result, use submit_to. Throws
/// runtime_stopping_error once the runtime is stopping.
///
/// \code
///   corio::spawn_on(1, [conn = std::move(conn)]() mutable { return serve(std::move(conn)); });
/// \endcode
template <class Make>
void spawn_on(std::size_t loop, Make make, const char* name = "spawn_on") {
  detail::runtime_state& rt = detail::runtime_for(loop, "spawn_on");
  auto* node = new detail::remote_spawn<Make>(rt, rt.loop(loop), std::move(make), name);
  if (!rt.begin_call()) {
    delete node;
    throw runtime_stopping_error();
  }
  rt.loop(loop).post_batched(*node);
}

/// Runs `fn(index)` on every loop of this runtime at once (a submit_to
/// each; `fn` is copied for each loop) and waits for all of them; the
/// first error is rethrown once all are done.
///
/// \code
///   co_await corio::invoke_on_all([](std::size_t i) { local_cache().clear(); });
/// \endcode
template <class Fn>
task<void> invoke_on_all(Fn fn) {
  const std::size_t n = loop_count();
  std::vector<task<void>> calls;
  calls.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    calls.push_back([](std::size_t index, Fn f) -> task<void> {
      co_await submit_to(index, [index, f]() mutable { return f(index); });
    }(i, fn));
  }
  co_await gather(std::move(calls));
}

/// Every loop's statistics, in loop order, each read on its own loop's
/// thread (a loop's figures are not synchronised for other threads): how
/// work spread over the runtime. Off a runtime, this loop's alone.
///
/// \code
///   for (const corio::loop_stats& s : co_await corio::every_loop_stats())
///     std::printf("%llu resumptions\n", static_cast<unsigned long long>(s.resumptions));
/// \endcode
[[nodiscard]] task<std::vector<loop_stats>> every_loop_stats();

}  // namespace corio
