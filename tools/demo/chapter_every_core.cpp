// Chapter: every core. The guide: one event loop uses one core; a service
// whose requests also compute leaves the other cores idle. Here 2,000
// requests, each waiting 1 ms (its I/O), computing ~100 us, and waiting
// again: first all on one loop (corio::run), then spread over a loop per
// core (corio::runtime, corio::spawn_balanced), with the requests each
// loop ran, the resumptions it made and the spawns it stole shown per loop.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"

namespace corio_demo {
namespace {

using namespace std::chrono_literals;

constexpr u64 k_requests = 2000;

/// The CPU part of a request: ~100 us of hashing.
u64 compute(u64 i) {
  return hash_rounds(i, 70'000);
}

/// How the requests spread: per loop, the requests run there.
struct spread {
  std::vector<std::atomic<u64>> requests;
  explicit spread(std::size_t loops) : requests(loops) {}
};

/// One request: I/O, CPU, I/O; counted on the loop it runs on.
corio::task<u64> request(u64 i, spread& where) {
  where.requests[corio::this_loop_index()].fetch_add(1, std::memory_order_relaxed);
  co_await corio::sleep(1ms);
  const u64 h = compute(i);
  co_await corio::sleep(1ms);
  co_return h;
}

/// All requests at once, each spawned where `spawn_one` puts it; the xor
/// of their results.
template <class Handle, class Spawn>
corio::task<u64> all_requests(spread& where, Spawn spawn_one) {
  std::vector<Handle> handles;
  handles.reserve(k_requests);
  for (u64 i = 0; i < k_requests; ++i)
    handles.push_back(spawn_one(i, where));
  u64 x = 0;
  for (auto& h : handles)
    x ^= co_await h;
  co_return x;
}

/// The resumptions each loop of this runtime made and the balanced spawns
/// it stole from another loop's queue, as "a / b / ...; stolen c / d".
corio::task<std::string> resumptions_per_loop() {
  std::string resumed;
  std::string stolen;
  const std::vector<corio::loop_stats> loops = co_await corio::every_loop_stats();
  for (std::size_t i = 0; i < loops.size(); ++i) {
    resumed += (i == 0 ? "" : " / ") + std::to_string(loops[i].resumptions);
    stolen += (i == 0 ? "" : " / ") + std::to_string(loops[i].calls_stolen);
  }
  co_return resumed + "; stolen per loop " + stolen;
}

/// The counts of `where`, as "a / b / ...".
std::string per_loop(const spread& where) {
  std::string out;
  for (std::size_t i = 0; i < where.requests.size(); ++i)
    out += (i == 0 ? "" : " / ") + std::to_string(where.requests[i].load());
  return out;
}

void run_chapter(report& report) {
  corio::runtime rt;  // a loop per CPU this process may run on
  const std::size_t cores = rt.size();
  report.heading("every core: %llu requests of 1 ms I/O + ~100 us CPU + 1 ms I/O, on %zu loop(s)",
                 static_cast<unsigned long long>(k_requests), cores);

  progress("before: every request on one loop (corio::run, spawn)");
  spread one(1);
  const measurement a = timed([&one] {
    return corio::run(all_requests<corio::join_handle<u64>>(
        one, [](u64 i, spread& w) { return corio::spawn(request(i, w)); }));
  });

  progress("after: a loop per core (corio::runtime, spawn_balanced)");
  spread many(cores);
  std::string resumptions;
  const measurement b = timed([&] {
    return rt.run([](spread& w, std::string& resumptions) -> corio::task<u64> {
      const u64 x = co_await all_requests<corio::remote_handle<u64>>(w, [](u64 i, spread& where) {
        return corio::spawn_balanced([i, &where] { return request(i, where); });
      });
      resumptions = co_await resumptions_per_loop();
      co_return x;
    }(many, resumptions));
  });
  report.check_same(a.result, b.result);

  std::printf("    one loop:   %.0f requests/s, all %llu on loop 0\n", k_requests / a.seconds,
              static_cast<unsigned long long>(k_requests));
  std::printf("    %zu loop(s): %.0f requests/s; requests per loop %s; resumptions per loop %s\n",
              cores, k_requests / b.seconds, per_loop(many).c_str(), resumptions.c_str());
  report.add("requests per second", fmt("%.0f", k_requests / a.seconds),
             fmt("%.0f", k_requests / b.seconds), fmt("%.2fx", a.seconds / b.seconds));
  report.add("requests per loop", std::to_string(k_requests), per_loop(many), "balanced spawn");
}

const registrar k_registered{{"every core", 1200, run_chapter}};

}  // namespace
}  // namespace corio_demo
