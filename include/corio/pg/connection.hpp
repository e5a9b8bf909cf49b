// pg::connection: one connection to PostgreSQL on libpq's asynchronous API,
// shared by many tasks, their queries pipelined.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "corio/loop/detail/loop_core.hpp"
#include "corio/pg/error.hpp"
#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"
#include "corio/task/task.hpp"

struct pg_conn;  // libpq's PGconn

namespace corio::pg {

/// How to connect, beyond libpq's connection string.
struct connect_options {
  /// The longest the whole connection set-up may take.
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
  /// Prepared statements kept per connection (the query text is the key);
  /// the one used least recently goes when a new one would pass the bound.
  std::size_t statement_cache = 256;
};

/// What a connection did.
struct connection_stats {
  std::uint64_t queries = 0;    ///< queries sent
  std::uint64_t prepares = 0;   ///< statements prepared (cache misses)
  std::uint64_t evictions = 0;  ///< prepared statements dropped for the bound
  std::uint64_t flushes = 0;    ///< output pushes to the socket
  std::uint64_t reads = 0;      ///< input reads
  std::uint64_t dropped = 0;    ///< results of cancelled queries, read and dropped
};

namespace detail {

class connection_state;
struct pending_query;

/// The wait for one query's result (connection::query's awaitable).
class query_waiter : public corio::detail::waiter {
 public:
  explicit query_waiter(connection_state* st) noexcept : m_state(st) {}
  query_waiter(const query_waiter&) = delete;
  query_waiter& operator=(const query_waiter&) = delete;
  static constexpr bool await_ready() noexcept { return false; }
  void on_abort() noexcept;
  /// The connection hands over the outcome.
  void deliver(result&& r) noexcept;
  void fail(const std::exception_ptr& e) noexcept;

 protected:
  ~query_waiter() = default;
  /// Queues the query and parks; throws when the connection is unusable.
  bool suspend(std::coroutine_handle<> h, std::string_view sql, std::span<const param> params);
  /// The result; throws pg::error for a statement the server refused.
  result resume();

 private:
  connection_state* m_state;
  pending_query* m_slot = nullptr;
  result m_result;
  std::exception_ptr m_error;
};

/// connection::query's and execute's awaitable: the parameters, kept until
/// it is awaited (in the same expression: strings are not copied).
template <std::size_t N, bool Affected>
class query_awaiter final : public query_waiter {
 public:
  template <class... Args>
  query_awaiter(connection_state* st, std::string_view sql, const Args&... args)
      : query_waiter(st), m_sql(sql), m_params{param(args)...} {}
  bool await_suspend(std::coroutine_handle<> h) {
    if constexpr (N == 0) {
      return suspend(h, m_sql, {});
    } else {
      return suspend(h, m_sql, std::span<const param>(m_params, N));
    }
  }
  auto await_resume() {
    if constexpr (Affected) {
      return resume().affected();
    } else {
      return resume();
    }
  }

 private:
  std::string_view m_sql;
  param m_params[N == 0 ? 1 : N];
};

}  // namespace detail

/// One connection to PostgreSQL, on libpq's asynchronous API driven by the
/// loop (never a blocking libpq call on the loop thread) in pipeline mode:
/// any number of tasks of its loop query at once; every query issued in one
/// loop tick goes out in one write, and results come back in order. Each
/// query is prepared once and its statement cached (the query text is the
/// key), parameters bound in binary, results read in binary. Each query
/// has a synchronisation point of its own, so it is its own implicit
/// transaction: a failing one fails only itself.
///
/// Transactions, COPY and LISTEN need a connection of their own: take one
/// from a `pool<pg::connection>`.
///
/// Cancellation: a cancelled query's result is read and dropped; the other
/// queries are not affected.
///
/// \code
///   auto db = co_await corio::pg::connection::connect("host=/run/postgresql dbname=app");
///   corio::pg::result r = co_await db.query("SELECT name FROM users WHERE id = $1", 42);
///   std::string name = r.at(0).get<std::string>(0);
///   std::uint64_t n = co_await db.execute("DELETE FROM sessions WHERE expires < now()");
/// \endcode
class connection {
 public:
  connection() noexcept;
  connection(connection&&) noexcept;
  connection& operator=(connection&&) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  /// Queries still pending fail with `connection_error`.
  ~connection();

  /// Connects with a libpq connection string or URL ("host=... dbname=...",
  /// "postgresql://user@host:5432/db"); connection_error when it cannot.
  static task<connection> connect(std::string conninfo, connect_options options = {});

  /// Runs `sql` with parameters `$1`, `$2`... bound from `args` (pg::param)
  /// and gives its rows; a statement the server refuses throws `pg::error`.
  /// Await it in the expression that makes it: the arguments are not
  /// copied until the query is queued.
  template <class... Args>
  [[nodiscard]] detail::query_awaiter<sizeof...(Args), false> query(std::string_view sql,
                                                                    const Args&... args) {
    return {m_state.get(), sql, args...};
  }
  /// As query, for a command: gives the rows it affected.
  template <class... Args>
  [[nodiscard]] detail::query_awaiter<sizeof...(Args), true> execute(std::string_view sql,
                                                                     const Args&... args) {
    return {m_state.get(), sql, args...};
  }

  /// True after the connection was lost or closed.
  [[nodiscard]] bool broken() const noexcept;
  /// The server's version as a number (150004 for 15.4).
  [[nodiscard]] int server_version() const noexcept;
  /// Queries sent and not yet answered.
  [[nodiscard]] std::size_t pending() const noexcept;
  [[nodiscard]] connection_stats stats() const noexcept;
  /// Closes now: pending queries fail with `connection_error`.
  void close() noexcept;

  /// libpq's connection, for what corio does not wrap (PQparameterStatus);
  /// reading or writing on it directly breaks the connection's pipeline.
  [[nodiscard]] pg_conn* native_handle() const noexcept;

 private:
  explicit connection(std::unique_ptr<detail::connection_state> s) noexcept;
  std::unique_ptr<detail::connection_state> m_state;
};

}  // namespace corio::pg
