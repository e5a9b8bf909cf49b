// pool<T>: a connection pool with RAII leases, health checks, timeouts,
// eviction, leak reports and statistics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "corio/detail/awaitable_traits.hpp"
#include "corio/detail/throw.hpp"
#include "corio/errors.hpp"
#include "corio/flow/detail/child_scope.hpp"
#include "corio/observe/histogram.hpp"
#include "corio/pool/detail/job_owner.hpp"
#include "corio/sync/detail/list_waiter.hpp"
#include "corio/sync/event.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Thrown by `pool::acquire` once the pool is closed (or destroyed while
/// the acquire waited).
class pool_closed : public std::runtime_error {
 public:
  /// The error for the pool named `pool_name`: "corio::pool '<name>' is closed".
  explicit pool_closed(const std::string& pool_name)
      : std::runtime_error("corio::pool '" + pool_name + "' is closed") {}
};

/// A pool's settings. The defaults follow HikariCP's and deadpool's:
/// at most 10 connections, a 30 s acquire timeout, connections replaced
/// after 30 min and closed after 10 min idle.
struct pool_options {
  /// Names the pool in errors, reports and task dumps.
  std::string name = "pool";
  /// At most this many connections exist or are being created.
  std::size_t max_size = 10;
  /// Idle connections kept ready in the background (0: created on demand).
  std::size_t min_idle = 0;
  /// How long `acquire` waits before throwing `timeout_error`.
  std::chrono::nanoseconds acquire_timeout = std::chrono::seconds(30);
  /// A connection older than this is closed when it next comes back (or
  /// lies idle), and replaced. Each connection's lifetime is cut short by up
  /// to 2.5% at random when it is 10 s or more, so that connections made
  /// together do not all expire together. 0: no limit.
  std::chrono::nanoseconds max_lifetime = std::chrono::minutes(30);
  /// An idle connection is closed after this long, unless that would leave
  /// fewer than `min_idle`. 0: never.
  std::chrono::nanoseconds idle_timeout = std::chrono::minutes(10);
  /// A connection idle longer than this is validated before it is lent
  /// (when the pool has a `validate` hook); one used just now is not.
  std::chrono::nanoseconds validate_after_idle = std::chrono::milliseconds(500);
  /// A lease held longer than this is reported once, with the holder
  /// task's name and await chain. 0: off.
  std::chrono::nanoseconds leak_threshold{0};
  /// How often idle connections are checked for eviction and `min_idle`
  /// is topped up (at least as often as `leak_threshold`, when set).
  std::chrono::nanoseconds housekeeping_period = std::chrono::seconds(30);
  /// Which idle connection is lent first: the most recently returned (LIFO:
  /// the others age out when traffic falls) or the least (FIFO: all stay
  /// warm).
  enum class order : std::uint8_t { lifo, fifo } idle_order = order::lifo;  ///< LIFO by default.
};

/// A pool's figures now. `size` counts open connections (idle, lent, or
/// being validated or reset); `creating` those being opened.
struct pool_stats {
  std::size_t size = 0;         ///< open connections: idle, lent, or being validated or reset
  std::size_t idle = 0;         ///< connections waiting to be lent
  std::size_t in_use = 0;       ///< connections lent out now
  std::size_t creating = 0;     ///< connections being opened now
  std::size_t waiters = 0;      ///< acquires waiting now
  std::size_t max_size = 0;     ///< the bound in force (pool_options::max_size, or resize())
  std::uint64_t acquires = 0;   ///< leases handed out
  std::uint64_t waits = 0;      ///< acquires that had to wait
  std::uint64_t timeouts = 0;   ///< acquires that timed out
  std::uint64_t creations = 0;  ///< connections opened
  std::uint64_t creation_failures = 0;    ///< `create` calls that threw
  std::uint64_t validation_failures = 0;  ///< `validate` calls that said no or threw
  std::uint64_t leaks_reported = 0;       ///< leases reported held past leak_threshold
  /// Connections closed, by cause.
  struct evictions_t {
    std::uint64_t broken = 0;      ///< discarded, or has_broken said so
    std::uint64_t lifetime = 0;    ///< older than max_lifetime
    std::uint64_t idle = 0;        ///< idle longer than idle_timeout
    std::uint64_t validation = 0;  ///< validate said no
    std::uint64_t closed = 0;      ///< the pool was closed
    std::uint64_t resized = 0;     ///< resize() shrank the pool
  } evictions;                     ///< Connections closed, by cause (see evictions_t).
};

namespace detail {

class pool_core;

/// One open connection: the pool's bookkeeping, and (in pool_slot_of<T>)
/// the connection itself. Linked into the idle list or the in-use list,
/// or owned by a background job (validate, reset, close) or by a lease.
struct pool_slot : list_node {
  pool_slot() = default;
  pool_slot(const pool_slot&) = delete;
  pool_slot& operator=(const pool_slot&) = delete;
  virtual ~pool_slot() = default;

  pool_core* m_pool = nullptr;  // nullptr once the pool is gone
  std::int64_t m_expires_ns = 0;
  std::int64_t m_idle_since_ns = 0;
  std::int64_t m_borrowed_ns = 0;
  task_base* m_holder = nullptr;     // the root that acquired it
  std::uint32_t m_holder_ticks = 0;  // ... and when it was spawned (addresses are reused)
  bool m_check = false;              // validate before it is lent again
  bool m_leak_reported = false;
};

template <class T>
struct pool_slot_of final : pool_slot {
  explicit pool_slot_of(T&& c) : m_conn(std::move(c)) {}
  T m_conn;
};

/// A pool job's link (job_owner.hpp): which job it is and the connection
/// it works on, so that a job ending early (cancelled, even before its body
/// ran) still settles the pool's counts and the connection.
struct connection_job : job_link {
  enum class kind : std::uint8_t { create, validate, reset, close };
  connection_job(pool_core* p, kind k, pool_slot* s = nullptr) noexcept;
  connection_job(connection_job&& o) noexcept
      : job_link(std::move(o)),
        m_kind(o.m_kind),
        m_slot(std::exchange(o.m_slot, nullptr)),
        m_settled(o.m_settled) {}
  connection_job(const connection_job&) = delete;
  connection_job& operator=(const connection_job&) = delete;
  connection_job& operator=(connection_job&&) = delete;
  ~connection_job();

  /// The pool, or nullptr once it is gone.
  [[nodiscard]] pool_core* pool() const noexcept;
  template <class T>
  [[nodiscard]] T& conn() const noexcept {
    return static_cast<pool_slot_of<T>*>(m_slot)->m_conn;
  }
  /// The job reports its outcome itself: the link settles nothing, and
  /// hands over the connection.
  pool_slot* settle() noexcept {
    m_settled = true;
    return std::exchange(m_slot, nullptr);
  }

  kind m_kind;
  pool_slot* m_slot;
  bool m_settled = false;
};

/// Everything of a pool that does not depend on T: waiters, lists,
/// counters, timers, housekeeping. pool<T> adds the hooks, which run in
/// background jobs it spawns through the virtual start_* functions.
class pool_core : public job_owner {
 public:
  struct acquire_waiter : list_waiter {
    pool_core* m_pool;
    pool_slot* m_slot = nullptr;
    std::exception_ptr m_error;
    std::int64_t m_since_ns = 0;
    std::int64_t m_deadline_ns = 0;

    explicit acquire_waiter(pool_core* p) noexcept : m_pool(p) {}
    [[nodiscard]] bool await_ready() noexcept {
      m_slot = m_pool->take_ready();
      return m_slot != nullptr;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept { return m_pool->park_waiter(*this, h); }
    void on_abort() noexcept {
      unlink();
      --m_pool->m_waiter_count;
    }
    // Woken with a connection, then cancelled before it ran: the next
    // waiter (or the idle list) gets it.
    // (The slot's pool, not m_pool: the pool may be gone by now.)
    void on_pass() noexcept {
      if (pool_slot* s = std::exchange(m_slot, nullptr)) {
        if (s->m_pool != nullptr) {
          s->m_pool->unlend(*s);
        } else {
          delete s;
        }
      }
    }
    pool_slot& take() {
      finish();
      if (m_error) std::rethrow_exception(m_error);
      return *m_slot;
    }
  };

  explicit pool_core(pool_options options);
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  [[nodiscard]] const pool_options& options() const noexcept { return m_options; }
  [[nodiscard]] const std::string& name() const noexcept { return m_options.name; }
  [[nodiscard]] pool_stats stats() const noexcept;
  /// How long acquires that had to wait waited.
  [[nodiscard]] const latency_histogram& wait_times() const noexcept { return m_wait_times; }
  /// The index, in its runtime, of the loop the pool was made on (0 off a
  /// runtime): its figures are read on that loop's thread.
  [[nodiscard]] std::size_t loop_index() const noexcept { return m_loop->m_runtime_index; }
  [[nodiscard]] bool closed() const noexcept { return m_closed; }
  /// Whether the pool has a validate hook.
  [[nodiscard]] bool validates() const noexcept { return m_has_validate; }

  /// A usable idle connection taken at once, or nullptr (waiters first, a
  /// check due, or nothing idle).
  pool_slot* take_ready() noexcept {
    if (m_waiter_count != 0 || m_idle.empty() || m_closed) return nullptr;
    pool_slot& s = m_idle.front();
    const std::int64_t now = m_loop->now_ns();
    if (s.m_expires_ns <= now || s.m_check ||
        (m_has_validate && now - s.m_idle_since_ns > m_validate_after_idle_ns))
      return nullptr;
    s.unlink();
    --m_idle_count;
    lend(s, m_loop->current_task(), now);
    return &s;
  }

  /// A lease ends: the connection goes to the next waiter, to the idle list,
  /// to a reset or check first, or is closed (`broken`: discarded).
  void give_back(pool_slot& s, bool failed, bool broken) noexcept {
    s.unlink();
    --m_in_use_count;
    if (failed) s.m_check = true;
    if (!broken && !m_closed && !m_has_reset && m_size <= m_options.max_size &&
        s.m_expires_ns > m_loop->now_ns() && !s.m_check) {
      hand_over(s);
    } else {
      give_back_slow(s, broken);
    }
  }

  /// A usable connection is free: the oldest waiter gets it, else it goes
  /// idle.
  void hand_over(pool_slot& s) noexcept {
    if (acquire_waiter* w = m_waiters.pop_front()) {
      --m_waiter_count;
      const std::int64_t now = m_loop->now_ns();
      m_wait_times.record_ns(now - w->m_since_ns);
      lend(s, w->m_task, now);
      w->m_slot = &s;
      w->wake();
    } else {
      make_idle(s);
    }
  }

 protected:
  ~pool_core();

  // Background jobs, spawned by pool<T> into the pool's scope.
  virtual void start_create() = 0;
  virtual void start_validate(pool_slot& s) = 0;
  virtual void start_reset(pool_slot& s) = 0;
  virtual void start_close(pool_slot& s) = 0;

  /// Binds the pool to the running loop and starts housekeeping and the
  /// min_idle fill (from pool<T>'s constructor: the hooks must exist).
  void ensure_started() noexcept;
  task<> close_core(std::chrono::nanoseconds grace);
  void resize_core(std::size_t max_size) noexcept;

  bool m_has_validate = false;
  bool m_has_reset = false;

 public:
  // Called by the jobs (through their job_link, so public).
  void created(pool_slot& s) noexcept;
  /// Returns the delay before the next attempt, or nullopt: none wanted.
  std::optional<std::chrono::nanoseconds> creation_failed(const std::exception_ptr& e) noexcept;
  void creation_abandoned() noexcept;
  void validated(pool_slot& s, bool ok) noexcept;
  void reset_done(pool_slot& s, bool ok) noexcept;
  /// A job ended without reporting (cancelled): undoes its count and closes
  /// the connection it had.
  void job_ended_early(connection_job::kind k, pool_slot* s) noexcept;

 private:
  struct pool_timer : timer_node {
    pool_core* m_pool = nullptr;
  };

  void lend(pool_slot& s, task_base* holder, std::int64_t now) noexcept {
    s.m_borrowed_ns = now;
    s.m_holder = holder;
    s.m_holder_ticks = holder != nullptr ? holder->m_spawned_ticks : 0;
    s.m_leak_reported = false;
    m_in_use.push_back(s);
    ++m_in_use_count;
    ++m_counts.acquires;
  }
  void unlend(pool_slot& s) noexcept {
    s.unlink();
    --m_in_use_count;
    --m_counts.acquires;
    release_ready(s);
  }
  void make_idle(pool_slot& s) noexcept;
  /// `s` is ready for use: checked first when it must be.
  void release_ready(pool_slot& s) noexcept;
  bool park_waiter(acquire_waiter& w, std::coroutine_handle<> h) noexcept;
  void give_back_slow(pool_slot& s, bool broken) noexcept;
  /// Why `s` must be closed rather than lent (closed pool, over max_size,
  /// past its lifetime): the eviction counter to bump, or nullptr.
  std::uint64_t* eviction_cause(const pool_slot& s) noexcept;
  void evict(pool_slot& s, std::uint64_t& cause) noexcept;
  /// Serves waiters from the idle list and starts the creations that the
  /// waiters and min_idle need.
  void serve() noexcept;
  void refill() noexcept;
  void arm_deadline() noexcept;
  static void on_deadline(timer_node& t) noexcept;
  static void on_housekeeping(timer_node& t) noexcept;
  void housekeep() noexcept;
  void report_leak(pool_slot& s, std::int64_t now) noexcept;
  std::string timeout_message() const;
  void fail_waiters_closed() noexcept;
  void maybe_quiet() noexcept;
  [[nodiscard]] bool quiet() const noexcept { return m_in_use_count == 0 && job_count() == 0; }
  void on_job_done() noexcept override { maybe_quiet(); }
  std::int64_t lifetime_for_new() noexcept;
  [[nodiscard]] std::int64_t housekeeping_period_ns() const noexcept;

  pool_options m_options;
  loop_core* m_loop = nullptr;
  std::string m_wait_label;
  intrusive_list<pool_slot> m_idle;
  intrusive_list<pool_slot> m_in_use;
  intrusive_list<acquire_waiter> m_waiters;
  std::size_t m_idle_count = 0;
  std::size_t m_in_use_count = 0;
  std::size_t m_size = 0;  // open connections, wherever they are
  std::size_t m_creating = 0;
  std::size_t m_busy = 0;  // owned by a validate or reset job
  std::size_t m_waiter_count = 0;
  std::int64_t m_validate_after_idle_ns = 0;
  pool_stats m_counts;  // the counters; stats() adds the gauges
  std::uint32_t m_failures_in_row = 0;
  std::uint64_t m_jitter_state = 0x9e3779b97f4a7c15ULL;
  std::exception_ptr m_last_creation_error;
  latency_histogram m_wait_times;
  pool_timer m_deadline_timer;
  pool_timer m_housekeeping_timer;
  event m_quiet;
  bool m_closed = false;
};

}  // namespace detail

template <class T>
class pool;

/// A connection lent by a pool: `*lease` and `lease->` reach it. Ending the
/// lease (destruction or `release()`) returns the connection; `discard()`
/// closes it instead. A lease that ends while an exception is in flight
/// (its borrower failed, or was cancelled, mid-operation) marks the
/// connection for validation before anyone gets it again.
///
/// \code
///   {
///     auto conn = co_await db.acquire();
///     co_await conn->query("SELECT 1");
///   }  // returned here
/// \endcode
template <class T>
class [[nodiscard]] pool_lease {
 public:
  /// An empty lease (false in a boolean context), as try_acquire gives
  /// when nothing is free.
  pool_lease() noexcept = default;
  /// Adopts the pool's slot `s`; called by the pool, not by user code.
  explicit pool_lease(detail::pool_slot_of<T>& s) noexcept : m_slot(&s) {}
  /// Takes over `o`'s connection; `o` becomes empty.
  pool_lease(pool_lease&& o) noexcept : m_slot(std::exchange(o.m_slot, nullptr)) {}
  /// Returns the connection this lease held (as release()) and takes over `o`'s.
  pool_lease& operator=(pool_lease&& o) noexcept {
    if (this != &o) {
      end(false);
      m_slot = std::exchange(o.m_slot, nullptr);
    }
    return *this;
  }
  pool_lease(const pool_lease&) = delete;
  pool_lease& operator=(const pool_lease&) = delete;
  ~pool_lease() { end(false); }

  /// The connection. The lease must not be empty (check it when it came
  /// from try_acquire).
  [[nodiscard]] T& operator*() const noexcept { return m_slot->m_conn; }
  /// Member access to the connection; the lease must not be empty.
  [[nodiscard]] T* operator->() const noexcept { return &m_slot->m_conn; }
  /// The connection, as `*lease`; the lease must not be empty.
  [[nodiscard]] T& get() const noexcept { return m_slot->m_conn; }
  /// False after release() or discard() (or for a moved-from lease).
  [[nodiscard]] explicit operator bool() const noexcept { return m_slot != nullptr; }

  /// Returns the connection now.
  void release() noexcept { end(false); }
  /// Closes the connection instead of returning it (it is broken); the pool
  /// opens a new one when it needs one.
  void discard() noexcept { end(true); }

 private:
  void end(bool broken) noexcept;

  detail::pool_slot_of<T>* m_slot = nullptr;
};

/// What a pool needs to know about its connections. Only `create` is
/// required; the others default to "nothing to do".
template <class T>
struct pool_hooks {
  /// Opens a connection.
  std::function<task<T>()> create;
  /// An async health check before a connection is lent after idling
  /// (validate_after_idle) or after its borrower failed; false or a throw
  /// closes it.
  std::function<task<bool>(T&)> validate;
  /// Runs when a lease ends, before anyone else gets the connection (roll
  /// back a transaction, `DISCARD ALL`); a throw closes it.
  std::function<task<>(T&)> reset;
  /// Async teardown (QUIT, Terminate); the connection is destroyed after.
  std::function<task<>(T&)> close;
  /// A cheap check when a lease ends: true closes the connection.
  std::function<bool(const T&)> has_broken;
};

/// A pool of connections of any type T (movable), created by
/// `hooks.create` as they are needed and lent out as RAII leases.
///
/// Waiters are served in FIFO order; idle connections LIFO (see
/// pool_options). No hook ever runs in the acquiring task: creation,
/// validation, reset and close run as the pool's own background tasks, so a
/// cancelled `acquire` can never leave a connection half made or lost. A
/// creation that finishes after its waiter left serves the next waiter or
/// goes idle. A creation that fails is retried with back-off (10 ms,
/// doubling to 1 s) while anyone waits, and its error is thrown to the
/// oldest waiter. Create and use a pool on one loop, and close or destroy
/// it before the loop ends.
///
/// Cancellation: `acquire` is cancel-safe. A waiter that is cancelled
/// leaves the queue at once; one that was handed a connection and is
/// cancelled before it ran passes it on.
///
/// \code
///   corio::pool<db_conn> db({.create = [] { return db_conn::open("..."); }},
///                           {.name = "db", .max_size = 20});
///   {
///     auto conn = co_await db.acquire();
///     co_await conn->execute("UPDATE ...");
///   }  // returned
///   co_await db.close();
/// \endcode
template <class T>
class pool final : public detail::pool_core {
  struct acquire_awaiter : acquire_waiter {
    using acquire_waiter::acquire_waiter;
    pool_lease<T> await_resume() {
      return pool_lease<T>(static_cast<detail::pool_slot_of<T>&>(take()));
    }
  };

 public:
  /// A pool that makes connections with `hooks` as `options` say. Made on
  /// a loop, it starts there at once (housekeeping, the min_idle fill);
  /// made off a loop, at its first acquire(), on that loop. Throws
  /// std::invalid_argument when `hooks.create` is empty or `max_size` is 0.
  explicit pool(pool_hooks<T> hooks, pool_options options = {})
      : pool_core(std::move(options)), m_hooks(std::move(hooks)) {
    m_has_validate = static_cast<bool>(m_hooks.validate);
    m_has_reset = static_cast<bool>(m_hooks.reset);
    if (!m_hooks.create) detail::throw_invalid_argument("corio::pool: hooks.create is required");
    if (detail::loop_core::current() != nullptr) ensure_started();
  }
  /// Waiters are woken with `pool_closed`; idle connections are destroyed
  /// (without the close hook); leases still out keep their connections,
  /// which are destroyed when the leases end; background jobs are
  /// cancelled. Prefer `co_await close()`, which closes connections with
  /// the close hook and waits for leases.
  ~pool() = default;

  /// Waits for a connection and lends it. Throws `timeout_error` (naming
  /// the pool, how many waited and the last creation error) after
  /// `acquire_timeout`, `pool_closed` once the pool is closed, or a
  /// creation's error when the creation this waiter waited for failed.
  [[nodiscard]] acquire_awaiter acquire() noexcept { return acquire_awaiter(this); }

  /// A lease at once, or an empty one (nothing idle and usable, or others
  /// waiting); never waits and never creates.
  pool_lease<T> try_acquire() noexcept {
    if (detail::pool_slot* s = take_ready()) {
      return pool_lease<T>(static_cast<detail::pool_slot_of<T>&>(*s));
    }
    return {};
  }

  /// Stops lending: waiters get `pool_closed`, idle connections are closed,
  /// background creations and checks are cancelled, and leases are waited
  /// for up to `grace` (their connections are closed as they come back).
  task<> close(std::chrono::nanoseconds grace = std::chrono::seconds(30)) {
    return close_core(grace);
  }

  /// Changes max_size: growing serves waiters at once; shrinking closes
  /// idle connections now and lent ones as they come back.
  void resize(std::size_t max_size) noexcept { resize_core(max_size); }

  /// The connection's "has broken" check, for lease::end.
  [[nodiscard]] bool broken(const T& c) const {
    return m_hooks.has_broken && m_hooks.has_broken(c);
  }

 private:
  using slot = detail::pool_slot_of<T>;

  void start_create() override {
    spawn_job(create_job(detail::connection_job(this, detail::connection_job::kind::create),
                         m_hooks.create),
              "pool: create connection");
  }
  void start_validate(detail::pool_slot& s) override {
    spawn_job(check_job(detail::connection_job(this, detail::connection_job::kind::validate, &s),
                        m_hooks.validate, {}),
              "pool: validate");
  }
  void start_reset(detail::pool_slot& s) override {
    spawn_job(check_job(detail::connection_job(this, detail::connection_job::kind::reset, &s), {},
                        m_hooks.reset),
              "pool: reset");
  }
  void start_close(detail::pool_slot& s) override {
    if (!m_hooks.close) {
      delete &s;
      return;
    }
    spawn_job(close_job(detail::connection_job(this, detail::connection_job::kind::close, &s),
                        m_hooks.close),
              "pool: close connection");
  }

  // The jobs are static and take copies of the hooks they call: a job may
  // outlive the pool (destroyed without close()), and a hook's closure must
  // outlive the coroutine it started. They reach the pool only through
  // `job.pool()`, null once the pool is gone. A job that is cancelled
  // leaves the settling to its link (connection_job's destructor).
  static task<> create_job(detail::connection_job job, std::function<task<T>()> create) {
    for (;;) {
      std::exception_ptr error;
      try {
        T conn = co_await create();
        auto* s = new slot(std::move(conn));
        if (detail::pool_core* p = job.pool()) {
          job.settle();
          p->created(*s);
        } else {
          delete s;
        }
        co_return;
      } catch (const cancelled_error&) {
        throw;
      } catch (...) {
        error = std::current_exception();
      }
      detail::pool_core* p = job.pool();
      if (p == nullptr) co_return;
      const auto delay = p->creation_failed(error);
      if (!delay) {
        job.settle();
        co_return;
      }
      co_await sleep(*delay);
      if (job.pool() == nullptr) co_return;
    }
  }

  // Validates (with `validate`) or resets (with `reset`) the connection the
  // job holds; a throw counts as a failed check.
  static task<> check_job(detail::connection_job job, std::function<task<bool>(T&)> validate,
                          std::function<task<>(T&)> reset) {
    bool ok = false;
    try {
      if (validate) {
        ok = co_await validate(job.conn<T>());
      } else {
        co_await reset(job.conn<T>());
        ok = true;
      }
    } catch (const cancelled_error&) {
      throw;
    } catch (...) {  // NOLINT(bugprone-empty-catch): a failed check
    }
    detail::pool_core* p = job.pool();
    if (p == nullptr) co_return;  // the link destroys the connection
    detail::pool_slot* s = job.settle();
    if (validate) {
      p->validated(*s, ok);
    } else {
      p->reset_done(*s, ok);
    }
  }

  static task<> close_job(detail::connection_job job, std::function<task<>(T&)> close) {
    try {
      co_await shield(close(job.conn<T>()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): the link destroys it anyway
    }
  }

  pool_hooks<T> m_hooks;
};

template <class T>
void pool_lease<T>::end(bool broken) noexcept {
  detail::pool_slot_of<T>* s = std::exchange(m_slot, nullptr);
  if (s == nullptr) return;
  auto* p = static_cast<pool<T>*>(s->m_pool);
  if (p == nullptr) {  // the pool is gone
    delete s;
    return;
  }
  bool is_broken = broken;
  if (!is_broken) {
    try {
      is_broken = p->broken(s->m_conn);
    } catch (...) {
      is_broken = true;
    }
  }
  // An exception in flight: the borrower failed mid-use. (Asked only of a
  // pool that validates: the call costs a tenth of a lease's round trip.)
  const bool failed = p->validates() && std::uncaught_exceptions() > 0;
  p->give_back(*s, failed, is_broken);
}

/// Acquires a connection from `p`, awaits `fn(conn)` and returns its
/// result; the connection is returned, or discarded when `fn` throws
/// `connection_broken`.
///
/// \code
///   int n = co_await corio::with(db, [](db_conn& c) { return c.count_rows(); });
/// \endcode
template <class T, class F>
auto with(pool<T>& p, F fn) -> task<detail::await_result_t<std::invoke_result_t<F&, T&>>> {
  auto lease = co_await p.acquire();
  std::exception_ptr broken;
  try {
    co_return co_await fn(*lease);
  } catch (const connection_broken&) {
    broken = std::current_exception();
  }
  lease.discard();
  std::rethrow_exception(broken);
}

}  // namespace corio
