// A small HTTP/1.1 server: keep-alive, pipelining, HTTP/1.0, limits, and
// error responses for malformed requests. Handlers may be plain functions
// (no coroutine frame per request) or coroutines.
#pragma once

#include <cstddef>
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
  [[nodiscard]] int status() const noexcept { return m_status; }
  /// 100..999; std::invalid_argument otherwise.
  void set_status(int code);
  /// Appends a header line. Throws std::invalid_argument when the name is
  /// not a token or the value holds CR, LF or another control character
  /// (so a request's bytes copied into a header cannot split the response).
  void add_header(std::string_view name, std::string_view value);
  void set_body(std::string_view body) { m_body.assign(body); }
  [[nodiscard]] std::string& body() noexcept { return m_body; }
  [[nodiscard]] const std::string& body() const noexcept { return m_body; }
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

namespace detail {

/// One connection's buffers: the input the parser reads from (grown up to
/// the limits, compacted in place) and the responses waiting to be sent.
class http_connection {
 public:
  explicit http_connection(http_limits limits);

  /// Parses the next request from the buffered input.
  http_parse_status next() { return m_parser.parse(m_in.pending()); }
  [[nodiscard]] const http_request& request() const noexcept { return m_parser.request(); }
  /// Queues the response to the request next() returned, and drops that
  /// request's bytes.
  void respond(const http_response& r);
  /// Queues the error response for `s` (or 500 for a failed handler), with
  /// Connection: close.
  void respond_error(int status);

  /// Queues `100 Continue` when the request being received asked for it
  /// and waits for it before sending its body (once per request).
  void continue_if_asked();

  [[nodiscard]] std::string_view output() const noexcept { return m_out; }
  void output_sent() noexcept { m_out.clear(); }
  /// Where the next read goes: at least a few KiB, the buffer compacted or
  /// grown as needed (never past what the limits allow).
  std::span<char> read_space();
  void received(std::size_t n) noexcept { m_in.received(n); }

 private:
  http_request_parser m_parser;
  input_buffer m_in;
  std::string m_out;
  bool m_continue_sent = false;  // for the request being received
};

/// After an error response: stop sending, read and drop what the client
/// still sends for a short while, then close. Closing at once with unread
/// input would reset the connection and could destroy the response before
/// the client read it.
task<> linger_close(tcp_stream& s);

}  // namespace detail

/// Serves one connection: parses requests, calls `handler(request,
/// response)` for each (`void` or `task<>` result), and writes the
/// responses, those of pipelined requests together in one write. Ends when
/// the client closes, asks to (Connection: close, HTTP/1.0), or sends a
/// malformed request (answered with 400, 413, 431, 501 or 505, then
/// closed). A request with `Expect: 100-continue` whose body has not
/// arrived gets `100 Continue` first, so a client that waits for it sends
/// the body. A handler exception is answered with 500, the connection
/// closes, and the exception propagates out of this task. Network errors
/// (reset, broken pipe) end it quietly.
///
/// Cancellation: the connection is closed; a response not fully written
/// is lost with it.
///
/// \code
///   co_await corio::serve_http(listener, [](const corio::http_request& req,
///                                          corio::http_response& res) {
///     res.add_header("Content-Type", "text/plain");
///     res.set_body(req.target == "/" ? "Hello, World!" : "nothing here");
///   });
/// \endcode
template <class Handler>
task<> serve_http_connection(tcp_stream stream, Handler handler, http_limits limits = {}) {
  // A local, not the parameter: it closes as the task ends, even while a
  // join_handle keeps the finished frame.
  tcp_stream s = std::move(stream);
  using result = std::invoke_result_t<Handler&, const http_request&, http_response&>;
  detail::http_connection conn(limits);
  http_response response;
  std::exception_ptr failure;
  std::error_code ec;  // a reset or broken pipe ends this client only
  for (;;) {
    bool open = true;
    for (;;) {
      const http_parse_status st = conn.next();
      if (st == http_parse_status::incomplete) break;
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
      const bool keep_alive = conn.request().keep_alive;
      conn.respond(response);
      if (!keep_alive) {
        open = false;
        break;
      }
    }
    if (open) conn.continue_if_asked();
    if (!conn.output().empty()) {
      (void)co_await s.write_all(conn.output().data(), conn.output().size(), ec);
      if (ec) break;
      conn.output_sent();
    }
    if (!open) {
      co_await detail::linger_close(s);
      break;
    }
    const std::span<char> space = conn.read_space();
    const std::size_t n = co_await s.read_some(space.data(), space.size(), ec);
    if (ec || n == 0) break;  // the client is gone, or done
    conn.received(n);
  }
  if (failure) std::rethrow_exception(failure);
}

/// Accepts connections for ever and serves each with its own task (a copy
/// of `handler` each), as `serve` does: cancelling serve_http closes every
/// connection. See serve_http_connection.
template <class Handler>
task<> serve_http(tcp_listener& listener, Handler handler, http_limits limits = {}) {
  return serve(listener, [handler = std::move(handler), limits](tcp_stream s) {
    s.set_nodelay(true);
    return serve_http_connection(std::move(s), handler, limits);
  });
}

}  // namespace corio
