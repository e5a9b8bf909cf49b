// The examples of the guide's "Multi-core" page (docs/guide/multi_core.md):
// every snippet between `//! [name]` markers runs here, on a runtime of two
// loops, and main checks what it produced.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

using guide::check;

std::uint64_t crunch(std::uint64_t x) {  // stands in for a request's CPU part
  for (int i = 0; i < 1000; ++i)
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x >> 33;
}

//! [loop_local]
// Per-loop state: each loop gets its own instance, made on its own thread
// on first use; local() takes no lock and no atomic.
struct request_counter {
  std::uint64_t served = 0;
};
corio::loop_local<request_counter>* g_counters = nullptr;

corio::task<std::uint64_t> handle_request(std::uint64_t i) {
  ++g_counters->local().served;  // this loop's counter
  co_await corio::sleep(1ms);    // I/O
  co_return crunch(i);           // CPU, on whichever loop runs this task
}
//! [loop_local]

//! [report_loop]
corio::task<> report_loop(corio::channel<std::size_t>& out) {
  co_await out.send(corio::this_loop_index());
}
//! [report_loop]

corio::task<> submit_examples() {
  //! [submit_to]
  // A value computed on loop 1, awaited here on loop 0.
  std::size_t where = co_await corio::submit_to(1, [] { return corio::this_loop_index(); });
  // A task run to completion on loop 1; its error, if any, is rethrown here.
  std::string page = co_await corio::submit_to(1, []() -> corio::task<std::string> {
    co_await corio::sleep(1ms);
    co_return "from loop " + std::to_string(corio::this_loop_index());
  });
  //! [submit_to]
  check(where == 1 && page == "from loop 1", "submit_to runs on loop 1");

  //! [submit_error]
  bool rethrown = false;
  try {
    co_await corio::submit_to(1, []() -> int { throw std::runtime_error("failed on loop 1"); });
  } catch (const std::runtime_error&) {
    rethrown = true;
  }
  //! [submit_error]
  check(rethrown, "an exception crosses back");

  //! [spawn_on]
  // Fire and forget on loop 1; loop 1 owns the task. A channel (the one
  // primitive that crosses loops) brings a value back.
  corio::channel<std::size_t> done(1);
  corio::spawn_on(1, [&done] { return report_loop(done); });  // made and run on loop 1
  std::size_t ran_on = co_await done.receive();
  //! [spawn_on]
  check(ran_on == 1, "spawn_on ran on loop 1");
  std::printf("submit_to: value and task from loop %zu, error rethrown; spawn_on ran on loop %zu\n",
              where, ran_on);
}

corio::task<> balanced_examples() {
  //! [spawn_balanced]
  // 200 requests, each spawned on the less loaded of this loop and one other
  // picked at random (the power of two choices on their task counts).
  std::vector<corio::remote_handle<std::uint64_t>> handles;
  for (std::uint64_t i = 0; i < 200; ++i)
    handles.push_back(corio::spawn_balanced([i] { return handle_request(i); }));
  std::uint64_t x = 0;
  for (auto& h : handles) {
    const std::uint64_t v = co_await h;  // its value, or its error rethrown
    x ^= v;
  }
  //! [spawn_balanced]
  std::uint64_t expect = 0;
  for (std::uint64_t i = 0; i < 200; ++i)
    expect ^= crunch(i);
  check(x == expect, "every balanced request's result came back");

  //! [invoke_on_all]
  // Runs on every loop at once; here it reads each loop's own counter.
  std::vector<std::uint64_t> per_loop(corio::loop_count());
  co_await corio::invoke_on_all([&per_loop](std::size_t i) {
    per_loop[i] = g_counters->local().served;  // slot i is written by loop i only
  });
  //! [invoke_on_all]
  check(per_loop.size() == 2 && per_loop[0] + per_loop[1] == 200, "200 requests counted");

  //! [every_loop_stats]
  const std::vector<corio::loop_stats> loops = co_await corio::every_loop_stats();
  // loops[i].resumptions, .live_tasks, .messages_sent, ...: each read on its own thread
  //! [every_loop_stats]
  check(loops.size() == 2, "a reading per loop");
  std::printf(
      "spawn_balanced: 200 requests, %llu on loop 0 and %llu on loop 1; messages sent %llu / "
      "%llu\n",
      static_cast<unsigned long long>(per_loop[0]), static_cast<unsigned long long>(per_loop[1]),
      static_cast<unsigned long long>(loops[0].messages_sent),
      static_cast<unsigned long long>(loops[1].messages_sent));
}

//! [serve_every_loop_handler]
void which_loop(const corio::http_request&, corio::http_response& res) {
  res.set_body(std::to_string(corio::this_loop_index()));
}
//! [serve_every_loop_handler]

corio::task<std::string> get(corio::socket_address server) {
  auto c = co_await corio::tcp_stream::connect(server);
  const std::string_view req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  co_await c.write_all(req.data(), req.size());
  std::string in;
  char buf[1024];
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) break;
    in.append(buf, n);
  }
  co_return in.substr(in.find("\r\n\r\n") + 4);
}

corio::task<> serve_examples() {
  //! [serve_every_loop]
  // One port; a listener per loop (SO_REUSEPORT), each connection served
  // on the loop whose listener the kernel gave it to.
  auto listener =
      corio::tcp_listener::bind(corio::socket_address::loopback(0), {.reuse_port = true});
  auto server = corio::spawn(corio::serve_every_loop(
      listener, [](corio::tcp_listener& mine) { return corio::serve_http(mine, which_loop); }));
  //! [serve_every_loop]
  const auto address = listener.local_address();
  std::vector<corio::task<std::string>> clients;
  for (int i = 0; i < 20; ++i)
    clients.push_back(get(address));
  const std::vector<std::string> answers = co_await corio::gather(std::move(clients));
  int on[2] = {0, 0};
  for (const std::string& a : answers) {
    check(a == "0" || a == "1", "answered by loop 0 or 1");
    ++on[a == "1"];
  }
  server.cancel();  // every loop's server stops
  try {
    co_await server;
  } catch (const corio::cancelled_error&) {
  }
  std::printf("serve_every_loop: 20 requests on one port, %d served by loop 0, %d by loop 1\n",
              on[0], on[1]);
}

//! [main]
corio::task<int> amain() {
  // Made on a loop of the runtime, so it has a slot per loop.
  corio::loop_local<request_counter> counters([] { return request_counter{}; });
  g_counters = &counters;
  co_await submit_examples();
  co_await balanced_examples();
  co_await serve_examples();
  co_await counters.clear();  // each loop's instance destroyed on its own thread
  g_counters = nullptr;
  co_return 0;
}

int run_two_loops() {
  corio::runtime rt({.threads = 2});  // default: a loop per CPU this process may use
  return rt.run(amain());             // amain runs on loop 0, this thread; the others
}  // drain their tasks and end before run returns
//! [main]

corio::task<void> wait_for(corio::event& ev) {
  co_await ev.wait();
}

// Debug mode's cross-loop report, caught in `reports`.
std::vector<std::string> misuse() {
  std::mutex m;
  std::vector<std::string> reports;
  //! [cross_loop_debug]
  corio::loop_options debug;
  debug.debug = true;                         // or CORIO_DEBUG=1 in the environment
  debug.report = [&](const std::string& r) {  // called on the reporting loop's thread
    const std::lock_guard lock(m);
    reports.push_back(r);
  };
  corio::runtime rt({.threads = 2, .loop = debug});
  rt.run([]() -> corio::task<void> {
    corio::event ev;  // loop 0's
    auto waiter = corio::spawn(wait_for(ev), "waits on loop 0");
    co_await corio::yield_now();                        // the waiter parks on ev
    co_await corio::submit_to(1, [&ev] { ev.set(); });  // the bug: loop 0's event, set on loop 1
    co_await waiter;  // it still finishes: debug mode sends it home to loop 0
  }());
  //! [cross_loop_debug]
  return reports;
}

}  // namespace

int main() {
  check(run_two_loops() == 0, "the runtime's main");
  const std::vector<std::string> reports = misuse();
  bool found = false;
  for (const std::string& r : reports) {
    if (r.find("'waits on loop 0'") != std::string::npos &&
        r.find("of loop 0 was woken on loop 1") != std::string::npos) {
      found = true;
      std::printf("debug mode:\n%s\n", r.c_str());
    }
  }
  check(found, "debug mode reports the cross-loop wake-up");
  std::printf("multi_core: all checks passed\n");
  return 0;
}
