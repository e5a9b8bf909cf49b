// Chapter: a streaming pipeline. The guide's streaming and batching
// strategies together: 20,000 records of 4 KiB are enriched by an async
// call (1 ms each, 64 at a time) and stored in batches of 500 (one 2 ms
// round trip per batch). Before: load them all, enrich them all with
// map_bounded, then store the batches. After: one pipeline, records |
// map(enrich) | buffered(64) | chunks(500), whose memory stays at what is
// in flight.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr u64 k_pipeline_records = 20'000;
constexpr std::size_t k_payload = 4096;

/// A record as loaded: an id and its payload.
struct raw_record {
  u64 id;
  std::vector<char> payload;
};

/// A record after the lookup, with the checksum that storing sums.
struct enriched_record {
  u64 id;
  u64 checksum;
  std::vector<char> payload;
};

/// Loads `n` records one at a time.
corio::async_generator<raw_record> load_records(u64 n) {
  for (u64 i = 0; i < n; ++i) {
    // A named record: GCC 12 destroys a class temporary inside co_yield twice.
    raw_record r{i, std::vector<char>(k_payload, static_cast<char>(i & 0x7f))};
    co_yield std::move(r);
  }
}

/// Enriches one record after a 1 ms lookup.
corio::task<enriched_record> enrich(raw_record r) {
  co_await corio::sleep(1ms);  // stands in for a lookup over the network
  u64 sum = r.id;
  for (std::size_t k = 0; k < r.payload.size(); k += 512)
    sum += static_cast<unsigned char>(r.payload[k]);
  co_return enriched_record{r.id, sum, std::move(r.payload)};
}

/// Stores a batch of `n` records in one 2 ms round trip; their checksums'
/// sum.
corio::task<u64> store(const enriched_record* first, std::size_t n) {
  co_await corio::sleep(2ms);  // one round trip per batch
  u64 s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += first[i].checksum;
  co_return s;
}

/// Before: every stage runs over the whole data set before the next.
measurement pipeline_before() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      std::vector<raw_record> all;
      auto src = load_records(k_pipeline_records);
      while (auto r = co_await src.next())
        all.push_back(std::move(*r));
      const std::vector<enriched_record> done = co_await corio::map_bounded(
          all, [](const raw_record& r) { return enrich(r); }, 64);
      u64 s = 0;
      for (std::size_t i = 0; i < done.size(); i += 500)
        s += co_await store(done.data() + i, std::min<std::size_t>(500, done.size() - i));
      co_return s;
    }());
  });
}

/// After: the stages as one pipeline of generators.
measurement pipeline_after() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      auto batches = load_records(k_pipeline_records) | corio::map(enrich) | corio::buffered(64) |
                     corio::chunks(500);
      u64 s = 0;
      while (auto b = co_await batches.next())
        s += co_await store(b->data(), b->size());
      co_return s;
    }());
  });
}

/// Runs both variants in children and reports memory and time.
void run_chapter(report& report) {
  report.heading(
      "a streaming pipeline: %llu records of 4 KiB, enriched (1 ms, 64 at once) "
      "and stored in batches of 500",
      static_cast<unsigned long long>(k_pipeline_records));
  const auto [a, b] = report.before_and_after(
      "before: load all, map_bounded(enrich, 64), then store the batches", pipeline_before,
      "after: records | map(enrich) | buffered(64) | chunks(500)", pipeline_after);
  report.add("wall time (ms)", fmt("%.0f", a.seconds * 1e3), fmt("%.0f", b.seconds * 1e3),
             fmt("%.2fx", a.seconds / b.seconds));
}

const registrar k_registered{{"pipeline", 700, run_chapter}};

}  // namespace
}  // namespace corio_demo
