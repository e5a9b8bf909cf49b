// The non-template half of the HTTP server: buffers, response
// serialisation, the lingering close.
#include "corio/net/http_server.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "corio/task/cancel.hpp"

namespace corio {
namespace {

constexpr std::size_t k_min_read = std::size_t{4} * 1024;

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, r.ptr);
}

void append_status_line(std::string& out, int status) {
  if (status == 200) {
    out.append("HTTP/1.1 200 OK\r\n");
    return;
  }
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(status));
  out.push_back(' ');
  out.append(http_status_reason(status));
  out.append("\r\n");
}

}  // namespace

std::string_view http_status_reason(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

void http_response::set_status(int code) {
  if (code < 100 || code > 999)
    throw std::invalid_argument("corio::http_response: status out of range");
  m_status = code;
}

void http_response::add_header(std::string_view name, std::string_view value) {
  if (!detail::is_http_token(name) || !detail::is_http_field_value(value))
    throw std::invalid_argument("corio::http_response: header name or value not allowed");
  if (detail::is_http_framing_field(name)) {
    throw std::invalid_argument("corio::http_response: " + std::string(name) +
                                " frames the response: the server writes the framing itself");
  }
  m_headers.append(name);
  m_headers.append(": ");
  m_headers.append(value);
  m_headers.append("\r\n");
}

namespace detail {

namespace {

std::int64_t ns_of(std::chrono::nanoseconds d) noexcept {
  return d == std::chrono::nanoseconds::max() ? scope_guard::never : saturating_ns(d);
}

}  // namespace

http_connection::http_connection(const http_options& options, server_stats* stats)
    : m_parser(options.limits),
      m_stats(stats),
      m_header_ns(ns_of(options.header_timeout)),
      m_body_ns(ns_of(options.body_timeout)),
      m_idle_ns(ns_of(options.keep_alive_timeout)),
      m_write_ns(ns_of(options.write_timeout)),
      m_max_output(std::max<std::size_t>(options.max_output_bytes, 1)),
      m_request_start(current_loop().now_ns()) {}

http_connection::~http_connection() {
  if (m_stats != nullptr) m_stats->buffer_bytes -= m_accounted;
}

void http_connection::account() noexcept {
  if (m_stats == nullptr) return;
  const std::size_t held = m_in.capacity() + m_out.capacity();
  if (held == m_accounted) return;
  m_stats->buffer_bytes = m_stats->buffer_bytes - m_accounted + held;
  m_accounted = held;
  if (held > m_stats->peak_connection_buffer_bytes) m_stats->peak_connection_buffer_bytes = held;
}

void http_connection::continue_if_asked() {
  if (!m_parser.wants_continue() || m_continue_sent) return;
  m_out.append("HTTP/1.1 100 Continue\r\n\r\n");
  m_continue_sent = true;
}

void http_connection::respond(const http_response& r, bool keep_alive) {
  m_continue_sent = false;
  const http_request& req = m_parser.request();
  append_status_line(m_out, r.status());
  m_out.append(r.header_lines());
  m_out.append("Content-Length: ");
  append_number(m_out, r.body().size());
  m_out.append("\r\n");
  if (!keep_alive) {
    m_out.append("Connection: close\r\n");
  } else if (req.version_minor == 0) {
    m_out.append("Connection: keep-alive\r\n");
  }
  m_out.append("\r\n");
  // HEAD gets the headers a GET would, and no body (RFC 9110 9.3.2).
  if (req.method != "HEAD") m_out.append(r.body());
  m_in.consume(m_parser.consumed());
  // The next request, if its bytes are here, starts now.
  m_started = !m_in.empty();
  m_request_start = current_loop().now_ns();
  m_body_start = -1;
}

void http_connection::respond_error(int status) {
  append_status_line(m_out, status);
  m_out.append("Content-Length: 0\r\nConnection: close\r\n\r\n");
}

bool http_connection::respond_timeout() {
  if (m_stats != nullptr) ++(m_started ? m_stats->timed_out : m_stats->idle_closed);
  // A connection's first request counts from the accept: one that sent
  // nothing at all is closed without a word, as an idle one is.
  if (!m_started || m_in.empty()) return false;
  respond_error(408);
  return true;
}

void http_connection::write_timed_out() noexcept {
  if (m_stats != nullptr) ++m_stats->timed_out;
}

std::int64_t http_connection::write_deadline() const noexcept {
  return saturating_add(current_loop().now_ns(), m_write_ns);
}

std::int64_t http_connection::before_read() {
  const std::int64_t now = current_loop().now_ns();
  account();
  if (!m_started && m_in.empty()) {
    // Idle between requests: give back what a large request or a burst of
    // pipelined ones grew, and wait at most keep_alive_timeout.
    if (m_in.capacity() > keep_bytes) m_in.release();
    if (m_out.capacity() > keep_bytes) std::string().swap(m_out);
    account();
    return saturating_add(now, m_idle_ns);
  }
  if (!m_parser.head_complete()) return saturating_add(m_request_start, m_header_ns);
  if (m_body_start < 0) m_body_start = now;
  return saturating_add(m_body_start, m_body_ns);
}

void http_connection::received(std::size_t n) noexcept {
  m_in.received(n);
  if (!m_started) {
    m_started = true;
    m_request_start = current_loop().now_ns();
  }
}

std::span<char> http_connection::read_space() {
  // Bounded: the parser fails a request before its head or body passes the
  // limits, so the buffer never needs more than their sum.
  const http_limits& l = m_parser.limits();
  return m_in.read_space(k_min_read, l.max_header_bytes + l.max_body_bytes + k_min_read);
}

task<> linger_close(tcp_stream& s) {
  std::error_code ec;
  s.shutdown_write(ec);
  if (!ec) {  // else the peer is gone already: nothing to wait for
    char sink[4096];
    (void)co_await move_on_after(std::chrono::seconds(1), [](tcp_stream& s, char* sink) -> task<> {
      std::error_code ec;  // a peer gone already ends the wait
      for (std::size_t drained = 0; drained < std::size_t{64} * 1024;) {
        const std::size_t n = co_await s.read_some(sink, 4096, ec);
        if (ec || n == 0) break;
        drained += n;
      }
    }(s, sink));
  }
  s.close();
}

}  // namespace detail
}  // namespace corio
