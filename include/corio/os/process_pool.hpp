// process_pool: worker processes that run registered functions on bytes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "corio/net/tcp_stream.hpp"
#include "corio/sync/queue.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Why a process_pool call failed.
class process_error : public std::runtime_error {
 public:
  /// What went wrong; see why().
  enum class reason : std::uint8_t {
    crashed,           ///< the worker died during the call (it is replaced)
    failed,            ///< the function threw; what() carries its message
    unknown_function,  ///< no function of that name was registered
    bad_reply,         ///< the worker answered something malformed (it is replaced)
  };
  /// An error of kind `r` with the message `what`.
  process_error(reason r, const std::string& what) : std::runtime_error(what), m_reason(r) {}
  /// Which kind of failure this is.
  [[nodiscard]] reason why() const noexcept { return m_reason; }

 private:
  reason m_reason;
};

/// The functions a process_pool's workers can run, by name: bytes in, bytes
/// out. Register them before making the pool (the workers get a copy when
/// they are forked).
class process_functions {
 public:
  /// A registered function: takes the call's argument bytes, returns the
  /// reply bytes; an exception it throws reaches the caller as
  /// process_error(failed) with its what() (it runs in the worker process).
  using function = std::function<std::string(std::string_view)>;

  /// Registers `fn` under `name` (a later registration of a name wins).
  process_functions& add(std::string name, function fn) {
    m_functions.emplace_back(std::move(name), std::move(fn));
    return *this;
  }
  /// The function registered under `name`, or null.
  [[nodiscard]] const function* find(std::string_view name) const noexcept {
    for (auto it = m_functions.rbegin(); it != m_functions.rend(); ++it)
      if (it->first == name) return &it->second;
    return nullptr;
  }

 private:
  std::vector<std::pair<std::string, function>> m_functions;
};

/// Counters of a process_pool.
struct process_pool_stats {
  std::uint64_t calls = 0;     ///< Calls answered (values and function errors).
  std::uint64_t crashes = 0;   ///< Workers that died (during a call or idle) or answered garbage.
  std::uint64_t restarts = 0;  ///< Workers started to replace one.
};

/// Worker processes forked at start-up, each running registered functions
/// on byte strings; for isolation, as the guide's ProcessPoolExecutor is
/// for the GIL: native code that may crash, leak or corrupt memory runs
/// where it cannot take the server down.
///
/// `co_await pool.call(name, args)` waits for a free worker (FIFO), sends it
/// the bytes over a socket pair and resumes with the bytes it returns. A
/// function that throws gives process_error(failed) with its message; a
/// worker that dies (a crash, SIGKILL, _exit) gives its caller
/// process_error(crashed) naming the signal or exit status, and is replaced
/// by a fresh fork before its next call. Cancelling a call kills its worker
/// (a call cannot be interrupted otherwise) and the task gets
/// cancelled_error at once.
///
/// Workers are forked from the calling process: they start with its memory
/// (the registered functions and their data) but only descriptors 0-2,
/// and all signals unblocked. Use a pool from one loop; destroy it when no
/// call is running.
///
/// \code
///   corio::process_functions fns;
///   fns.add("render", [](std::string_view page) { return legacy_render(page); });
///   corio::process_pool pool(2, fns);
///   std::string html = co_await pool.call("render", page_source);
/// \endcode
class process_pool {
 public:
  /// Forks `workers` worker processes now (0 counts as 1), each with a copy
  /// of `functions`. Throws std::system_error when a socket pair or a fork
  /// fails; the workers already started are then killed and reaped.
  process_pool(std::size_t workers, process_functions functions);
  ~process_pool();
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  /// Runs `name(args)` in a worker; see the class comment.
  [[nodiscard]] task<std::string> call(std::string name, std::string args);

  /// The pool's counters, kept on the loop that uses the pool: read them there.
  [[nodiscard]] const process_pool_stats& stats() const noexcept { return m_stats; }
  /// The workers' process ids now (-1 for one that died and is not yet
  /// replaced).
  [[nodiscard]] std::vector<pid_t> worker_pids() const;

 private:
  struct worker {
    pid_t pid = -1;
    tcp_stream conn;  // our end of the socket pair (a stream socket)
  };
  void start(worker& w);
  /// Kills and reaps `w` if it runs; returns what waitpid said of it.
  int stop(worker& w) noexcept;
  [[nodiscard]] std::string death_of(worker& w, const std::string& name);

  process_functions m_functions;
  std::vector<worker> m_workers;
  queue<worker*> m_idle;
  process_pool_stats m_stats;
};

}  // namespace corio
