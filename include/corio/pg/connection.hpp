// pg::connection: one connection to PostgreSQL, made by libpq, shared by
// many tasks, their queries pipelined.
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

#include "corio/flow/async_generator.hpp"
#include "corio/loop/detail/loop_core.hpp"
#include "corio/pg/error.hpp"
#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"
#include "corio/pool/pool.hpp"
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

/// The session's transaction state, as of the last query answered.
enum class transaction_state : std::uint8_t {
  idle,            ///< not in a transaction block
  in_transaction,  ///< in one (after BEGIN)
  failed,          ///< in one that failed: only ROLLBACK helps
  unknown,         ///< no connection, or a query is running
};

/// A notification: `NOTIFY channel, 'payload'` in some session.
struct notification {
  std::string channel;  ///< The channel it was sent on.
  std::string payload;  ///< The payload string; empty when NOTIFY gave none.
  /// The server process of the session that sent it.
  int sender = 0;
};

/// What a connection did.
struct connection_stats {
  std::uint64_t queries = 0;    ///< queries sent
  std::uint64_t prepares = 0;   ///< statements prepared (cache misses)
  std::uint64_t evictions = 0;  ///< prepared statements dropped for the bound
  std::uint64_t flushes = 0;    ///< output pushes to the socket
  std::uint64_t reads = 0;      ///< input reads
  std::uint64_t dropped = 0;    ///< results of cancelled queries, read and dropped
  std::uint64_t cancels = 0;    ///< cancel requests sent for running queries
};

/// How a transaction runs (BEGIN's options; unset: the server's defaults).
struct transaction_options {
  /// The isolation level (`server_default`: none is named, so the session's
  /// default_transaction_isolation applies).
  enum class level : std::uint8_t { server_default, read_committed, repeatable_read, serializable };
  level isolation = level::server_default;  ///< BEGIN ISOLATION LEVEL ..., unless server_default.
  bool read_only = false;                   ///< BEGIN ... READ ONLY: the transaction may not write.
  /// With serializable and read_only: wait for a snapshot that cannot fail.
  bool deferrable = false;
};

class transaction;

namespace detail {

class connection_state;
struct pending_query;
struct row_stream;

/// The wait for one query's result (connection::query's awaitable).
class query_waiter : public corio::detail::waiter {
 public:
  /// `owner`: the transaction the query belongs to (0: none).
  query_waiter(connection_state* st, std::uint64_t owner) noexcept : m_state(st), m_owner(owner) {}
  query_waiter(const query_waiter&) = delete;
  query_waiter& operator=(const query_waiter&) = delete;
  static constexpr bool await_ready() noexcept { return false; }
  void on_abort() noexcept;
  /// The connection hands over the outcome.
  void deliver(result&& r) noexcept;
  void fail(const std::exception_ptr& e) noexcept;
  /// A query held while another task's transaction has the connection:
  /// sent now (its text and parameters live in the awaiter).
  void send_held() noexcept;
  /// The query ends its transaction: once it is queued, the connection is
  /// free for others (their queries go after it).
  void release_after_send() noexcept { m_releases = true; }

 protected:
  ~query_waiter() = default;
  /// Queues the query and parks; throws when the connection is unusable.
  bool suspend(std::coroutine_handle<> h, std::string_view sql, std::span<const param> params);
  /// The result; throws pg::error for a statement the server refused.
  result resume();

 private:
  connection_state* m_state;
  std::uint64_t m_owner;
  pending_query* m_slot = nullptr;
  bool m_held = false;
  bool m_releases = false;
  std::string_view m_sql;
  std::span<const param> m_params;
  result m_result;
  std::exception_ptr m_error;
};

/// connection::query's and execute's awaitable: the parameters, kept until
/// it is awaited (in the same expression: strings are not copied).
template <std::size_t N, bool Affected>
class query_awaiter final : public query_waiter {
 public:
  template <class... Args>
  query_awaiter(connection_state* st, std::uint64_t owner, std::string_view sql,
                const Args&... args)
      : query_waiter(st, owner), m_text(sql), m_params{param(args)...} {}
  bool await_suspend(std::coroutine_handle<> h) {
    return suspend(h, m_text, std::span<const param>(m_params, N));
  }
  auto await_resume() {
    if constexpr (Affected) {
      return resume().affected();
    } else {
      return resume();
    }
  }

 private:
  std::string_view m_text;
  param m_params[N == 0 ? 1 : N];
};

}  // namespace detail

/// A transaction on a connection (`connection::begin`), or a savepoint in
/// one (`transaction::begin`). Its statements go through `query` and
/// `execute`; `commit` ends it. One destroyed before commit or rollback,
/// by an exception or by cancellation, is rolled back: the ROLLBACK (or
/// ROLLBACK TO SAVEPOINT) is queued at once, before anything else can use
/// the connection. Move-only.
///
/// A commit whose task is cancelled while it waits still commits (it was
/// sent); the task only does not learn the outcome.
///
/// \code
///   auto tx = co_await db.begin();
///   co_await tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, from);
///   co_await tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", 10, to);
///   co_await tx.commit();
/// \endcode
class transaction {
 public:
  /// Takes over `o`'s transaction; `o` is left empty (its destructor does
  /// nothing, and its queries throw connection_error).
  transaction(transaction&& o) noexcept;
  transaction& operator=(transaction&&) = delete;
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();

  /// As connection::query, inside this transaction: its rows; pg::error
  /// for a statement the server refuses (which fails the transaction: only
  /// rollback, or a savepoint's rollback, helps). Await it in the
  /// expression that makes it.
  template <class... Args>
  [[nodiscard]] detail::query_awaiter<sizeof...(Args), false> query(std::string_view sql,
                                                                    const Args&... args) {
    return {m_state, m_id, sql, args...};
  }
  /// As connection::execute, inside this transaction: the rows the command
  /// affected; errors as for query().
  template <class... Args>
  [[nodiscard]] detail::query_awaiter<sizeof...(Args), true> execute(std::string_view sql,
                                                                     const Args&... args) {
    return {m_state, m_id, sql, args...};
  }

  /// COMMIT (a savepoint: RELEASE SAVEPOINT). Throws pg::error when the
  /// server refuses (a serialization failure, a deferred constraint); the
  /// transaction is over either way.
  task<> commit();
  /// ROLLBACK (a savepoint: ROLLBACK TO SAVEPOINT, then RELEASE).
  task<> rollback();
  /// A savepoint inside this transaction, ended like a transaction.
  task<transaction> begin();
  /// True until commit or rollback.
  [[nodiscard]] bool active() const noexcept { return m_state != nullptr && !m_done; }

 private:
  friend class connection;
  transaction(detail::connection_state* st, std::uint64_t id, int depth) noexcept
      : m_state(st), m_id(id), m_depth(depth) {}
  /// Runs the statement that ends it; the outermost frees the connection.
  task<> end(std::string sql);
  [[nodiscard]] std::string savepoint() const;

  detail::connection_state* m_state;
  std::uint64_t m_id;
  int m_depth;  // 0: the transaction; n: its n-th nested savepoint
  bool m_done = false;
};

/// One connection to PostgreSQL: libpq makes it (any connection string,
/// authentication, TLS), polled from the loop; after that corio speaks the
/// protocol itself, so that any number of tasks of its loop query at once
/// and every query issued in one loop tick goes out in one send (libpq 15
/// would send each query's synchronisation point on its own), results
/// coming back in order. Each query is prepared once and its statement
/// cached (the query text is the key), parameters bound in binary, results
/// read in binary. Each query has a synchronisation point of its own, so
/// it is its own implicit transaction: a failing one fails only itself.
///
/// Transactions, COPY and LISTEN need a connection of their own: take one
/// from a `pool<pg::connection>`.
///
/// Cancellation: a cancelled query's result is read and dropped; the other
/// queries are not affected. When it was the only query in flight (and no
/// transaction has the connection), the server is asked to cancel it
/// (PQcancel, on the blocking pool) and other queries wait for that; a
/// request that fails closes the connection, which a pool then drops.
///
/// \code
///   auto db = co_await corio::pg::connection::connect("host=/run/postgresql dbname=app");
///   corio::pg::result r = co_await db.query("SELECT name FROM users WHERE id = $1", 42);
///   std::string name = r.at(0).get<std::string>(0);
///   std::uint64_t n = co_await db.execute("DELETE FROM sessions WHERE expires < now()");
/// \endcode
class connection {
 public:
  /// A connection object that is not connected: broken() is true, and
  /// queries throw connection_error.
  connection() noexcept;
  /// Takes over `o`'s connection and its pending queries; `o` is left not connected.
  connection(connection&&) noexcept;
  /// Closes this object's connection, if any (its pending queries fail with
  /// connection_error), and takes over the other's.
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
    return {m_state.get(), 0, sql, args...};
  }
  /// As query, for a command: gives the rows it affected.
  template <class... Args>
  [[nodiscard]] detail::query_awaiter<sizeof...(Args), true> execute(std::string_view sql,
                                                                     const Args&... args) {
    return {m_state.get(), 0, sql, args...};
  }

  /// Runs `sql` like query() and yields its rows one at a time as they
  /// arrive: a large result is read with flat
  /// memory. The query is sent now (the arguments are used before this
  /// returns); the rows are read as the stream is pulled, and when the
  /// consumer falls 1,024 rows behind, the connection stops reading until
  /// it catches up (queries pipelined behind the stream wait too). Ending
  /// the stream early drops the rest of its rows. A statement the server
  /// refuses throws pg::error from the stream. The connection must not be
  /// in another task's transaction (std::logic_error).
  ///
  /// \code
  ///   auto rows = db.stream("SELECT id, payload FROM events WHERE day = $1", day);
  ///   while (auto r = co_await rows.next()) consume(r->get<std::int64_t>(0));
  /// \endcode
  template <class... Args>
  [[nodiscard]] async_generator<row> stream(std::string_view sql, const Args&... args) {
    const param params[sizeof...(Args) == 0 ? 1 : sizeof...(Args)] = {param(args)...};
    return stream_rows(start_stream(sql, std::span<const param>(params, sizeof...(Args))));
  }

  /// COPY ... FROM STDIN: sends each chunk `data` yields (in the COPY's
  /// format: text, csv or binary; chunks need not end on rows), ends the
  /// data, and gives the rows copied. The connection is the COPY's
  /// meanwhile (other tasks' queries wait). A `data` stream that throws
  /// aborts the COPY (the server rolls it back) and its error is rethrown;
  /// a cancelled COPY is aborted the same way. The connection goes on.
  ///
  /// \code
  ///   std::uint64_t n = co_await db.copy_in("COPY events FROM STDIN (FORMAT csv)", csv_lines());
  /// \endcode
  task<std::uint64_t> copy_in(std::string sql, async_generator<std::string> data);
  /// COPY ... TO STDOUT: yields the data a row at a time (text format: a
  /// line with its newline), with flat memory (a consumer 1,024 rows
  /// behind pauses the reader). The connection is the COPY's until the
  /// stream ends; ending it early drops the rest of the data as it comes,
  /// and the connection goes on.
  async_generator<std::string> copy_out(std::string sql);

  /// LISTENs on `channel` and yields each notification sent to it, in
  /// order; ending the stream (destroying it, or cancelling its consumer)
  /// UNLISTENs. Other queries go on sharing the connection. A listener
  /// that falls more than 65,536 notifications behind fails with
  /// `connection_error`; so does every listener when the connection is
  /// lost.
  ///
  /// \code
  ///   auto events = db.listen("orders");
  ///   while (auto n = co_await events.next()) handle(n->payload);
  /// \endcode
  async_generator<notification> listen(std::string channel);

  /// Starts a transaction (BEGIN with `options`): from now until it ends,
  /// the connection is the transaction's, and other tasks' queries wait
  /// (a second begin() waits for the first transaction to end).
  task<transaction> begin(transaction_options options = {});

  /// True after the connection was lost or closed.
  [[nodiscard]] bool broken() const noexcept;
  /// The server's version as a number (150004 for 15.4).
  [[nodiscard]] int server_version() const noexcept;
  /// Queries sent and not yet answered.
  [[nodiscard]] std::size_t pending() const noexcept;
  /// What the connection did so far (all zero for an object never connected).
  [[nodiscard]] connection_stats stats() const noexcept;
  /// The transaction state after the last answered query.
  [[nodiscard]] transaction_state transaction_status() const noexcept;
  /// Waits until every query sent so far is answered (results of
  /// cancelled ones included): then transaction_status() is current.
  task<> drain();
  /// Rolls back a transaction left open, then DISCARD ALL (temporary
  /// tables, session settings, prepared statements: the statement cache
  /// is emptied with them, LISTENs). A pool's reset, when a lease ended in
  /// a transaction. Needs the connection to itself.
  task<> discard_all();
  /// Closes now: pending queries fail with `connection_error`.
  void close() noexcept;

  /// libpq's connection, for what corio does not wrap (PQbackendPID);
  /// corio reads and writes its socket itself: reading, writing or
  /// running a query through it breaks the connection.
  [[nodiscard]] pg_conn* native_handle() const noexcept;

 private:
  explicit connection(std::unique_ptr<detail::connection_state> s) noexcept;
  std::shared_ptr<detail::row_stream> start_stream(std::string_view sql,
                                                   std::span<const param> params);
  static async_generator<row> stream_rows(std::shared_ptr<detail::row_stream> s);
  /// Waits until no transaction or COPY has the connection, then takes it:
  /// the new owner's id.
  task<std::uint64_t> take_connection();
  std::unique_ptr<detail::connection_state> m_state;
};

/// The hooks of a `pool<pg::connection>`: connections made from
/// `conninfo`; validate (when the pool asks, after idling or after a
/// borrower failed) is a round trip on a connection that is not broken;
/// reset, when a lease ends, waits for what the borrower left in flight
/// and, if a transaction was left open, rolls it back and discards the
/// session (discard_all); a broken connection is closed, not returned.
///
/// \code
///   corio::pool<corio::pg::connection> db(corio::pg::pool_hooks("dbname=app"), {.max_size = 10});
///   auto conn = co_await db.acquire();
///   auto r = co_await conn->query("SELECT balance FROM accounts WHERE id = $1", 7);
/// \endcode
corio::pool_hooks<connection> pool_hooks(std::string conninfo, connect_options options = {});

}  // namespace corio::pg
