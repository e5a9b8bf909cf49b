// thread_pool: worker threads for CPU work and for blocking calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "corio/loop/event_loop.hpp"

namespace corio {

/// Thrown by `offload` when the pool's queue is full (its `queue_limit`):
/// the job was not queued and nothing of it runs.
class pool_overloaded_error : public std::runtime_error {
 public:
  pool_overloaded_error() : std::runtime_error("corio: thread pool queue is full") {}
};

/// How a thread_pool is sized.
struct thread_pool_options {
  /// Worker threads at most.
  std::size_t threads = 1;
  /// Jobs waiting for a thread at most; 0: no limit. Past it, offload
  /// throws pool_overloaded_error (the caller decides: wait, shed, retry).
  std::size_t queue_limit = 0;
  /// Start threads when jobs need them (up to `threads`) rather than all
  /// at construction: right for a blocking pool that is mostly idle.
  bool start_on_demand = false;
};

/// Counters of a thread_pool, read at any time from any thread.
struct thread_pool_stats {
  std::size_t threads = 0;      ///< Worker threads started so far.
  std::size_t queued = 0;       ///< Jobs waiting for a thread now.
  std::size_t running = 0;      ///< Jobs on a thread now.
  std::uint64_t completed = 0;  ///< Jobs finished (results posted back).
  std::uint64_t rejected = 0;   ///< Offloads refused by `queue_limit`.
  std::size_t peak_queued = 0;  ///< The most jobs ever waiting at once.
};

namespace detail {

/// One job of a pool: run on a worker, then posted back to `m_loop`, whose
/// m_run (set by the submitter) takes the result on the loop thread.
struct pool_job : posted_node {
  pool_job* m_queue_next = nullptr;
  void (*m_work)(pool_job&) noexcept = nullptr;  // on a worker thread
  event_loop* m_loop = nullptr;
};

class pool_core;

/// What a pool job produced: its value (for void, that it ran) or the
/// exception it threw. Written on the worker, read on the loop after the
/// job was posted back.
template <class R>
struct call_result {
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> m_value;
  std::exception_ptr m_error;

  template <class F>
  void capture(F&& fn) noexcept {
    try {
      if constexpr (std::is_void_v<R>) {
        std::forward<F>(fn)();
        m_value.emplace(true);
      } else {
        m_value.emplace(std::forward<F>(fn)());
      }
    } catch (...) {
      m_error = std::current_exception();
    }
  }
  R take() {
    if (m_error) std::rethrow_exception(m_error);
    if constexpr (!std::is_void_v<R>) return std::move(*m_value);
  }
};

}  // namespace detail

/// A fixed set of worker threads fed from one FIFO queue. Tasks hand it
/// work with `co_await corio::offload(pool, fn, args...)` (offload.hpp);
/// each result goes back to the task's own loop through `post()`, so a
/// loop wakes once for however many results arrived meanwhile.
///
/// Worker threads block every signal (signals reach the loops' signal
/// sets). The destructor runs the jobs already queued, then joins the
/// threads; destroy a pool only after the loops that use it stopped
/// offloading to it.
///
/// For CPU work use a pool of about one thread per core (`cpu_pool()` is
/// one); for calls that block (a legacy client, getaddrinfo, fsync) use a
/// separate, larger pool (`blocking_pool()`), so they never hold the CPU
/// pool's threads.
///
/// \code
///   corio::thread_pool pool(4);
///   std::uint64_t h = co_await corio::offload(pool, hash_file_contents, data);
/// \endcode
class thread_pool {
 public:
  /// A pool of `threads` workers (0 counts as 1), all started now, with no
  /// queue limit.
  explicit thread_pool(std::size_t threads) : thread_pool(thread_pool_options{threads}) {}
  /// A pool sized by `options` (a `threads` of 0 counts as 1). Unless
  /// `start_on_demand` is set, every worker starts now, and a thread that
  /// cannot start throws std::system_error.
  explicit thread_pool(const thread_pool_options& options);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// A consistent snapshot of the pool's counters (taken under its lock);
  /// safe to call from any thread.
  [[nodiscard]] thread_pool_stats stats() const noexcept;
  /// The options the pool was made with, as given (a `threads` of 0 is
  /// reported as 0, though the pool runs one worker).
  [[nodiscard]] const thread_pool_options& options() const noexcept { return m_options; }

  /// Queues `job` (used by offload); false when the queue is full.
  bool submit(detail::pool_job& job) noexcept;

 private:
  thread_pool_options m_options;
  std::unique_ptr<detail::pool_core> m_core;
};

/// The process's pool for CPU work: one thread per core (at least 2),
/// started on first use. `offload(fn)` without a pool uses it.
thread_pool& cpu_pool();

/// The process's pool for blocking calls: up to 64 threads started on
/// demand, at most 4096 queued jobs. corio's own DNS lookups and, on epoll,
/// file calls run here.
thread_pool& blocking_pool();

}  // namespace corio
