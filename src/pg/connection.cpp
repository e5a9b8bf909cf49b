// pg::connection: libpq connects (and runs COPY); the protocol after that
// is corio's (pg/wire.hpp). Each query is written into the connection's
// buffer with a Sync of its own as it is issued, the buffer goes out in one
// send at the end of the tick, and a reader job reads the replies as the
// socket turns readable and hands each query's result to its waiter in
// order.
#include "corio/pg/connection.hpp"

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "corio/detail/owned_fd.hpp"
#include "corio/exec/offload.hpp"
#include "corio/io/detail/io_op.hpp"
#include "corio/loop/detail/wake_slot.hpp"
#include "corio/pool/detail/job_owner.hpp"
#include "corio/task/cancel.hpp"
#include "io/backend.hpp"
#include "pg/wire.hpp"

namespace corio::pg {

namespace {

std::string libpq_message(const PGconn* c, const char* what) {
  std::string m = std::string("corio::pg: ") + what;
  const char* e = c != nullptr ? PQerrorMessage(c) : nullptr;
  if (e != nullptr && *e != '\0') {
    m += ": ";
    m += e;
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
      m.pop_back();
  }
  return m;
}

}  // namespace

error::error(std::string sqlstate, std::string message, std::string detail, std::string hint)
    : std::runtime_error("corio::pg: ERROR: " + message +
                         (sqlstate.empty() ? std::string() : " (SQLSTATE " + sqlstate + ")") +
                         (detail.empty() ? std::string() : "; DETAIL: " + detail)),
      m_sqlstate(std::move(sqlstate)),
      m_message(std::move(message)),
      m_detail(std::move(detail)),
      m_hint(std::move(hint)) {}

namespace detail {

class copy_session;

/// Rows on their way from the reader to a consumer that takes them one at
/// a time (a stream, a COPY TO): one that falls behind pauses the reader,
/// so the rest waits in the socket (flat memory).
template <class Row>
struct row_queue {
  static constexpr std::size_t pause_at = 1024;  // rows waiting: stop reading
  static constexpr std::size_t resume_at = 512;

  std::deque<Row> rows;
  corio::detail::wake_slot arrival;  // the consumer waits here (a COPY's session: for all)
  bool abandoned = false;            // the consumer ended first: rows are dropped
};

/// A streamed query's rows, one single-row result each.
struct row_stream : row_queue<result> {
  result current;  // the one whose row was yielded last
  row current_row;
  connection_state* state = nullptr;  // nullptr once the connection is gone
  bool done = false;
  std::exception_ptr error;
};

/// A COPY's exchange between its session and the connection's reader; the
/// rows are COPY TO's data, a message each.
struct copy_stream : row_queue<std::string> {
  bool started = false;     // the server is in the COPY (CopyInResponse, CopyOutResponse)
  bool in = false;          // ... FROM STDIN (else TO STDOUT)
  bool done = false;        // its ReadyForQuery came, or the connection was lost
  std::uint64_t count = 0;  // the rows CommandComplete reports
  std::optional<server_error> error;
  std::exception_ptr lost;  // the connection's error, when it was lost
};

/// A prepared statement's row description, once the server gave it: the
/// statement's cache entry and the queries sent with it share it (a query
/// may outlive the entry's eviction).
struct statement_columns {
  std::shared_ptr<const columns> cols;  // nullptr: a command (NoData), or not known yet
};

/// A query sent and not yet answered.
struct pending_query {
  query_waiter* waiter = nullptr;  // nullptr once its waiter was cancelled
  bool prepares = false;           // a Parse of its statement went first
  bool parsed = false;             // ... and the server took it
  std::string statement;           // its prepared statement's name (short: no allocation)
  std::shared_ptr<statement_columns> columns;  // nullptr: a Close, no rows
  result rows;
  std::optional<server_error> error;
  std::shared_ptr<row_stream> stream;  // set for stream()
  std::shared_ptr<copy_stream> copy;   // set for a COPY
};

/// Everything of a connection, at a stable address (the connection object
/// moves; its jobs and waiters point here).
class connection_state final : public corio::detail::job_owner {
 public:
  explicit connection_state(connect_options options)
      : m_options(options), m_loop(&corio::detail::current_loop()) {
    m_flush.m_fire = &on_tick_end;
    m_flush.m_self = this;
  }
  connection_state(const connection_state&) = delete;
  connection_state& operator=(const connection_state&) = delete;
  ~connection_state() {
    lose(std::make_exception_ptr(connection_error("corio::pg: the connection was closed")));
    for (listener* l : m_listeners)
      l->state = nullptr;  // their streams outlive it
  }

  /// Connects (libpq's non-blocking connect, polled from the loop); on
  /// success, starts reading.
  task<> establish(std::string conninfo);

  /// Queues a query (and first its Parse and Describe, on a cache miss)
  /// with a Sync of its own, to go out at the end of the tick; its result
  /// goes to the returned slot's waiter (set later).
  pending_query& enqueue(std::string_view sql, std::span<const param> params);

  /// The connection is gone: every pending query fails with `e`.
  void lose(const std::exception_ptr& e) noexcept {
    m_flush.unlink();
    if (!m_broken) {
      m_broken = true;
      m_error = e;
      ++m_generation;
    }
    if (m_conn != nullptr) {
      // libpq closes its socket: the backend forgets it first (a pending
      // readiness wait ends).
      if (const int fd = PQsocket(m_conn); fd >= 0) corio::detail::forget_descriptor(fd);
      PQfinish(m_conn);
      m_conn = nullptr;
      m_ssl = nullptr;
    }
    m_out.clear();
    m_input.clear();
    std::deque<pending_query> failed;
    failed.swap(m_pending);
    for (pending_query& p : failed) {
      if (p.waiter != nullptr) p.waiter->fail(e);
      if (p.stream) {
        p.stream->error = e;
        p.stream->state = nullptr;
        p.stream->arrival.notify();
      }
      if (p.copy) {
        p.copy->lost = e;
        p.copy->done = true;
        p.copy->arrival.notify();
      }
    }
    m_drained.notify();
    m_paused = false;
    wake_reader();
    m_statements.clear();
    m_failed_prepares.clear();
    m_owner = 0;
    m_cancel_owner = 0;
    std::vector<query_waiter*> held;
    held.swap(m_held);
    for (query_waiter* w : held) {
      if (w != nullptr) w->send_held();  // fails at once: the connection is gone
    }
    wake_acquirer(true);
    for (listener* l : m_listeners) {
      if (!l->error) l->error = e;
      l->arrival.notify();
    }
  }

  /// After DISCARD ALL (or DEALLOCATE ALL) the server has none of them.
  void forget_statements() noexcept {
    m_statements.clear();
    m_failed_prepares.clear();
  }

  // ---- the connection's owner: a transaction holds it to itself -------------

  /// True when a query of `owner` must wait: another transaction has the
  /// connection. A query of a transaction that already ended is an error.
  [[nodiscard]] bool held_out(std::uint64_t owner) const {
    if (owner != 0 && owner != m_owner) {
      throw std::logic_error("corio::pg: a query on a transaction that has ended");
    }
    return m_owner != 0 && owner != m_owner;
  }

  /// The connection is free again: the queries held meanwhile go out, in
  /// the order they came, and the first task waiting to begin() is woken.
  void release(std::uint64_t owner) noexcept {
    if (m_owner != owner || owner == 0) return;
    m_owner = 0;
    m_cancel_owner = 0;
    std::vector<query_waiter*> held;
    held.swap(m_held);
    for (query_waiter* w : held) {
      if (w != nullptr) w->send_held();
    }
    wake_acquirer(false);
  }

  void wake_acquirer(bool all) noexcept {
    for (corio::detail::waiter*& w : m_acquirers) {
      if (w == nullptr) continue;
      std::exchange(w, nullptr)->wake();
      if (!all) break;
    }
    std::erase(m_acquirers, nullptr);
  }

  /// Sends `sql` with no one waiting for its outcome (a destroyed
  /// transaction's ROLLBACK); nothing when the connection is gone.
  void send_dropped(std::string_view sql) noexcept {
    if (m_broken) return;
    try {
      (void)enqueue(sql, {});
    } catch (...) {  // lost: enqueue failed every query already
    }
  }

  // ---- LISTEN --------------------------------------------------------------------

  /// One listen() stream's queue; unlinked by the stream when it ends.
  struct listener {
    std::string channel;
    std::deque<notification> queue;
    notification current;               // the one yielded last
    corio::detail::wake_slot arrival;   // the stream waits here
    connection_state* state = nullptr;  // nullptr once the connection is gone
    std::exception_ptr error;
  };
  static constexpr std::size_t max_unread_notifications = 65536;

  // A notification goes to the streams listening on its channel.
  void deliver(const notification& n) noexcept {
    for (listener* l : m_listeners) {
      if (l->channel != n.channel || l->error) continue;
      if (l->queue.size() >= max_unread_notifications) {
        l->error = std::make_exception_ptr(
            connection_error("corio::pg: a listener fell more than 65536 notifications behind"));
      } else {
        try {
          l->queue.push_back(n);
        } catch (...) {
          l->error = std::current_exception();
        }
      }
      l->arrival.notify();
    }
  }

  std::vector<listener*> m_listeners;

  std::uint64_t m_owner = 0;         // the transaction that has the connection (0: none)
  std::uint64_t m_cancel_owner = 0;  // the owner while a cancel request is in flight
  bool m_cancel_sent = false;
  std::uint64_t m_last_owner = 0;
  std::vector<query_waiter*> m_held;                // queries of others, waiting for it
  std::vector<corio::detail::waiter*> m_acquirers;  // begin()s waiting for it

  connect_options m_options;
  corio::detail::loop_core* m_loop;
  PGconn* m_conn = nullptr;
  SSL* m_ssl = nullptr;                 // libpq's TLS session, when the connection has one
  std::deque<pending_query> m_pending;  // in the order of their results
  std::uint64_t m_generation = 0;
  bool m_broken = true;
  bool m_writing = false;    // a writer job waits for the socket
  char m_transaction = 'I';  // ReadyForQuery's: idle, in a transaction, failed one
  std::exception_ptr m_error;
  connection_stats m_stats;

 private:
  struct statement {
    std::string name;
    std::uint64_t last_used = 0;
    std::shared_ptr<statement_columns> columns;
  };

  struct tick_hook : corio::detail::tick_end_node {
    connection_state* m_self = nullptr;
  };

  // A job's link to the state (job_owner.hpp).
  struct state_link : corio::detail::job_link {
    explicit state_link(connection_state* s) noexcept : job_link(s) {}
    [[nodiscard]] connection_state* state() const noexcept {
      return static_cast<connection_state*>(m_owner);
    }
  };

  // ---- cancel requests ---------------------------------------------------------

 public:
  /// The task waiting for `q` was cancelled: when `q` is the only query in
  /// flight (so a cancel cannot hit anyone else's), and no transaction or
  /// COPY has the connection, the server is asked to cancel it, and
  /// others' queries wait until it is answered. The request is libpq's
  /// PQcancel, a blocking call: it runs on the blocking pool. A request
  /// that cannot be made closes the connection (a pool then drops it).
  void cancel_running(const pending_query& q) noexcept {
    if (m_broken || m_owner != 0 || m_pending.size() != 1 || &m_pending.front() != &q || q.stream) {
      return;
    }
    PGcancel* request = PQgetCancel(m_conn);
    if (request == nullptr) return;
    m_owner = ++m_last_owner;
    m_cancel_owner = m_owner;
    m_cancel_sent = false;
    try {
      spawn_job(cancel_job(state_link(this), request), "pg: cancel request");
    } catch (...) {
      PQfreeCancel(request);
      m_cancel_owner = 0;
      release(m_owner);
    }
  }

 private:
  // The request, and what went wrong ("" when it went). The thread owns
  // `request` (and frees it): a job cancelled meanwhile leaves it running.
  static task<> cancel_job(state_link link, PGcancel* request) {
    std::string why = co_await corio::offload(corio::blocking_pool(), [request] {
      char buf[256] = {};
      const bool ok = PQcancel(request, buf, sizeof buf) == 1;
      PQfreeCancel(request);
      return ok ? std::string() : std::string(buf[0] != '\0' ? buf : "no reason given");
    });
    connection_state* st = link.state();
    if (st == nullptr || st->m_cancel_owner == 0) co_return;
    if (!why.empty()) {
      st->lose(std::make_exception_ptr(
          connection_error("corio::pg: the cancel request for a cancelled query failed: " + why)));
      co_return;
    }
    ++st->m_stats.cancels;
    st->m_cancel_sent = true;
    st->end_cancel_when_drained();
  }

  // Once the request went and the cancelled query's result is in, the
  // connection is free again.
  void end_cancel_when_drained() noexcept {
    if (m_cancel_owner == 0 || !m_cancel_sent || !m_pending.empty()) return;
    const std::uint64_t owner = std::exchange(m_cancel_owner, 0);
    release(owner);
  }

  static void on_tick_end(corio::detail::tick_end_node& n) noexcept {
    static_cast<tick_hook&>(n).m_self->flush();
  }

  // ---- the socket: plain, or libpq's TLS session --------------------------------

  [[nodiscard]] int socket() const noexcept { return PQsocket(m_conn); }

  // One send or receive, never blocking: the byte count, 0 at the end of
  // the stream (receive), -EAGAIN when the socket must be readable first,
  // -EINPROGRESS when it must be writable first (TLS), else -errno.
  std::intptr_t transfer(corio::detail::io_kind kind, char* buf, std::size_t len) noexcept {
    if (m_ssl == nullptr) {
      const std::intptr_t r = corio::detail::perform_now(kind, socket(), buf, len);
      if (r == -EAGAIN && kind == corio::detail::io_kind::send) return -EINPROGRESS;
      return r;
    }
    const int n = static_cast<int>(std::min<std::size_t>(len, INT32_MAX));
    ERR_clear_error();
    const int r =
        kind == corio::detail::io_kind::send ? SSL_write(m_ssl, buf, n) : SSL_read(m_ssl, buf, n);
    if (r > 0) return r;
    switch (SSL_get_error(m_ssl, r)) {
      case SSL_ERROR_WANT_READ:
        return -EAGAIN;
      case SSL_ERROR_WANT_WRITE:
        return -EINPROGRESS;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      case SSL_ERROR_SYSCALL:
        return errno != 0 ? -errno : -ECONNRESET;
      default:
        return -EPROTO;
    }
  }

  // Waits until the socket is ready for what transfer() asked (r: its
  // -EAGAIN or -EINPROGRESS).
  task<> wait_socket(std::intptr_t r) {
    co_await corio::detail::io_call(
        r == -EINPROGRESS ? corio::detail::io_kind::poll_out : corio::detail::io_kind::poll_in,
        socket(), nullptr, 0);
  }

  // Sends what m_out holds, as much as the socket takes now: 0 when all
  // of it went (or the send failed: then the connection is lost), else
  // what to wait for (transfer()'s -EAGAIN or -EINPROGRESS).
  std::intptr_t send_some() noexcept {
    ++m_stats.flushes;
    const std::intptr_t r = transfer(corio::detail::io_kind::send, m_out.data(), m_out.size());
    if (r < 0 && r != -EAGAIN && r != -EINPROGRESS) {
      lose(std::make_exception_ptr(connection_error(std::string("corio::pg: send: ") +
                                                    std::strerror(static_cast<int>(-r)))));
      return 0;
    }
    if (r > 0) {
      m_out.erase(0, static_cast<std::size_t>(r));
      m_drained.notify();
    }
    if (m_out.empty()) return 0;
    return r < 0 ? r : -EINPROGRESS;
  }

  // The tick's queries, in one send when the socket takes them (the usual
  // case: one system call per tick, however many queries); the rest goes
  // to a writer job that waits for the socket.
  void flush() noexcept {
    if (m_broken || m_writing || m_out.empty()) return;
    const std::intptr_t blocked = send_some();
    if (blocked == 0) return;
    m_writing = true;
    try {
      spawn_job(write_loop(state_link(this), m_generation, blocked), "pg: writer");
    } catch (...) {
      lose(std::current_exception());
    }
  }

  // Sends what the socket did not take, as it drains. TLS retries a write
  // with the same bytes (they stay at the front of m_out; the buffer may
  // move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
  static task<> write_loop(state_link link, std::uint64_t generation, std::intptr_t blocked) {
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      co_await st->wait_socket(blocked);
      st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      blocked = st->send_some();
      if (st->m_broken) co_return;
      if (blocked == 0) {
        st->m_writing = false;
        co_return;
      }
    }
  }

  // Reads what the server sends and hands it out. On a plain socket a
  // read stays in flight (io_uring completes it without a system call of
  // ours); TLS reads when the socket is readable, and again while OpenSSL
  // holds decrypted bytes.
  static task<> read_loop(state_link link, std::uint64_t generation) {
    constexpr std::size_t chunk = std::size_t{64} << 10;
    const std::unique_ptr<char[]> buf(new char[chunk]);  // in the frame: io_uring writes into it
    std::intptr_t blocked = -EAGAIN;
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      if (st->m_paused) {  // a stream or a COPY is behind
        co_await st->m_reader_resume.wait([st] { return !st->m_paused; },
                                          "pg reader (a stream is behind)");
        st = link.state();
        if (st == nullptr || st->m_generation != generation) co_return;
        st->consume({});  // what was read before the pause
        continue;
      }
      std::intptr_t r = 0;
      if (st->m_ssl == nullptr) {
        r = co_await corio::detail::io_call(corio::detail::io_kind::recv, st->socket(), buf.get(),
                                            chunk);
        st = link.state();
        if (st == nullptr || st->m_generation != generation) co_return;
      } else {
        if (blocked != 0) {
          co_await st->wait_socket(blocked);
          st = link.state();
          if (st == nullptr || st->m_generation != generation) co_return;
        }
        r = st->transfer(corio::detail::io_kind::recv, buf.get(), chunk);
        if (r == -EAGAIN || r == -EINPROGRESS) {
          blocked = r;
          continue;
        }
        blocked = SSL_has_pending(st->m_ssl) != 0 ? 0 : -EAGAIN;
      }
      ++st->m_stats.reads;
      if (r <= 0) {
        st->lose(std::make_exception_ptr(connection_error(
            r == 0 ? std::string("corio::pg: the server closed the connection")
                   : std::string("corio::pg: recv: ") + std::strerror(static_cast<int>(-r)))));
        co_return;
      }
      st->consume(std::string_view(buf.get(), static_cast<std::size_t>(r)));
      if (st->m_broken) co_return;
    }
  }

  // Handles `fresh` bytes after what is left of earlier reads; keeps what
  // it could not (a partial message, or the rest while a stream is behind).
  void consume(std::string_view fresh) noexcept {
    try {
      if (m_input.empty()) {  // the usual case: parsed where it was read
        const std::size_t used = process(fresh);
        if (!m_broken) m_input.assign(fresh.substr(used));
      } else {
        m_input.append(fresh);
        const std::size_t used = process(m_input);
        if (!m_broken) m_input.erase(0, used);
      }
    } catch (...) {
      lose(std::current_exception());
    }
  }

  // Each whole message of `data`, in order (each query's replies end with
  // its ReadyForQuery: then it is done); the bytes used.
  std::size_t process(std::string_view data) {
    std::size_t used = 0;
    while (!m_broken && !m_paused) {
      const auto m = next_message(data.substr(used));
      if (!m) break;
      used += m->size();
      handle(*m);
    }
    return used;
  }

  [[noreturn]] static void unexpected(char type) {
    throw protocol_error(std::string("corio::pg: protocol error: an unexpected message '") + type +
                         "' from the server");
  }

  void handle(const message& m) {
    switch (m.type) {
      case 'A':  // NotificationResponse
        deliver(read_notification(m.body));
        return;
      case 'N':  // NoticeResponse: not reported
      case 'S':  // ParameterStatus
        return;
      case 'E': {
        server_error e = read_error(m.body);
        if (e.ends_session() || m_pending.empty()) {  // a shutdown, a terminated backend
          throw connection_error("corio::pg: the server ended the session: " + e.message +
                                 " (SQLSTATE " + e.sqlstate + ")");
        }
        pending_query& q = m_pending.front();
        if (q.prepares && !q.parsed) note_failed_prepare(q, e);
        if (!q.error) q.error = std::move(e);
        return;
      }
      case 'G':  // CopyInResponse
      case 'H':  // CopyOutResponse
        if (!m_pending.empty() && m_pending.front().copy) {
          copy_stream& cs = *m_pending.front().copy;
          cs.started = true;
          cs.in = m.type == 'G';
          cs.arrival.notify();
          return;
        }
        [[fallthrough]];
      case 'W':  // CopyBothResponse (replication)
        throw connection_error(
            "corio::pg: a COPY ran through query(); use copy_in() or copy_out() (the connection "
            "was closed)");
      default:
        break;
    }
    if (m_pending.empty()) unexpected(m.type);
    pending_query& q = m_pending.front();
    if (q.copy && m.type != 'Z' && m.type != '1') {
      take_copy(*q.copy, m);
      return;
    }
    switch (m.type) {
      case '1':  // ParseComplete
        q.parsed = true;
        return;
      case 't':  // ParameterDescription
      case '3':  // CloseComplete
        return;
      case 'T':  // RowDescription: the statement's, in reply to its Describe
        if (q.columns == nullptr) unexpected(m.type);
        q.columns->cols = read_row_description(m.body);
        return;
      case 'n':  // NoData
        return;
      case '2':  // BindComplete
        if (q.columns == nullptr) unexpected(m.type);
        if (!q.stream) start_result(q.rows, q.columns->cols);
        return;
      case 'D':
        if (q.columns == nullptr || q.columns->cols == nullptr) unexpected(m.type);
        if (q.stream) {
          take_row(q, m.body);
        } else {
          append_row(q.rows, m.body);
        }
        return;
      case 'C':  // CommandComplete
        if (!q.stream) set_command_tag(q.rows, m.body);
        return;
      case 'I':  // EmptyQueryResponse
        return;
      case 'Z':
        m_transaction = read_ready(m.body);
        finish_front();
        return;
      default:
        unexpected(m.type);
    }
  }

  // A COPY's messages: its data (COPY TO), its row count; the rows of a
  // statement that was not a COPY are dropped (the session says so).
  void take_copy(copy_stream& cs, const message& m) {
    switch (m.type) {
      case 'd':  // CopyData
        if (!cs.started || cs.in) unexpected(m.type);
        if (!cs.abandoned) queue_row(cs, std::string(m.body));
        return;
      case 'C':
        cs.count = read_command_count(m.body);
        return;
      case 'c':  // CopyDone
      case 'T':
      case 'D':
      case 'n':
      case 'I':
        return;
      default:
        unexpected(m.type);
    }
  }

  // A streamed row goes to its stream.
  void take_row(pending_query& q, std::string_view body) {
    row_stream* s = q.stream.get();
    if (s == nullptr || s->abandoned || q.error) return;
    result one;
    start_result(one, q.columns->cols);
    append_row(one, body);
    queue_row(*s, std::move(one));
  }

  // A row for its consumer; one that falls behind pauses the reader.
  template <class Row>
  void queue_row(row_queue<Row>& q, Row row) {
    q.rows.push_back(std::move(row));
    q.arrival.notify();
    if (q.rows.size() >= row_queue<Row>::pause_at) m_paused = true;
  }

 public:
  /// A consumer took rows: the reader goes on when it is far enough behind.
  template <class Row>
  void took(const row_queue<Row>& s) noexcept {
    if (m_paused && s.rows.size() <= row_queue<Row>::resume_at) {
      m_paused = false;
      wake_reader();
    }
  }
  /// A consumer ended before its rows did: the rest are dropped.
  template <class Row>
  void abandoned(row_queue<Row>& s) noexcept {
    s.abandoned = true;
    s.rows.clear();
    if (m_paused) {
      m_paused = false;
      wake_reader();
    }
  }

  /// m_out has more: it goes at the end of the tick.
  void queued() noexcept { m_loop->at_tick_end(m_flush); }

  /// Signalled as the socket takes m_out's bytes (a COPY FROM waits for it).
  corio::detail::wake_slot m_drained;
  std::string m_out;  // queued for the socket

 private:
  void wake_reader() noexcept { m_reader_resume.notify(); }

  static std::exception_ptr error_of(const server_error& e) {
    return std::make_exception_ptr(error(e.sqlstate, e.message, e.detail, e.hint));
  }

  // A Prepare the server refused: later queries of the same text, queued
  // behind it, fail with its error rather than "statement does not exist";
  // the next one prepares again.
  void note_failed_prepare(const pending_query& q, const server_error& e) {
    for (auto it = m_statements.begin(); it != m_statements.end(); ++it) {
      if (it->second.name == q.statement) {
        m_failed_prepares[it->second.name] = error_of(e);
        m_statements.erase(it);
        return;
      }
    }
  }

  void finish_front() noexcept {
    pending_query q = std::move(m_pending.front());
    m_pending.pop_front();
    if (q.stream) {
      row_stream& s = *q.stream;
      if (q.error) s.error = error_of(*q.error);
      s.done = true;
      s.state = nullptr;
      s.arrival.notify();
    } else if (q.copy) {
      copy_stream& cs = *q.copy;
      cs.error = std::move(q.error);
      cs.done = true;
      cs.arrival.notify();
    } else if (q.waiter == nullptr) {
      ++m_stats.dropped;
    } else if (q.error) {
      std::exception_ptr e;
      if (q.error->sqlstate == "26000" && !q.statement.empty()) {
        if (auto it = m_failed_prepares.find(q.statement); it != m_failed_prepares.end()) {
          e = it->second;
        }
      }
      q.waiter->fail(e ? e : error_of(*q.error));
    } else {
      q.waiter->deliver(std::move(q.rows));
    }
    if (m_pending.empty()) {
      m_failed_prepares.clear();  // none is queued behind them now
      end_cancel_when_drained();
    }
  }

  // The statement for `sql` with these parameter types: cached, or to be
  // prepared now (and the least recently used one closed when the cache
  // is full).
  statement& statement_for(std::string_view sql, std::span<const param> params, bool& prepare);

  tick_hook m_flush;
  bool m_paused = false;                     // a stream is behind: the reader waits
  corio::detail::wake_slot m_reader_resume;  // the reader waits here while paused
  std::string m_input;                       // read, not yet handled
  // Prepared statements by query text and parameter types.
  std::unordered_map<std::string, statement> m_statements;
  std::unordered_map<std::string, std::exception_ptr> m_failed_prepares;
  std::uint64_t m_use_clock = 0;
  std::uint64_t m_statement_count = 0;
  statement m_unnamed;  // with no cache: the unnamed statement, "", prepared per query
  std::string m_key;    // reused per query: no allocation once grown

  friend class pg::connection;
  friend class copy_session;
};

task<> connection_state::establish(std::string conninfo) {
  m_conn = PQconnectStart(conninfo.c_str());
  if (m_conn == nullptr) throw connection_error("corio::pg: out of memory");
  if (PQstatus(m_conn) == CONNECTION_BAD) throw connection_error(libpq_message(m_conn, "connect"));
  // As if PQconnectPoll had answered "writing" (libpq's documented start).
  PostgresPollingStatusType polled = PGRES_POLLING_WRITING;
  int fd = PQsocket(m_conn);
  while (polled != PGRES_POLLING_OK) {
    if (polled == PGRES_POLLING_FAILED) throw connection_error(libpq_message(m_conn, "connect"));
    co_await corio::detail::io_call(polled == PGRES_POLLING_READING
                                        ? corio::detail::io_kind::poll_in
                                        : corio::detail::io_kind::poll_out,
                                    fd, nullptr, 0);
    polled = PQconnectPoll(m_conn);
    // Trying the next host or address, libpq closed the socket and opened
    // another, perhaps under the same number: the backend forgets the old.
    if (const int now = PQsocket(m_conn); now != fd) {
      if (fd >= 0) corio::detail::forget_descriptor(fd);
      fd = now;
    }
  }
  if (PQsetnonblocking(m_conn, 1) != 0) throw connection_error(libpq_message(m_conn, "connect"));
  if (PQsslInUse(m_conn) != 0) {
    m_ssl = static_cast<SSL*>(PQsslStruct(m_conn, "OpenSSL"));
    if (m_ssl == nullptr) throw connection_error("corio::pg: a TLS session that is not OpenSSL's");
    SSL_set_mode(m_ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }
  m_broken = false;
  m_error = nullptr;
  m_transaction = 'I';
  ++m_generation;
  spawn_job(read_loop(state_link(this), m_generation), "pg: reader");
}

connection_state::statement& connection_state::statement_for(std::string_view sql,
                                                             std::span<const param> params,
                                                             bool& prepare) {
  if (m_options.statement_cache == 0) {
    prepare = true;
    m_unnamed.columns = std::make_shared<statement_columns>();
    return m_unnamed;
  }
  m_key.assign(sql);
  m_key.push_back('\0');
  for (const param& p : params) {
    const unsigned type = p.type();
    m_key.append(reinterpret_cast<const char*>(&type), sizeof type);
  }
  if (auto it = m_statements.find(m_key); it != m_statements.end()) {
    it->second.last_used = ++m_use_clock;
    prepare = false;
    return it->second;
  }
  if (m_statements.size() >= m_options.statement_cache) {
    auto oldest = m_statements.begin();
    for (auto it = m_statements.begin(); it != m_statements.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    // Queued behind every query that still uses it. Its outcome is dropped.
    put_close_statement(m_out, oldest->second.name);
    m_pending.emplace_back();
    m_statements.erase(oldest);
    ++m_stats.evictions;
  }
  prepare = true;
  std::string name = "corio_" + std::to_string(++m_statement_count);
  auto [it, added] = m_statements.emplace(
      m_key, statement{std::move(name), ++m_use_clock, std::make_shared<statement_columns>()});
  return it->second;
}

pending_query& connection_state::enqueue(std::string_view sql, std::span<const param> params) {
  if (m_broken) {
    if (m_error) std::rethrow_exception(m_error);
    throw connection_error("corio::pg: not connected");
  }
  if (params.size() > 65535) throw std::length_error("corio::pg: more than 65535 parameters");
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].too_long()) {
      throw std::length_error("corio::pg: parameter $" + std::to_string(i + 1) +
                              " is longer than 2 GiB");
    }
  }
  bool prepare = false;
  statement& s = statement_for(sql, params, prepare);
  if (prepare) {
    put_parse(m_out, s.name, sql, params);
    put_describe_statement(m_out, s.name);
    ++m_stats.prepares;
  }
  put_execute(m_out, s.name, params);
  ++m_stats.queries;
  pending_query& q = m_pending.emplace_back();
  q.prepares = prepare;
  q.statement = s.name;
  q.columns = s.columns;
  queued();
  return q;
}

// ---- the waiter of one query ----------------------------------------------------

bool query_waiter::suspend(std::coroutine_handle<> h, std::string_view sql,
                           std::span<const param> params) {
  if (m_state == nullptr) throw connection_error("corio::pg: not connected");
  if (m_state->held_out(m_owner) && !m_state->m_broken) {
    m_sql = sql;
    m_params = params;
    if (!corio::detail::park(*this, h, "pg query (waits for another task's transaction)")) {
      return false;
    }
    m_held = true;
    m_state->m_held.push_back(this);
    return true;
  }
  pending_query& slot = m_state->enqueue(sql, params);
  if (m_releases) m_state->release(m_owner);
  if (!corio::detail::park(*this, h, "pg query")) return false;  // cancelled: result dropped
  slot.waiter = this;
  m_slot = &slot;
  return true;
}

void query_waiter::send_held() noexcept {
  m_held = false;
  try {
    pending_query& slot = m_state->enqueue(m_sql, m_params);
    slot.waiter = this;
    m_slot = &slot;
  } catch (...) {
    fail(std::current_exception());
  }
}

void query_waiter::on_abort() noexcept {
  if (m_held) {
    std::replace(m_state->m_held.begin(), m_state->m_held.end(), this,
                 static_cast<query_waiter*>(nullptr));
    m_held = false;
  }
  if (m_slot != nullptr) {
    m_slot->waiter = nullptr;
    if (m_owner == 0) m_state->cancel_running(*m_slot);
  }
}

void query_waiter::deliver(result&& r) noexcept {
  m_slot = nullptr;
  m_result = std::move(r);
  wake();
}

void query_waiter::fail(const std::exception_ptr& e) noexcept {
  m_slot = nullptr;
  m_error = e;
  wake();
}

result query_waiter::resume() {
  finish();
  if (m_error) std::rethrow_exception(m_error);
  return std::move(m_result);
}

}  // namespace detail

// ---- connection -------------------------------------------------------------------

connection::connection() noexcept = default;
connection::connection(std::unique_ptr<detail::connection_state> s) noexcept
    : m_state(std::move(s)) {}
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;
connection::~connection() = default;

task<connection> connection::connect(std::string conninfo, connect_options options) {
  const auto limit = options.connect_timeout;
  auto st = std::make_unique<detail::connection_state>(options);
  co_await timeout(limit, st->establish(std::move(conninfo)));
  co_return connection(std::move(st));
}

bool connection::broken() const noexcept {
  return m_state == nullptr || m_state->m_broken;
}

int connection::server_version() const noexcept {
  return m_state == nullptr || m_state->m_conn == nullptr ? 0 : PQserverVersion(m_state->m_conn);
}

std::size_t connection::pending() const noexcept {
  return m_state == nullptr ? 0 : m_state->m_pending.size();
}

connection_stats connection::stats() const noexcept {
  return m_state == nullptr ? connection_stats{} : m_state->m_stats;
}

void connection::close() noexcept {
  if (m_state != nullptr) {
    m_state->lose(
        std::make_exception_ptr(connection_error("corio::pg: the connection was closed")));
  }
}

transaction_state connection::transaction_status() const noexcept {
  if (m_state == nullptr || m_state->m_broken || !m_state->m_pending.empty()) {
    return transaction_state::unknown;
  }
  switch (m_state->m_transaction) {
    case 'I':
      return transaction_state::idle;
    case 'T':
      return transaction_state::in_transaction;
    case 'E':
      return transaction_state::failed;
    default:
      return transaction_state::unknown;
  }
}

task<> connection::drain() {
  // Results come in order: when this one is in, so are all before it.
  if (pending() > 0) co_await query("SELECT 1");
}

task<> connection::discard_all() {
  co_await drain();
  if (transaction_status() != transaction_state::idle) co_await execute("ROLLBACK");
  co_await execute("DISCARD ALL");
  m_state->forget_statements();
}

// ---- transactions ------------------------------------------------------------------

namespace {

// A begin() waiting for the connection to be free.
class acquire_awaiter final : public corio::detail::waiter {
 public:
  explicit acquire_awaiter(detail::connection_state* st) noexcept : m_state(st) {}
  [[nodiscard]] bool await_ready() const noexcept { return m_state->m_owner == 0; }
  bool await_suspend(std::coroutine_handle<> h) {
    if (!corio::detail::park(*this, h, "pg begin (waits for another task's transaction)")) {
      return false;
    }
    m_state->m_acquirers.push_back(this);
    return true;
  }
  void on_abort() noexcept {
    std::replace(m_state->m_acquirers.begin(), m_state->m_acquirers.end(),
                 static_cast<corio::detail::waiter*>(this),
                 static_cast<corio::detail::waiter*>(nullptr));
  }
  void await_resume() { finish(); }

 private:
  detail::connection_state* m_state;
};

std::string begin_statement(const transaction_options& o) {
  std::string sql = "BEGIN";
  switch (o.isolation) {
    case transaction_options::level::server_default:
      break;
    case transaction_options::level::read_committed:
      sql += " ISOLATION LEVEL READ COMMITTED";
      break;
    case transaction_options::level::repeatable_read:
      sql += " ISOLATION LEVEL REPEATABLE READ";
      break;
    case transaction_options::level::serializable:
      sql += " ISOLATION LEVEL SERIALIZABLE";
      break;
  }
  if (o.read_only) sql += " READ ONLY";
  if (o.deferrable) sql += " DEFERRABLE";
  return sql;
}

}  // namespace

task<std::uint64_t> connection::take_connection() {
  detail::connection_state* st = m_state.get();
  if (st == nullptr) throw connection_error("corio::pg: not connected");
  while (st->m_owner != 0) {
    co_await acquire_awaiter(st);
  }
  st->m_owner = ++st->m_last_owner;
  co_return st->m_owner;
}

task<transaction> connection::begin(transaction_options options) {
  const std::string sql = begin_statement(options);
  const std::uint64_t owner = co_await take_connection();
  transaction tx(m_state.get(), owner, 0);  // from here, a throw rolls back and frees it
  co_await tx.execute(sql);
  co_return tx;
}

transaction::transaction(transaction&& o) noexcept
    : m_state(std::exchange(o.m_state, nullptr)),
      m_id(o.m_id),
      m_depth(o.m_depth),
      m_done(o.m_done) {}

transaction::~transaction() {
  if (m_state == nullptr) return;
  if (!m_done) {
    m_done = true;
    if (m_depth == 0) {
      m_state->send_dropped("ROLLBACK");
    } else {
      m_state->send_dropped("ROLLBACK TO SAVEPOINT " + savepoint());
      m_state->send_dropped("RELEASE SAVEPOINT " + savepoint());
    }
  }
  if (m_depth == 0) m_state->release(m_id);
}

std::string transaction::savepoint() const {
  return "corio_savepoint_" + std::to_string(m_depth);
}

task<> transaction::end(std::string sql) {
  if (!active()) throw std::logic_error("corio::pg: the transaction already ended");
  m_done = true;
  detail::query_awaiter<0, false> q(m_state, m_id, sql);
  if (m_depth == 0) q.release_after_send();
  (void)co_await q;
}

task<> transaction::commit() {
  return end(m_depth == 0 ? std::string("COMMIT") : "RELEASE SAVEPOINT " + savepoint());
}

task<> transaction::rollback() {
  if (m_depth == 0) return end("ROLLBACK");
  return [](transaction& self) -> task<> {
    co_await self.execute("ROLLBACK TO SAVEPOINT " + self.savepoint());
    co_await self.end("RELEASE SAVEPOINT " + self.savepoint());
  }(*this);
}

task<transaction> transaction::begin() {
  if (!active()) throw std::logic_error("corio::pg: the transaction already ended");
  transaction nested(m_state, m_id, m_depth + 1);
  nested.m_done = true;  // not begun yet: nothing to roll back if SAVEPOINT fails
  co_await execute("SAVEPOINT " + nested.savepoint());
  nested.m_done = false;
  co_return nested;
}

// ---- streaming ------------------------------------------------------------------------

namespace {

// However the stream ends: an unfinished one has its rows dropped.
struct stream_guard {
  explicit stream_guard(detail::row_stream* stream) noexcept : s(stream) {}
  stream_guard(const stream_guard&) = delete;
  stream_guard& operator=(const stream_guard&) = delete;
  ~stream_guard() {
    if (!s->done && s->state != nullptr) s->state->abandoned(*s);
  }
  detail::row_stream* s;
};

}  // namespace

std::shared_ptr<detail::row_stream> connection::start_stream(std::string_view sql,
                                                             std::span<const param> params) {
  detail::connection_state* st = m_state.get();
  if (st == nullptr) throw connection_error("corio::pg: not connected");
  if (st->held_out(0)) {
    throw std::logic_error(
        "corio::pg: stream() on a connection in another task's transaction; use a connection "
        "of its own");
  }
  auto s = std::make_shared<detail::row_stream>();
  s->state = st;
  st->enqueue(sql, params).stream = s;
  return s;
}

async_generator<row> connection::stream_rows(std::shared_ptr<detail::row_stream> s) {
  const stream_guard guard(s.get());
  for (;;) {
    co_await s->arrival.wait([&s] { return !s->rows.empty() || s->done || s->error; },
                             "pg stream row");
    if (!s->rows.empty()) {
      s->current = std::move(s->rows.front());
      s->rows.pop_front();
      if (s->state != nullptr) s->state->took(*s);
      s->current_row = s->current[0];
      co_yield s->current_row;
    } else if (s->error) {
      std::rethrow_exception(s->error);
    } else {
      co_return;  // done
    }
  }
}

// ---- COPY -------------------------------------------------------------------------------

namespace detail {

/// A COPY on a connection: it has the connection to itself (as a
/// transaction does: other tasks' queries wait), its Query goes behind the
/// queries already in flight, and the reader hands it the server's
/// replies. One interrupted half-way does not cost the connection: a COPY
/// FROM gets a CopyFail (the server aborts it), a COPY TO's remaining data
/// is read and dropped.
class copy_session {
 public:
  copy_session(connection_state& st, std::uint64_t owner) noexcept : m_st(&st), m_owner(owner) {}
  copy_session(const copy_session&) = delete;
  copy_session& operator=(const copy_session&) = delete;
  ~copy_session() {
    if (m_copy != nullptr && !m_copy->done) {
      if (m_copy->started && m_copy->in && !m_ended && !m_st->m_broken) {
        try {
          put_copy_fail(m_st->m_out, "corio: the COPY was interrupted");
          m_st->queued();
        } catch (...) {  // out of memory: the connection cannot go on
          m_st->lose(std::current_exception());
        }
      }
      m_st->abandoned(*m_copy);
    }
    m_st->release(m_owner);
  }

  /// Sends `sql` and waits for the server to start the COPY (`in`: FROM
  /// STDIN); throws its error, or std::logic_error when `sql` was not
  /// such a COPY.
  task<> start(const std::string& sql, bool in) {
    if (m_st->m_broken) std::rethrow_exception(m_st->m_error);
    m_copy = std::make_shared<copy_stream>();
    put_query(m_st->m_out, sql);
    m_st->m_pending.emplace_back().copy = m_copy;
    ++m_st->m_stats.queries;
    m_st->queued();
    copy_stream& cs = *m_copy;
    co_await cs.arrival.wait([&cs] { return cs.started || cs.done; }, "pg COPY (starts)");
    if (cs.lost) std::rethrow_exception(cs.lost);
    if (cs.started && cs.in == in) co_return;
    if (cs.done && cs.error) std::rethrow_exception(error_of(*cs.error));
    throw std::logic_error("corio::pg: not a COPY " + std::string(in ? "FROM STDIN" : "TO STDOUT") +
                           ": " + sql);
  }

  /// COPY FROM STDIN: queues a chunk; waits while the socket is behind.
  task<> put(std::string_view chunk) {
    constexpr std::size_t high_water = std::size_t{256} << 10;
    constexpr std::size_t low_water = std::size_t{64} << 10;
    check();
    put_copy_data(m_st->m_out, chunk);
    m_st->queued();
    if (m_st->m_out.size() > high_water) {
      connection_state* st = m_st;
      copy_stream& cs = *m_copy;
      co_await st->m_drained.wait(
          [st, &cs] { return st->m_out.size() <= low_water || st->m_broken || cs.done; },
          "pg COPY data (the socket is behind)");
      check();
    }
  }

  /// COPY FROM STDIN: ends the data (`why`: aborts the COPY with it) and
  /// gives the rows copied, or throws the server's error.
  task<std::uint64_t> end(const char* why) {
    check();
    if (why == nullptr) {
      put_copy_done(m_st->m_out);
    } else {
      put_copy_fail(m_st->m_out, why);
    }
    m_ended = true;
    m_st->queued();
    co_return co_await outcome();
  }

  /// COPY TO STDOUT: the next row, or nullopt after the last (the outcome
  /// read, or the server's error thrown).
  task<std::optional<std::string>> get() {
    copy_stream& cs = *m_copy;
    co_await cs.arrival.wait([&cs] { return !cs.rows.empty() || cs.done; }, "pg COPY data");
    if (!cs.rows.empty()) {
      std::string row = std::move(cs.rows.front());
      cs.rows.pop_front();
      m_st->took(cs);
      co_return row;
    }
    (void)co_await outcome();
    co_return std::nullopt;
  }

 private:
  static std::exception_ptr error_of(const server_error& e) {
    return std::make_exception_ptr(error(e.sqlstate, e.message, e.detail, e.hint));
  }

  // A COPY the server ended early (bad data) or a lost connection: what
  // was sent after it is pointless.
  void check() const {
    if (m_copy->lost) std::rethrow_exception(m_copy->lost);
    if (m_copy->done) {
      if (m_copy->error) std::rethrow_exception(error_of(*m_copy->error));
      throw std::logic_error("corio::pg: the COPY already ended");
    }
  }

  // The COPY's end: its row count, or its error thrown.
  task<std::uint64_t> outcome() {
    copy_stream& cs = *m_copy;
    co_await cs.arrival.wait([&cs] { return cs.done; }, "pg COPY (ends)");
    if (cs.lost) std::rethrow_exception(cs.lost);
    if (cs.error) std::rethrow_exception(error_of(*cs.error));
    co_return cs.count;
  }

  connection_state* m_st;
  std::uint64_t m_owner;
  std::shared_ptr<copy_stream> m_copy;
  bool m_ended = false;  // CopyDone or CopyFail sent
};

}  // namespace detail

task<std::uint64_t> connection::copy_in(std::string sql, async_generator<std::string> data) {
  const std::uint64_t owner = co_await take_connection();
  detail::copy_session session(*m_state, owner);  // from here, it frees the connection
  co_await session.start(sql, true);
  std::exception_ptr failure;
  try {
    while (auto chunk = co_await data.next())
      co_await session.put(*chunk);
  } catch (const cancelled_error&) {
    throw;  // the session sends a CopyFail: the server aborts the COPY
  } catch (const error&) {
    throw;  // the server ended the COPY (bad data)
  } catch (const connection_error&) {
    throw;
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    try {
      (void)co_await session.end("corio: the COPY's data stream failed");
    } catch (const error&) {  // the server's "COPY from stdin failed": expected
    }
    std::rethrow_exception(failure);
  }
  co_return co_await session.end(nullptr);
}

async_generator<std::string> connection::copy_out(std::string sql) {
  const std::uint64_t owner = co_await take_connection();
  detail::copy_session session(*m_state, owner);
  co_await session.start(sql, false);
  while (auto row = co_await session.get())
    co_yield std::move(*row);
}

// ---- LISTEN / NOTIFY ------------------------------------------------------------------

namespace {

std::string quote_identifier(std::string_view name) {
  std::string q = "\"";
  for (const char c : name) {
    q += c;
    if (c == '"') q += '"';
  }
  return q + '"';
}

// Unlinks a listen() stream however it ends, and UNLISTENs when it was the
// channel's last.
struct listener_guard {
  explicit listener_guard(detail::connection_state::listener* listening) noexcept : l(listening) {}
  detail::connection_state::listener* l;
  listener_guard(const listener_guard&) = delete;
  listener_guard& operator=(const listener_guard&) = delete;
  ~listener_guard() {
    detail::connection_state* st = l->state;
    if (st == nullptr) return;
    std::erase(st->m_listeners, l);
    const bool last = std::none_of(st->m_listeners.begin(), st->m_listeners.end(),
                                   [&](const auto* o) { return o->channel == l->channel; });
    if (last) st->send_dropped("UNLISTEN " + quote_identifier(l->channel));
  }
};

}  // namespace

async_generator<notification> connection::listen(std::string channel) {
  detail::connection_state* st = m_state.get();
  if (st == nullptr) throw connection_error("corio::pg: not connected");
  detail::connection_state::listener l;  // in the frame: its address stays put
  l.channel = std::move(channel);
  l.state = st;
  st->m_listeners.push_back(&l);
  const listener_guard guard(&l);
  const std::string listen_sql = "LISTEN " + quote_identifier(l.channel);
  co_await execute(listen_sql);
  for (;;) {
    co_await l.arrival.wait([&l] { return !l.queue.empty() || l.error != nullptr; },
                            "pg notification");
    if (!l.queue.empty()) {
      l.current = std::move(l.queue.front());
      l.queue.pop_front();
      co_yield std::move(l.current);
    } else if (l.error) {
      std::rethrow_exception(l.error);
    }
  }
}

corio::pool_hooks<connection> pool_hooks(std::string conninfo, connect_options options) {
  corio::pool_hooks<connection> h;
  h.create = [conninfo = std::move(conninfo), options] {
    return connection::connect(conninfo, options);
  };
  h.validate = [](connection& c) -> task<bool> {
    if (c.broken()) co_return false;
    co_await c.query("SELECT 1");
    co_return true;
  };
  h.reset = [](connection& c) -> task<> {
    co_await c.drain();
    if (c.transaction_status() != transaction_state::idle) co_await c.discard_all();
  };
  h.has_broken = [](const connection& c) { return c.broken(); };
  return h;
}

pg_conn* connection::native_handle() const noexcept {
  return m_state == nullptr ? nullptr : m_state->m_conn;
}

}  // namespace corio::pg
