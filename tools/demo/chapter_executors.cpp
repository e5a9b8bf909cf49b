// Chapter: executors, CPU work off the loop. The guide: CPU-bound work on
// the event loop blocks everything else on it; hand it to a pool. Here 120
// jobs of ~1.5 ms of hashing while a 1 ms ticker measures how late the
// loop wakes it: first as 120 tasks that hash on the loop, then with
// corio::offload on a pool of 2 threads, 4 jobs in flight.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr int k_cpu_jobs = 120;

/// One CPU job: ~1.5 ms of hashing.
u64 cpu_job(u64 i) {
  return hash_rounds(i, 1'000'000);
}

/// Ticks every 1 ms until `done`, recording how late each tick fired.
corio::task<> ticker(const bool& done, std::vector<double>& late_ms) {
  while (!done) {
    const auto due = corio::now() + 1ms;
    co_await corio::sleep_until(due);
    late_ms.push_back(std::chrono::duration<double, std::milli>(corio::now() - due).count());
  }
}

/// Runs the jobs on the loop or `offloaded` to a pool, with the ticker
/// beside them. The note carries the ticker's p99 and worst lateness (ms)
/// and its number of ticks.
measurement cpu_work(bool offloaded) {
  corio::thread_pool pool(2);
  std::vector<double> late;
  const auto t0 = steady::now();
  const u64 sum = corio::run(
      [](bool offloaded, corio::thread_pool& pool, std::vector<double>& late) -> corio::task<u64> {
        bool done = false;
        auto tick = corio::spawn(ticker(done, late));
        co_await corio::sleep(5ms);  // the ticker is running
        u64 x = 0;
        if (offloaded) {
          std::vector<u64> ids(k_cpu_jobs);
          std::iota(ids.begin(), ids.end(), u64{0});
          const auto hs = co_await corio::map_bounded(
              ids,
              [&pool](u64 i) -> corio::task<u64> {
                co_return co_await corio::offload(pool, cpu_job, i);
              },
              4);
          for (u64 h : hs)
            x ^= h;
        } else {
          // One task per job, each hashing inline: the loop runs them back to
          // back and nothing else (the ticker) gets a turn until they are done.
          std::vector<corio::task<u64>> jobs;
          jobs.reserve(k_cpu_jobs);
          for (int i = 0; i < k_cpu_jobs; ++i)
            jobs.push_back(
                [](u64 i) -> corio::task<u64> { co_return cpu_job(i); }(static_cast<u64>(i)));
          for (u64 h : co_await corio::gather(std::move(jobs)))
            x ^= h;
        }
        done = true;
        co_await tick;
        co_return x;
      }(offloaded, pool, late));
  measurement m;
  m.seconds = since(t0);
  m.result = sum;
  std::sort(late.begin(), late.end());
  const double p99 = late.empty() ? 0 : late[late.size() * 99 / 100];
  std::snprintf(m.note, sizeof m.note, "%.3f %.3f %zu", p99, late.empty() ? 0 : late.back(),
                late.size());
  return m;
}

/// Runs the jobs on the loop, then offloaded, and reports the ticker's
/// lateness and the job throughput.
void run_chapter(report& report) {
  report.heading("executors: %d CPU jobs of ~1.5 ms with a 1 ms ticker on the loop", k_cpu_jobs);
  progress("before: gather of 120 tasks that hash on the loop");
  const measurement a = cpu_work(false);
  progress("after: corio::offload(pool, job, i) on a pool of 2, 4 in flight");
  const measurement b = cpu_work(true);
  report.check_same(a.result, b.result);
  double p99_a = 0;
  double max_a = 0;
  double p99_b = 0;
  double max_b = 0;
  std::size_t ticks_a = 0;
  std::size_t ticks_b = 0;
  if (std::sscanf(a.note, "%lf %lf %zu", &p99_a, &max_a, &ticks_a) != 3 ||
      std::sscanf(b.note, "%lf %lf %zu", &p99_b, &max_b, &ticks_b) != 3)
    throw std::runtime_error("corio-demo: executors: bad measurement");
  std::printf("    on the loop: ticker p99 %.2f ms late, worst %.2f ms, %zu ticks\n", p99_a, max_a,
              ticks_a);
  std::printf("    offloaded:   ticker p99 %.2f ms late, worst %.2f ms, %zu ticks\n", p99_b, max_b,
              ticks_b);
  report.add("1 ms ticker lateness p99 (ms)", fmt("%.2f", p99_a), fmt("%.2f", p99_b),
             fmt("%.0fx less", p99_a / std::max(p99_b, 1e-3)));
  report.add("jobs per second", fmt("%.0f", k_cpu_jobs / a.seconds),
             fmt("%.0f", k_cpu_jobs / b.seconds), fmt("%.2fx", a.seconds / b.seconds));
}

const registrar k_registered{{"executors", 600, run_chapter}};

}  // namespace
}  // namespace corio_demo
