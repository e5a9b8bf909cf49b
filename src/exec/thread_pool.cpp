// thread_pool: a mutex-guarded intrusive FIFO of jobs and a condition
// variable for idle workers. A submission signals only when a worker is
// idle (with every worker busy, a burst of offloads costs no futex call),
// and results go back through the loop's lock-free inbox.
#include "corio/exec/thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

namespace corio {
namespace detail {

class pool_core {
 public:
  explicit pool_core(const thread_pool_options& o) : m_options(o) {
    if (m_options.threads == 0) m_options.threads = 1;
    if (!m_options.start_on_demand) {
      const std::lock_guard lock(m_mutex);
      while (m_threads.size() < m_options.threads)
        start_thread();
    }
  }

  ~pool_core() {
    {
      const std::lock_guard lock(m_mutex);
      m_stopping = true;
    }
    m_ready.notify_all();
    for (auto& t : m_threads)
      t.join();
  }
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  bool submit(pool_job& job) noexcept {
    bool wake = false;
    {
      const std::lock_guard lock(m_mutex);
      if (m_options.queue_limit != 0 && m_queued >= m_options.queue_limit) {
        ++m_rejected;
        return false;
      }
      job.m_queue_next = nullptr;
      if (m_tail != nullptr) {
        m_tail->m_queue_next = &job;
      } else {
        m_head = &job;
      }
      m_tail = &job;
      ++m_queued;
      m_peak_queued = std::max(m_peak_queued, m_queued);
      if (m_idle < m_queued && m_threads.size() < m_options.threads) {
        try {
          start_thread();
        } catch (...) {  // NOLINT(bugprone-empty-catch): the threads there are will run it
        }
      }
      wake = m_idle != 0;
    }
    if (wake) m_ready.notify_one();
    return true;
  }

  thread_pool_stats stats() const noexcept {
    const std::lock_guard lock(m_mutex);
    thread_pool_stats s;
    s.threads = m_threads.size();
    s.queued = m_queued;
    s.running = m_running.load(std::memory_order_relaxed);
    s.completed = m_completed.load(std::memory_order_relaxed);
    s.rejected = m_rejected;
    s.peak_queued = m_peak_queued;
    return s;
  }

 private:
  // Workers block every signal: a process signal must reach a loop thread
  // (signal_set's signalfd sees only signals blocked on every thread).
  void start_thread() {
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  // inherited by the new thread
    try {
      m_threads.emplace_back([this] { work(); });
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  void work() {
    std::unique_lock lock(m_mutex);
    for (;;) {
      if (m_head == nullptr) {
        if (m_stopping) return;
        ++m_idle;
        m_ready.wait(lock, [this] { return m_head != nullptr || m_stopping; });
        --m_idle;
        continue;
      }
      pool_job& job = *m_head;
      m_head = job.m_queue_next;
      if (m_head == nullptr) m_tail = nullptr;
      --m_queued;
      m_running.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      job.m_work(job);
      // Counted before the result is posted: whoever sees the result (its
      // loop, through the post's release and acquire) sees the count too.
      m_running.fetch_sub(1, std::memory_order_relaxed);
      m_completed.fetch_add(1, std::memory_order_relaxed);
      job.m_loop->post(job);  // the job may be gone once posted
      lock.lock();
    }
  }

  thread_pool_options m_options;
  mutable std::mutex m_mutex;
  std::condition_variable m_ready;
  pool_job* m_head = nullptr;
  pool_job* m_tail = nullptr;
  std::size_t m_queued = 0;
  std::size_t m_idle = 0;
  std::atomic<std::size_t> m_running{0};
  std::atomic<std::uint64_t> m_completed{0};
  std::uint64_t m_rejected = 0;
  std::size_t m_peak_queued = 0;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

}  // namespace detail

thread_pool::thread_pool(const thread_pool_options& options)
    : m_options(options), m_core(std::make_unique<detail::pool_core>(options)) {}

thread_pool::~thread_pool() = default;

bool thread_pool::submit(detail::pool_job& job) noexcept {
  return m_core->submit(job);
}

thread_pool_stats thread_pool::stats() const noexcept {
  return m_core->stats();
}

thread_pool& cpu_pool() {
  static thread_pool pool(std::max<std::size_t>(2, std::thread::hardware_concurrency()));
  return pool;
}

thread_pool& blocking_pool() {
  static thread_pool pool(
      thread_pool_options{.threads = 64, .queue_limit = 4096, .start_on_demand = true});
  return pool;
}

}  // namespace corio
