// The request parser: a resumable scan for the end of the head, then one
// strict pass over its lines. See the header for the rules it enforces.
#include "corio/net/http_parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace corio {
namespace {

// RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits and letters.
constexpr std::array<bool, 256> k_token = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token_char(char c) noexcept {
  return k_token[static_cast<unsigned char>(c)];
}

// Field values: visible characters, obs-text, space and tab; never a
// control character (a bare CR or a NUL smuggles meaning past proxies).
bool is_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// Request targets: visible characters and obs-text; no space, no control.
bool is_target_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The next line of `rest` (which ends with '\n'), without its CR LF or LF.
std::string_view take_line(std::string_view& rest) noexcept {
  const std::size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest.remove_prefix(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

constexpr std::size_t k_saturated = static_cast<std::size_t>(-1);

// 1*DIGIT, saturating (a huge length is "too large", not malformed);
// nullopt when not a number.
std::optional<std::size_t> parse_length(std::string_view v) noexcept {
  if (v.empty()) return std::nullopt;
  std::size_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::size_t>(c - '0');
    n = n > (k_saturated - d) / 10 ? k_saturated : n * 10 + d;
  }
  return n;
}

}  // namespace

std::optional<std::string_view> http_request::header(std::string_view name) const noexcept {
  for (const http_header& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

int http_error_status(http_parse_status s) noexcept {
  switch (s) {
    case http_parse_status::complete:
    case http_parse_status::incomplete:
      return 0;
    case http_parse_status::bad_request:
      return 400;
    case http_parse_status::header_too_large:
      return 431;
    case http_parse_status::body_too_large:
      return 413;
    case http_parse_status::not_implemented:
      return 501;
    case http_parse_status::version_not_supported:
      return 505;
  }
  return 400;
}

http_request_parser::http_request_parser(http_limits limits) : m_limits(limits) {
  m_headers.reserve(m_limits.max_headers);
}

http_parse_status http_request_parser::parse(std::string_view data) {
  if (m_head_end == 0) {
    // Find the empty line that ends the head, resuming at the first line
    // not yet seen whole. Empty lines before the request line are skipped
    // (RFC 9112 section 2.2) but count against the limit.
    std::size_t p = m_scan_from;
    for (;;) {
      const void* nl =
          p < data.size() ? std::memchr(data.data() + p, '\n', data.size() - p) : nullptr;
      if (nl == nullptr) {
        m_scan_from = p;
        return data.size() > m_limits.max_header_bytes ? http_parse_status::header_too_large
                                                       : http_parse_status::incomplete;
      }
      const auto e = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
      const bool empty = e == p || (e == p + 1 && data[p] == '\r');
      const std::size_t line_start = p;
      p = e + 1;
      if (p > m_limits.max_header_bytes) return http_parse_status::header_too_large;
      if (!empty) {
        if (!m_started) {
          // The request line is whole: judge it now, not when the blank
          // line comes. A client that sends "GET /\r\n" (HTTP/0.9) and
          // waits gets its 400 at once instead of waiting for ever.
          std::string_view rest = data.substr(line_start, p - line_start);
          const http_parse_status s = parse_request_line(take_line(rest));
          if (s != http_parse_status::complete) return s;
        }
        m_started = true;
      } else if (m_started) {
        m_head_end = p;
        break;
      } else {
        m_head_start = p;
      }
    }
  }
  // Views must point into this call's bytes (the caller's buffer may have
  // moved since the head was found), so the head is parsed on every call
  // until the request is complete; that is at most once per arriving chunk.
  const http_parse_status s = parse_head(data.substr(m_head_start, m_head_end - m_head_start));
  if (s != http_parse_status::complete) return s;
  if (data.size() - m_head_end < m_content_length) {
    m_wants_continue = m_expect_continue;
    return http_parse_status::incomplete;
  }
  m_wants_continue = false;
  m_request.body = data.substr(m_head_end, m_content_length);
  m_consumed = m_head_end + m_content_length;
  m_scan_from = m_head_end = m_head_start = 0;
  m_started = false;
  return http_parse_status::complete;
}

http_parse_status http_request_parser::parse_head(std::string_view head) {
  using enum http_parse_status;
  m_headers.clear();
  m_content_length = 0;
  m_expect_continue = false;
  m_request = http_request{};

  if (const http_parse_status s = parse_request_line(take_line(head)); s != complete) return s;

  bool have_length = false;
  bool have_transfer_encoding = false;
  bool close = false;
  bool keep_alive_token = false;
  int hosts = 0;
  while (!head.empty()) {
    const std::string_view line = take_line(head);
    if (line.empty()) break;                                              // the end of the head
    if (line.front() == ' ' || line.front() == '\t') return bad_request;  // obs-fold
    std::size_t colon = 0;
    while (colon < line.size() && is_token_char(line[colon]))
      ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':') return bad_request;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    for (const char c : value) {
      if (!is_value_char(c)) return bad_request;
    }
    if (m_headers.size() == m_limits.max_headers) return header_too_large;
    m_headers.push_back({name, value});

    if (iequals(name, "content-length")) {
      const std::optional<std::size_t> n = parse_length(value);
      if (!n || (have_length && *n != m_content_length)) return bad_request;
      have_length = true;
      m_content_length = *n;
    } else if (iequals(name, "transfer-encoding")) {
      have_transfer_encoding = true;
    } else if (iequals(name, "host")) {
      ++hosts;
    } else if (iequals(name, "expect")) {
      m_expect_continue = iequals(value, "100-continue");
    } else if (iequals(name, "connection")) {
      std::string_view rest = value;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view option = trim(rest.substr(0, comma));
        close = close || iequals(option, "close");
        keep_alive_token = keep_alive_token || iequals(option, "keep-alive");
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    }
  }
  m_request.headers = m_headers;
  if (have_transfer_encoding) return have_length ? bad_request : not_implemented;
  if (m_request.version_minor >= 1 ? hosts != 1 : hosts > 1) return bad_request;
  if (m_content_length > m_limits.max_body_bytes) return body_too_large;
  m_request.keep_alive = !close && (m_request.version_minor >= 1 || keep_alive_token);
  m_expect_continue = m_expect_continue && m_request.version_minor >= 1;
  return complete;
}

http_parse_status http_request_parser::parse_request_line(std::string_view line) {
  using enum http_parse_status;
  // request-line = method SP request-target SP HTTP-version
  std::size_t i = 0;
  while (i < line.size() && is_token_char(line[i]))
    ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return bad_request;
  m_request.method = line.substr(0, i);
  const std::size_t target_start = ++i;
  while (i < line.size() && is_target_char(line[i]))
    ++i;
  if (i == target_start || i == line.size() || line[i] != ' ') return bad_request;
  m_request.target = line.substr(target_start, i - target_start);
  const std::string_view version = line.substr(i + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !digit(version[5]) ||
      version[6] != '.' || !digit(version[7]))
    return bad_request;
  if (version[5] != '1') return version_not_supported;
  m_request.version_minor = version[7] - '0';
  return complete;
}

namespace detail {

bool is_http_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool is_http_field_value(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), is_value_char);
}

// A handler's copy would be a second, conflicting framing (a client and a
// proxy could split the stream differently: response splitting,
// smuggling).
bool is_http_framing_field(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "connection") ||
         iequals(name, "transfer-encoding");
}

}  // namespace detail

}  // namespace corio
