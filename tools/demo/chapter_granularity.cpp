// Chapter: task granularity. The guide: a task per tiny item costs more
// than the item; hand each task a batch. Here 1,000 items per round, 300
// rounds: 1,000 tiny tasks per round against 10 tasks of 100 items
// (corio::map_batched).
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

constexpr int k_rounds = 300;
constexpr std::size_t k_items = 1000;

/// The tiny unit of work, as a task of its own.
corio::task<u64> tiny(u64 item) {
  co_return item* item % 7;
}

/// Before: one task per item, every round.
corio::task<u64> granularity_before(const std::vector<u64>& items) {
  u64 total = 0;
  for (int r = 0; r < k_rounds; ++r) {
    std::vector<corio::task<u64>> tasks;
    tasks.reserve(items.size());
    for (u64 x : items)
      tasks.push_back(tiny(x));
    for (u64 v : co_await corio::gather(std::move(tasks)))
      total += v;
  }
  co_return total;
}

/// After: ten tasks of 100 items each, every round.
corio::task<u64> granularity_after(std::vector<u64>& items) {
  u64 total = 0;
  for (int r = 0; r < k_rounds; ++r) {
    auto sums =
        co_await corio::map_batched(items, 100, [](std::span<u64> batch) -> corio::task<u64> {
          u64 s = 0;
          for (u64 x : batch)
            s += x * x % 7;
          co_return s;
        });
    total += std::accumulate(sums.begin(), sums.end(), u64{0});
  }
  co_return total;
}

/// Times both variants per item and reports the ratio.
void run_chapter(report& report) {
  report.heading("task granularity: %zu tiny tasks per round vs 10 batches of 100", k_items);
  std::vector<u64> items(k_items);
  std::iota(items.begin(), items.end(), u64{0});
  progress("before: one task per item");
  auto t0 = steady::now();
  const u64 a = corio::run(granularity_before(items));
  const double before = since(t0) / (k_rounds * k_items) * 1e9;
  progress("after: corio::map_batched(items, 100, fn)");
  t0 = steady::now();
  const u64 b = corio::run(granularity_after(items));
  const double after = since(t0) / (k_rounds * k_items) * 1e9;
  report.check_same(a, b);
  report.add("ns per item", fmt("%.1f", before), fmt("%.1f", after),
             fmt("%.1fx faster", before / after));
}

const registrar k_registered{{"task granularity", 100, run_chapter}};

}  // namespace
}  // namespace corio_demo
