// Chapter: bounded concurrency. The guide: gathering 20,000 requests at
// once holds 20,000 frames and buffers; corio::map_bounded keeps 200 in
// flight and creates each coroutine only when a slot frees up. Each
// "request" holds a 16 KiB buffer across a 1 ms sleep.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr u64 k_requests = 20'000;
constexpr std::size_t k_limit = 200;
constexpr std::size_t k_buffer = std::size_t{16} * 1024;

/// One request: a reply buffer held across a 1 ms wait.
corio::task<u64> request(u64 id) {
  auto buf = std::make_unique<unsigned char[]>(k_buffer);
  std::memset(buf.get(), static_cast<int>(id & 0xff), k_buffer);  // touch it, as a real reply would
  co_await corio::sleep(1ms);
  co_return buf[k_buffer - 1] + id;
}

/// Before: every request started at once by gather.
measurement bounded_before() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      std::vector<corio::task<u64>> all;
      for (u64 i = 0; i < k_requests; ++i)
        all.push_back(request(i));
      u64 s = 0;
      for (u64 v : co_await corio::gather(std::move(all)))
        s += v;
      co_return s;
    }());
  });
}

/// After: at most k_limit requests alive at a time.
measurement bounded_after() {
  return timed([] {
    return corio::run([]() -> corio::task<u64> {
      std::vector<u64> ids(k_requests);
      std::iota(ids.begin(), ids.end(), u64{0});
      u64 s = 0;
      for (u64 v : co_await corio::map_bounded(ids, request, k_limit))
        s += v;
      co_return s;
    }());
  });
}

/// Runs both variants in children and reports memory and time.
void run_chapter(report& report) {
  report.heading("bounded concurrency: %llu requests, each holding 16 KiB for 1 ms",
                 static_cast<unsigned long long>(k_requests));
  const auto [a, b] =
      report.before_and_after("before: gather over all of them at once", bounded_before,
                              "after: corio::map_bounded(ids, request, 200)", bounded_after);
  report.add("wall time (ms)", fmt("%.0f", a.seconds * 1e3), fmt("%.0f", b.seconds * 1e3),
             fmt("%.1fx faster", a.seconds / b.seconds));
}

const registrar k_registered{{"bounded concurrency", 200, run_chapter}};

}  // namespace
}  // namespace corio_demo
