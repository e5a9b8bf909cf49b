// subprocess: child processes with pipes to their stdin, stdout and stderr
// (asyncio's create_subprocess_exec), waited for through a pidfd.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "corio/detail/owned_fd.hpp"
#include "corio/errors.hpp"
#include "corio/io/detail/io_op.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// One end of a pipe, owned: the destructor closes it. The descriptor is
/// non-blocking and close-on-exec; calls suspend the task until the kernel
/// can proceed, and errors come out as std::system_error with the errno.
/// `read_some` returning 0 is the end of the stream (the writer closed its
/// end, or the child exited). It has `read_some` and `write_some`, so
/// buffered_reader<pipe_stream> and buffered_writer<pipe_stream> work on it.
///
/// Writing to a pipe nobody reads any more fails with EPIPE and also raises
/// SIGPIPE, whose default action ends the program: subprocess::spawn with
/// a stdin pipe therefore ignores SIGPIPE (see there). Cancellation is as
/// for tcp_stream: a cancelled call has moved no byte, or its result is
/// delivered and the cancellation thrown at the next suspension.
///
/// \code
///   auto child = corio::subprocess::spawn(options);  // stdout_mode = stdio::pipe
///   char buf[4096];
///   while (std::size_t n = co_await child.stdout_pipe().read_some(buf, sizeof buf))
///     consume(buf, n);
/// \endcode
class pipe_stream {
 public:
  /// A pipe object that holds no descriptor (is_open() is false).
  pipe_stream() noexcept = default;
  /// Adopts a non-blocking pipe end.
  explicit pipe_stream(int fd) noexcept : m_fd(fd) {}

  /// Reads what is available, up to `len` bytes, waiting for at least one;
  /// 0 means the writing end is closed.
  [[nodiscard]] detail::io_awaitable read_some(void* buf, std::size_t len) noexcept {
    return {detail::io_kind::read, m_fd.get(), buf, len, "read(pipe)"};
  }
  /// Writes what the pipe buffer takes, at least one byte.
  [[nodiscard]] detail::io_awaitable write_some(const void* buf, std::size_t len) noexcept {
    return {detail::io_kind::write, m_fd.get(), const_cast<void*>(buf), len, "write(pipe)"};
  }
  /// Reads exactly `len` bytes; incomplete_read_error when the stream ends.
  [[nodiscard]] task<> read_exact(void* buf, std::size_t len);
  /// Writes all `len` bytes, waiting while the reader is slow (the buffer
  /// must stay alive until the task finishes).
  [[nodiscard]] task<> write_all(const void* buf, std::size_t len);

  /// Closes now: for a child's stdin, the child reads end of file. Calls of
  /// other tasks pending on it fail with ECANCELED.
  void close() noexcept { m_fd.reset(); }
  /// True while the object holds a descriptor (not default-constructed,
  /// moved from or closed).
  [[nodiscard]] bool is_open() const noexcept { return m_fd.get() >= 0; }
  /// The pipe end's descriptor, still owned by the object; -1 when closed.
  [[nodiscard]] int native_handle() const noexcept { return m_fd.get(); }

 private:
  detail::owned_fd m_fd;
};

/// What a child's stdin, stdout or stderr is connected to: the parent's
/// own descriptor (`inherit`), a new pipe to the parent (`pipe`, reached
/// through subprocess::stdin_pipe() and the like), or /dev/null (`null`).
///
/// \code
///   corio::process_options o{.argv = {"make"}, .stdin_mode = corio::stdio::null};
/// \endcode
enum class stdio : std::uint8_t { inherit, pipe, null };

/// How to start a child: the program and its arguments, its environment,
/// working directory and standard descriptors. `argv[0]` is the program: a
/// path when it contains '/', else looked up in the PATH of `env` when
/// given, else of this process (as execvp and Python's subprocess do).
/// `env` holds "NAME=value" strings; none means the child inherits this
/// process's environment. `stderr_to_stdout` sends the child's stderr
/// wherever its stdout goes (asyncio's stderr=STDOUT) and then
/// `stderr_mode` is ignored.
///
/// \code
///   corio::process_options o{.argv = {"sh", "-c", "echo $GREETING"},
///                            .env = std::vector<std::string>{"GREETING=hi"},
///                            .stdout_mode = corio::stdio::pipe};
/// \endcode
struct process_options {
  // The {} initializers keep -Wmissing-field-initializers quiet about
  // designated initializers that leave these out.
  /// The program (`argv[0]`) and its arguments; must not be empty.
  std::vector<std::string> argv{};
  /// The child's whole environment as "NAME=value" strings; std::nullopt:
  /// this process's environment.
  std::optional<std::vector<std::string>> env{};
  std::string cwd{};                   ///< The child's working directory; empty: this process's.
  stdio stdin_mode = stdio::inherit;   ///< What the child's stdin is connected to.
  stdio stdout_mode = stdio::inherit;  ///< What the child's stdout is connected to.
  stdio stderr_mode = stdio::inherit;  ///< What the child's stderr is connected to.
  /// Send stderr wherever stdout goes; `stderr_mode` is then ignored.
  bool stderr_to_stdout = false;
};

/// A child process, owned (asyncio's Process). `spawn` starts it; `wait()`
/// suspends until it exits and returns its status as asyncio does: the
/// exit code, or minus the signal number that killed it.
///
/// The child gets only descriptors 0, 1 and 2 (every other one is closed
/// at exec, as with Python's close_fds), an empty signal mask (signal_set
/// blocks signals in the parent; a child must not start with SIGINT or
/// SIGTERM blocked), and default actions for the signals this process
/// handles, and for SIGPIPE and SIGXFSZ; other ignored signals stay
/// ignored, as POSIX has it (nohup relies on that).
///
/// Destroying a subprocess that was not waited for kills it with SIGKILL
/// and reaps it there (a blocking waitpid, but a killed process exits at
/// once), so no zombie is left behind; wait for it first to let it finish.
/// Do not reap children with waitpid(-1) elsewhere nor set SIGCHLD to
/// SIG_IGN: the exit status would be lost (wait() then throws ECHILD).
///
/// \code
///   auto child = corio::subprocess::spawn({.argv = {"sort"},
///                                          .stdin_mode = corio::stdio::pipe,
///                                          .stdout_mode = corio::stdio::pipe});
///   co_await child.stdin_pipe().write_all(data.data(), data.size());
///   child.stdin_pipe().close();
///   ... read child.stdout_pipe() to its end ...
///   int status = co_await child.wait();
/// \endcode
class subprocess {
 public:
  /// An object that holds no process (pid() is -1).
  subprocess() noexcept = default;
  /// Takes over `o`'s child, status and pipes; `o` becomes empty.
  subprocess(subprocess&& o) noexcept;
  /// Kills and reaps the child this object held, if it was not reaped yet
  /// (as the destructor does), then takes over `o`'s.
  subprocess& operator=(subprocess&& o) noexcept;
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;
  ~subprocess();

  /// Starts the program. Throws std::system_error with the errno when it
  /// cannot be started: ENOENT for a missing program (from here, not as
  /// exit code 127), EACCES, ENOENT for a missing `cwd`, and so on; then no
  /// process is left and no descriptor is open. std::invalid_argument for
  /// an empty argv. The fork and exec happen here, synchronously: well
  /// under a millisecond for most programs, more for one with gigabytes
  /// mapped (fork copies its page tables).
  ///
  /// With `stdin_mode = stdio::pipe`, SIGPIPE is set to SIG_IGN in this
  /// process if it had its default action (as Python and Rust programs
  /// start), so that writing to a child that exited fails with EPIPE
  /// instead of ending the program.
  [[nodiscard]] static subprocess spawn(const process_options& options);

  /// The child's process id (kept after it was reaped, as asyncio does).
  [[nodiscard]] pid_t pid() const noexcept { return m_pid; }
  /// The parent's end of the child's stdin; closed unless `stdin_mode` was
  /// stdio::pipe.
  [[nodiscard]] pipe_stream& stdin_pipe() noexcept { return m_stdin; }
  /// The parent's end of the child's stdout; closed unless
  /// `stdout_mode` was stdio::pipe.
  [[nodiscard]] pipe_stream& stdout_pipe() noexcept { return m_stdout; }
  /// The parent's end of the child's stderr; closed unless `stderr_mode`
  /// was stdio::pipe (and `stderr_to_stdout` was not set).
  [[nodiscard]] pipe_stream& stderr_pipe() noexcept { return m_stderr; }

  /// Waits for the child to exit, reaps it and returns its status: the exit
  /// code, or -N when signal N ended it. Returns at once once known.
  /// Several tasks may wait at the same time. A cancelled wait() leaves the
  /// child running and un-reaped: a later wait() works.
  ///
  /// \note Read the child's output pipes while waiting (or close them):
  /// a child blocked writing to a full pipe never exits.
  [[nodiscard]] task<int> wait();

  /// Reaps the child if it has exited, without waiting: its status, or
  /// nothing while it still runs.
  std::optional<int> poll();

  /// Sends signal `sig` (asyncio's send_signal; kill() is SIGKILL, SIGTERM
  /// asks politely). Does nothing once the child was reaped, so a reused
  /// pid is never hit. Throws std::system_error (EINVAL for a bad signal).
  void kill(int sig = SIGKILL);

  /// The status once wait() or poll() has seen the child exit.
  [[nodiscard]] std::optional<int> returncode() const noexcept { return m_returncode; }

 private:
  void kill_and_reap() noexcept;

  pid_t m_pid = -1;
  std::optional<int> m_returncode;
  detail::owned_fd m_pidfd;
  pipe_stream m_stdin;
  pipe_stream m_stdout;
  pipe_stream m_stderr;
};

/// What run_process returns: the exit status as subprocess::wait() gives
/// it, and what the child wrote to its stdout and stderr pipes.
///
/// \code
///   corio::process_result r = co_await corio::run_process(options);
///   if (r.returncode != 0) log(r.err);
/// \endcode
struct process_result {
  int returncode = 0;  ///< The exit code, or -N when signal N ended the child.
  std::string out;     ///< Everything the child wrote to stdout (empty unless stdout was a pipe).
  std::string err;     ///< Everything the child wrote to stderr (empty unless stderr was a pipe).
};

/// Runs a program to completion (asyncio's communicate): writes `input` to
/// its stdin and closes it, collects its stdout and stderr, all at the same
/// time (so a child that writes much before reading all its input does not
/// deadlock), then waits for it. Only the streams whose mode is stdio::pipe
/// are fed or collected; a non-empty `input` makes stdin a pipe. A child
/// that exits without reading all of its input is not an error.
///
/// More than `max_output` bytes on stdout or on stderr throws
/// limit_overrun_error; the child is then killed and reaped, as it is when
/// the call is cancelled or fails in any other way.
///
/// \code
///   corio::process_options o{.argv = {"git", "rev-parse", "HEAD"},
///                            .stdout_mode = corio::stdio::pipe};
///   std::string head = (co_await corio::run_process(o)).out;
/// \endcode
[[nodiscard]] task<process_result> run_process(process_options options, std::string input = {},
                                               std::size_t max_output = std::size_t{16} * 1024 *
                                                                        1024);

}  // namespace corio
