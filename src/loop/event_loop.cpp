// The loop iteration, written out once (see the order in event_loop.hpp).
#include "corio/loop/event_loop.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "corio/detail/cpu_relax.hpp"
#include "corio/detail/xorshift.hpp"
#include "corio/errors.hpp"
#include "corio/loop/detail/loop_hooks.hpp"
#include "detail/environment.hpp"
#include "io/backend.hpp"
#include "loop/report_text.hpp"

namespace corio {

namespace {

bool shuffle_default() noexcept {
  return detail::env_flag("CORIO_SHUFFLE", false);
}

std::uint64_t shuffle_seed() {
  static const std::uint64_t seed = [] {
    std::uint64_t s = 0;
    if (const char* e = detail::env_value("CORIO_SHUFFLE_SEED")) {
      s = std::strtoull(e, nullptr, 10);
    } else {
      s = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    }
    std::fprintf(stderr, "corio: shuffling same-tick ready order, CORIO_SHUFFLE_SEED=%llu\n",
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

bool debug_default() noexcept {
  return detail::env_flag("CORIO_DEBUG", false);
}

}  // namespace

std::int64_t detail::loop_core::read_clock() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

event_loop::event_loop(loop_options options)
    : m_options(std::move(options)), m_backend(detail::make_backend(m_options.backend)) {
  m_io = m_backend.get();
  m_shuffle = m_options.shuffle.value_or(shuffle_default());
  if (m_shuffle) {
    m_rng = m_options.shuffle_seed != 0 ? m_options.shuffle_seed : shuffle_seed();
    if (m_rng == 0) m_rng = 0x9E3779B97F4A7C15ULL;
  }
  if (!m_options.debug) m_options.debug = debug_default();
  if constexpr (!detail::observe_enabled) {
    m_options.debug = false;
    m_options.task_timing = false;
    m_options.stats = false;
    m_options.watchdog = false;
  }
  if (m_options.debug) m_options.watchdog = true;
  m_virtual_clock = m_options.virtual_clock;
  m_now_ns =
      m_options.virtual_clock ? m_options.virtual_start.time_since_epoch().count() : read_clock();
  m_start_ns = m_now_ns;
  m_timers.reset(m_now_ns);
  if (!m_options.virtual_clock)
    m_slack_ns = std::max<std::int64_t>(0, m_options.timer_slack.count());
}

event_loop::~event_loop() {
  // A poster whose node already ran may still be inside post(): a few
  // instructions from done.
  while (m_posting.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
  if (m_count != 0) {
    std::fprintf(stderr, "corio: event loop destroyed with %zu live task(s); their frames leak\n",
                 m_count);
  }
}

const char* event_loop::backend_name() const noexcept {
  return m_backend->name();
}

loop_stats event_loop::stats() const noexcept {
  loop_stats s;
  static_cast<detail::loop_counters&>(s) = m_counters;
  s.pending_timers = m_timers.size();
  s.syscalls = m_backend->syscalls();
  s.read_buffer_bytes = m_backend->read_buffer_bytes();
  if (m_hooks != nullptr) m_hooks->add_stats(s);
  // Up to now, not to the tick's start: a poll of this tick is already in
  // `polling`, and a task it woke would see `running` step back.
  const std::int64_t now = m_options.virtual_clock ? m_now_ns : read_clock();
  s.running =
      std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(now - m_start_ns) - s.polling);
  return s;
}

void detail::loop_core::report_text(const char* data, std::size_t size) const {
  const std::string message(data, size);
  const auto& sink = static_cast<const event_loop*>(this)->m_options.report;
  if (sink) {
    sink(message);
    return;
  }
  write_report_to_stderr(message);
}

void detail::write_report_to_stderr(std::string_view text) {
  if (!text.empty() && text.back() == '\n') {
    std::fwrite(text.data(), 1, text.size(), stderr);
    return;
  }
  std::string line(text);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void event_loop::post(detail::posted_node& node) noexcept {
  post_chain(node, node);
}

void event_loop::post_chain(detail::posted_node& newest, detail::posted_node& oldest) noexcept {
  m_posting.fetch_add(1, std::memory_order_acquire);
  detail::posted_node* head = m_inbox.load(std::memory_order_relaxed);
  do {
    oldest.m_next = head;
  } while (!m_inbox.compare_exchange_weak(head, &newest, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
  // Only the poster that finds the loop asleep writes the eventfd; the
  // load first keeps an awake loop's line from being written by every
  // poster.
  if (m_sleeping.load(std::memory_order_seq_cst) &&
      m_sleeping.exchange(false, std::memory_order_seq_cst)) {
    m_backend->notify();
  }
  m_posting.fetch_sub(1, std::memory_order_release);
}

void event_loop::post_batched(detail::posted_node& node) noexcept {
  auto* source = static_cast<event_loop*>(t_current);
  if (source == nullptr) {
    post(node);
    return;
  }
  source->queue_outbound(*this, node);
}

void event_loop::queue_outbound(event_loop& target, detail::posted_node& node) noexcept {
  outbox_entry* e = nullptr;
  for (std::size_t i = 0; i < m_outbox_used; ++i) {
    if (m_outbox[i].m_target == &target) {
      e = &m_outbox[i];
      break;
    }
  }
  if (e == nullptr) {
    if (m_outbox_used == m_outbox.size()) flush_outbox();  // more targets than slots
    e = &m_outbox[m_outbox_used++];
    e->m_target = &target;
    ++m_unrelayed;
  }
  if (e->m_count == 0) e->m_oldest = &node;  // new, or emptied by a relay
  node.m_next = e->m_newest;
  e->m_newest = &node;
  ++m_counters.messages_sent;
  if (++e->m_count < k_outbox_batch) return;
  send_entry(static_cast<std::size_t>(e - m_outbox.data()));
}

void event_loop::send_entry(std::size_t i) noexcept {
  if (!m_outbox[i].m_relayed) --m_unrelayed;
  send_batch(m_outbox[i]);
  m_outbox[i] = m_outbox[--m_outbox_used];  // the last entry fills the gap
  m_outbox[m_outbox_used] = outbox_entry{};
}

void event_loop::send_to_waiting() noexcept {
  for (std::size_t i = 0; i < m_outbox_used; ++i) {
    outbox_entry& e = m_outbox[i];
    if (e.m_relayed || !e.m_target->m_waiting.load(std::memory_order_relaxed)) continue;
    // Once per target and tick: what follows goes at the tick's end, in a
    // batch again (a relay per message would wake the target per message).
    ++m_counters.message_batches;
    e.m_target->post_chain(*e.m_newest, *e.m_oldest);
    e.m_newest = e.m_oldest = nullptr;
    e.m_count = 0;
    e.m_relayed = true;
    --m_unrelayed;
  }
}

void event_loop::flush_outbox() noexcept {
  for (std::size_t i = 0; i < m_outbox_used; ++i) {
    if (m_outbox[i].m_count != 0) {
      send_batch(m_outbox[i]);
    } else {
      m_outbox[i] = outbox_entry{};
    }
  }
  m_outbox_used = 0;
  m_unrelayed = 0;
}

void event_loop::send_batch(outbox_entry& e) noexcept {
  ++m_counters.message_batches;
  e.m_target->post_chain(*e.m_newest, *e.m_oldest);
  e = outbox_entry{};
}

void event_loop::post(std::function<void()> fn) {
  struct fn_node : detail::posted_node {
    std::function<void()> m_fn;
  };
  auto* node = new fn_node;
  node->m_fn = std::move(fn);
  node->m_run = [](detail::posted_node& n) noexcept {
    auto* self = static_cast<fn_node*>(&n);
    try {
      self->m_fn();
    } catch (...) {
      std::fputs("corio: a posted callback threw; the exception is dropped\n", stderr);
    }
    delete self;
  };
  post(*node);
}

work_guard event_loop::keep_alive() {
  return work_guard(*this);
}

work_guard::work_guard(event_loop& loop) : m_release(new detail::guard_release) {
  m_release->m_loop = &loop;
  m_release->m_run = [](detail::posted_node& n) noexcept {
    auto* self = static_cast<detail::guard_release*>(&n);
    detail::external_work::remove(*self->m_loop);  // on the loop, after the guard's posts
    delete self;
  };
  detail::external_work::add(loop);
}

void work_guard::post(std::function<void()> fn) const {
  if (m_release == nullptr)
    throw std::logic_error("corio::work_guard::post: the guard was released");
  m_release->m_loop->post(std::move(fn));
}

void work_guard::reset() noexcept {
  if (detail::guard_release* r = std::exchange(m_release, nullptr)) r->m_loop->post(*r);
}

void event_loop::run_posted() noexcept {
  detail::posted_node* list = m_inbox.exchange(nullptr, std::memory_order_acquire);
  // The inbox is a stack: reverse it to run callbacks in posting order.
  detail::posted_node* fifo = nullptr;
  while (list != nullptr) {
    detail::posted_node* next = list->m_next;
    list->m_next = fifo;
    fifo = list;
    list = next;
  }
  while (fifo != nullptr) {
    detail::posted_node* next = fifo->m_next;
    fifo->m_run(*fifo);
    ++m_counters.posted_callbacks;
    fifo = next;
  }
  publish_load();  // what other loops sent is counted now
}

void event_loop::poll_io(std::int64_t timeout_ns) {
  ++m_counters.polls;
  m_ticks_since_poll = 0;
  // What timers and callbacks of this tick sent to other loops goes before
  // a poll that may block (a cancel waiting here would deadlock).
  if (m_outbox_used != 0) flush_outbox();
  if (timeout_ns != 0) publish_load();  // idle now: the others may send work
  struct waiting_mark {
    std::atomic<bool>* m_flag = nullptr;
    ~waiting_mark() {
      if (m_flag != nullptr) m_flag->store(false, std::memory_order_relaxed);
    }
  } waiting;
  if (timeout_ns != 0) {
    m_waiting.store(true, std::memory_order_relaxed);
    waiting.m_flag = &m_waiting;
    // A Dekker pair with a loop queuing a balanced spawn (queue, fence,
    // then look for a waiting loop to wake): either it sees this loop
    // waiting, or this loop sees its queue.
    if (m_work_source != nullptr) {
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (m_work_source->m_take(*m_work_source, true)) return;
    }
  }
  const bool spin =
      timeout_ns != 0 && m_options.idle_spin.count() > 0 && m_backend->io_pending() == 0;
  // A message that comes within a few hundred looks is taken at once,
  // without even the statistics' clock reads: the hand-off between two
  // busy loops.
  if (spin && look_for_post(256)) return;
  // Only a poll that may block is reported: a busy loop pays nothing.
  const bool reported = timeout_ns != 0 && hooked(detail::hook_poll);
  if (reported) m_hooks->before_poll();
  if (spin && spin_for_post(timeout_ns)) {
    if (reported) m_hooks->after_poll();
    return;  // no I/O is pending: nothing to poll for
  }
  if (timeout_ns != 0) {
    m_sleeping.store(true, std::memory_order_seq_cst);
    if (m_inbox.load(std::memory_order_seq_cst) != nullptr) timeout_ns = 0;
  }
  m_backend->poll(timeout_ns);
  if (reported) m_hooks->after_poll();
  m_sleeping.store(false, std::memory_order_relaxed);
}

bool event_loop::look_for_post(int looks) const noexcept {
  for (int i = 0; i < looks; ++i) {
    if (m_inbox.load(std::memory_order_relaxed) != nullptr) return true;
    detail::cpu_relax();
  }
  return false;
}

bool event_loop::spin_for_post(std::int64_t timeout_ns) noexcept {
  std::int64_t spin = m_options.idle_spin.count();
  if (timeout_ns > 0) spin = std::min(spin, timeout_ns);
  const std::int64_t until = read_clock() + spin;
  // The clock is read once per 64 looks: a look is a load and a pause.
  while (!look_for_post(64)) {
    if (read_clock() >= until) return false;
  }
  return true;
}

std::int64_t event_loop::wait_for_timer_ns(std::int64_t deadline_ns) const noexcept {
  return deadline_ns > m_now_ns ? deadline_ns - m_now_ns : 0;
}

bool event_loop::idle_forever() const noexcept {
  return !has_ready() && m_tick_end.empty() && m_timers.size() == 0 &&
         m_inbox.load(std::memory_order_acquire) == nullptr && !external_work_outstanding() &&
         m_backend->io_pending() == 0;
}

void event_loop::shuffle_ready() {
  std::vector<detail::task_base*> items;
  for (detail::task_base* t = m_ready_head; t != nullptr; t = t->m_next_ready)
    items.push_back(t);
  // A task that yielded and ended the last tick stays first: what it woke
  // before yielding has run, and what became ready after its yield goes
  // after it (the order yield_now promises). The rest is any order.
  const std::size_t fixed =
      !items.empty() && (items.front()->m_flags & detail::tf_yielded) != 0 ? 1 : 0;
  if (items.size() < fixed + 2) return;
  for (std::size_t i = items.size() - 1; i > fixed; --i) {
    std::swap(items[i], items[fixed + detail::xorshift64(m_rng) % (i + 1 - fixed)]);
  }
  m_ready_head = m_ready_tail = nullptr;
  for (detail::task_base* t : items)
    schedule(*t);
}

void event_loop::tick() {
  ++m_counters.iterations;
  if (hooked(detail::hook_tick)) m_hooks->tick_started();
  // 1. The clock, once.
  if (!m_options.virtual_clock) m_now_ns = read_clock();

  // 2. Due timers.
  m_timers.advance(m_now_ns);
  while (detail::timer_node* t = m_timers.pop_expired()) {
    ++m_counters.timers_fired;
    t->m_fire(*t);
  }

  // 3. Callbacks from other threads.
  if (m_inbox.load(std::memory_order_relaxed) != nullptr) run_posted();

  // 4. I/O. (Tick-end work registered by a tick-end callback counts as
  // ready: it must not wait behind a blocking poll.) A loop of a runtime
  // first looks for balanced spawns not yet started, its own or others'.
  if (!has_ready() && m_tick_end.empty() && m_work_source != nullptr) [[unlikely]]
    (void)m_work_source->m_take(*m_work_source, true);
  if (!has_ready() && m_tick_end.empty()) {
    const std::int64_t next = m_timers.next_deadline_ns();
    const bool outside_work = m_backend->io_pending() != 0 || external_work_outstanding() ||
                              m_inbox.load(std::memory_order_relaxed) != nullptr;
    if (m_options.virtual_clock) {
      if (outside_work) poll_io(next < 0 ? -1 : 0);
      if (!has_ready() && next > m_now_ns && m_inbox.load(std::memory_order_relaxed) == nullptr) {
        m_now_ns = next;  // jump: nothing else can happen before the next timer
      }
    } else if (next > 0 || (next < 0 && outside_work)) {
      // With no timer and no outside work nothing could end the wait: the
      // caller sees the loop idle instead (a posted callback run above may
      // just have finished the last outside work).
      poll_io(next < 0 ? -1 : wait_for_timer_ns(next));
    }
  } else if (m_backend->wants_flush() ||
             (m_backend->io_pending() != 0 && ++m_ticks_since_poll >= m_options.event_interval)) {
    poll_io(0);  // io_uring: queued submissions go out in this iteration
  }

  // 5. Ready tasks, FIFO, bounded by the budget. A loop of a runtime
  // starts one of its queued balanced spawns each tick, however busy, so
  // that none waits for ever.
  if (m_work_source != nullptr && has_ready()) [[unlikely]]
    (void)m_work_source->m_take(*m_work_source, false);
  if (m_shuffle) shuffle_ready();
  if (hooked(detail::hook_resume)) {
    m_counters.resumptions += run_ready<true, true>();
  } else if (m_work_source != nullptr) {  // a loop with siblings
    m_counters.resumptions += run_ready<false, true>();
  } else {
    m_counters.resumptions += run_ready<false, false>();
  }

  // 6. Work gathered during the tick goes out together. A callback that
  // registers again runs at the end of the next tick.
  if (!m_tick_end.empty()) [[unlikely]] {
    detail::intrusive_list<detail::tick_end_node> due;
    due.splice_back(m_tick_end);
    while (detail::tick_end_node* n = due.pop_front())
      n->m_fire(*n);
  }
  // 7. The tick's messages to other loops, one push per loop.
  if (m_outbox_used != 0) flush_outbox();
}

template <bool Hooked, bool Relay>
std::uint64_t event_loop::run_ready() {
  std::uint32_t budget = m_options.budget;
  std::uint64_t ran = 0;
  while (budget-- > 0) {
    detail::task_base* t = m_ready_head;
    if (t == nullptr) {
      // A loop of a runtime starts its next balanced spawn (one at a time,
      // so that the rest can still be stolen).
      if constexpr (Relay) {
        if (m_work_source != nullptr && m_work_source->m_take(*m_work_source, false)) continue;
      }
      break;
    }
    if ((t->m_flags & detail::tf_yielded) != 0) {
      // Yielded in this very tick: it goes on in the next one, after its
      // timers and I/O (and so does everything queued behind it).
      if (((t->m_flags & detail::tf_yield_odd) != 0) == odd_tick()) break;
      t->m_flags &= ~detail::tf_yielded;
    }
    m_ready_head = t->m_next_ready;
    if (m_ready_head == nullptr) m_ready_tail = nullptr;
    if constexpr (Hooked) {
      if (t->m_owner->m_home != this && m_options.debug) [[unlikely]] {
        send_home(*t);
        continue;
      }
    }
    m_current = t;
    if constexpr (Hooked) {
      m_hooks->before_resume(*t);
      t->resume_point().resume();
      // m_current is null when the root finished and its frame is gone.
      m_hooks->after_resume(m_current);
    } else {
      t->resume_point().resume();
    }
    ++ran;
    if constexpr (Relay) {
      if (m_unrelayed != 0) [[unlikely]]
        send_to_waiting();
    }
  }
  m_current = nullptr;
  return ran;
}

void event_loop::send_home(detail::task_base& t) {
  detail::loop_core* home_core = t.m_owner->m_home;
  auto* home = static_cast<event_loop*>(home_core);
  std::string who;
  if (t.name() != nullptr) {
    who += '\'';
    who += t.name();
    who += "' ";
  }
  who += t.where().function_name();
  report("corio: task " + who + " of loop " + std::to_string(home_core->m_runtime_index) +
         " was woken on loop " + std::to_string(m_runtime_index) +
         ": a loop-local primitive (event, queue, mutex, semaphore, condition_variable, "
         "task_group, a join_handle) was used from another loop's thread; across loops use a "
         "channel, submit_to or spawn_on. The task goes back to its own loop.");
  home->post([home, &t] { detail::core_of(*home).schedule(t); });
}

void event_loop::run_root(detail::task_base& main) {
  // corio::run inside a task: the outer loop stops until this one is done.
  if (t_current != nullptr) detail::note_blocking_call("corio::run (a loop inside a running loop)");
  m_previous = t_current;
  t_current = this;
  struct restore {
    event_loop* self;
    ~restore() {
      if (self->hooked(detail::hook_run)) self->m_hooks->run_finished();
      t_current = self->m_previous;
    }
  } restore_current{this};
  if (hooked(detail::hook_run)) m_hooks->run_started();

  bool deadlock = false;
  while (!main.done()) {
    if (idle_forever()) {
      deadlock = true;
      break;
    }
    tick();
  }
  if (hooked(detail::hook_run)) m_hooks->main_done(m_counters.live_tasks);
  shutdown();
  if (deadlock) {
    throw std::runtime_error(
        "corio: deadlock: the main task waits for something that can never happen "
        "(no ready task, timer, I/O or outside work is left)");
  }
}

void event_loop::shutdown() {
  // Cancel every root still alive, and again for roots spawned meanwhile,
  // until all have finished. Children of groups are cancelled by their group.
  while (m_counters.live_tasks != 0) {
    m_members.for_each([](detail::task_base& t) {
      if ((t.m_flags & detail::tf_cancel_requested) == 0) t.request_cancel();
    });
    if (idle_forever()) {
      report("corio: " + std::to_string(m_counters.live_tasks) +
             " task(s) still waiting at loop exit after cancellation; they are abandoned" +
             (m_hooks != nullptr ? ":\n" + m_hooks->task_dump() : std::string()));
      return;
    }
    tick();
  }
  // Jobs of cancelled offloads still on pool threads post back here: wait
  // for them, so that no worker posts to a loop that is gone (as
  // asyncio.run shuts its default executor down).
  while (external_work_outstanding() || m_inbox.load(std::memory_order_acquire) != nullptr)
    tick();
}

namespace detail {

void report_current_text(const char* data, std::size_t size) noexcept {
  try {
    if (const loop_core* loop = loop_core::current()) {
      loop->report_text(data, size);
    } else {
      std::string line(data, size);
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw
  }
}

void run_main(event_loop& loop, task_base& main) {
  loop.run_root(main);
}

void install_hooks(event_loop& loop, std::unique_ptr<loop_hooks> hooks) noexcept {
  loop.m_hooks = hooks.get();
  loop.m_hook_events = hooks != nullptr ? hooks->events() : 0;
  loop.m_owned_hooks = std::move(hooks);
}

void loop_core::on_member_done(task_base& /*t*/) noexcept {}

void loop_core::call_destroyed_hook(task_base& t) noexcept {
  m_hooks->task_destroyed(t);
}

void loop_core::note_task_dropped(task_base& t, bool started) noexcept {
  if (hooked(hook_task_dropped)) m_hooks->task_dropped(t, started);
}

void loop_core::note_blocking_call(const char* what) {
  if (hooked(hook_blocking_call)) m_hooks->blocking_call(what);
}

void loop_core::call_sleep_hook(std::int64_t deadline_ns) noexcept {
  m_hooks->sleep_resumed(deadline_ns);
}

}  // namespace detail
}  // namespace corio
