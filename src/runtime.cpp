// runtime: the loops, their threads, and the shutdown that waits for the
// calls crossing between them.
#include "corio/runtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <exception>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "corio/sync/event.hpp"

namespace corio {

namespace detail {

namespace {

// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

void pin_to(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

// Loop 0 runs on the caller's thread: pinned for the run, it gets its own
// CPUs back when run returns.
class pinned_for_the_run {
 public:
  pinned_for_the_run(bool pin, int cpu) noexcept {
    CPU_ZERO(&m_before);
    m_pinned = pin && ::pthread_getaffinity_np(::pthread_self(), sizeof m_before, &m_before) == 0;
    if (m_pinned) pin_to(cpu);
  }
  pinned_for_the_run(const pinned_for_the_run&) = delete;
  pinned_for_the_run& operator=(const pinned_for_the_run&) = delete;
  ~pinned_for_the_run() {
    if (m_pinned) (void)::pthread_setaffinity_np(::pthread_self(), sizeof m_before, &m_before);
  }

 private:
  cpu_set_t m_before;
  bool m_pinned;
};

// What ends a worker loop's main task: posted by stop(), set on its loop.
struct end_message : posted_node {
  event* m_end = nullptr;
};

class runtime_impl final : public runtime_state {
 public:
  explicit runtime_impl(std::size_t n) : runtime_state(n), m_guards(n), m_ends(n) {}

  // On loop i's thread, before the loops start.
  void add(std::size_t i, event_loop& loop, event* end) {
    enable_light_fences();
    core_of(loop).m_runtime_index = i;
    core_of(loop).m_work_source = size() > 1 ? &work_source_of(i) : nullptr;
    m_guards[i] = loop.keep_alive();  // held until no call can reach it
    m_ends[i].m_end = end;
    m_ends[i].m_run = [](posted_node& n) noexcept { static_cast<end_message&>(n).m_end->set(); };
    m_loops[i] = &loop;
  }

  void fail(std::exception_ptr e) noexcept {
    const std::lock_guard lock(m_mutex);
    if (!m_failure) m_failure = std::move(e);
  }
  [[nodiscard]] std::exception_ptr failure() {
    const std::lock_guard lock(m_mutex);
    return m_failure;
  }

 private:
  void end_workers() noexcept override {
    for (std::size_t i = 1; i < m_loops.size(); ++i) {
      if (m_loops[i] != nullptr) m_loops[i]->post(m_ends[i]);
    }
  }
  void release_loops() noexcept override {
    if (m_released.exchange(true, std::memory_order_acq_rel)) return;
    for (work_guard& g : m_guards)
      g.reset();
  }

  std::vector<work_guard> m_guards;
  std::vector<end_message> m_ends;
  std::atomic<bool> m_released{false};
  std::mutex m_mutex;
  std::exception_ptr m_failure;
};

// This thread runs loop `index` of `rt` (this_loop_index, loop_count),
// until the object goes.
struct loop_identity {
  loop_identity(runtime_state& rt, std::size_t index) noexcept {
    t_runtime = &rt;
    t_loop_index = index;
  }
  loop_identity(const loop_identity&) = delete;
  loop_identity& operator=(const loop_identity&) = delete;
  ~loop_identity() {
    t_runtime = nullptr;
    t_loop_index = 0;
  }
};

task<void> until(event& end) {
  co_await end.wait();
}

// A worker loop: its main task waits for the runtime's end; the tasks
// other loops put on it run meanwhile.
void run_worker(runtime_impl& rt, std::size_t index, const runtime_options& options, int cpu,
                std::latch& ready) {
  if (options.pin) pin_to(cpu);
  std::optional<event_loop> loop;
  event end;
  try {
    loop.emplace(options.loop);
    rt.add(index, *loop, &end);
  } catch (...) {
    rt.fail(std::current_exception());
    ready.arrive_and_wait();
    return;
  }
  const loop_identity identity(rt, index);
  ready.arrive_and_wait();
  try {
    corio::run(*loop, until(end));
  } catch (...) {
    rt.fail(std::current_exception());
  }
}

}  // namespace

}  // namespace detail

runtime::runtime(runtime_options options)
    : m_options(std::move(options)),
      m_threads(m_options.threads != 0 ? m_options.threads : detail::allowed_cpus().size()) {
  if (m_threads > 1) m_options.loop.idle_spin = m_options.idle_spin;
}

runtime::~runtime() = default;

void runtime::run_loops(const std::function<void(event_loop&, detail::runtime_state&)>& body) {
  if (m_ran) throw std::logic_error("corio::runtime::run: a runtime runs once");
  if (detail::t_runtime != nullptr || event_loop::current() != nullptr) {
    throw std::logic_error("corio::runtime::run: called on a loop's thread");
  }
  m_ran = true;
  const std::vector<int> cpus = detail::allowed_cpus();
  detail::runtime_impl rt(m_threads);
  event_loop loop(m_options.loop);
  rt.add(0, loop, nullptr);
  const detail::pinned_for_the_run pinned(m_options.pin, cpus[0]);
  std::latch ready(static_cast<std::ptrdiff_t>(m_threads));
  std::vector<std::thread> threads;
  threads.reserve(m_threads - 1);
  // However this ends: the loops are told to stop and their threads joined.
  struct joiner {
    detail::runtime_impl& rt;
    std::vector<std::thread>& threads;
    ~joiner() {
      rt.stop();
      for (std::thread& t : threads)
        t.join();
    }
  } joins{rt, threads};
  for (std::size_t i = 1; i < m_threads; ++i) {
    const int cpu = cpus[i % cpus.size()];
    try {
      threads.emplace_back(
          [&rt, i, this, cpu, &ready] { detail::run_worker(rt, i, m_options, cpu, ready); });
    } catch (...) {
      // No thread: stand in for the ones never started, so the latch opens.
      for (std::size_t j = i; j < m_threads; ++j)
        ready.count_down();
      rt.fail(std::current_exception());
      break;
    }
  }
  const detail::loop_identity identity(rt, 0);
  ready.arrive_and_wait();
  if (std::exception_ptr e = rt.failure()) std::rethrow_exception(e);
  body(loop, rt);
  if (std::exception_ptr e = rt.failure()) std::rethrow_exception(e);
}

}  // namespace corio
