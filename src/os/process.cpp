// subprocess: fork and exec with a close-on-exec report pipe, a pidfd to
// wait on, and run_process on top.
//
// Between fork and exec the child may only make async-signal-safe calls
// (another thread of the parent may have held the malloc lock at the fork),
// so everything it needs is prepared before the fork: argv and envp arrays,
// the candidate paths of the PATH search, the descriptors to install. It
// reports a failure as {stage, errno} on a pipe whose write end is
// close-on-exec: a successful exec closes it, so the parent reads either
// the report or end of file, and spawn itself throws ENOENT for a missing
// program.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "corio/errors.hpp"
#include "corio/flow/gather.hpp"
#include "corio/net/detail/stream_ops.hpp"
#include "corio/os/process.hpp"

extern char** environ;  // POSIX: the environment, for execve

namespace corio {
namespace {

using detail::owned_fd;

[[noreturn]] void throw_errno(int e, const std::string& what) {
  throw std::system_error(e, std::system_category(), what);
}

/// Moves `fd` to a number of at least 3, so that the child's dup2 onto 0, 1
/// and 2 never overwrites a descriptor it still needs (this process may run
/// with its standard descriptors closed, and then pipe2 hands those out).
owned_fd above_stdio(owned_fd fd) {
  if (fd.get() > 2) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return owned_fd(moved);
}

struct pipe_ends {
  owned_fd read;
  owned_fd write;
};

/// A close-on-exec pipe; both ends blocking (the child's end must be: most
/// programs fail on EAGAIN from their stdin or stdout).
pipe_ends make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  pipe_ends p{owned_fd(fds[0]), owned_fd(fds[1])};
  p.read = above_stdio(std::move(p.read));
  p.write = above_stdio(std::move(p.write));
  return p;
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(errno, "fcntl");
}

/// Writing to a child that exited must fail with EPIPE, not end this
/// program; a handler or SIG_IGN the program chose is left alone.
void ignore_sigpipe_if_default() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

/// The paths to try, in order, as execvp would: argv[0] itself when it
/// names a path, else argv[0] in each directory of PATH (taken from the
/// child's environment when one is given, as Python does).
std::vector<std::string> candidate_paths(const process_options& options) {
  const std::string& name = options.argv.front();
  if (name.empty() || name.find('/') != std::string::npos) return {name};
  std::string_view path = "/bin:/usr/bin";  // confstr(_CS_PATH)
  if (options.env) {
    for (const std::string& entry : *options.env) {
      if (entry.starts_with("PATH=")) path = std::string_view(entry).substr(5);
    }
  } else if (const char* p = std::getenv("PATH")) {
    path = p;
  }
  std::vector<std::string> out;
  for (;;) {
    const std::size_t colon = path.find(':');
    const std::string_view dir = path.substr(0, colon);
    // An empty entry is the working directory.
    out.push_back(dir.empty() ? name : std::string(dir) + "/" + name);
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

enum child_stage : int { stage_exec, stage_chdir, stage_dup2 };

/// Everything the child reads, ready before the fork.
struct child_plan {
  std::vector<const char*> paths;
  std::vector<char*> argv;  // null-terminated
  char** envp = nullptr;
  int stdio_fds[3] = {-1, -1, -1};  // installed as 0, 1, 2; -1: inherited
  bool stderr_to_stdout = false;
  const char* cwd = nullptr;
  int report_fd = -1;
  int max_fd = 0;  // for the close_range fallback
  sigset_t empty_mask{};
};

[[noreturn]] void report_and_exit(const child_plan& plan, int stage, int err) noexcept {
  const int msg[2] = {stage, err};
  [[maybe_unused]] const ssize_t n = ::write(plan.report_fd, msg, sizeof msg);
  ::_exit(127);
}

/// The child, from fork to exec: async-signal-safe calls only. Every signal
/// is blocked on entry (the parent blocked them around the fork), so no
/// handler of the parent's runs here before the defaults are back.
[[noreturn]] void run_child(const child_plan& plan) noexcept {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction current {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &current) != 0) continue;
    const bool handled = current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    // SIGPIPE and SIGXFSZ: ignored by us (see spawn) or by a runtime such
    // as Python's; programs expect them to kill, as Python and Rust reset.
    if (handled || sig == SIGPIPE || sig == SIGXFSZ) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(sig, &dfl, nullptr);
    }
  }
  // dup2 clears close-on-exec on the copy; the originals are all >= 3.
  for (int target = 0; target < 3; ++target) {
    const int fd = plan.stdio_fds[target];
    if (fd >= 0 && ::dup2(fd, target) < 0) report_and_exit(plan, stage_dup2, errno);
  }
  if (plan.stderr_to_stdout && ::dup2(1, 2) < 0) report_and_exit(plan, stage_dup2, errno);
  // Descriptors this process opened without O_CLOEXEC (or inherited) must
  // not reach the child: mark all of them, the report pipe included, to
  // close at exec.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < plan.max_fd; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) report_and_exit(plan, stage_chdir, errno);
  ::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr);
  // Like execvp: go on past a directory without the program, and report
  // the first other error (EACCES, say) over ENOENT.
  int err = 0;
  for (const char* path : plan.paths) {
    ::execve(path, plan.argv.data(), plan.envp);
    const bool missing = errno == ENOENT || errno == ENOTDIR;
    if (err == 0 || (!missing && (err == ENOENT || err == ENOTDIR))) err = errno;
  }
  report_and_exit(plan, stage_exec, err);
}

/// The status as asyncio gives it: the exit code, or -signal.
int decode_status(int status) {
  return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

task<> feed(pipe_stream& in, const std::string& input) {
  if (!in.is_open()) co_return;
  try {
    co_await in.write_all(input.data(), input.size());
  } catch (const std::system_error& e) {
    // The child exited, or closed its stdin, without reading everything:
    // its business (Python's communicate does the same).
    if (e.code() != std::errc::broken_pipe) throw;
  }
  in.close();
}

task<> collect(pipe_stream& from, std::string& into, std::size_t limit) {
  if (!from.is_open()) co_return;
  std::string chunk(std::size_t{64} * 1024, '\0');
  for (;;) {
    const std::size_t n = co_await from.read_some(chunk.data(), chunk.size());
    if (n == 0) co_return;
    if (n > limit - into.size())
      throw limit_overrun_error(
          "corio: process output over the limit of " + std::to_string(limit) + " bytes",
          into.size());
    into.append(chunk.data(), n);
  }
}

}  // namespace

task<> pipe_stream::read_exact(void* buf, std::size_t len) {
  return detail::read_exact(*this, buf, len);
}

task<> pipe_stream::write_all(const void* buf, std::size_t len) {
  return detail::write_all(*this, buf, len);
}

subprocess::subprocess(subprocess&& o) noexcept
    : m_pid(std::exchange(o.m_pid, -1)),
      m_returncode(std::exchange(o.m_returncode, std::nullopt)),
      m_pidfd(std::move(o.m_pidfd)),
      m_stdin(std::move(o.m_stdin)),
      m_stdout(std::move(o.m_stdout)),
      m_stderr(std::move(o.m_stderr)) {}

subprocess& subprocess::operator=(subprocess&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    m_pid = std::exchange(o.m_pid, -1);
    m_returncode = std::exchange(o.m_returncode, std::nullopt);
    m_pidfd = std::move(o.m_pidfd);
    m_stdin = std::move(o.m_stdin);
    m_stdout = std::move(o.m_stdout);
    m_stderr = std::move(o.m_stderr);
  }
  return *this;
}

subprocess::~subprocess() {
  kill_and_reap();
}

void subprocess::kill_and_reap() noexcept {
  if (m_pid < 0 || m_returncode) return;
  // Not reaped yet, so the pid is still ours (at worst a zombie's).
  ::kill(m_pid, SIGKILL);
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
  m_returncode = decode_status(status);
}

subprocess subprocess::spawn(const process_options& options) {
  if (options.argv.empty()) throw std::invalid_argument("corio: subprocess::spawn: empty argv");

  // Descriptors: ours in `s` (non-blocking), the child's in `theirs` (closed
  // here once it has them); all close-on-exec and numbered >= 3.
  subprocess s;
  owned_fd theirs[3];
  owned_fd dev_null;
  const stdio modes[3] = {options.stdin_mode, options.stdout_mode,
                          options.stderr_to_stdout ? stdio::inherit : options.stderr_mode};
  pipe_stream* ours[3] = {&s.m_stdin, &s.m_stdout, &s.m_stderr};
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == stdio::pipe) {
      pipe_ends p = make_pipe();
      owned_fd& mine = i == 0 ? p.write : p.read;
      set_nonblocking(mine.get());
      *ours[i] = pipe_stream(mine.release());
      theirs[i] = i == 0 ? std::move(p.read) : std::move(p.write);
    } else if (modes[i] == stdio::null) {
      if (dev_null.get() < 0) {
        const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0) throw_errno(errno, "open /dev/null");
        dev_null = above_stdio(owned_fd(fd));
      }
      theirs[i] = owned_fd(::fcntl(dev_null.get(), F_DUPFD_CLOEXEC, 3));
      if (theirs[i].get() < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    }
  }
  dev_null.reset();
  if (options.stdin_mode == stdio::pipe) ignore_sigpipe_if_default();

  pipe_ends report = make_pipe();

  const std::vector<std::string> paths = candidate_paths(options);
  child_plan plan;
  for (const std::string& p : paths)
    plan.paths.push_back(p.c_str());
  for (const std::string& a : options.argv)
    plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const std::string& e : *options.env)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    plan.envp = envp.data();
  } else {
    plan.envp = environ;
  }
  for (int i = 0; i < 3; ++i)
    plan.stdio_fds[i] = theirs[i].get();
  plan.stderr_to_stdout = options.stderr_to_stdout;
  plan.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  plan.report_fd = report.write.get();
  rlimit files{};
  plan.max_fd = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                    ? static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))
                    : 1 << 16;
  sigemptyset(&plan.empty_mask);

  // No handler of ours may run in the child before it resets them.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  const pid_t pid = ::fork();
  if (pid == 0) run_child(plan);
  const int fork_error = errno;
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) throw_errno(fork_error, "fork");
  s.m_pid = pid;  // from here on, an error kills and reaps the child

  for (owned_fd& fd : theirs)
    fd.reset();
  report.write.reset();  // else the read below would never see end of file
  int msg[2] = {0, 0};
  ssize_t n = 0;
  do {
    n = ::read(report.read.get(), msg, sizeof msg);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno(errno, "read(exec report)");
  if (n > 0) {
    if (static_cast<std::size_t>(n) < sizeof msg) throw_errno(EIO, "read(exec report)");
    switch (msg[0]) {
      case stage_chdir:
        throw_errno(msg[1], "corio: cannot change to directory '" + options.cwd + "'");
      case stage_dup2:
        throw_errno(msg[1], "corio: dup2 in the child of '" + options.argv.front() + "'");
      default:
        throw_errno(msg[1], "corio: cannot run '" + options.argv.front() + "'");
    }
  }

  const long pidfd = ::syscall(SYS_pidfd_open, pid, 0);  // close-on-exec
  if (pidfd < 0) throw_errno(errno, "pidfd_open");
  s.m_pidfd = owned_fd(static_cast<int>(pidfd));
  return s;
}

std::optional<int> subprocess::poll() {
  if (m_returncode || m_pid < 0) return m_returncode;
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(m_pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r < 0) throw_errno(errno, "waitpid");
  // Without WUNTRACED a stopped child is not reported: r > 0 means it ended.
  if (r > 0) m_returncode = decode_status(status);
  return m_returncode;
}

task<int> subprocess::wait() {
  for (;;) {
    if (const std::optional<int> code = poll()) co_return *code;
    // The pidfd turns readable when the child exits. Several waiters may
    // be woken: the first reaps, the others find returncode set.
    const std::intptr_t r =
        co_await detail::io_call(detail::io_kind::poll_in, m_pidfd.get(), nullptr, 0);
    if (r < 0) throw_errno(static_cast<int>(-r), "poll(pidfd)");
  }
}

void subprocess::kill(int sig) {
  if (m_returncode) return;
  if (m_pid < 0) throw_errno(ESRCH, "corio: subprocess::kill: no process");
  // Through the pidfd: it cannot reach another process that got the pid.
  if (::syscall(SYS_pidfd_send_signal, m_pidfd.get(), sig, nullptr, 0) != 0 && errno != ESRCH)
    throw_errno(errno, "pidfd_send_signal");
}

task<process_result> run_process(process_options options, std::string input,
                                 std::size_t max_output) {
  if (!input.empty()) options.stdin_mode = stdio::pipe;
  subprocess child = subprocess::spawn(options);
  process_result r;
  co_await gather(feed(child.stdin_pipe(), input), collect(child.stdout_pipe(), r.out, max_output),
                  collect(child.stderr_pipe(), r.err, max_output));
  r.returncode = co_await child.wait();
  co_return r;
}

}  // namespace corio
