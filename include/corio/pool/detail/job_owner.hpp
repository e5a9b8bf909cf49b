// job_owner: background tasks that belong to an object (a pool's creations
// and checks, a batcher's batches) and may outlive it.
//
// The jobs are spawned on the loop, not in any user's task, so cancelling
// a user's task never cancels work others wait for. Each job's coroutine
// takes a `job_link` (or a type derived from it) by value: the link is
// registered from the moment the job is made, and lives in the job's frame,
// so its destructor runs however the job ends, even when it is cancelled
// before its body ever ran; bookkeeping that must not be skipped goes
// there. The owner clears the link when it is destroyed first, so a job
// that finishes later touches nothing of it.
#pragma once

#include <cstddef>

#include "corio/detail/intrusive_list.hpp"
#include "corio/task/task.hpp"

namespace corio::detail {

class job_owner;

/// A job's link to its owner (see the file comment).
struct job_link : list_node {
  explicit job_link(job_owner* owner) noexcept;
  job_link(job_link&& o) noexcept;
  job_link(const job_link&) = delete;
  job_link& operator=(const job_link&) = delete;
  job_link& operator=(job_link&&) = delete;
  ~job_link();

  job_owner* m_owner;
  task_base* m_task = nullptr;  // the job's root, once spawned
};

class job_owner {
 public:
  job_owner(const job_owner&) = delete;
  job_owner& operator=(const job_owner&) = delete;

 protected:
  job_owner() = default;
  /// Clears the links of the jobs still running; cancels them first when
  /// `cancel_on_destroy` (a pool's creations), or lets them finish (a
  /// batcher's batches, which others wait for).
  ~job_owner();

  /// Spawns `t`, whose coroutine holds the job_link made last, on the
  /// current loop.
  void spawn_job(task<> t, const char* name);
  /// Asks every job for which `pred(link)` holds to cancel.
  template <class Pred>
  void cancel_jobs_if(Pred pred) noexcept {
    m_jobs.for_each([&](job_link& j) {
      if (j.m_task != nullptr && pred(j)) j.m_task->request_cancel();
    });
  }
  /// Jobs whose link is alive.
  [[nodiscard]] std::size_t job_count() const noexcept { return m_job_count; }
  /// Called when a job ends while the owner lives.
  virtual void on_job_done() noexcept {}

  bool m_cancel_on_destroy = true;

 private:
  friend struct job_link;
  intrusive_list<job_link> m_jobs;
  std::size_t m_job_count = 0;
};

}  // namespace corio::detail
