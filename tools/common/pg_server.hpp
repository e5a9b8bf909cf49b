// A real PostgreSQL 15 for the tests and the tour: initdb into a temporary
// directory, then the server on a free port of 127.0.0.1 and a Unix socket
// in that directory, with trust authentication, TLS on (a self-signed
// certificate: conninfo() asks for none, tls_conninfo() for it) and fsync
// off; stopped, and
// its directory removed, when the program exits. Nothing needs to run
// beforehand (scripts/install-deps.sh installs Debian's postgresql-15).
//
// PostgreSQL refuses to run as root, and CI runs as root: then initdb and
// the server run as the `postgres` user that Debian's package creates (or
// `nobody`), which owns the directory.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "free_port.hpp"

namespace corio_tools {

class pg_server {
 public:
  /// The program's server, started at the first call.
  static pg_server& shared() {
    static pg_server s;
    return s;
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return m_port; }
  /// The directory of the Unix socket (libpq's `host` for it).
  [[nodiscard]] const std::string& socket_dir() const noexcept { return m_dir; }
  [[nodiscard]] const std::string& dir() const noexcept { return m_dir; }

  /// A libpq connection string for database `db` over TCP, without TLS.
  [[nodiscard]] std::string conninfo(const std::string& db = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(m_port) + " user=postgres sslmode=disable" +
           " dbname=" + db;
  }
  /// The same over TLS (the server has a self-signed certificate).
  [[nodiscard]] std::string tls_conninfo(const std::string& db = "postgres") const {
    return "host=127.0.0.1 port=" + std::to_string(m_port) + " user=postgres sslmode=require" +
           " dbname=" + db;
  }
  /// The same over the Unix socket.
  [[nodiscard]] std::string socket_conninfo(const std::string& db = "postgres") const {
    return "host=" + m_dir + " port=" + std::to_string(m_port) + " user=postgres dbname=" + db;
  }

  /// Stops the server (fast shutdown: sessions are ended) and starts it
  /// again on the same port: what a client sees when its server restarts.
  void restart() {
    stop();
    if (!start_on(m_port)) throw std::runtime_error("pg_server: restart failed; see " + log());
  }

  /// Stops the server and leaves it stopped until restart().
  void stop() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGINT);  // fast shutdown (SIGTERM would wait for every client)
      int status = 0;
      ::waitpid(m_pid, &status, 0);
      m_pid = -1;
    }
  }

  pg_server(const pg_server&) = delete;
  pg_server& operator=(const pg_server&) = delete;
  ~pg_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }

 private:
  pg_server() {
    std::string templ = (std::filesystem::temp_directory_path() / "corio-pg-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("pg_server: mkdtemp");
    m_dir = templ;
    pick_user();
    if (m_uid >= 0 &&
        ::chown(m_dir.c_str(), static_cast<uid_t>(m_uid), static_cast<gid_t>(m_gid)) != 0) {
      throw std::runtime_error("pg_server: chown " + m_dir);
    }
    const int rc =
        run_and_wait({bin("initdb"), "-D", m_dir + "/data", "-U", "postgres", "-A", "trust", "-E",
                      "UTF8", "--no-locale", "--no-sync", "--no-instructions"});
    if (rc != 0) {
      throw std::runtime_error("pg_server: initdb failed (exit " + std::to_string(rc) + "); see " +
                               log());
    }
    // TLS with a self-signed certificate, made as the server's user (the
    // server takes only a key file of its own that others cannot read).
    const std::string key = m_dir + "/data/server.key";
    if (run_and_wait({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                      "/CN=localhost", "-keyout", key, "-out", m_dir + "/data/server.crt"}) != 0 ||
        run_and_wait({"/bin/chmod", "600", key}) != 0) {
      throw std::runtime_error("pg_server: openssl could not make a certificate; see " + log());
    }
    // A port that was free a moment ago can be taken before the server
    // binds it: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (start_on(free_port())) return;
    }
    throw std::runtime_error("pg_server: postgres did not start; see " + log());
  }

  [[nodiscard]] std::string log() const { return m_dir + "/pg.log"; }

  static std::string bin(const char* name) {
    const char* dir = std::getenv("CORIO_PG_BIN");
    return std::string(dir != nullptr ? dir : "/usr/lib/postgresql/15/bin") + "/" + name;
  }

  // As root, the user the server runs as; otherwise this process's own.
  void pick_user() {
    if (::geteuid() != 0) return;
    for (const char* name : {"postgres", "nobody"}) {
      if (const passwd* pw = ::getpwnam(name)) {
        m_uid = static_cast<int>(pw->pw_uid);
        m_gid = static_cast<int>(pw->pw_gid);
        return;
      }
    }
    throw std::runtime_error("pg_server: running as root and no postgres or nobody user");
  }

  // Starts `args` as the server's user, its output appended to the log.
  // With `die_with_parent`, a crashed test program leaves no server behind.
  pid_t spawn(std::vector<std::string> args, bool die_with_parent) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log_path = log();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("pg_server: fork failed");
    if (pid != 0) return pid;
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    if (m_uid >= 0) {
      if (fd >= 0 && ::fchown(fd, static_cast<uid_t>(m_uid), static_cast<gid_t>(m_gid)) != 0) {
        ::_exit(126);
      }
      if (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(m_gid)) != 0 ||
          ::setuid(static_cast<uid_t>(m_uid)) != 0) {
        ::_exit(126);
      }
    }
    // After setuid, which clears it. SIGQUIT: the server's immediate stop.
    if (die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (::getppid() != parent) ::_exit(127);  // the parent is already gone
    ::execv(argv[0], argv.data());
    ::_exit(127);  // not installed: apt-get install postgresql-15
  }

  int run_and_wait(std::vector<std::string> args) {
    const pid_t pid = spawn(std::move(args), true);
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // The server writes "ready" into postmaster.pid once it takes sessions.
  [[nodiscard]] bool ready() const {
    std::ifstream pidfile(m_dir + "/data/postmaster.pid");
    std::stringstream text;
    text << pidfile.rdbuf();
    return text.str().find("ready") != std::string::npos;
  }

  bool start_on(std::uint16_t port) {
    const std::string port_text = std::to_string(port);
    m_pid = spawn({bin("postgres"),
                   "-D",
                   m_dir + "/data",
                   "-p",
                   port_text,
                   "-k",
                   m_dir,
                   "-c",
                   "listen_addresses=127.0.0.1",
                   "-c",
                   "ssl=on",
                   "-c",
                   "fsync=off",
                   "-c",
                   "synchronous_commit=off",
                   "-c",
                   "full_page_writes=off",
                   "-c",
                   "shared_buffers=32MB",
                   "-c",
                   "max_connections=100"},
                  true);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {  // it exited: the port was taken
        m_pid = -1;
        return false;
      }
      if (ready()) {
        m_port = port;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  std::string m_dir;
  std::uint16_t m_port = 0;
  pid_t m_pid = -1;
  int m_uid = -1;  // the server's user, when not this process's
  int m_gid = -1;
};

}  // namespace corio_tools
