// http_request_parser: a strict, zero-copy parser of HTTP/1.0 and HTTP/1.1
// requests, with limits on what it buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace corio {

/// One header field as it appeared (name case kept, value trimmed).
struct http_header {
  std::string_view name;   ///< The field name, as sent (compare it case-insensitively).
  std::string_view value;  ///< The field value, without leading and trailing spaces and tabs.
};

/// A parsed request. Every view points into the bytes given to the parser
/// and lives as long as they stay put.
struct http_request {
  std::string_view method;  ///< The method token, such as "GET" (case-sensitive).
  std::string_view target;  ///< The request target as sent ("/path?query", or an absolute URI).
  int version_minor = 1;    ///< Minor version: 1 (HTTP/1.1) or 0 (HTTP/1.0); any digit is accepted.
  /// The header fields in order of arrival. They live in the parser: valid
  /// until its next parse().
  std::span<const http_header> headers;
  std::string_view body;  ///< Content-Length bytes; empty without one.
  /// Whether the connection stays open after the response: HTTP/1.1
  /// unless "Connection: close", HTTP/1.0 only with "Connection: keep-alive".
  bool keep_alive = true;

  /// The first header called `name` (ASCII case-insensitive), if any.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
};

/// What the parser makes of the bytes so far. Every error maps to the
/// response status a server sends before closing the connection.
enum class http_parse_status : std::uint8_t {
  complete,               ///< request() is valid; consumed() bytes belong to it
  incomplete,             ///< more bytes are needed
  bad_request,            ///< 400: malformed request line, header or length
  header_too_large,       ///< 431: request line and headers over the limit
  body_too_large,         ///< 413: Content-Length over the limit
  not_implemented,        ///< 501: Transfer-Encoding (chunked bodies) is not supported
  version_not_supported,  ///< 505: not HTTP/1.x
};

/// The status code that answers a parse error (400, 431, 413, 501, 505),
/// or 0 for complete and incomplete.
[[nodiscard]] int http_error_status(http_parse_status s) noexcept;

/// Bounds on one request. The parser never asks for more than
/// max_header_bytes + max_body_bytes of buffered input. Past
/// max_header_bytes (empty lines before the request line count too) or
/// max_headers, parse() says `header_too_large`; past max_body_bytes,
/// `body_too_large`, known from the head before any of the body is read.
struct http_limits {
  std::size_t max_header_bytes = std::size_t{8} * 1024;   ///< request line and header fields
  std::size_t max_headers = 64;                           ///< header fields at most
  std::size_t max_body_bytes = std::size_t{1024} * 1024;  ///< Content-Length at most
};

/// Parses one request at a time from the front of a buffer. Call parse()
/// with the bytes received so far; while it says `incomplete`, call it again
/// with the same bytes plus more (the parser resumes its scan where it
/// stopped, so a request that trickles in costs linear time). After
/// `complete`, drop consumed() bytes from the front; the next parse() starts
/// the next (pipelined) request. After an error, the connection must be
/// closed: the parser does not resynchronise.
///
/// Strict where laxness lets requests be smuggled: a header name must be
/// followed by ':' at once, obsolete line folding, control characters and
/// conflicting or malformed Content-Length are errors, Transfer-Encoding is
/// refused, an HTTP/1.1 request needs exactly one Host. Bare LF line ends
/// are accepted, as RFC 9112 allows.
///
/// \code
///   corio::http_request_parser p;
///   if (p.parse(bytes) == corio::http_parse_status::complete)
///     use(p.request().method, p.request().target);
/// \endcode
class http_request_parser {
 public:
  /// A parser that enforces `limits` on every request it parses.
  explicit http_request_parser(http_limits limits = {});

  /// Parses the request at the front of `data` (all bytes received so far
  /// and not yet dropped). Returns `complete` when the whole request
  /// (head and Content-Length body) is there, `incomplete` when more bytes
  /// are needed, otherwise the error the server should answer (errors are
  /// returned, not thrown).
  http_parse_status parse(std::string_view data);

  /// The request parsed last. Its views point into the `data` of the last
  /// parse() call (and into the parser, for `headers`); meaningful after
  /// `complete`, and valid until the next parse() or until those bytes move.
  [[nodiscard]] const http_request& request() const noexcept { return m_request; }
  /// Bytes of the complete request (leading empty lines, head and body).
  [[nodiscard]] std::size_t consumed() const noexcept { return m_consumed; }
  /// The limits the parser enforces.
  [[nodiscard]] const http_limits& limits() const noexcept { return m_limits; }
  /// After parse() said `incomplete`: the head has arrived and asks for
  /// `Expect: 100-continue` (HTTP/1.1), and its body has not all arrived.
  /// The client may be waiting for a `100 Continue` before it sends the
  /// body (RFC 9110 section 10.1.1).
  [[nodiscard]] bool wants_continue() const noexcept { return m_wants_continue; }
  /// After parse() said `incomplete`: the request's head has all arrived
  /// and its body has not.
  [[nodiscard]] bool head_complete() const noexcept { return m_head_end != 0; }

 private:
  http_parse_status parse_head(std::string_view head);
  http_parse_status parse_request_line(std::string_view line);

  http_limits m_limits;
  http_request m_request;
  std::vector<http_header> m_headers;
  std::size_t m_consumed = 0;
  std::size_t m_scan_from = 0;     // where the search for the head's end resumes
  std::size_t m_head_start = 0;    // after leading empty lines
  std::size_t m_head_end = 0;      // 0 until the head's end is found
  bool m_started = false;          // the request line has begun
  bool m_expect_continue = false;  // the head parsed last has Expect: 100-continue
  bool m_wants_continue = false;
  std::size_t m_content_length = 0;
};

namespace detail {
/// RFC 9110 token (a method or a field name): not empty, tchars only.
[[nodiscard]] bool is_http_token(std::string_view s) noexcept;
/// A field value: no control character but tab (so no CR or LF).
[[nodiscard]] bool is_http_field_value(std::string_view s) noexcept;
/// A field that frames a message (Content-Length, Connection,
/// Transfer-Encoding, in any case): the server writes those itself.
[[nodiscard]] bool is_http_framing_field(std::string_view name) noexcept;
}  // namespace detail

}  // namespace corio
