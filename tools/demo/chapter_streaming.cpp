// Chapter: streaming. The guide: build a list of everything, then process
// it, and memory grows with the input; stream it through an async
// generator and it stays flat.
#include <cstdint>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

constexpr u64 k_records = 5'000'000;

/// A 16-byte record, small so that the list's cost is its count.
struct record {
  u64 id;
  u64 value;
};

/// Yields `n` records, awaiting now and then as a real producer would.
corio::async_generator<record> records(u64 n) {
  for (u64 i = 0; i < n; ++i) {
    co_yield record{i, i % 1000};
    if (i % 65536 == 0) co_await corio::yield_now();  // a producer that also awaits
  }
}

/// Before: collect every record into a vector, then sum.
measurement streaming_before() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      std::vector<record> all;
      auto gen = records(k_records);
      while (auto r = co_await gen.next())
        all.push_back(*r);
      u64 s = 0;
      for (const record& r : all)
        s += r.value;
      co_return s;
    }());
  });
}

/// After: sum each record as the generator yields it.
measurement streaming_after() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      u64 s = 0;
      co_await corio::for_each(records(k_records), [&](const record& r) { s += r.value; });
      co_return s;
    }());
  });
}

/// Runs both variants in children and reports memory and time per record.
void run_chapter(report& report) {
  report.heading("streaming: %llu records of 16 bytes", static_cast<unsigned long long>(k_records));
  const auto [a, b] = report.before_and_after(
      "before: collect them all into a vector, then sum", streaming_before,
      "after: sum them with for_each as the async_generator yields them", streaming_after);
  report.add("ns per record", fmt("%.1f", a.seconds / k_records * 1e9),
             fmt("%.1f", b.seconds / k_records * 1e9), fmt("%.1fx faster", a.seconds / b.seconds));
}

const registrar k_registered{{"streaming", 300, run_chapter}};

}  // namespace
}  // namespace corio_demo
