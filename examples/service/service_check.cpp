// service_check: runs corio_service against a throwaway Redis and
// PostgreSQL and checks its answers over 127.0.0.1, then that SIGTERM
// ends it with status 0 after answering the requests in flight.
//
//   service_check PATH/corio_service            the checks (make test runs them)
//   service_check --serve PATH/corio_service [--port N] [--metrics-port N]
//                                               the servers and the service,
//                                               until Ctrl-C, to try with curl
//
// The servers are Debian's redis-server and PostgreSQL 15, started on free
// ports in temporary directories (tools/common) and stopped at exit.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "free_port.hpp"
#include "pg_server.hpp"
#include "redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// ---- a minimal blocking HTTP/1.1 client ------------------------------------

struct http_reply {
  int status = 0;  // 0: no reply (connection refused, reset, timed out)
  std::string head;
  std::string body;

  /// The value of header `name` (case-insensitive), if present.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const std::size_t start = pos + 2;
      const std::size_t end = head.find("\r\n", start);
      const std::string_view line(head.data() + start,
                                  (end == std::string::npos ? head.size() : end) - start);
      const std::size_t colon = line.find(':');
      if (colon == name.size()) {
        bool same = true;
        for (std::size_t i = 0; i < colon && same; ++i)
          same = std::tolower(static_cast<unsigned char>(line[i])) ==
                 std::tolower(static_cast<unsigned char>(name[i]));
        if (same) {
          std::string_view v = line.substr(colon + 1);
          while (!v.empty() && v.front() == ' ')
            v.remove_prefix(1);
          return std::string(v);
        }
      }
      pos = end;
    }
    return std::nullopt;
  }
};

// A connection to 127.0.0.1:port with 10 s limits on each read and write,
// or -1.
int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_request(int fd, std::string_view method, std::string_view path) {
  const std::string req = std::string(method) + " " + std::string(path) +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one response (the server closes after it: Connection: close).
http_reply read_reply(int fd) {
  std::string data;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  http_reply r;
  const std::size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos || !data.starts_with("HTTP/1.1 ")) return r;
  r.head = data.substr(0, end);
  r.body = data.substr(end + 4);
  r.status = std::atoi(data.c_str() + 9);
  if (const auto len = r.header("Content-Length");
      len && r.body.size() != static_cast<std::size_t>(std::atoll(len->c_str()))) {
    r.status = 0;  // cut short
  }
  return r;
}

http_reply fetch(std::uint16_t port, std::string_view path, std::string_view method = "GET") {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  http_reply r;
  if (send_request(fd, method, path)) r = read_reply(fd);
  ::close(fd);
  return r;
}

// ---- the service as a child process ----------------------------------------

pid_t launch(const std::string& binary, const std::vector<std::string>& flags) {
  std::vector<std::string> args{binary};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Its own process group: a Ctrl-C at the terminal reaches this program,
  // which then sends one SIGTERM (a second signal would make the service
  // exit at once). The signals this program blocks are not the child's.
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::execv(argv[0], argv.data());
  std::perror("service_check: exec");
  ::_exit(127);
}

// The child's exit status as a shell shows it (128 + signal), or -1 if it
// is still running after `limit`.
int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = steady::now() + limit;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (steady::now() >= deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
}

// Waits until /health answers 200; false if the service exited or 60 s
// passed (`exited` then holds its status, or -1).
bool wait_healthy(pid_t pid, std::uint16_t port, int& exited) {
  const auto deadline = steady::now() + 60s;
  while (steady::now() < deadline) {
    exited = wait_exit(pid, 0ms);
    if (exited >= 0) return false;
    if (fetch(port, "/health").status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  exited = -1;
  return false;
}

// ---- the checks -------------------------------------------------------------

class checks {
 public:
  void expect(bool ok, const std::string& what, const std::string& detail = "") {
    std::printf("%s %s%s%s\n", ok ? "  ok  " : "  FAIL", what.c_str(), detail.empty() ? "" : ": ",
                detail.c_str());
    std::fflush(stdout);
    ok ? ++m_passed : ++m_failed;
  }
  [[nodiscard]] int passed() const noexcept { return m_passed; }
  [[nodiscard]] int failed() const noexcept { return m_failed; }

 private:
  int m_passed = 0;
  int m_failed = 0;
};

std::string show(const http_reply& r) {
  if (r.status == 0) return "no reply";
  std::string s = std::to_string(r.status) + " " + r.body;
  if (const auto c = r.header("X-Cache")) s += " [X-Cache: " + *c + "]";
  return s;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// A figure of /stats, summed over the loops ("\"cache_loads\":12" ...).
unsigned long long sum_of(const std::string& json, const std::string& field, bool max = false) {
  unsigned long long total = 0;
  const std::string key = "\"" + field + "\":";
  for (std::size_t p = json.find(key); p != std::string::npos; p = json.find(key, p + 1)) {
    const unsigned long long v = std::strtoull(json.c_str() + p + key.size(), nullptr, 10);
    total = max ? std::max(total, v) : total + v;
  }
  return total;
}

void check_answers(checks& c, std::uint16_t port, std::uint16_t metrics_port) {
  const http_reply first = fetch(port, "/items/7");
  c.expect(
      first.status == 200 && contains(first.body, "\"id\":7") && first.header("X-Cache") == "miss",
      "GET /items/7 the first time: 200 from PostgreSQL (X-Cache: miss)", show(first));
  const http_reply second = fetch(port, "/items/7");
  c.expect(second.status == 200 && second.body == first.body && second.header("X-Cache") == "hit",
           "GET /items/7 again: the same item from Redis (X-Cache: hit)", show(second));
  const http_reply summary = fetch(port, "/items/7/summary");
  c.expect(summary.status == 200 && contains(summary.body, "\"fingerprint\":\"") &&
               contains(summary.body, "\"price_with_vat\":\""),
           "GET /items/7/summary: 200 with fields computed on the CPU pool", show(summary));
  const http_reply missing = fetch(port, "/items/424242");
  c.expect(missing.status == 404 && contains(missing.body, "\"error\":"),
           "GET /items/424242: 404 JSON", show(missing));
  for (const char* bad :
       {"/items/abc", "/items/-1", "/items/99999999999", "/items/", "/items/12x/summary"}) {
    const http_reply r = fetch(port, bad);
    c.expect(r.status == 400 && contains(r.body, "\"error\":"),
             std::string("GET ") + bad + ": 400 JSON", show(r));
  }
  const http_reply unknown = fetch(port, "/nope");
  c.expect(unknown.status == 404 && contains(unknown.body, "\"error\":"), "GET /nope: 404 JSON",
           show(unknown));
  const http_reply post = fetch(port, "/items/7", "POST");
  c.expect(post.status == 405 && post.header("Allow") == "GET, HEAD", "POST /items/7: 405 JSON",
           show(post));

  // 64 clients at once, each on a connection of its own: the kernel
  // spreads them over the loops' listeners, and each loop's cache reads of
  // a tick go to Redis as one MGET.
  constexpr int k_clients = 64;
  std::vector<int> fds;
  for (int i = 0; i < k_clients; ++i) {
    const int fd = connect_to(port);
    if (fd >= 0 && send_request(fd, "GET", "/items/" + std::to_string(100 + i % 32))) {
      fds.push_back(fd);
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  int ok = 0;
  std::set<std::string> loops;
  for (const int fd : fds) {
    const http_reply r = read_reply(fd);
    ::close(fd);
    if (r.status == 200) ++ok;
    if (const auto l = r.header("X-Loop")) loops.insert(*l);
  }
  c.expect(ok == k_clients, "64 concurrent clients: all 200",
           std::to_string(ok) + " of " + std::to_string(k_clients));
  c.expect(loops.count("0") == 1 && loops.count("1") == 1,
           "the concurrent requests were served by loop 0 and loop 1");
  const http_reply stats = fetch(port, "/stats");
  const auto loads = sum_of(stats.body, "cache_loads");
  const auto batches = sum_of(stats.body, "cache_batches");
  c.expect(stats.status == 200 && loads > 0 && batches > 0 && batches <= loads,
           "GET /stats: cache reads batched",
           std::to_string(loads) + " loads in " + std::to_string(batches) +
               " MGETs, the largest of " +
               std::to_string(sum_of(stats.body, "largest_batch", true)) + " keys");

  const http_reply metrics = fetch(metrics_port, "/metrics");
  c.expect(metrics.status == 200 && contains(metrics.body, "{loop=\"0\"}") &&
               contains(metrics.body, "{loop=\"1\"}"),
           "/metrics: figures of loop=\"0\" and loop=\"1\"");
  c.expect(contains(metrics.body, "corio_connection_pool_size{pool=\"pg_loop0\"}") &&
               contains(metrics.body, "corio_connection_pool_size{pool=\"pg_loop1\"}") &&
               contains(metrics.body, "corio_pool_threads{pool=\"cpu\"}"),
           "/metrics: the PostgreSQL pools of both loops and the CPU pool");
  c.expect(contains(metrics.body, "name=\"http.item\"") &&
               contains(metrics.body, "name=\"cpu.summary\""),
           "/metrics: the profiler's histograms");
}

// Requests sent just before SIGTERM are answered, then the service exits 0.
void check_shutdown(checks& c, pid_t pid, std::uint16_t port) {
  constexpr int k_clients = 8;
  std::vector<int> fds;
  for (int i = 0; i < k_clients; ++i) {
    const int fd = connect_to(port);
    if (fd >= 0 && send_request(fd, "GET", "/items/" + std::to_string(500 + i) + "/summary")) {
      fds.push_back(fd);
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  ::kill(pid, SIGTERM);
  int ok = 0;
  for (const int fd : fds) {
    if (read_reply(fd).status == 200) ++ok;
    ::close(fd);
  }
  c.expect(ok == k_clients, "requests sent just before SIGTERM: all answered",
           std::to_string(ok) + " of " + std::to_string(k_clients));
  const auto start = steady::now();
  const int status = wait_exit(pid, 10s);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
  if (status < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  c.expect(status == 0, "SIGTERM: exit status 0 within 10 s",
           status < 0 ? "still running after 10 s: killed"
                      : "status " + std::to_string(status) + " after " +
                            std::to_string(ms.count()) + " ms");
  c.expect(connect_to(port) < 0, "the port is closed afterwards");
}

std::vector<std::string> service_flags(std::uint16_t port, std::uint16_t metrics_port) {
  return {
      "--port",         std::to_string(port),
      "--metrics-port", std::to_string(metrics_port),
      "--pg",           corio_tools::pg_server::shared().conninfo(),
      "--redis",        "127.0.0.1:" + std::to_string(corio_tools::redis_server::shared().port()),
      "--threads",      "2"};
}

int run_checks(const std::string& binary) {
  const std::uint16_t port = corio_tools::free_port();
  std::uint16_t metrics_port = corio_tools::free_port();
  while (metrics_port == port)
    metrics_port = corio_tools::free_port();
  const pid_t pid = launch(binary, service_flags(port, metrics_port));
  checks c;
  int exited = -1;
  const bool up = wait_healthy(pid, port, exited);
  c.expect(up, "the service starts and /health answers 200",
           up ? ""
              : (exited >= 0 ? "it exited with status " + std::to_string(exited)
                             : "no answer within 60 s"));
  if (up) {
    check_answers(c, port, metrics_port);
    check_shutdown(c, pid, port);
  } else if (exited < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  std::printf("service_check: %d passed, %d failed\n", c.passed(), c.failed());
  return c.failed() == 0 ? 0 : 1;
}

int serve_until_interrupted(const std::string& binary, std::uint16_t port,
                            std::uint16_t metrics_port) {
  auto& pg = corio_tools::pg_server::shared();
  auto& redis = corio_tools::redis_server::shared();
  // Blocked only now: the servers must not inherit the mask (they stop on
  // these signals), and the service unblocks them (launch).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stop, nullptr);
  const pid_t pid = launch(binary, service_flags(port, metrics_port));
  std::printf(
      "service_check --serve:\n"
      "  PostgreSQL 15: %s\n"
      "  Redis:         127.0.0.1:%u (also %s)\n"
      "  corio_service: http://127.0.0.1:%u/, metrics http://127.0.0.1:%u/metrics\n"
      "  try:  curl -i http://127.0.0.1:%u/items/7\n"
      "        curl http://127.0.0.1:%u/items/7/summary\n"
      "        curl http://127.0.0.1:%u/metrics\n"
      "  Ctrl-C stops the service (SIGTERM: a graceful shutdown) and the servers.\n",
      pg.conninfo().c_str(), static_cast<unsigned>(redis.port()), redis.socket_path().c_str(),
      static_cast<unsigned>(port), static_cast<unsigned>(metrics_port), static_cast<unsigned>(port),
      static_cast<unsigned>(port), static_cast<unsigned>(metrics_port));
  std::fflush(stdout);
  // Ends on a signal, or when the service exits by itself (it failed).
  for (;;) {
    const timespec tick{0, 200'000'000};
    const int sig = ::sigtimedwait(&stop, nullptr, &tick);
    if (sig > 0) break;
    const int status = wait_exit(pid, 0ms);
    if (status >= 0) {
      std::printf("service_check: the service exited with status %d\n", status);
      return 1;
    }
  }
  ::kill(pid, SIGTERM);
  int status = wait_exit(pid, 15s);
  if (status < 0) {
    ::kill(pid, SIGKILL);
    status = wait_exit(pid, 5s);
  }
  std::printf("service_check: the service exited with status %d; stopping the servers\n", status);
  return status == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool serve = false;
  std::string binary;
  std::uint16_t port = 8080;
  std::uint16_t metrics_port = 9464;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--serve") {
      serve = true;
    } else if ((a == "--port" || a == "--metrics-port") && i + 1 < argc) {
      (a == "--port" ? port : metrics_port) = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    } else if (binary.empty() && !a.starts_with("-")) {
      binary = a;
    } else {
      binary.clear();
      break;
    }
  }
  if (binary.empty()) {
    std::fprintf(stderr,
                 "usage: service_check PATH/corio_service\n"
                 "       service_check --serve PATH/corio_service [--port N] [--metrics-port N]\n");
    return 2;
  }
  try {
    return serve ? serve_until_interrupted(binary, port, metrics_port) : run_checks(binary);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "service_check: %s\n", e.what());
    return 1;
  }
}
