// serve: the accept loop every stream server shares, with its connection
// cap, idle timeout and statistics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/exec/cross_loop.hpp"
#include "corio/flow/detail/child_scope.hpp"
#include "corio/flow/gather.hpp"
#include "corio/flow/wait_any.hpp"
#include "corio/net/server_shutdown.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/sync/channel.hpp"
#include "corio/task/cancel.hpp"
#include "corio/time/sleep.hpp"

namespace corio {

/// What a server (`serve`, `serve_http`) has done and holds now. Pass one
/// in the options to read it while the server runs; the server only writes
/// it from its own loop.
struct server_stats {
  std::size_t connections = 0;       ///< open now
  std::size_t peak_connections = 0;  ///< the most open at once
  std::uint64_t accepted = 0;        ///< connections accepted in all
  /// Times the server stopped accepting because `max_connections` were
  /// open (new connections waited in the listen backlog meanwhile).
  std::uint64_t at_capacity = 0;
  /// Connections closed by a deadline: a request head or body too slow, a
  /// client that stopped reading, or (serve) no traffic for idle_timeout.
  std::uint64_t timed_out = 0;
  /// HTTP keep-alive connections closed after keep_alive_timeout idle.
  std::uint64_t idle_closed = 0;
  /// Bytes of buffer the connections hold now (HTTP: input and output
  /// buffers), and the most one connection ever held: the memory a client
  /// can make the server keep. Only serve_http keeps these two; plain
  /// `serve` leaves them at 0 (its handler owns its buffers).
  std::size_t buffer_bytes = 0;
  /// The most buffer one connection ever held (see buffer_bytes).
  std::size_t peak_connection_buffer_bytes = 0;
};

/// Limits of a stream server (see serve).
struct serve_options {
  /// Connections served at once; 0 means the descriptor limit
  /// (RLIMIT_NOFILE) less 128, so that the kernel does not run out of
  /// descriptors first. At the cap the server stops accepting: new
  /// connections wait in the listen backlog (on io_uring, up to 64 of them
  /// accepted already, in the listener's queue) until one closes.
  std::size_t max_connections = 0;
  /// A connection on which no byte moved either way for this long (the
  /// kernel's count of bytes received and acknowledged) is cancelled: a
  /// dead peer, or one that stopped reading while the server writes.
  /// nanoseconds::max() turns it off.
  std::chrono::nanoseconds idle_timeout = std::chrono::minutes(5);
  /// Filled in while the server runs, when not null.
  server_stats* stats = nullptr;
  /// When not null, request() on it stops the server gracefully: it stops
  /// accepting, waits up to drain_timeout for its connections to end, then
  /// cancels those left and returns (see server_shutdown). A plain serve
  /// handler learns of it through the same object (requested(), wait()).
  server_shutdown* shutdown = nullptr;
  /// How long a graceful stop waits for the connections to end.
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
};

namespace detail {

/// A connection's part in its server's graceful stop: told once, on the
/// server's loop, that the server drains (see drain_hooks).
struct drain_hook : list_node {
  drain_hook() = default;
  drain_hook(const drain_hook&) = delete;
  drain_hook& operator=(const drain_hook&) = delete;
  ~drain_hook() { unlink(); }

  /// Called when the drain starts (not when the connection started after).
  void (*m_on_drain)(drain_hook&) noexcept = nullptr;
  bool m_draining = false;
};

/// The connections of one server that want to hear of its graceful stop
/// (serve_http's, to close idle keep-alive connections at once). Loop-local.
class drain_hooks {
 public:
  /// A connection registers as it starts; one that starts after the drain
  /// began learns it at once.
  void add(drain_hook& h) noexcept {
    if (m_draining) {
      h.m_draining = true;
    } else {
      m_hooks.push_back(h);
    }
  }
  /// Tells every registered connection, once.
  void drain() noexcept {
    m_draining = true;
    while (drain_hook* h = m_hooks.pop_front()) {
      h->m_draining = true;
      if (h->m_on_drain != nullptr) h->m_on_drain(*h);
    }
  }

 private:
  intrusive_list<drain_hook> m_hooks;
  bool m_draining = false;
};

/// `max_connections` as serve applies it (0 resolved from RLIMIT_NOFILE).
[[nodiscard]] std::size_t connection_cap(std::size_t max_connections) noexcept;

/// Bytes received plus bytes the peer acknowledged on a TCP socket: moves
/// whenever the connection makes progress either way (0 on error).
[[nodiscard]] std::uint64_t tcp_bytes_moved(int fd) noexcept;

/// A cancel scope that ends a connection once no byte has moved for `idle`:
/// its timer, when due, asks the kernel whether the socket progressed and
/// defers itself if it did, so the reads and writes pay nothing.
class tcp_idle_watch : public scope_guard {
 public:
  tcp_idle_watch(int fd, std::int64_t idle_ns) noexcept
      : scope_guard(false), m_fd(fd), m_idle_ns(idle_ns) {
    m_recheck = [](scope_guard& g) noexcept {
      auto& self = static_cast<tcp_idle_watch&>(g);
      const std::uint64_t moved = tcp_bytes_moved(self.m_fd);
      if (moved == self.m_moved) return self.deadline();
      self.m_moved = moved;
      return saturating_add(current_loop().now_ns(), self.m_idle_ns);
    };
    set_deadline(saturating_add(current_loop().now_ns(), idle_ns));
  }

 private:
  int m_fd;
  std::int64_t m_idle_ns;
  std::uint64_t m_moved = 0;  // a new connection has moved nothing: no syscall to learn it
};

/// serve's bookkeeping: the statistics and the cap the accept loop checks.
struct serve_state {
  server_stats own;
  server_stats* stats;
  std::size_t cap;
  drain_hooks drain;

  explicit serve_state(const serve_options& o) noexcept
      : stats(o.stats != nullptr ? o.stats : &own), cap(connection_cap(o.max_connections)) {}

  void attach(child_scope& connections) noexcept {
    connections.m_user = this;
    connections.m_on_child_done = [](child_scope& s, task_base&) noexcept {
      --static_cast<serve_state*>(s.m_user)->stats->connections;
    };
  }
  static bool below_cap(const child_scope& s) noexcept {
    return s.active() < static_cast<const serve_state*>(s.m_user)->cap;
  }
  void accepted() noexcept {
    ++stats->accepted;
    if (++stats->connections > stats->peak_connections)
      stats->peak_connections = stats->connections;
  }
};

/// Runs one connection's task under its idle watch; a watch that fired
/// ends the connection quietly.
inline task<> watch_idle(task<> connection, int fd, std::int64_t idle_ns, server_stats& stats) {
  tcp_idle_watch watch(fd, idle_ns);
  try {
    co_await std::move(connection);
  } catch (const cancelled_error&) {
    if (!watch.timed_out()) throw;
    ++stats.timed_out;
  }
}

/// The accept loop of serve: accepts for ever (until cancelled), each
/// connection a child task in `connections`, within the cap.
template <class Listener, class F>
task<> accept_connections(Listener& listener, F& on_connection, child_scope& connections,
                          serve_state& state, std::chrono::nanoseconds idle_timeout) {
  const bool watch = idle_timeout != std::chrono::nanoseconds::max();
  const std::int64_t idle_ns = saturating_ns(idle_timeout);
  for (unsigned accepted = 1;; ++accepted) {
    if (!serve_state::below_cap(connections)) {
      ++state.stats->at_capacity;
      co_await connections.wait_until(&serve_state::below_cap);
    }
    tcp_stream s = co_await listener.accept();
    state.accepted();
    const int fd = s.native_handle();
    task<> connection = [&] {
      if constexpr (std::is_invocable_v<F&, tcp_stream, drain_hooks&>) {
        return on_connection(std::move(s), state.drain);
      } else {
        return on_connection(std::move(s));
      }
    }();
    connections.spawn(watch ? watch_idle(std::move(connection), fd, idle_ns, *state.stats)
                            : std::move(connection));
    // A burst of queued connections is accepted without suspending: let
    // the loop run the new connections (and everything else) between
    // batches, and keep the stack flat where the compiler does not turn
    // symmetric transfer into tail calls (sanitizer and -O0 builds).
    if (accepted % 32 == 0) co_await yield_now();
  }
}

}  // namespace detail

/// Accepts connections on `listener` (a tcp_listener, or the
/// handed_connections of serve_from_one_acceptor) and runs
/// `on_connection(tcp_stream)` (which returns a `task<>`) for each as a
/// child task: Trio's `serve_tcp`, asyncio's `start_server`.
///
/// The connections belong to the server: cancelling `serve` cancels every
/// connection task, waits for them to finish (their descriptors closed),
/// then throws `cancelled_error`. A connection task that fails ends that
/// connection only; its exception is reported as an unretrieved task
/// failure, and the server goes on. Running out of descriptors does not
/// stop it either (see tcp_listener::accept), and `options` bounds how many
/// connections it serves at once and how long one may sit idle.
///
/// It serves for ever, unless `options.shutdown` is requested: then it
/// stops accepting and closes `listener` (connections still in its backlog
/// are refused, as asyncio's `Server.close()` and Go's `Shutdown` do),
/// waits up to `options.drain_timeout` for the connections to end, cancels
/// those left, and returns normally.
///
/// \code
///   auto l = corio::tcp_listener::bind(corio::socket_address::loopback(8000));
///   co_await corio::serve(l, [](corio::tcp_stream s) { return echo(std::move(s)); },
///                         {.idle_timeout = std::chrono::seconds(60)});
/// \endcode
template <class Listener, class F>
task<> serve(Listener& listener, F on_connection, serve_options options = {}) {
  detail::child_scope connections(/*fail_fast=*/false, /*collect=*/false);
  detail::serve_state state(options);
  state.attach(connections);
  std::exception_ptr stopped;
  try {
    if (options.shutdown == nullptr) {
      co_await detail::accept_connections(listener, on_connection, connections, state,
                                          options.idle_timeout);
    } else {
      std::vector<task<>> until_shutdown;
      until_shutdown.push_back(detail::accept_connections(listener, on_connection, connections,
                                                          state, options.idle_timeout));
      until_shutdown.push_back(options.shutdown->wait());
      (void)co_await wait_any(std::move(until_shutdown));
      listener.close();  // as asyncio's Server.close() and Go's Shutdown do
      state.drain.drain();
      (void)co_await move_on_after(options.drain_timeout,
                                   connections.wait_until(&detail::child_scope::all_done));
      // A cancellation that came while wait_any joined its losers, with no
      // connection left to wait for, was never delivered: it still counts.
      if (cancel_requested()) throw cancelled_error();
    }
  } catch (...) {
    stopped = std::current_exception();
  }
  connections.cancel_all();
  co_await shield(connections.wait_until(&detail::child_scope::all_done));
  if (stopped) std::rethrow_exception(stopped);
}

namespace detail {

/// One loop's server of serve_every_loop: its own listener on the shared
/// address, then the server.
template <class Server>
task<> serve_reusing_port(socket_address address, listen_options options, Server server) {
  tcp_listener listener = tcp_listener::bind(address, options);
  co_await server(listener);
}

template <class Server>
task<> serve_on_loop(std::size_t loop, socket_address address, listen_options options,
                     Server server) {
  co_await submit_to(loop, [address, options, server]() mutable {
    return serve_reusing_port(address, options, std::move(server));
  });
}

}  // namespace detail

/// Serves on every loop of this runtime: `listener`, bound on this loop
/// with `listen_options::reuse_port`, serves here, and every other loop
/// binds a listener of its own to the same address (SO_REUSEPORT: the
/// kernel spreads new connections across the listeners, by a hash of the
/// peer's address and port) and serves it. `server(tcp_listener&)` returns
/// that loop's server task (serve, serve_http, or your own accept loop);
/// it is copied to each loop, so per-loop state belongs in loop_local.
/// Each connection stays on the loop that accepted it. Cancelling this
/// cancels every loop's server and waits for them all; an error of one
/// ends them all; it returns once every server returned (a graceful stop
/// of them all: one server_shutdown in each loop's options). Off a runtime, or with one loop, it
/// serves `listener` alone.
///
/// \code
///   auto l = corio::tcp_listener::bind(corio::socket_address::loopback(8080),
///                                      {.reuse_port = true});
///   co_await corio::serve_every_loop(l, [](corio::tcp_listener& mine) {
///     return corio::serve_http(mine, handler);
///   });
/// \endcode
template <class Server>
task<> serve_every_loop(tcp_listener& listener, Server server, listen_options options = {}) {
  options.reuse_port = true;
  if (loop_count() > 1 && !listener.reuses_port()) {
    throw std::invalid_argument(
        "corio::serve_every_loop: bind the listener with listen_options::reuse_port, so that "
        "the other loops' listeners can share its port");
  }
  const socket_address address = listener.local_address();
  const std::size_t here = this_loop_index();
  std::vector<task<>> servers;
  servers.reserve(loop_count());
  for (std::size_t i = 0; i < loop_count(); ++i) {
    servers.push_back(i == here ? server(listener)
                                : detail::serve_on_loop(i, address, options, server));
  }
  co_await gather(std::move(servers));
}

/// The connections one acceptor hands to one loop (serve_from_one_acceptor):
/// a source with `accept()`, like a listener, for `serve` and `serve_http`
/// on that loop. Thread-safe between the acceptor's loop and this one.
class handed_connections {
 public:
  /// Room for `capacity` connections handed and not yet accepted (the
  /// acceptor waits when it is full).
  explicit handed_connections(std::size_t capacity) : m_fds(capacity) {}
  handed_connections(const handed_connections&) = delete;
  handed_connections& operator=(const handed_connections&) = delete;
  /// Closes the connections handed and never accepted.
  ~handed_connections() {
    while (std::optional<int> fd = m_fds.try_receive())
      tcp_stream closing(*fd);
  }

  /// The next connection handed to this loop. Cancellation loses nothing:
  /// a connection not yet taken stays for the next accept. Throws
  /// channel_closed once the acceptor stopped.
  task<tcp_stream> accept() {
    const int fd = co_await m_fds.receive();
    co_return tcp_stream(fd);
  }
  /// On the acceptor's loop: hands `s` over (waits while the queue is
  /// full). False, and `s` closed, when this loop's server has stopped
  /// taking connections (close()).
  task<bool> hand(tcp_stream s) {
    const int fd = s.release();
    bool taken = true;
    try {
      co_await m_fds.send(fd);
    } catch (const channel_closed&) {
      taken = false;
    } catch (...) {
      tcp_stream closing(fd);  // cancelled before it was taken: not leaked
      throw;
    }
    if (!taken) tcp_stream closing(fd);
    co_return taken;
  }
  /// Connections handed and not yet accepted.
  [[nodiscard]] std::size_t queued() const { return m_fds.size(); }
  /// Ends the accepts (they throw channel_closed once the queue is empty)
  /// and the hand-overs: serve calls it when a graceful stop begins.
  void close() { m_fds.close(); }
  /// True once close() was called.
  [[nodiscard]] bool closed() const { return m_fds.closed(); }

 private:
  channel<int> m_fds;
};

namespace detail {

/// The loop that gets the next connection: the fewest tasks (this loop's
/// exact count, the others' as last published) plus connections handed
/// and not yet taken; ties go round, from the loop after the last choice.
/// Loops whose server stopped taking connections are skipped; `no_loop` when
/// no loop takes any.
inline constexpr std::size_t no_loop = static_cast<std::size_t>(-1);
inline std::size_t least_loaded(const std::vector<std::unique_ptr<handed_connections>>& inboxes,
                                std::size_t last) {
  const std::size_t n = inboxes.size();
  std::size_t best = no_loop;
  std::size_t best_load = static_cast<std::size_t>(-1);
  for (std::size_t k = 1; k <= n; ++k) {
    const std::size_t i = (last + k) % n;
    if (inboxes[i]->closed()) continue;
    const std::size_t base = t_runtime != nullptr ? t_runtime->load_of(i) : 0;
    const std::size_t load = base + inboxes[i]->queued();
    if (best == no_loop || load < best_load) {
      best = i;
      best_load = load;
    }
  }
  return best;
}

/// The acceptor: accepts for ever, handing each connection to the least
/// loaded loop, until no loop's server takes connections any more (each
/// closed its inbox: a graceful stop); closes the inboxes when it ends.
inline task<> hand_out(tcp_listener& listener,
                       std::vector<std::unique_ptr<handed_connections>>& inboxes) {
  struct closer {
    std::vector<std::unique_ptr<handed_connections>>& inboxes;
    ~closer() {
      for (auto& in : inboxes)
        in->close();
    }
  } closing{inboxes};
  std::size_t last = inboxes.size() - 1;
  for (;;) {
    if (least_loaded(inboxes, last) == no_loop) co_return;
    tcp_stream s = co_await listener.accept();
    const std::size_t to = least_loaded(inboxes, last);
    if (to == no_loop) co_return;  // every loop stopped meanwhile: `s` closes
    // Else, if that loop stopped meanwhile, `s` was closed: a connection
    // accepted during a graceful stop, as the listen backlog's are.
    if (co_await inboxes[to]->hand(std::move(s))) last = to;
  }
}

template <class Server>
task<> serve_handed(std::size_t loop, handed_connections& inbox, Server server) {
  co_await submit_to(loop, [&inbox, server]() mutable { return server(inbox); });
}

}  // namespace detail

/// Serves on every loop of this runtime from one acceptor: this loop
/// accepts on `listener` and hands each connection to the loop with the
/// fewest tasks (its own exact count, the others' as they last published
/// it, plus connections handed and not yet taken), instead of
/// serve_every_loop's listener per loop, where the kernel spreads
/// connections by a hash of the peer's address. `server(handed_connections&)`
/// returns each loop's server: `serve` or `serve_http` over the connections
/// it is handed (take the parameter as `auto&`). A connection costs one
/// message between loops when it is accepted, none after. Cancelling this
/// stops the acceptor and cancels every loop's server; connections handed
/// and not yet taken are closed. When every loop's server has returned
/// (a graceful stop: see server_shutdown), the acceptor stops and this
/// returns; the connections it handed meanwhile are closed unserved.
///
/// \code
///   auto l = corio::tcp_listener::bind(corio::socket_address::loopback(8080));
///   co_await corio::serve_from_one_acceptor(l, [](auto& connections) {
///     return corio::serve_http(connections, handler);
///   });
/// \endcode
template <class Server>
task<> serve_from_one_acceptor(tcp_listener& listener, Server server,
                               std::size_t queue_per_loop = 256) {
  const std::size_t here = this_loop_index();
  std::vector<std::unique_ptr<handed_connections>> inboxes;
  inboxes.reserve(loop_count());
  for (std::size_t i = 0; i < loop_count(); ++i)
    inboxes.push_back(std::make_unique<handed_connections>(queue_per_loop));
  std::vector<task<>> servers;
  servers.reserve(loop_count());
  for (std::size_t i = 0; i < loop_count(); ++i) {
    servers.push_back(i == here ? server(*inboxes[i])
                                : detail::serve_handed(i, *inboxes[i], server));
  }
  // The acceptor runs while the servers do: once they all returned (a
  // graceful stop), it stops too.
  std::vector<task<>> parts;
  parts.push_back(detail::hand_out(listener, inboxes));
  parts.push_back(gather(std::move(servers)));
  (void)co_await wait_any(std::move(parts));
}

}  // namespace corio
