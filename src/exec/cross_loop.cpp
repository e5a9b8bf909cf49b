// The calls between a runtime's loops: what is not inline.
#include "corio/exec/cross_loop.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
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

void runtime_state::queue_kept(remote_base& call) noexcept {
  call_queue& q = m_queues[call.m_from];
  std::size_t before = 0;
  {
    const std::lock_guard lock(q.m_mutex);
    call.posted_node::m_next = nullptr;
    if (q.m_tail != nullptr) {
      q.m_tail->m_next = &call;
    } else {
      q.m_head = &call;
    }
    q.m_tail = &call;
    call.m_queued = true;
    before = q.m_size.load(std::memory_order_relaxed);
    q.m_size.store(before + 1, std::memory_order_relaxed);
  }
  // A loop that found this queue empty went to wait: wake one. (Missing
  // one costs parallelism, not work: this loop starts its queue itself.)
  if (before == 0) {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // see event_loop::poll_io
    nudge_a_waiting_loop(call.m_from);
  }
}

bool runtime_state::cancel_queued(remote_base& call) noexcept {
  call_queue& q = m_queues[call.m_from];
  const std::lock_guard lock(q.m_mutex);
  if (!call.m_queued) return false;
  call.m_cancelled_in_queue = true;
  return true;
}

void runtime_state::nudge_a_waiting_loop(std::size_t from) noexcept {
  // One call for the whole look: the other loops stay alive while it reads
  // them, and it is the nudge's call if one goes.
  if (!begin_call()) return;  // stopping: nobody steals any more
  const std::size_t n = m_loops.size();
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (from + k) % n;
    loop_work& w = m_work[i];
    if (!m_loops[i]->waiting_for_work() || w.m_nudged.load(std::memory_order_relaxed)) continue;
    if (w.m_nudged.exchange(true, std::memory_order_acquire)) continue;
    // At once, not batched: a relayed outbox entry would hold it to the
    // tick's end, while this loop starts its queue alone.
    m_loops[i]->post(w.m_nudge);
    return;
  }
  end_call();
}

posted_node* runtime_state::claim(call_queue& q, std::size_t most, std::size_t to,
                                  std::size_t& got) noexcept {
  got = 0;
  const std::lock_guard lock(q.m_mutex);
  posted_node* first = q.m_head;
  posted_node* last = nullptr;
  for (posted_node* n = first; n != nullptr && got < most; n = n->m_next) {
    auto* call = static_cast<remote_base*>(n);
    call->m_queued = false;
    call->m_target = m_loops[to];
    call->m_to = static_cast<std::uint32_t>(to);
    call->m_local = call->m_from == to;
    last = n;
    ++got;
  }
  if (last == nullptr) return nullptr;
  q.m_head = last->m_next;
  if (q.m_head == nullptr) q.m_tail = nullptr;
  last->m_next = nullptr;
  q.m_size.store(q.m_size.load(std::memory_order_relaxed) - got, std::memory_order_relaxed);
  return first;
}

bool runtime_state::take_work(loop_core::work_source& source, bool idle) noexcept {
  auto& w = static_cast<loop_work&>(source);
  runtime_state& rt = *w.m_runtime;
  call_queue& q = rt.m_queues[w.m_index];
  std::size_t got = 0;
  if (q.m_size.load(std::memory_order_relaxed) != 0) {
    if (posted_node* call = rt.claim(q, 1, w.m_index, got)) {
      rt.start_kept(static_cast<remote_base&>(*call));
      return true;
    }
  }
  return idle && rt.steal(w.m_index);
}

void runtime_state::start_kept(remote_base& call) noexcept {
  // Held on the origin while it was queued; steal() settles a stolen one's.
  if (call.m_local) external_work::remove(*call.m_origin);
  if (call.m_cancelled_in_queue || stopping()) {
    call.m_ops->reply(call);  // never started: cancelled_error
  } else {
    call.m_ops->start(call);
  }
}

bool runtime_state::steal(std::size_t here) noexcept {
  const std::size_t n = m_loops.size();
  // Every loop out of work comes here, twice before it sleeps, and mostly
  // finds nothing: a plain look at the sizes first (lines the cores share
  // while nobody queues), before the random pick and its divisions.
  bool any = false;
  for (std::size_t victim = 0; victim < n && !any; ++victim)
    any = victim != here && m_queues[victim].m_size.load(std::memory_order_relaxed) != 0;
  if (!any) return false;
  const std::size_t first = static_cast<std::size_t>(xorshift64(t_pick_rng) % n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t victim = first + k < n ? first + k : first + k - n;
    if (victim == here) continue;
    call_queue& q = m_queues[victim];
    const std::size_t seen = q.m_size.load(std::memory_order_relaxed);
    if (seen == 0) continue;
    // Half of what was seen, each a call into this loop: begun before it is
    // taken, so that a stopping runtime takes none (and the surplus ends).
    const std::size_t want = (seen + 1) / 2;
    std::size_t begun = 0;
    while (begun < want && begin_call())
      ++begun;
    if (begun == 0) return false;
    std::size_t got = 0;
    posted_node* taken = claim(q, begun, here, got);
    for (std::size_t i = got; i < begun; ++i)
      end_call();
    if (got == 0) continue;
    core_of(*m_loops[here]).count_stolen(got);
    // The victim kept them as its outside work until started; they are in
    // flight now, which the runtime counts.
    external_work::settle_elsewhere(*m_loops[victim], static_cast<std::int64_t>(got));
    while (taken != nullptr) {
      auto* call = static_cast<remote_base*>(taken);
      taken = taken->m_next;
      note_sent(call->m_from, here);
      start_kept(*call);
    }
    return true;
  }
  return false;
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
