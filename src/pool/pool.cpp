// pool_core: the slow paths of pool<T> (waiting, creation, checks,
// eviction, housekeeping, leak reports, close), which do not depend on T.
#include "corio/pool/pool.hpp"
#include "corio/detail/xorshift.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <utility>

#include "corio/detail/throw.hpp"
#include "observe/observe.hpp"

namespace corio::detail {

namespace {

constexpr std::int64_t ns_of(std::chrono::nanoseconds d) noexcept {
  return d.count();
}

/// "250 ms", "30 s", "1.5 s", "2 min": durations for people.
std::string format_duration(std::int64_t ns) {
  char buf[48];
  if (ns < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.3g us", static_cast<double>(ns) / 1e3);
  } else if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.3g ms", static_cast<double>(ns) / 1e6);
  } else if (ns < 120'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(ns) / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g min", static_cast<double>(ns) / 60e9);
  }
  return buf;
}

}  // namespace

connection_job::connection_job(pool_core* p, kind k, pool_slot* s) noexcept
    : job_link(p), m_kind(k), m_slot(s) {}

connection_job::~connection_job() {
  pool_core* p = pool();
  if (p != nullptr && !m_settled && m_kind != kind::close) {
    p->job_ended_early(m_kind, std::exchange(m_slot, nullptr));
  }
  delete m_slot;  // a close job's connection, or one whose pool is gone
}

pool_core* connection_job::pool() const noexcept {
  return static_cast<pool_core*>(m_owner);
}

pool_core::pool_core(pool_options options) : m_options(std::move(options)) {
  if (m_options.max_size == 0) throw_invalid_argument("corio::pool: max_size must be at least 1");
  m_options.min_idle = std::min(m_options.min_idle, m_options.max_size);
  m_wait_label = "pool '" + m_options.name + "' acquire";
  m_validate_after_idle_ns = ns_of(m_options.validate_after_idle);
  m_deadline_timer.m_pool = this;
  m_deadline_timer.m_fire = &on_deadline;
  m_housekeeping_timer.m_pool = this;
  m_housekeeping_timer.m_fire = &on_housekeeping;
}

pool_core::~pool_core() {
  m_closed = true;
  fail_waiters_closed();
  const std::size_t out = m_in_use_count;
  m_in_use.for_each([](pool_slot& s) {
    s.unlink();
    s.m_pool = nullptr;  // the lease destroys it
  });
  m_idle.for_each([](pool_slot& s) {
    s.unlink();
    delete &s;
  });
  // Only when armed: a pool closed on its loop may be destroyed after it.
  if (m_deadline_timer.linked()) m_loop->timers().cancel(m_deadline_timer);
  if (m_housekeeping_timer.linked()) m_loop->timers().cancel(m_housekeeping_timer);
  if (out > 0) {
    try {
      report_current("corio::pool '" + m_options.name + "' destroyed with " + std::to_string(out) +
                     " lease(s) still out; their connections are destroyed when they end\n");
    } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw
    }
  }
}

void pool_core::ensure_started() noexcept {
  if (m_loop != nullptr) return;
  m_loop = &current_loop();
  const std::int64_t period = housekeeping_period_ns();
  if (period > 0) {
    m_housekeeping_timer.m_when_ns = saturating_add(m_loop->now_ns(), period);
    m_loop->add_timer(m_housekeeping_timer);
  }
  refill();
}

pool_stats pool_core::stats() const noexcept {
  pool_stats s = m_counts;
  s.size = m_size;
  s.idle = m_idle_count;
  s.in_use = m_in_use_count;
  s.creating = m_creating;
  s.waiters = m_waiter_count;
  s.max_size = m_options.max_size;
  return s;
}

bool pool_core::park_waiter(acquire_waiter& w, std::coroutine_handle<> h) noexcept {
  ensure_started();
  if (m_closed) {
    w.m_error = std::make_exception_ptr(pool_closed(m_options.name));
    return false;  // await_resume throws it
  }
  if (!park(w, h, m_wait_label.c_str())) return false;
  const std::int64_t now = m_loop->now_ns();
  w.m_since_ns = now;
  w.m_deadline_ns = saturating_add(now, ns_of(m_options.acquire_timeout));
  m_waiters.push_back(w);
  ++m_waiter_count;
  ++m_counts.waits;
  // At capacity with nothing idle (the common case under contention) there
  // is nothing to serve or create.
  if (!m_idle.empty() || m_size + m_creating < m_options.max_size) serve();
  if (w.linked() && !m_deadline_timer.linked()) arm_deadline();
  return true;
}

void pool_core::make_idle(pool_slot& s) noexcept {
  s.m_idle_since_ns = m_loop->now_ns();
  if (m_options.idle_order == pool_options::order::lifo) {
    m_idle.push_front(s);
  } else {
    m_idle.push_back(s);
  }
  ++m_idle_count;
}

std::uint64_t* pool_core::eviction_cause(const pool_slot& s) noexcept {
  if (m_closed) return &m_counts.evictions.closed;
  if (m_size > m_options.max_size) return &m_counts.evictions.resized;
  if (s.m_expires_ns <= m_loop->now_ns()) return &m_counts.evictions.lifetime;
  return nullptr;
}

void pool_core::release_ready(pool_slot& s) noexcept {
  if (std::uint64_t* cause = eviction_cause(s)) {
    evict(s, *cause);
    refill();  // a replacement, when one is wanted and allowed
  } else if (s.m_check && m_has_validate) {
    ++m_busy;
    start_validate(s);
  } else {
    s.m_check = false;
    hand_over(s);
  }
}

std::int64_t pool_core::housekeeping_period_ns() const noexcept {
  const std::int64_t period = ns_of(m_options.housekeeping_period);
  const std::int64_t leak = ns_of(m_options.leak_threshold);
  if (leak <= 0) return period;
  return period > 0 && period < leak ? period : leak;
}

void pool_core::job_ended_early(connection_job::kind k, pool_slot* s) noexcept {
  if (k == connection_job::kind::create) {
    --m_creating;
    return;
  }
  --m_busy;  // a check or reset, cancelled: the connection is not trusted
  if (s != nullptr) evict(*s, m_closed ? m_counts.evictions.closed : m_counts.evictions.broken);
  refill();
}

void pool_core::give_back_slow(pool_slot& s, bool broken) noexcept {
  if (broken) {
    evict(s, m_counts.evictions.broken);
    refill();
  } else if (m_has_reset && eviction_cause(s) == nullptr) {
    ++m_busy;
    start_reset(s);
  } else {
    release_ready(s);  // evicted, checked or lent
  }
}

void pool_core::evict(pool_slot& s, std::uint64_t& cause) noexcept {
  ++cause;
  --m_size;
  s.unlink();
  start_close(s);
  if (m_closed) maybe_quiet();
}

void pool_core::serve() noexcept {
  const std::int64_t now = m_loop->now_ns();
  while (m_waiter_count > 0 && !m_idle.empty()) {
    pool_slot& s = m_idle.front();
    s.unlink();
    --m_idle_count;
    if (s.m_expires_ns <= now) {
      evict(s, m_counts.evictions.lifetime);
    } else if (m_has_validate &&
               (s.m_check || now - s.m_idle_since_ns > m_validate_after_idle_ns)) {
      ++m_busy;
      start_validate(s);
    } else {
      s.m_check = false;
      hand_over(s);
    }
  }
  refill();
}

void pool_core::refill() noexcept {
  if (m_closed || m_loop == nullptr) return;
  for (;;) {
    const std::size_t deficit =
        m_options.min_idle > m_idle_count ? m_options.min_idle - m_idle_count : 0;
    const std::size_t wanted = m_waiter_count + deficit;
    const std::size_t coming = m_creating + m_busy;
    if (coming >= wanted || m_size + m_creating >= m_options.max_size) return;
    if (m_failures_in_row > 0 && m_creating > 0) return;  // one attempt at a time while failing
    ++m_creating;
    start_create();
  }
}

std::int64_t pool_core::lifetime_for_new() noexcept {
  const std::int64_t life = ns_of(m_options.max_lifetime);
  if (life <= 0) return scope_guard::never;
  std::int64_t cut = 0;
  if (life >= 10'000'000'000) {  // up to 2.5% earlier, so that they expire apart
    cut = static_cast<std::int64_t>(detail::xorshift64(m_jitter_state) %
                                    static_cast<std::uint64_t>(life / 40));
  }
  return saturating_add(m_loop->now_ns(), life - cut);
}

void pool_core::created(pool_slot& s) noexcept {
  --m_creating;
  ++m_size;
  ++m_counts.creations;
  m_failures_in_row = 0;
  m_last_creation_error = nullptr;
  s.m_pool = this;
  s.m_expires_ns = lifetime_for_new();
  release_ready(s);
  refill();
}

std::optional<std::chrono::nanoseconds> pool_core::creation_failed(
    const std::exception_ptr& e) noexcept {
  --m_creating;
  ++m_counts.creation_failures;
  ++m_failures_in_row;
  m_last_creation_error = e;
  if (acquire_waiter* w = m_waiters.pop_front()) {  // the oldest waiter hears why
    --m_waiter_count;
    w->m_error = e;
    w->wake();
  }
  if (m_closed) return std::nullopt;
  const std::size_t deficit =
      m_options.min_idle > m_idle_count ? m_options.min_idle - m_idle_count : 0;
  if (m_waiter_count + deficit <= m_creating + m_busy || m_size + m_creating >= m_options.max_size)
    return std::nullopt;
  ++m_creating;
  const std::uint32_t shift = std::min<std::uint32_t>(m_failures_in_row - 1, 7);
  return std::min(std::chrono::nanoseconds(std::chrono::milliseconds(10) * (1 << shift)),
                  std::chrono::nanoseconds(std::chrono::seconds(1)));
}

void pool_core::creation_abandoned() noexcept {
  --m_creating;
}

void pool_core::validated(pool_slot& s, bool ok) noexcept {
  --m_busy;
  if (m_closed) {
    evict(s, m_counts.evictions.closed);
    return;
  }
  if (!ok) {
    ++m_counts.validation_failures;
    evict(s, m_counts.evictions.validation);
    refill();
    return;
  }
  s.m_check = false;
  s.m_idle_since_ns = m_loop->now_ns();  // checked just now
  release_ready(s);
}

void pool_core::reset_done(pool_slot& s, bool ok) noexcept {
  --m_busy;
  if (!ok && !m_closed) {
    evict(s, m_counts.evictions.broken);
    refill();
    return;
  }
  release_ready(s);
}

void pool_core::arm_deadline() noexcept {
  if (m_waiters.empty()) return;
  m_deadline_timer.m_when_ns = m_waiters.front().m_deadline_ns;
  m_loop->add_timer(m_deadline_timer);
}

void pool_core::on_deadline(timer_node& t) noexcept {
  pool_core& p = *static_cast<pool_timer&>(t).m_pool;
  const std::int64_t now = p.m_loop->now_ns();
  while (!p.m_waiters.empty() && p.m_waiters.front().m_deadline_ns <= now) {
    acquire_waiter* w = p.m_waiters.pop_front();
    --p.m_waiter_count;
    ++p.m_counts.timeouts;
    try {
      w->m_error = std::make_exception_ptr(timeout_error(p.timeout_message()));
    } catch (...) {
      w->m_error = std::current_exception();
    }
    w->wake();
  }
  p.arm_deadline();
}

std::string pool_core::timeout_message() const {
  std::string m = "corio::pool '" + m_options.name + "': no connection within " +
                  format_duration(ns_of(m_options.acquire_timeout)) + " (" +
                  std::to_string(m_size) + " of " + std::to_string(m_options.max_size) + " open, " +
                  std::to_string(m_in_use_count) + " in use, " +
                  std::to_string(m_waiter_count + 1) + " waited";
  if (m_last_creation_error) m += "; last creation error: " + describe_error(m_last_creation_error);
  return m + ")";
}

void pool_core::on_housekeeping(timer_node& t) noexcept {
  pool_core& p = *static_cast<pool_timer&>(t).m_pool;
  p.housekeep();
  const std::int64_t period = p.housekeeping_period_ns();
  if (!p.m_closed && period > 0) {
    t.m_when_ns = saturating_add(p.m_loop->now_ns(), period);
    p.m_loop->add_timer(t);
  }
}

void pool_core::housekeep() noexcept {
  const std::int64_t now = m_loop->now_ns();
  const std::int64_t idle_limit = ns_of(m_options.idle_timeout);
  m_idle.for_each([&](pool_slot& s) {
    if (s.m_expires_ns <= now) {
      --m_idle_count;
      evict(s, m_counts.evictions.lifetime);
    } else if (idle_limit > 0 && now - s.m_idle_since_ns >= idle_limit &&
               m_idle_count > m_options.min_idle) {
      --m_idle_count;
      evict(s, m_counts.evictions.idle);
    }
  });
  const std::int64_t leak = ns_of(m_options.leak_threshold);
  if (leak > 0) {
    m_in_use.for_each([&](pool_slot& s) {
      if (!s.m_leak_reported && now - s.m_borrowed_ns >= leak) report_leak(s, now);
    });
  }
  refill();
}

void pool_core::report_leak(pool_slot& s, std::int64_t now) noexcept {
  s.m_leak_reported = true;
  ++m_counts.leaks_reported;
  try {
    bool alive = false;
    m_loop->for_each_root([&](task_base& t) {
      alive = alive || (&t == s.m_holder && t.m_spawned_ticks == s.m_holder_ticks);
    });
    std::string m = "corio::pool '" + m_options.name + "': a connection has been lent for " +
                    format_duration(now - s.m_borrowed_ns) + " (leak_threshold " +
                    format_duration(ns_of(m_options.leak_threshold)) + ")";
    if (alive && s.m_holder != nullptr) {
      const char* name = s.m_holder->name();
      m += std::string(", held by task '") + (name != nullptr ? name : "(unnamed)") + "':\n" +
           await_chain_text(*s.m_holder);
    } else {
      m += "; the task that acquired it has finished (the lease outlived it)\n";
    }
    m_loop->report(m);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw
  }
}

void pool_core::fail_waiters_closed() noexcept {
  while (acquire_waiter* w = m_waiters.pop_front()) {
    --m_waiter_count;
    try {
      w->m_error = std::make_exception_ptr(pool_closed(m_options.name));
    } catch (...) {
      w->m_error = std::current_exception();
    }
    w->wake();
  }
}

void pool_core::maybe_quiet() noexcept {
  if (m_closed && quiet()) m_quiet.set();
}

task<> pool_core::close_core(std::chrono::nanoseconds grace) {
  if (!m_closed) {
    m_closed = true;
    fail_waiters_closed();
    m_idle.for_each([this](pool_slot& s) {
      --m_idle_count;
      evict(s, m_counts.evictions.closed);
    });
    // Creations and checks are cancelled (their links settle the counts and
    // close what they held); resets and closes finish.
    cancel_jobs_if([](job_link& j) {
      const auto k = static_cast<connection_job&>(j).m_kind;
      return k == connection_job::kind::create || k == connection_job::kind::validate;
    });
    if (m_loop != nullptr) {
      m_loop->timers().cancel(m_housekeeping_timer);
      m_loop->timers().cancel(m_deadline_timer);
    }
  }
  if (quiet()) co_return;
  const bool in_time = co_await move_on_after(grace, m_quiet.wait());
  if (!in_time && m_in_use_count > 0) {
    report_current("corio::pool '" + m_options.name + "' closed with " +
                   std::to_string(m_in_use_count) + " lease(s) still out after " +
                   format_duration(ns_of(grace)) +
                   "; their connections are closed when they come back\n");
  }
}

void pool_core::resize_core(std::size_t max_size) noexcept {
  m_options.max_size = std::max<std::size_t>(max_size, 1);
  m_options.min_idle = std::min(m_options.min_idle, m_options.max_size);
  if (m_loop == nullptr) return;
  m_idle.for_each([this](pool_slot& s) {
    if (m_size > m_options.max_size) {
      --m_idle_count;
      evict(s, m_counts.evictions.resized);
    }
  });
  serve();
}

}  // namespace corio::detail
