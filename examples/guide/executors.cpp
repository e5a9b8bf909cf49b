// The examples of docs/guide/executors.md: offload, thread pools, the
// process pool, and debug mode's report of a resumption that blocked the
// loop. Each snippet checks what the guide says of it.
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;
using guide::check;

//! [offload]
std::uint64_t checksum(const std::vector<std::uint8_t>& data) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: CPU work that never yields
  for (std::uint8_t b : data)
    h = (h ^ b) * 1099511628211ULL;
  return h;
}

corio::task<> cpu_work_off_the_loop() {
  std::vector<std::uint8_t> data(1 << 20, 7);
  const std::uint64_t expected = checksum(data);
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  const std::uint64_t h = co_await corio::offload(
      [&ran_on](const std::vector<std::uint8_t>& d) {
        ran_on = std::this_thread::get_id();
        return checksum(d);
      },
      std::move(data));  // moved into the job: the worker owns it
  check(h == expected, "the job's value");
  check(ran_on != loop_thread, "it ran on a thread of cpu_pool()");
  check(std::this_thread::get_id() == loop_thread, "the task resumed on its own loop");

  bool threw = false;
  try {
    co_await corio::offload([]() -> int { throw std::range_error("out of range"); });
  } catch (const std::range_error&) {
    threw = true;
  }
  check(threw, "the job's exception is rethrown in the task");
}
//! [offload]

//! [blocking]
int legacy_lookup(int id) {
  std::this_thread::sleep_for(2ms);  // a synchronous client: it blocks its thread
  return id * 7;
}

corio::task<> blocking_calls() {
  std::vector<int> ids(16);
  std::iota(ids.begin(), ids.end(), 0);
  const std::vector<int> values = co_await corio::map_bounded(
      ids, [](int id) { return corio::offload(corio::blocking_pool(), legacy_lookup, id); }, 8);
  check(values[15] == 105, "8 blocking calls at a time, none of them on the loop");
}
//! [blocking]

//! [queue_limit]
corio::task<int> run_on(corio::thread_pool& pool, std::function<int()> job) {
  co_return co_await corio::offload(pool, std::move(job));
}

corio::task<> a_full_pool_says_so() {
  corio::thread_pool pool({.threads = 1, .queue_limit = 1});
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  auto first = corio::spawn(run_on(pool, [&] {
    started = true;
    while (!release)
      std::this_thread::yield();
    return 1;
  }));
  while (!started)  // until the only thread has taken the first job
    co_await corio::sleep(1ms);
  auto second = corio::spawn(run_on(pool, [] { return 2; }));  // waits in the queue
  co_await corio::yield_now();
  bool refused = false;
  try {
    co_await corio::offload(pool, [] { return 3; });  // no room: nothing of it runs
  } catch (const corio::pool_overloaded_error&) {
    refused = true;
  }
  release = true;
  const int a = co_await first;
  const int b = co_await second;
  check(refused && a + b == 3, "the third job was refused, the first two ran");
  check(pool.stats().rejected == 1, "and the pool counted it");
}
//! [queue_limit]

//! [offload_cancel]
corio::task<> give_up_early(std::atomic<bool>& release, std::atomic<bool>& finished) {
  const std::optional<int> r = co_await corio::move_on_after(1ms, corio::offload([&] {
                                                               while (!release)
                                                                 std::this_thread::yield();
                                                               finished = true;
                                                               return 1;
                                                             }));
  check(!r.has_value(), "the task stopped waiting when its deadline passed");
  check(!finished, "while the job still runs: a thread cannot be interrupted");
  release = true;
}

void cancelled_offload() {
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  corio::run(give_up_early(release, finished));
  check(finished, "run() waited for the abandoned job before it returned");
}
//! [offload_cancel]

//! [process_pool]
corio::task<> isolated_work() {
  corio::process_functions fns;
  fns.add("upper", [](std::string_view s) {
    std::string out(s);
    for (char& c : out)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
  });
  fns.add("crash", [](std::string_view) -> std::string {
    std::raise(SIGKILL);  // native code gone wrong
    return {};
  });
  corio::process_pool pool(1, fns);  // forks its worker here

  const std::string up = co_await pool.call("upper", "hello");
  check(up == "HELLO", "bytes in, bytes out");

  bool crashed = false;
  try {
    co_await pool.call("crash", "");
  } catch (const corio::process_error& e) {
    crashed = e.why() == corio::process_error::reason::crashed;
  }
  check(crashed, "a worker's death is this call's error, not the server's");

  const std::string again = co_await pool.call("upper", "still here");
  check(again == "STILL HERE", "the dead worker was replaced before the next call");
  check(pool.stats().crashes == 1 && pool.stats().restarts == 1, "and the pool counted both");
}
//! [process_pool]

//! [blocking_detector]
int blocking_lookup() {
  std::this_thread::sleep_for(30ms);  // a blocking call made on the loop's thread
  return 42;
}

corio::task<int> handle_request() {
  co_await corio::sleep(1ms);
  co_return blocking_lookup();  // the mistake debug mode names
}

corio::task<int> serve_one() {
  co_return co_await corio::spawn(handle_request(), "request");
}

void blocking_detector() {
  std::vector<std::string> reports;
  corio::loop_options o;
  o.debug = true;  // or CORIO_DEBUG=1 in the environment
  o.slow_callback_duration = 20ms;
  o.report = [&reports](const std::string& r) { reports.push_back(r); };
  const int v = corio::run(serve_one(), o);
  check(v == 42 && !reports.empty(), "debug mode reported the slow resumption");
  const std::string& r = reports.front();
  check(r.find("slow resumption") != std::string::npos, "it says what happened");
  check(r.find("'request'") != std::string::npos, "it names the task");
  check(r.find("handle_request") != std::string::npos, "and its coroutine");
  std::printf("%s\n", r.c_str());
}
//! [blocking_detector]

corio::task<> all_examples() {
  co_await isolated_work();  // first: it forks, best before other pools start threads
  co_await cpu_work_off_the_loop();
  co_await blocking_calls();
  co_await a_full_pool_says_so();
}

int main() {
  corio::run(all_examples());
  cancelled_offload();
  blocking_detector();
  std::printf("executors: every example checked\n");
}
