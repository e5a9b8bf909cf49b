// process_pool: one socket pair per worker; a request is a 16-byte header
// (name length, argument length) then the name and the arguments; a reply
// is a 16-byte header (status, length) then the payload. The worker side is
// plain blocking code in the forked child, which never returns into the
// parent's loop or destructors (it leaves with _exit).
#include "corio/os/process_pool.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>

namespace corio {
namespace {

struct request_header {
  std::uint32_t name_len;
  std::uint32_t reserved;
  std::uint64_t args_len;
};
struct reply_header {
  std::uint32_t status;
  std::uint32_t reserved;
  std::uint64_t len;
};
static_assert(sizeof(request_header) == 16 && sizeof(reply_header) == 16);

enum : std::uint32_t { status_ok = 0, status_failed = 1, status_unknown = 2 };

constexpr std::uint64_t k_max_name = 4096;
constexpr std::uint64_t k_max_bytes = std::uint64_t{1} << 30;  // either way

bool read_full(int fd, void* buf, std::size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t n = ::read(fd, p, len);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      return false;
    }
  }
  return true;
}

bool write_full(int fd, const void* buf, std::size_t len) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

bool reply(int fd, std::uint32_t status, std::string_view payload) {
  const reply_header h{status, 0, payload.size()};
  return write_full(fd, &h, sizeof h) && write_full(fd, payload.data(), payload.size());
}

/// The worker: serves requests on descriptor 3 until the parent closes it.
[[noreturn]] void worker_main(int fd, const process_functions& functions) {
  // Only the socket and 0-2 stay open: the parent's listeners, rings and
  // other workers' sockets are not the worker's business.
  if (fd != 3) {
    ::dup2(fd, 3);
    fd = 3;
  }
  if (::syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
    for (int i = 4; i < 65536; ++i)
      ::close(i);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  ::fcntl(fd, F_SETFD, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (;;) {
    request_header h{};
    if (!read_full(fd, &h, sizeof h)) ::_exit(0);  // the pool is gone
    if (h.name_len > k_max_name || h.args_len > k_max_bytes) ::_exit(3);
    std::string name(h.name_len, '\0');
    std::string args(h.args_len, '\0');
    if (!read_full(fd, name.data(), name.size()) || !read_full(fd, args.data(), args.size()))
      ::_exit(0);
    bool sent = false;
    if (const process_functions::function* fn = functions.find(name)) {
      std::string out;
      std::string error;
      bool ok = true;
      try {
        out = (*fn)(args);
      } catch (const std::exception& e) {
        ok = false;
        error = e.what();
      } catch (...) {
        ok = false;
        error = "unknown exception";
      }
      sent = ok ? reply(fd, status_ok, out) : reply(fd, status_failed, error);
    } else {
      sent = reply(fd, status_unknown, name);
    }
    if (!sent) ::_exit(0);
  }
}

}  // namespace

process_pool::process_pool(std::size_t workers, process_functions functions)
    : m_functions(std::move(functions)), m_workers(workers == 0 ? 1 : workers) {
  try {
    for (worker& w : m_workers)
      start(w);
  } catch (...) {
    for (worker& w : m_workers)
      stop(w);
    throw;
  }
  for (worker& w : m_workers)
    m_idle.try_push(&w);
}

process_pool::~process_pool() {
  for (worker& w : m_workers)
    stop(w);
}

void process_pool::start(worker& w) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    throw std::system_error(errno, std::system_category(), "socketpair");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::system_error(e, std::system_category(), "fork");
  }
  if (pid == 0) worker_main(fds[1], m_functions);
  ::close(fds[1]);
  w.pid = pid;
  w.conn = tcp_stream(fds[0]);
}

int process_pool::stop(worker& w) noexcept {
  int status = 0;
  if (w.pid > 0) {
    ::kill(w.pid, SIGKILL);
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    w.pid = -1;
  }
  w.conn.close();
  return status;
}

std::string process_pool::death_of(worker& w, const std::string& name) {
  const pid_t pid = w.pid;
  // Its end of the socket closed: it has exited (or is exiting) already.
  int status = 0;
  pid_t r = 0;
  while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  w.pid = -1;
  w.conn.close();
  std::string how = "ended";
  if (r == pid && WIFSIGNALED(status)) {
    how = "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
          ::strsignal(WTERMSIG(status)) + ")";
  } else if (r == pid && WIFEXITED(status)) {
    how = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return "corio: process_pool worker " + std::to_string(pid) + " " + how + " while running '" +
         name + "'";
}

std::vector<pid_t> process_pool::worker_pids() const {
  std::vector<pid_t> pids;
  pids.reserve(m_workers.size());
  for (const worker& w : m_workers) {
    // One that has exited shows -1 already; WNOWAIT leaves it to the next
    // call to reap it and count the crash.
    siginfo_t info{};
    const bool exited =
        w.pid > 0 &&
        ::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == w.pid;
    pids.push_back(exited ? -1 : w.pid);
  }
  return pids;
}

task<std::string> process_pool::call(std::string name, std::string args) {
  worker* w = co_await m_idle.pop();
  // Whatever happens below, the slot goes back (dead ones restart on use).
  struct give_back {
    queue<worker*>& idle;
    worker* w;
    ~give_back() { idle.try_push(w); }
  } slot{m_idle, w};
  if (w->pid > 0) {
    // Died while idle (killed from outside, say): not this call's doing.
    int status = 0;
    if (::waitpid(w->pid, &status, WNOHANG) == w->pid) {
      ++m_stats.crashes;
      w->pid = -1;
      w->conn.close();
    }
  }
  if (w->pid < 0) {
    start(*w);
    ++m_stats.restarts;
  }
  if (name.size() > k_max_name) throw std::invalid_argument("corio::process_pool: name too long");
  const request_header req{static_cast<std::uint32_t>(name.size()), 0, args.size()};
  std::string frame(sizeof req, '\0');
  std::memcpy(frame.data(), &req, sizeof req);
  frame += name;
  frame += args;
  reply_header rep{};
  std::string payload;
  bool died = false;
  try {
    co_await w->conn.write_all(frame.data(), frame.size());
    co_await w->conn.read_exact(&rep, sizeof rep);
    if (rep.len <= k_max_bytes) {
      payload.resize(rep.len);
      co_await w->conn.read_exact(payload.data(), payload.size());
    }
  } catch (const cancelled_error&) {
    stop(*w);  // the call is abandoned: its worker cannot be left mid-request
    throw;
  } catch (const std::bad_alloc&) {
    stop(*w);  // no room for the reply: the worker, alive, is left mid-reply
    throw;
  } catch (const std::exception&) {  // EOF, reset, broken pipe: it died
    died = true;
  }
  if (died) {
    ++m_stats.crashes;
    throw process_error(process_error::reason::crashed, death_of(*w, name));
  }
  if (rep.len > k_max_bytes || rep.status > status_unknown) {
    ++m_stats.crashes;
    stop(*w);
    throw process_error(process_error::reason::bad_reply,
                        "corio: process_pool worker sent a malformed reply to '" + name + "'");
  }
  ++m_stats.calls;
  if (rep.status == status_failed)
    throw process_error(process_error::reason::failed,
                        "corio: process_pool function '" + name + "' failed: " + payload);
  if (rep.status == status_unknown)
    throw process_error(process_error::reason::unknown_function,
                        "corio: process_pool has no function '" + name + "'");
  co_return payload;
}

}  // namespace corio
