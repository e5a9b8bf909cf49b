#include <pthread.h>

#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "exec/blocking.hpp"

namespace corio::detail {
namespace {

// Enough for a burst of lookups or file calls; a larger, configurable
// pool comes with the executors layer.
constexpr std::size_t k_max_threads = 8;

class blocking_pool {
 public:
  ~blocking_pool() {
    {
      const std::lock_guard lock(m_mutex);
      m_stopping = true;
    }
    m_ready.notify_all();
    for (auto& t : m_threads)
      t.join();
  }

  void submit(blocking_job& job) {
    {
      const std::lock_guard lock(m_mutex);
      job.m_queue_next = nullptr;
      if (m_tail != nullptr) {
        m_tail->m_queue_next = &job;
      } else {
        m_head = &job;
      }
      m_tail = &job;
      ++m_queued;
      if (m_idle < m_queued && m_threads.size() < k_max_threads) start_thread();
    }
    m_ready.notify_one();
  }

 private:
  // Pool threads block every signal: a process signal must reach a loop
  // thread (signal_set's signalfd sees only signals that are blocked on
  // every thread, so one left unblocked here would take them instead).
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
      ++m_idle;
      m_ready.wait(lock, [this] { return m_head != nullptr || m_stopping; });
      --m_idle;
      if (m_head == nullptr) return;  // stopping, nothing left
      blocking_job& job = *m_head;
      m_head = job.m_queue_next;
      if (m_head == nullptr) m_tail = nullptr;
      --m_queued;
      lock.unlock();
      job.m_work(job);
      job.m_loop->post(job);  // the job may be gone once posted
      lock.lock();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_ready;
  blocking_job* m_head = nullptr;
  blocking_job* m_tail = nullptr;
  std::size_t m_queued = 0;
  std::size_t m_idle = 0;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

}  // namespace

void submit_blocking(blocking_job& job) {
  static blocking_pool pool;
  pool.submit(job);
}

}  // namespace corio::detail
