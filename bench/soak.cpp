// corio-soak: does a server give its memory and descriptors back? Starts a
// server program (examples/http_server or examples/echo_server) as a child
// on a free port, then for each of --rounds rounds opens --hold keep-alive
// connections at once (one request each, then all closed) and makes
// --short short connections (one request, closed by the server), printing
// the server's RSS and open descriptors after each step, from /proc. Flat
// figures from round to round are the pass mark; a benchmark, not a test.
//
//   corio-soak --server build/release/examples/http_server --protocol http
//   corio-soak --server build/release/examples/echo_server --protocol echo
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "corio/corio.hpp"

namespace {

using namespace std::chrono_literals;

struct options {
  std::string server;
  bool http = true;
  int rounds = 10;
  std::size_t hold = 10000;
  std::size_t short_connections = 100000;
  std::size_t concurrency = 64;
  std::size_t attack = 0;  // --attack N: slowloris connections instead of rounds
  std::uint16_t port = 0;  // --port P --pid N: a server already running
  pid_t pid = 0;
};

long status_kb(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(field)) return std::atol(line.c_str() + field.size());
  return -1;
}

int open_fds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), e;
       !ec && it != e; it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

void report(pid_t pid, int round, const char* step, double seconds) {
  std::printf("round %2d  %-28s rss %7.1f MiB  fds %6d  (%.2f s)\n", round, step,
              static_cast<double>(status_kb(pid, "VmRSS:")) / 1024.0, open_fds(pid), seconds);
  std::fflush(stdout);
}

// One request and its whole reply: an HTTP response (to the blank line and
// its Content-Length body) or the 64-byte echo.
corio::task<> exchange(corio::tcp_stream& c, bool http, bool keep_alive) {
  static const std::string keep = "GET / HTTP/1.1\r\nHost: soak\r\n\r\n";
  static const std::string close = "GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n";
  static const std::string message(64, 'm');
  const std::string& req = !http ? message : keep_alive ? keep : close;
  co_await c.write_all(req.data(), req.size());
  char buf[1024];
  std::string in;
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) throw std::runtime_error("the server closed a connection early");
    in.append(buf, n);
    if (!http && in.size() >= message.size()) co_return;
    const std::size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    const std::size_t at = in.find("Content-Length: ");
    const std::size_t len = at == std::string::npos ? 0 : std::stoul(in.substr(at + 16));
    if (in.size() >= end + 4 + len) co_return;
  }
}

corio::task<corio::tcp_stream> connect_retrying(const corio::socket_address& to) {
  for (int attempt = 0;; ++attempt) {
    try {
      co_return co_await corio::tcp_stream::connect(to);
    } catch (const std::system_error&) {
      // Ports still in TIME_WAIT, or a full backlog: a moment later works.
      if (attempt >= 50) throw;
    }
    co_await corio::sleep(10ms);
  }
}

corio::task<> hold_round(const corio::socket_address& to, const options& o, pid_t pid, int round) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<corio::tcp_stream> held(o.hold);
  std::vector<std::size_t> index(o.hold);
  for (std::size_t i = 0; i < o.hold; ++i)
    index[i] = i;
  co_await corio::map_bounded(
      index,
      [&](std::size_t i) -> corio::task<> {
        held[i] = co_await connect_retrying(to);
        co_await exchange(held[i], o.http, true);
      },
      256);
  const double opened =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report(pid, round, ("holding " + std::to_string(o.hold)).c_str(), opened);
  held.clear();                  // all closed at once
  co_await corio::sleep(500ms);  // the server sees the ends and frees them
  report(pid, round, "after they closed", 0);
}

corio::task<> short_round(const corio::socket_address& to, const options& o, pid_t pid, int round) {
  const auto start = std::chrono::steady_clock::now();
  std::size_t next = 0;
  std::size_t done = 0;
  std::vector<std::size_t> workers(o.concurrency);
  co_await corio::map_bounded(
      workers,
      [&](std::size_t) -> corio::task<> {
        while (next < o.short_connections) {
          ++next;
          auto c = co_await connect_retrying(to);
          co_await exchange(c, o.http, false);
          if (!o.http) c.close();  // echo: the client ends it
          ++done;
        }
      },
      o.concurrency);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  co_await corio::sleep(200ms);
  report(pid, round, (std::to_string(done) + " short connections").c_str(), took);
}

// The slowloris scenario (--attack N): N connections each send
// part of a request head, then one byte every 5 s, for 40 s; meanwhile one
// keep-alive client that connected first asks once a second, and 7 new
// clients connect at 1 s and each wait up to the end for an answer.
// Prints how many of each were served and when.
using steady = std::chrono::steady_clock;
constexpr double k_attack_seconds = 40;

double since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

std::chrono::duration<double> left(steady::time_point start) {
  return std::chrono::duration<double>(k_attack_seconds - since(start));
}

corio::task<> attacker(corio::socket_address to, steady::time_point start, std::size_t& opened) {
  std::error_code ec;
  corio::tcp_stream c;
  try {  // a full backlog drops SYNs: connect could retry for minutes
    c = co_await corio::timeout(left(start), corio::tcp_stream::connect(to));
  } catch (const std::exception&) {
    co_return;
  }
  ++opened;
  const std::string head = "GET / HTTP/1.1\r\nHost: soak\r\n";
  (void)co_await c.write_all(head.data(), head.size(), ec);
  while (!ec && since(start) < k_attack_seconds - 5) {
    co_await corio::sleep(5s);
    (void)co_await c.write_some("X", 1, ec);
  }
}

corio::task<> existing_client(corio::tcp_stream& c, steady::time_point start, std::size_t& ok,
                              std::size_t& asked) {
  while (since(start) < k_attack_seconds - 2) {
    co_await corio::sleep(1s);
    ++asked;
    try {
      co_await corio::timeout(2s, exchange(c, true, true));
      ++ok;
    } catch (const std::exception&) {
      co_return;
    }
  }
}

corio::task<> new_client(corio::socket_address to, steady::time_point start,
                         std::vector<double>& served_at) {
  try {
    auto c = co_await corio::timeout(left(start), corio::tcp_stream::connect(to));
    co_await corio::timeout(left(start), exchange(c, true, false));
    served_at.push_back(since(start));
  } catch (const std::exception&) {
  }
}

corio::task<> slowloris(corio::socket_address to, const options& o, pid_t pid) {
  const steady::time_point start = steady::now();
  auto existing = co_await corio::tcp_stream::connect(to);
  co_await exchange(existing, true, true);
  std::size_t opened = 0, existing_ok = 0, existing_asked = 0;
  std::vector<double> served_at;
  {
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      for (std::size_t i = 0; i < o.attack; ++i)
        g.spawn(attacker(to, start, opened));
      g.spawn(existing_client(existing, start, existing_ok, existing_asked));
      co_await corio::sleep(1s);
      report(pid, 0, ("slowloris: " + std::to_string(opened) + " open").c_str(), since(start));
      for (int i = 0; i < 7; ++i)
        g.spawn(new_client(to, start, served_at));
    });
  }
  std::string when;
  for (double t : served_at)
    when += " " + std::to_string(t).substr(0, 4);
  std::printf("new clients served: %zu of 7, at (s):%s\n", served_at.size(), when.c_str());
  std::printf("existing keep-alive client: %zu of %zu answered\n", existing_ok, existing_asked);
  report(pid, 0, "after the attack", since(start));
}

corio::task<int> soak_running(options o) {
  const corio::socket_address to = corio::socket_address::loopback(o.port);
  report(o.pid, 0, "started", 0);
  for (int r = 1; r <= o.rounds; ++r) {
    co_await hold_round(to, o, o.pid, r);
    co_await short_round(to, o, o.pid, r);
  }
  co_return 0;
}

corio::task<int> soak(options o) {
  if (o.port != 0) co_return co_await soak_running(o);
  auto server =
      corio::subprocess::spawn({.argv = {o.server, "0"}, .stdout_mode = corio::stdio::pipe});
  corio::buffered_reader<corio::pipe_stream> out(server.stdout_pipe());
  std::string line;  // the server's first line names its address
  std::size_t at = std::string::npos;
  while (at == std::string::npos) {
    line = co_await out.read_line();
    if (line.empty()) throw std::runtime_error("the server ended before it said its address");
    at = line.find("127.0.0.1:");
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(line.c_str() + at + 10));
  const corio::socket_address to = corio::socket_address::loopback(port);
  std::printf("%s", line.c_str());
  report(server.pid(), 0, "started", 0);
  if (o.attack > 0) co_await slowloris(to, o, server.pid());
  for (int r = 1; o.attack == 0 && r <= o.rounds; ++r) {
    co_await hold_round(to, o, server.pid(), r);
    co_await short_round(to, o, server.pid(), r);
  }
  ::kill(server.pid(), SIGTERM);
  const int status = co_await server.wait();
  std::printf("server exit status %d\n", status);
  co_return status == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--server") {
      o.server = v;
    } else if (k == "--protocol") {
      o.http = std::string_view(v) == "http";
    } else if (k == "--port") {
      o.port = static_cast<std::uint16_t>(std::atoi(v));
    } else if (k == "--pid") {
      o.pid = std::atoi(v);
    } else if (k == "--attack") {
      o.attack = std::strtoul(v, nullptr, 10);
    } else if (k == "--rounds") {
      o.rounds = std::atoi(v);
    } else if (k == "--hold") {
      o.hold = std::strtoul(v, nullptr, 10);
    } else if (k == "--short") {
      o.short_connections = std::strtoul(v, nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (o.server.empty() && o.port == 0) {
    std::fprintf(stderr,
                 "usage: corio-soak --server PROGRAM [--protocol http|echo] [--rounds N] "
                 "[--hold N] [--short N]\n");
    return 2;
  }
  // The client holds --hold connections; the server inherits the limit.
  rlimit fds{};
  ::getrlimit(RLIMIT_NOFILE, &fds);
  fds.rlim_cur = fds.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &fds);
  return corio::run(soak(o));
}
