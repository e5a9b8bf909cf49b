// pg::connection: libpq driven by the loop in pipeline mode. The state
// sends each query as it is issued (libpq buffers it; a Sync of its own
// follows each), a reader job reads results as the socket turns readable
// and hands each query's result to its waiter in order.
#include "corio/pg/connection.hpp"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
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

std::string field_of(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v != nullptr ? v : "";
}

std::exception_ptr error_of(const PGresult* r) {
  return std::make_exception_ptr(
      error(field_of(r, PG_DIAG_SQLSTATE), field_of(r, PG_DIAG_MESSAGE_PRIMARY),
            field_of(r, PG_DIAG_MESSAGE_DETAIL), field_of(r, PG_DIAG_MESSAGE_HINT)));
}

// FATAL and PANIC end the session: the server closes the connection next.
bool ends_session(const PGresult* r) {
  const std::string severity = field_of(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  return severity == "FATAL" || severity == "PANIC";
}

struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using owned_result = std::unique_ptr<PGresult, result_deleter>;

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

/// A streamed query's rows on their way from the connection to the stream.
struct row_stream {
  static constexpr std::size_t pause_at = 1024;  // rows waiting: stop reading
  static constexpr std::size_t resume_at = 512;

  std::deque<result> rows;  // one single-row result each
  result current;           // the one whose row was yielded last
  row current_row;
  corio::detail::wake_slot arrival;   // the stream waits here for rows
  connection_state* state = nullptr;  // nullptr once the connection is gone
  bool done = false;
  bool abandoned = false;  // the stream ended first: rows are dropped
  std::exception_ptr error;
};

/// A query sent and not yet answered.
struct pending_query {
  query_waiter* waiter = nullptr;  // nullptr once its waiter was cancelled
  bool awaiting_prepare = false;   // its first result is its statement's Prepare
  bool single_row = false;         // single-row mode is set (a stream's query)
  std::string statement;           // its prepared statement's name (short: no allocation)
  owned_result result;
  owned_result error;
  std::shared_ptr<row_stream> stream;  // set for stream()
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

  /// Connects (libpq's non-blocking connect, polled from the loop) and
  /// enters pipeline mode; on success, starts reading.
  task<> establish(std::string conninfo);

  /// Sends a query (and first its Prepare, on a cache miss) with a Sync of
  /// its own; its result goes to the returned slot's waiter (set later).
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
    }
    std::deque<pending_query> failed;
    failed.swap(m_pending);
    for (pending_query& p : failed) {
      if (p.waiter != nullptr) p.waiter->fail(e);
      if (p.stream) {
        p.stream->error = e;
        p.stream->state = nullptr;
        p.stream->arrival.notify();
      }
    }
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

  // Notifications libpq parsed (it does while reading) go to the streams
  // listening on their channel.
  void deliver_notifications() noexcept {
    if (m_conn == nullptr || m_listeners.empty() || m_copying) return;
    // libpq parses a notification only outside a pipeline or while a query
    // runs: between queries, a listening connection leaves pipeline mode
    // (the next query enters it again), and PQisBusy parses what was read.
    if (m_pending.empty() && in_pipeline()) (void)PQexitPipelineMode(m_conn);
    (void)PQisBusy(m_conn);
    while (m_conn != nullptr) {
      PGnotify* n = PQnotifies(m_conn);
      if (n == nullptr) return;
      for (listener* l : m_listeners) {
        if (l->channel != n->relname || l->error) continue;
        if (l->queue.size() >= max_unread_notifications) {
          l->error = std::make_exception_ptr(
              connection_error("corio::pg: a listener fell more than 65536 notifications behind"));
        } else {
          try {
            l->queue.push_back({n->relname, n->extra != nullptr ? n->extra : "", n->be_pid});
          } catch (...) {
            l->error = std::current_exception();
          }
        }
        l->arrival.notify();
      }
      PQfreemem(n);
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
  std::deque<pending_query> m_pending;  // in the order of their results
  std::uint64_t m_generation = 0;
  bool m_broken = true;
  bool m_writing = false;  // a writer job waits for the socket
  std::exception_ptr m_error;
  connection_stats m_stats;

 private:
  struct statement {
    std::string name;
    std::uint64_t last_used = 0;
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

  [[noreturn]] void fail_send(const char* what) {
    const std::exception_ptr e =
        std::make_exception_ptr(connection_error(libpq_message(m_conn, what)));
    lose(e);
    std::rethrow_exception(e);
  }

  // What libpq could not send at once goes when the socket takes it; and
  // results libpq read while sending are handed out (no readiness would
  // announce them).
  void flush() noexcept {
    if (m_broken || m_copying) return;
    cork(false);
    if (m_writing) return;
    ++m_stats.flushes;
    const int r = PQflush(m_conn);
    if (r < 0) {
      lose(std::make_exception_ptr(connection_error(libpq_message(m_conn, "send"))));
      return;
    }
    if (r > 0) {
      m_writing = true;
      try {
        spawn_job(write_loop(state_link(this), m_generation), "pg: writer");
      } catch (...) {
        lose(std::current_exception());
        return;
      }
    }
    process_results();
  }

  static task<> write_loop(state_link link, std::uint64_t generation) {
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      co_await corio::detail::io_call(corio::detail::io_kind::poll_out, PQsocket(st->m_conn),
                                      nullptr, 0);
      st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      ++st->m_stats.flushes;
      const int r = PQflush(st->m_conn);
      if (r < 0) {
        st->lose(std::make_exception_ptr(connection_error(libpq_message(st->m_conn, "send"))));
        co_return;
      }
      if (r == 0) {
        st->m_writing = false;
        st->process_results();
        co_return;
      }
    }
  }

  static task<> read_loop(state_link link, std::uint64_t generation) {
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      if (st->m_paused || st->m_copying) {  // a stream is behind, or a COPY reads itself
        co_await st->m_reader_resume.wait([st] { return !st->m_paused && !st->m_copying; },
                                          "pg reader (a stream is behind, or a COPY reads)");
        st = link.state();
        if (st == nullptr || st->m_generation != generation) co_return;
        st->process_results();  // what libpq already holds
        continue;
      }
      co_await corio::detail::io_call(corio::detail::io_kind::poll_in, PQsocket(st->m_conn),
                                      nullptr, 0);
      st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      if (st->m_copying) continue;  // the COPY reads its own data
      ++st->m_stats.reads;
      if (PQconsumeInput(st->m_conn) == 0) {
        st->lose(std::make_exception_ptr(
            connection_error(libpq_message(st->m_conn, "the connection was lost"))));
        co_return;
      }
      st->process_results();
      st->deliver_notifications();
      if (st->m_broken) co_return;
    }
  }

  // Hands out every result libpq has whole. In pipeline mode each query's
  // results end with a null, and its Sync with PGRES_PIPELINE_SYNC: that
  // is when the query is done.
  void process_results() noexcept {
    bool last_was_null = false;
    while (!m_broken && !m_pending.empty() && !m_paused) {
      pending_query& front = m_pending.front();
      // Single-row mode is set when the stream's query is libpq's current
      // one, before any of its rows is parsed (libpq refuses while the
      // statement's Prepare is current: then it is tried again).
      if (front.stream && !front.single_row && !front.awaiting_prepare) {
        front.single_row = PQsetSingleRowMode(m_conn) == 1;
      }
      if (PQisBusy(m_conn) != 0) return;
      PGresult* r = PQgetResult(m_conn);
      if (r == nullptr) {
        if (last_was_null) return;  // nothing more until more input
        last_was_null = true;
        continue;
      }
      last_was_null = false;
      owned_result owned(r);
      pending_query& q = m_pending.front();
      switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
          finish_front();
          break;
        case PGRES_FATAL_ERROR:
          if (PQstatus(m_conn) == CONNECTION_BAD) {
            lose(std::make_exception_ptr(
                connection_error(libpq_message(m_conn, "the connection was lost"))));
            return;
          }
          if (ends_session(r)) {  // a shutdown, a terminated backend: not this query's fault
            lose(std::make_exception_ptr(connection_error(
                "corio::pg: the server ended the session: " + field_of(r, PG_DIAG_MESSAGE_PRIMARY) +
                " (SQLSTATE " + field_of(r, PG_DIAG_SQLSTATE) + ")")));
            return;
          }
          if (q.awaiting_prepare) {
            q.awaiting_prepare = false;
            note_failed_prepare(q, r);
          }
          if (!q.error) q.error = std::move(owned);
          break;
        case PGRES_PIPELINE_ABORTED:  // after an error before this Sync
          break;
        case PGRES_SINGLE_TUPLE:
          take_row(q, std::move(owned));
          break;
        default:
          if (q.awaiting_prepare) {
            q.awaiting_prepare = false;
          } else {
            q.result = std::move(owned);
          }
          break;
      }
    }
  }

  // A streamed row goes to its stream; a stream that falls behind pauses
  // the reader (flat memory: the rest waits in the socket).
  void take_row(pending_query& q, owned_result r) noexcept {
    row_stream* s = q.stream.get();
    if (s == nullptr || s->abandoned || q.error) return;
    try {
      s->rows.emplace_back(r.release());
    } catch (...) {
      if (!q.error) q.error.reset(PQmakeEmptyPGresult(m_conn, PGRES_FATAL_ERROR));
      return;
    }
    s->arrival.notify();
    if (s->rows.size() >= row_stream::pause_at) m_paused = true;
  }

 public:
  /// A stream took rows: the reader goes on when it is far enough behind.
  void stream_took(const row_stream& s) noexcept {
    if (m_paused && s.rows.size() <= row_stream::resume_at) {
      m_paused = false;
      wake_reader();
    }
  }
  /// A stream ended before its rows did: the rest are dropped.
  void stream_abandoned(row_stream& s) noexcept {
    s.abandoned = true;
    s.rows.clear();
    if (m_paused) {
      m_paused = false;
      wake_reader();
    }
  }

 private:
  void wake_reader() noexcept { m_reader_resume.notify(); }

  // A Prepare the server refused: later queries of the same text, queued
  // behind it, fail with its error rather than "statement does not exist";
  // the next one prepares again.
  void note_failed_prepare(const pending_query& q, const PGresult* r) {
    for (auto it = m_statements.begin(); it != m_statements.end(); ++it) {
      if (it->second.name == q.statement) {
        m_failed_prepares[it->second.name] = error_of(r);
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
      if (q.error) s.error = error_of(q.error.get());
      s.done = true;
      s.state = nullptr;
      s.arrival.notify();
    } else if (q.waiter == nullptr) {
      ++m_stats.dropped;
    } else if (q.error) {
      std::exception_ptr e;
      if (field_of(q.error.get(), PG_DIAG_SQLSTATE) == "26000" && !q.statement.empty()) {
        if (auto it = m_failed_prepares.find(q.statement); it != m_failed_prepares.end()) {
          e = it->second;
        }
      }
      q.waiter->fail(e ? e : error_of(q.error.get()));
    } else {
      q.waiter->deliver(result(q.result.release()));
    }
    if (m_pending.empty()) {
      m_failed_prepares.clear();  // none is queued behind them now
      end_cancel_when_drained();
    }
  }

  // The statement for `sql` with these parameter types: cached, or
  // prepared now (and the least recently used one deallocated when the
  // cache is full).
  std::pair<const std::string*, bool> statement_for(std::string_view sql,
                                                    std::span<const Oid> types);

  // libpq pushes each query's Sync to the socket at once (PQpipelineSync
  // flushes; PostgreSQL 17's PQsendPipelineSync would not). On TCP, the
  // second query of a tick corks the socket until the tick ends: the
  // sends still happen, but the queries leave in one segment, and the
  // server (and the kernel's loopback delivery) wakes once per tick
  // rather than once per query.
  [[nodiscard]] bool in_pipeline() const noexcept {
    return PQpipelineStatus(m_conn) != PQ_PIPELINE_OFF;
  }

  void cork(bool on) noexcept {
    if (on == m_corked || !m_tcp) return;
    const int v = on ? 1 : 0;
    if (::setsockopt(PQsocket(m_conn), IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0) m_corked = on;
  }

  tick_hook m_flush;
  bool m_paused = false;                     // a stream is behind: the reader waits
  bool m_copying = false;                    // a COPY has the connection and reads it itself
  corio::detail::wake_slot m_reader_resume;  // the reader waits here while paused
  bool m_tcp = false;
  bool m_corked = false;
  // Prepared statements by query text and parameter types.
  std::unordered_map<std::string, statement> m_statements;
  std::unordered_map<std::string, std::exception_ptr> m_failed_prepares;
  std::uint64_t m_use_clock = 0;
  std::uint64_t m_statement_count = 0;
  std::string m_unnamed;  // the unnamed statement's name, "" (no cache)
  // Reused per query: no allocation once they have grown.
  std::string m_key;
  std::vector<Oid> m_types;
  std::vector<const char*> m_values;
  std::vector<int> m_lengths;
  std::vector<int> m_formats;

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
  if (PQsetnonblocking(m_conn, 1) != 0 || PQenterPipelineMode(m_conn) != 1) {
    throw connection_error(libpq_message(m_conn, "pipeline mode"));
  }
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  m_tcp = ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
          (local.ss_family == AF_INET || local.ss_family == AF_INET6);
  m_broken = false;
  m_error = nullptr;
  ++m_generation;
  spawn_job(read_loop(state_link(this), m_generation), "pg: reader");
}

std::pair<const std::string*, bool> connection_state::statement_for(std::string_view sql,
                                                                    std::span<const Oid> types) {
  if (m_options.statement_cache == 0) {
    m_key.assign(sql);  // for its terminating NUL
    return {&m_unnamed, true};
  }
  m_key.assign(sql);
  m_key.push_back('\0');
  m_key.append(reinterpret_cast<const char*>(types.data()), types.size_bytes());
  if (auto it = m_statements.find(m_key); it != m_statements.end()) {
    it->second.last_used = ++m_use_clock;
    return {&it->second.name, false};
  }
  if (m_statements.size() >= m_options.statement_cache) {
    auto oldest = m_statements.begin();
    for (auto it = m_statements.begin(); it != m_statements.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    // Queued behind every query that still uses it. Its outcome is dropped.
    const std::string deallocate = "DEALLOCATE " + oldest->second.name;
    if (PQsendQueryParams(m_conn, deallocate.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) ==
            0 ||
        PQpipelineSync(m_conn) == 0) {
      fail_send("send");
    }
    m_pending.emplace_back();
    m_statements.erase(oldest);
    ++m_stats.evictions;
  }
  std::string name = "corio_" + std::to_string(++m_statement_count);
  auto [it, added] = m_statements.emplace(m_key, statement{std::move(name), ++m_use_clock});
  return {&it->second.name, true};
}

pending_query& connection_state::enqueue(std::string_view sql, std::span<const param> params) {
  if (m_broken) {
    if (m_error) std::rethrow_exception(m_error);
    throw connection_error("corio::pg: not connected");
  }
  const std::size_t n = params.size();
  m_types.resize(n);
  m_values.resize(n);
  m_lengths.resize(n);
  m_formats.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (params[i].too_long()) {
      throw std::length_error("corio::pg: parameter $" + std::to_string(i + 1) +
                              " is longer than 2 GiB");
    }
    m_types[i] = params[i].type();
    m_values[i] = params[i].value();
    m_lengths[i] = params[i].length();
    m_formats[i] = params[i].format();
  }
  if (!in_pipeline() && PQenterPipelineMode(m_conn) != 1) fail_send("pipeline mode");
  if (m_flush.linked()) cork(true);  // a second query this tick
  const auto [name, prepare] = statement_for(sql, m_types);
  const int count = static_cast<int>(n);
  if (prepare) {
    if (PQsendPrepare(m_conn, name->c_str(), m_key.c_str(), count, m_types.data()) == 0) {
      fail_send("send");
    }
    ++m_stats.prepares;
  }
  if (PQsendQueryPrepared(m_conn, name->c_str(), count, m_values.data(), m_lengths.data(),
                          m_formats.data(), 1) == 0 ||
      PQpipelineSync(m_conn) == 0) {
    fail_send("send");
  }
  ++m_stats.queries;
  pending_query& q = m_pending.emplace_back();
  q.awaiting_prepare = prepare;
  q.statement = *name;
  // libpq pushed what the socket took; the rest, and any results it read
  // while sending, are seen to at the end of the tick.
  m_loop->at_tick_end(m_flush);
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
  if (m_state == nullptr || m_state->m_conn == nullptr || !m_state->m_pending.empty()) {
    return transaction_state::unknown;
  }
  switch (PQtransactionStatus(m_state->m_conn)) {
    case PQTRANS_IDLE:
      return transaction_state::idle;
    case PQTRANS_INTRANS:
      return transaction_state::in_transaction;
    case PQTRANS_INERROR:
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
    if (!s->done && s->state != nullptr) s->state->stream_abandoned(*s);
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
  detail::pending_query& q = st->enqueue(sql, params);
  q.stream = s;
  // The only query in flight is libpq's current one: single-row mode now,
  // before a read could parse its rows (else process_results sets it).
  if (st->m_pending.size() == 1 && !q.awaiting_prepare) {
    q.single_row = PQsetSingleRowMode(st->m_conn) == 1;
  }
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
      if (s->state != nullptr) s->state->stream_took(*s);
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
/// transaction does), out of pipeline mode (libpq allows no COPY in one),
/// and does its own reading and writing while the reader job waits. One
/// interrupted half-way (a cancellation, a failed data stream that could
/// not be ended) closes the connection: the server then aborts the COPY.
class copy_session {
 public:
  copy_session(connection_state& st, std::uint64_t owner) noexcept : m_st(&st), m_owner(owner) {}
  copy_session(const copy_session&) = delete;
  copy_session& operator=(const copy_session&) = delete;
  ~copy_session() {
    if (m_in_copy) {
      m_st->lose(std::make_exception_ptr(
          connection_error("corio::pg: a COPY was interrupted; the connection was closed")));
    } else if (m_st->m_copying) {
      m_st->m_copying = false;
      m_st->wake_reader();
    }
    m_st->release(m_owner);
  }

  /// Waits for the queries sent before, leaves pipeline mode, sends `sql`
  /// and reads its first result: the COPY's start, or its error.
  task<> start(const std::string& sql, ExecStatusType expected) {
    co_await query_awaiter<0, false>(m_st, m_owner, "SELECT 1");  // the ones before are done
    if (m_st->m_broken) std::rethrow_exception(m_st->m_error);
    PGconn* c = m_st->m_conn;
    m_st->m_copying = true;
    if (m_st->in_pipeline() && PQexitPipelineMode(c) != 1) fail("leaving pipeline mode");
    if (PQsendQueryParams(c, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 0) {
      fail("send");
    }
    co_await flush();
    owned_result r(co_await next_result());
    if (r != nullptr && PQresultStatus(r.get()) == expected) {
      m_in_copy = true;
      co_return;
    }
    co_await finish_results();
    if (r != nullptr && PQresultStatus(r.get()) == PGRES_FATAL_ERROR) {
      std::rethrow_exception(error_of(r.get()));
    }
    throw std::logic_error("corio::pg: not a COPY " +
                           std::string(expected == PGRES_COPY_IN ? "FROM STDIN" : "TO STDOUT"));
  }

  /// COPY FROM STDIN: queues a chunk, waiting while libpq's buffer is full.
  task<> put(std::string_view chunk) {
    for (;;) {
      const int r = PQputCopyData(m_st->m_conn, chunk.data(), static_cast<int>(chunk.size()));
      if (r == 1) co_return;
      if (r < 0) fail("COPY data");
      co_await wait(corio::detail::io_kind::poll_out);
      if (PQflush(m_st->m_conn) < 0) fail("send");
    }
  }

  /// COPY FROM STDIN: ends the data (`error`: aborts the COPY with it) and
  /// gives the rows copied, or throws the server's error.
  task<std::uint64_t> end(const char* error) {
    for (;;) {
      const int r = PQputCopyEnd(m_st->m_conn, error);
      if (r == 1) break;
      if (r < 0) fail("COPY end");
      co_await wait(corio::detail::io_kind::poll_out);
    }
    co_await flush();
    co_return co_await outcome();
  }

  /// COPY TO STDOUT: the next row, or nullopt after the last (the outcome
  /// read, or the server's error thrown).
  task<std::optional<std::string>> get() {
    for (;;) {
      char* buf = nullptr;
      const int n = PQgetCopyData(m_st->m_conn, &buf, 1);
      if (n > 0) {
        std::string row(buf, static_cast<std::size_t>(n));
        PQfreemem(buf);
        co_return row;
      }
      if (n == 0) {
        co_await wait(corio::detail::io_kind::poll_in);
        if (PQconsumeInput(m_st->m_conn) == 0) fail("COPY data");
        continue;
      }
      if (n == -2) fail("COPY data");
      (void)co_await outcome();
      co_return std::nullopt;
    }
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw connection_error(libpq_message(m_st->m_conn, what));
  }

  task<> wait(corio::detail::io_kind kind) {
    co_await corio::detail::io_call(kind, PQsocket(m_st->m_conn), nullptr, 0);
  }

  task<> flush() {
    for (;;) {
      const int r = PQflush(m_st->m_conn);
      if (r == 0) co_return;
      if (r < 0) fail("send");
      co_await wait(corio::detail::io_kind::poll_out);
    }
  }

  // The next result once libpq has it whole; nullptr after a query's last.
  task<PGresult*> next_result() {
    while (PQisBusy(m_st->m_conn) != 0) {
      co_await wait(corio::detail::io_kind::poll_in);
      if (PQconsumeInput(m_st->m_conn) == 0) fail("the connection was lost");
    }
    co_return PQgetResult(m_st->m_conn);
  }

  task<> finish_results() {
    for (;;) {
      owned_result r(co_await next_result());
      if (r == nullptr) co_return;
    }
  }

  // The COPY's final result: its row count, or its error thrown.
  task<std::uint64_t> outcome() {
    owned_result r(co_await next_result());
    m_in_copy = false;
    co_await finish_results();
    if (r == nullptr || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      if (r != nullptr && PQresultStatus(r.get()) == PGRES_FATAL_ERROR) {
        std::rethrow_exception(error_of(r.get()));
      }
      throw connection_error("corio::pg: a COPY ended without its outcome");
    }
    co_return result(r.release()).affected();
  }

  connection_state* m_st;
  std::uint64_t m_owner;
  bool m_in_copy = false;
};

}  // namespace detail

task<std::uint64_t> connection::copy_in(std::string sql, async_generator<std::string> data) {
  const std::uint64_t owner = co_await take_connection();
  detail::copy_session session(*m_state, owner);  // from here, it frees the connection
  co_await session.start(sql, PGRES_COPY_IN);
  std::exception_ptr failure;
  try {
    while (auto chunk = co_await data.next())
      co_await session.put(*chunk);
  } catch (const cancelled_error&) {
    throw;  // the session closes the connection: the server aborts the COPY
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
  co_await session.start(sql, PGRES_COPY_OUT);
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
