// Chapter: the event loop itself. The same echo workload (50 connections,
// 64-byte messages, 2,000 round trips each) against a server on epoll,
// then on io_uring. The client runs on its own thread and loop (always
// epoll), so the server thread's CPU time and the system calls its loop
// made are the server's alone.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "corio/corio.hpp"
#include "demo.hpp"
#include "echo_service.hpp"
#include "process_stats.hpp"

namespace corio_demo {
namespace {

using corio_tools::thread_cpu_seconds;

constexpr int k_echo_conns = 50;
constexpr int k_echo_rounds = 2000;
constexpr std::size_t k_echo_size = 64;

/// One client connection: k_echo_rounds round trips; the messages that
/// came back intact.
corio::task<u64> echo_client(corio::socket_address to, int id) {
  auto s = co_await corio::tcp_stream::connect(to);
  s.set_nodelay(true);
  char out[k_echo_size];
  char in[k_echo_size];
  u64 good = 0;
  for (int i = 0; i < k_echo_rounds; ++i) {
    std::memset(out, 'a' + (id + i) % 26, sizeof out);
    co_await s.write_all(out, sizeof out);
    co_await s.read_exact(in, sizeof in);
    good += std::memcmp(in, out, sizeof in) == 0 ? 1 : 0;
  }
  co_return good;
}

/// The server side of one variant, on this thread; the client on another.
/// The note carries the backend's name, server CPU and system calls per
/// message.
measurement echo_on(corio::io_backend_kind backend) {
  corio::loop_options options;
  options.backend = backend;
  corio::event_loop loop(options);
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  const auto addr = listener.local_address();
  u64 good = 0;
  std::thread client([&good, addr] {
    corio::loop_options o;
    o.backend = corio::io_backend_kind::epoll;
    corio::event_loop client_loop(o);
    good = corio::run(client_loop, [](corio::socket_address to) -> corio::task<u64> {
      std::vector<corio::task<u64>> conns;
      conns.reserve(k_echo_conns);
      for (int i = 0; i < k_echo_conns; ++i)
        conns.push_back(echo_client(to, i));
      const auto per = co_await corio::gather(std::move(conns));
      co_return std::accumulate(per.begin(), per.end(), u64{0});
    }(addr));
  });
  const double cpu0 = thread_cpu_seconds();
  const u64 calls0 = loop.stats().syscalls;
  const auto t0 = steady::now();
  corio::run(loop, [](corio::tcp_listener& l) -> corio::task<> {
    int closed = 0;
    corio::event all_closed;
    auto server = corio::spawn(corio::serve(l, [&](corio::tcp_stream s) -> corio::task<> {
      co_await corio_examples::echo_connection(std::move(s));
      if (++closed == k_echo_conns) all_closed.set();
    }));
    co_await all_closed.wait();
    server.cancel();
    try {
      co_await server;
    } catch (const corio::cancelled_error&) {
    }
  }(listener));
  measurement m;
  m.seconds = since(t0);
  const double cpu = thread_cpu_seconds() - cpu0;
  const u64 calls = loop.stats().syscalls - calls0;
  client.join();
  m.result = good;
  const double msgs = static_cast<double>(k_echo_conns) * k_echo_rounds;
  std::snprintf(m.note, sizeof m.note, "%s %.3f %.4f", loop.backend_name(), cpu * 1e6 / msgs,
                static_cast<double>(calls) / msgs);
  return m;
}

/// Runs the server on epoll, then on io_uring (each in a child), and
/// reports CPU, system calls and throughput per message.
void run_chapter(report& report) {
  report.heading("the event loop: echo, %d connections x %d round trips of %zu bytes", k_echo_conns,
                 k_echo_rounds, k_echo_size);
  progress("before: the server on epoll (readiness: try, park, epoll_wait, retry)");
  const measurement a = in_child([] { return echo_on(corio::io_backend_kind::epoll); });
  progress("after: the server on io_uring (completions: one io_uring_enter per loop turn)");
  const measurement b = in_child([] { return echo_on(corio::io_backend_kind::uring); });
  const u64 want = static_cast<u64>(k_echo_conns) * k_echo_rounds;
  report.check_same(a.result, want);
  report.check_same(b.result, want);
  char name_a[16] = {};
  char name_b[16] = {};
  double cpu_a = 0;
  double cpu_b = 0;
  double calls_a = 0;
  double calls_b = 0;
  if (std::sscanf(a.note, "%15s %lf %lf", name_a, &cpu_a, &calls_a) != 3 ||
      std::sscanf(b.note, "%15s %lf %lf", name_b, &cpu_b, &calls_b) != 3)
    throw std::runtime_error("corio-demo: event loop: bad measurement");
  std::printf("    %s: %.2f us CPU and %.3f system calls per message\n", name_a, cpu_a, calls_a);
  std::printf("    %s: %.2f us CPU and %.3f system calls per message\n", name_b, cpu_b, calls_b);
  const bool have_uring = std::strcmp(name_b, "io_uring") == 0;
  if (!have_uring) std::printf("    (io_uring is not available here: both ran on epoll)\n");
  const double msgs = static_cast<double>(want);
  report.add("server CPU per message (us)", fmt("%.2f", cpu_a), fmt("%.2f", cpu_b),
             have_uring ? fmt("%.2fx", cpu_a / cpu_b) : "-");
  report.add("server syscalls per message", fmt("%.3f", calls_a), fmt("%.3f", calls_b),
             have_uring ? fmt("%.0fx fewer", calls_a / std::max(calls_b, 1e-9)) : "-");
  report.add("messages per second", fmt("%.0f", msgs / a.seconds), fmt("%.0f", msgs / b.seconds),
             fmt("%.2fx", a.seconds / b.seconds));
}

const registrar k_registered{{"event loop", 500, run_chapter}};

}  // namespace
}  // namespace corio_demo
