// A small HTTP/1.1 server: keep-alive, pipelining, HTTP/1.0, limits, and
// error responses for malformed requests. Handlers may be plain functions
// (no coroutine frame per request) or coroutines.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "corio/net/detail/input_buffer.hpp"
#include "corio/net/http_parser.hpp"
#include "corio/net/serve.hpp"
#include "corio/net/tcp_listener.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/cancel.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// The reason phrase of a status code ("OK", "Not Found", ...), or "" for
/// codes it does not know.
[[nodiscard]] std::string_view http_status_reason(int status) noexcept;

/// The response a handler fills in. The server writes the status line,
/// Content-Length (from the body) and Connection itself; the handler adds
/// any other header. Reused across the requests of a connection, so a
/// handler that sets small bodies allocates nothing once it is warm.
class http_response {
 public:
  /// The status code to send; 200 unless set_status() changed it.
  [[nodiscard]] int status() const noexcept { return m_status; }
  /// 100..999; std::invalid_argument otherwise.
  void set_status(int code);
  /// Appends a header line. Throws std::invalid_argument when the name is
  /// not a token or the value holds CR, LF or another control character
  /// (so a request's bytes copied into a header cannot split the response),
  /// and, naming it, for a header that frames the response (Content-Length,
  /// Connection, Transfer-Encoding, in any case): the server writes those
  /// itself, and a second one could make a client and a proxy split the
  /// stream differently.
  void add_header(std::string_view name, std::string_view value);
  /// Replaces the body with a copy of `body` (Content-Length follows it;
  /// a response to HEAD sends the length without the body).
  void set_body(std::string_view body) { m_body.assign(body); }
  /// The body, to build in place (append to it rather than copy a string in).
  [[nodiscard]] std::string& body() noexcept { return m_body; }
  /// The body as it stands.
  [[nodiscard]] const std::string& body() const noexcept { return m_body; }
  /// The headers added so far, as the "Name: value" lines (each ending in
  /// CR LF) the server sends (without the Content-Length and Connection it adds itself).
  [[nodiscard]] std::string_view header_lines() const noexcept { return m_headers; }
  /// Back to 200 with no headers and no body (capacity kept).
  void clear() noexcept {
    m_status = 200;
    m_headers.clear();
    m_body.clear();
  }

 private:
  int m_status = 200;
  std::string m_headers;  // "Name: value\r\n" lines
  std::string m_body;
};

/// How an HTTP server treats its clients: the size of each request, how
/// long each part may take, and what one connection may hold. The defaults
/// follow nginx, Node and hyper (README, "Server limits"); a timeout of
/// nanoseconds::max() turns it off.
///
/// \code
///   co_await corio::serve_http(listener, handler,
///                              {.header_timeout = std::chrono::seconds(10),
///                               .max_connections = 2000});
/// \endcode
struct http_options {
  /// Bounds on each request's head and body (see http_limits).
  http_limits limits{};
  /// A request's line and headers must all arrive within this time from
  /// its first byte (from the accept, for a connection's first request):
  /// a total, so that a client trickling one byte at a time (slowloris) is
  /// cut off too. Answered with 408 when part of a request came.
  std::chrono::nanoseconds header_timeout = std::chrono::seconds(30);
  /// The body must arrive within this time of the end of the head; 408.
  std::chrono::nanoseconds body_timeout = std::chrono::seconds(60);
  /// A keep-alive connection with no request for this long is closed
  /// (silently: no request is waiting for an answer).
  std::chrono::nanoseconds keep_alive_timeout = std::chrono::seconds(75);
  /// A response that makes no progress for this long (the client stopped
  /// reading) ends the connection.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  /// Pipelined responses are sent once this many bytes are waiting, and no
  /// further request is parsed before they are: with the input, which the
  /// limits bound, this bounds what one connection holds.
  std::size_t max_output_bytes = std::size_t{64} * 1024;
  /// Connections served at once (see serve_options::max_connections).
  std::size_t max_connections = 0;
  /// Filled in while the server runs, when not null.
  server_stats* stats = nullptr;
  /// When not null, request() on it stops serve_http gracefully: it stops
  /// accepting, closes idle connections at once (a FIN; as in hyper, a
  /// connection that has not sent a byte of a request counts as idle),
  /// answers the request under way on each busy one with `Connection:
  /// close` and closes it, and after drain_timeout cancels the connections
  /// left (see server_shutdown).
  server_shutdown* shutdown = nullptr;
  /// How long a graceful stop waits for requests under way.
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
};

namespace detail {

/// One connection's buffers (the input the parser reads from, grown up to
/// the limits and compacted in place, and the responses waiting to be
/// sent) and its clock: which deadline the next read has.
class http_connection {
 public:
  /// A connection accepted now; `stats` receives its buffer accounting
  /// (may be null).
  http_connection(const http_options& options, server_stats* stats);
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  /// Parses the next request from the buffered input.
  http_parse_status next() { return m_parser.parse(m_in.pending()); }
  [[nodiscard]] const http_request& request() const noexcept { return m_parser.request(); }
  /// Queues the response to the request next() returned, and drops that
  /// request's bytes; `Connection: close` unless `keep_alive`.
  void respond(const http_response& r, bool keep_alive);
  /// Queues the error response for `s` (or 500 for a failed handler), with
  /// Connection: close.
  void respond_error(int status);
  /// A read deadline passed: queues 408 when part of a request has come,
  /// and counts the close. False when nothing should be sent.
  bool respond_timeout();

  /// Queues `100 Continue` when the request being received asked for it
  /// and waits for it before sending its body (once per request).
  void continue_if_asked();

  /// Buffers past this size are given back when the connection goes idle.
  static constexpr std::size_t keep_bytes = std::size_t{16} * 1024;

  [[nodiscard]] bool has_input() const noexcept { return !m_in.empty(); }
  [[nodiscard]] std::string_view output() const noexcept { return m_out; }
  /// Enough responses wait that they go out before the next request is
  /// parsed (http_options::max_output_bytes).
  [[nodiscard]] bool output_full() const noexcept { return m_out.size() >= m_max_output; }
  void output_sent() noexcept { m_out.clear(); }
  /// The deadline of a write starting now (write_timeout from now).
  [[nodiscard]] std::int64_t write_deadline() const noexcept;

  /// Before a read: the deadline it gets (a header, body or keep-alive
  /// one), and, when no request is under way, buffers that a large request
  /// or a pipelined burst grew are given back.
  std::int64_t before_read();
  /// Where the next read goes: at least a few KiB, the buffer compacted or
  /// grown as needed (never past what the limits allow).
  std::span<char> read_space();
  void received(std::size_t n) noexcept;
  /// A write made no progress in time: counted as a timeout.
  void write_timed_out() noexcept;

 private:
  void account() noexcept;  // the buffer sizes into the server's statistics

  http_request_parser m_parser;
  input_buffer m_in;
  std::string m_out;
  server_stats* m_stats;
  std::int64_t m_header_ns, m_body_ns, m_idle_ns, m_write_ns;
  std::size_t m_max_output;
  std::size_t m_accounted = 0;       // bytes of buffer counted in m_stats
  std::int64_t m_request_start = 0;  // first byte of the request under way
  std::int64_t m_body_start = -1;    // -1 until the head is whole
  bool m_started = true;             // a request is under way (the first: from accept)
  bool m_continue_sent = false;      // for the request being received
};

/// After an error response: stop sending, read and drop what the client
/// still sends for a short while, then close. Closing at once with unread
/// input would reset the connection and could destroy the response before
/// the client read it.
task<> linger_close(tcp_stream& s);

}  // namespace detail

namespace detail {

/// serve_http's part in a connection's graceful stop: while the connection
/// waits for a request with none of its bytes in, the drain cancels the
/// wait through the connection's deadline scope.
struct http_drain_hook : drain_hook {
  explicit http_drain_hook(scope_guard& deadline) noexcept : m_deadline(&deadline) {
    m_on_drain = [](drain_hook& h) noexcept {
      auto& self = static_cast<http_drain_hook&>(h);
      if (self.m_idle) self.m_deadline->cancel();
    };
  }
  scope_guard* m_deadline;
  bool m_idle = false;  // waiting for the next request, none of it in
};

/// serve_http_connection, told of its server's graceful stop by `drain`
/// when not null.
template <class Handler>
task<> http_connection_task(tcp_stream stream, Handler handler, http_options options,
                            drain_hooks* drain) {
  // A local, not the parameter: it closes as the task ends, even while a
  // join_handle keeps the finished frame.
  tcp_stream s = std::move(stream);
  using result = std::invoke_result_t<Handler&, const http_request&, http_response&>;
  http_connection conn(options, options.stats);
  // One cancel scope whose deadline moves with the connection's state: no
  // timer operation per request (see scope_guard::set_deadline). Only
  // waits for the client run under a deadline; the handler never does.
  scope_guard deadline(scope_guard::never, true);
  http_drain_hook drain_watch(deadline);
  if (drain != nullptr) drain->add(drain_watch);
  http_response response;
  std::exception_ptr failure;
  std::error_code ec;      // a reset or broken pipe ends this client only
  bool open = true;        // false: the last response is queued
  bool timed_out = false;  // a deadline passed (converted in its catch)
  for (;;) {
    while (open) {
      const http_parse_status st = conn.next();
      if (st == http_parse_status::incomplete) {
        conn.continue_if_asked();
        break;
      }
      if (st != http_parse_status::complete) {
        conn.respond_error(http_error_status(st));
        open = false;
        break;
      }
      response.clear();
      try {
        if constexpr (std::is_void_v<result>) {
          handler(conn.request(), response);
        } else {
          // clang-tidy reads co_await as a use of the moved-from parameter.
          co_await handler(conn.request(), response);  // NOLINT(bugprone-use-after-move)
        }
      } catch (const cancelled_error&) {
        throw;
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        conn.respond_error(500);
        open = false;
        break;
      }
      // A graceful stop: this response is the connection's last.
      open = conn.request().keep_alive && !drain_watch.m_draining;
      conn.respond(response, open);
      if (conn.output_full()) break;  // sent before the next is parsed
    }
    if (!conn.output().empty()) {
      // Inline rather than a helper coroutine: no frame per response.
      try {
        for (std::size_t sent = 0; sent < conn.output().size() && !ec;) {
          deadline.set_deadline(conn.write_deadline());
          sent +=
              co_await s.write_some(conn.output().data() + sent, conn.output().size() - sent, ec);
        }
      } catch (const cancelled_error&) {
        if (!deadline.timed_out()) throw;
        timed_out = true;
      }
      deadline.set_deadline(detail::scope_guard::never);
      if (timed_out) conn.write_timed_out();
      if (timed_out || ec) break;  // the client stopped reading, or is gone
      conn.output_sent();
      if (open && conn.has_input()) continue;  // parse on before reading more
    }
    if (!open) {
      co_await linger_close(s);
      break;
    }
    if (response.body().capacity() > http_connection::keep_bytes) response = http_response();
    drain_watch.m_idle = !conn.has_input();
    bool drained = drain_watch.m_idle && drain_watch.m_draining;
    std::size_t n = 0;
    if (!drained) {
      try {
        deadline.set_deadline(conn.before_read());
        const std::span<char> space = conn.read_space();
        n = co_await s.read_some(space.data(), space.size(), ec);
      } catch (const cancelled_error&) {
        if (!deadline.timed_out()) throw;
        timed_out = true;
      }
      drain_watch.m_idle = false;
      drained = timed_out && drain_watch.m_draining && !conn.has_input();  // the drain woke it
    }
    if (drained) {
      // A graceful stop with no request under way: closed as after an
      // error response (a FIN, then a moment to drop what the client still
      // sends), not counted as a timeout.
      deadline.clear_timeout();
      deadline.set_deadline(scope_guard::never);
      open = false;
      continue;
    }
    if (timed_out) {
      // 408 when part of a request came (then lingering as after any
      // error), else a quiet close.
      deadline.clear_timeout();
      timed_out = false;
      if (!conn.respond_timeout()) break;
      open = false;
      continue;
    }
    deadline.set_deadline(detail::scope_guard::never);
    if (ec || n == 0) break;  // the client is gone, or done
    conn.received(n);
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail

/// Serves one connection: parses requests, calls `handler(request,
/// response)` for each (`void` or `task<>` result), and writes the
/// responses, those of pipelined requests together in one write (up to
/// max_output_bytes at a time). Ends when the client closes, asks to
/// (Connection: close, HTTP/1.0), sends a malformed request (answered with
/// 400, 413, 431, 501 or 505, then closed), is too slow (408, see
/// http_options), or stops reading. A request with `Expect: 100-continue`
/// whose body has not arrived gets `100 Continue` first, so a client that
/// waits for it sends the body. A handler exception is answered with 500,
/// the connection closes, and the exception propagates out of this task.
/// Network errors (reset, broken pipe) end it quietly. Deadlines apply
/// only while the server waits for the client, never to the handler.
///
/// Cancellation: the connection is closed; a response not fully written
/// is lost with it. (serve_http's graceful stop, see server_shutdown, ends
/// a connection without losing a response.)
///
/// \code
///   co_await corio::serve_http(listener, [](const corio::http_request& req,
///                                          corio::http_response& res) {
///     res.add_header("Content-Type", "text/plain");
///     res.set_body(req.target == "/" ? "Hello, World!" : "nothing here");
///   });
/// \endcode
template <class Handler>
task<> serve_http_connection(tcp_stream stream, Handler handler, http_options options = {}) {
  return detail::http_connection_task(std::move(stream), std::move(handler), options, nullptr);
}

/// Accepts connections on `listener` (a tcp_listener, or the
/// handed_connections of serve_from_one_acceptor) for ever and serves each
/// with its own task (a copy of `handler` each), as `serve` does:
/// cancelling serve_http closes every connection, and `options` bounds the
/// connections, their memory and their time (see http_options), and may
/// give it a graceful stop (`options.shutdown`). See serve_http_connection.
template <class Listener, class Handler>
task<> serve_http(Listener& listener, Handler handler, http_options options = {}) {
  // The connections keep their own deadlines; serve's idle watch is off.
  const serve_options accept{.max_connections = options.max_connections,
                             .idle_timeout = std::chrono::nanoseconds::max(),
                             .stats = options.stats,
                             .shutdown = options.shutdown,
                             .drain_timeout = options.drain_timeout};
  return serve(
      listener,
      [handler = std::move(handler), options](tcp_stream s, detail::drain_hooks& drain) {
        s.set_nodelay(true);
        return detail::http_connection_task(std::move(s), handler, options, &drain);
      },
      accept);
}

}  // namespace corio
