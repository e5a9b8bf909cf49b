// A real redis-server for the tests and the tour: started once per program on a
// free port of 127.0.0.1 and a Unix socket in a temporary directory, with
// persistence off; stopped, and its directory removed, when the program
// exits. Nothing needs to run beforehand (scripts/install-deps.sh installs
// Debian's redis-server).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "free_port.hpp"

namespace corio_tools {

class redis_server {
 public:
  /// The program's server, started at the first call.
  static redis_server& shared() {
    static redis_server s;
    return s;
  }

  /// A second server that answers HELLO with "unknown command", as a
  /// server before Redis 6 does (the command renamed away): clients fall
  /// back to RESP2 there.
  static redis_server& without_hello() {
    static redis_server s({"--rename-command", "HELLO", ""});
    return s;
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return m_port; }
  [[nodiscard]] const std::string& socket_path() const noexcept { return m_socket; }
  [[nodiscard]] const std::string& dir() const noexcept { return m_dir; }

  /// Stops the server (SIGTERM, then waits) and starts it again on the same
  /// port and socket: what a client sees when its server restarts.
  void restart() {
    stop();
    if (!start_on(m_port)) throw std::runtime_error("redis_server: restart failed");
  }

  /// Stops the server and leaves it stopped until restart().
  void stop() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      int status = 0;
      ::waitpid(m_pid, &status, 0);
      m_pid = -1;
    }
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  ~redis_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }

 private:
  explicit redis_server(std::vector<std::string> extra = {}) : m_extra(std::move(extra)) {
    std::string templ = (std::filesystem::temp_directory_path() / "corio-redis-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("redis_server: mkdtemp");
    m_dir = templ;
    m_socket = m_dir + "/redis.sock";
    // A port that was free a moment ago can be taken before the server
    // binds it: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (start_on(free_port())) return;
    }
    throw std::runtime_error("redis_server: redis-server did not start; see " + m_dir +
                             "/redis.log");
  }

  static bool answers(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  static bool answers_unix(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return false;
    path.copy(a.sun_path, path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  bool start_on(std::uint16_t port) {
    const std::string port_text = std::to_string(port);
    const std::string log = m_dir + "/redis.log";
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     port_text,
                                     "--bind",
                                     "127.0.0.1",
                                     "--unixsocket",
                                     m_socket,
                                     "--unixsocketperm",
                                     "700",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     m_dir,
                                     "--logfile",
                                     log,
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), m_extra.begin(), m_extra.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    // fork + exec rather than posix_spawn: the child asks to be killed when
    // the test program dies, so a crashed test leaves no server behind.
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("redis_server: fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);  // the parent is already gone
      ::execvp("redis-server", argv.data());
      ::_exit(127);  // not installed: apt-get install redis-server
    }
    m_pid = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {  // it exited: the port was taken
        m_pid = -1;
        return false;
      }
      // Connects to both (a socket file appears at bind, before listen).
      if (answers(port) && answers_unix(m_socket)) {
        m_port = port;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop();
    return false;
  }

  std::vector<std::string> m_extra;  // more arguments of redis-server
  std::string m_dir;
  std::string m_socket;
  std::uint16_t m_port = 0;
  pid_t m_pid = -1;
};

}  // namespace corio_tools
