// job_owner.hpp's out-of-line part.
#include "corio/pool/detail/job_owner.hpp"

#include <utility>

#include "corio/task/spawn.hpp"

namespace corio::detail {

job_link::job_link(job_owner* owner) noexcept : m_owner(owner) {
  owner->m_jobs.push_back(*this);
  ++owner->m_job_count;
}

job_link::job_link(job_link&& o) noexcept
    : m_owner(std::exchange(o.m_owner, nullptr)), m_task(o.m_task) {
  if (o.linked()) {  // take o's place in the owner's list
    m_prev = o.m_prev;
    m_next = o.m_next;
    m_prev->m_next = this;
    m_next->m_prev = this;
    o.m_prev = o.m_next = nullptr;
  }
}

job_link::~job_link() {
  if (m_owner == nullptr) return;
  unlink();
  --m_owner->m_job_count;
  m_owner->on_job_done();
}

job_owner::~job_owner() {
  const bool cancel = m_cancel_on_destroy;
  m_jobs.for_each([cancel](job_link& j) {
    j.unlink();
    j.m_owner = nullptr;
    if (cancel && j.m_task != nullptr) j.m_task->request_cancel();
  });
}

void job_owner::spawn_job(task<> t, const char* name) {
  loop_core& loop = current_loop();
  join_handle<> h = spawn_into(*loop.owner_for_spawn(), loop, std::move(t), name);
  // The job's coroutine was made just now, its link (moved into the frame)
  // registered last.
  if (!m_jobs.empty() && m_jobs.back().m_task == nullptr) m_jobs.back().m_task = h.get();
}

}  // namespace corio::detail
