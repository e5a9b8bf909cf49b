// The RESP reader, the command encoder and redis::reply's accessors.
#include "corio/redis/resp.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace corio::redis {

// ---- reply ------------------------------------------------------------------

const char* reply::kind_name(kind k) noexcept {
  switch (k) {
    case kind::nil:
      return "nil";
    case kind::simple_string:
      return "simple string";
    case kind::error:
      return "error";
    case kind::integer:
      return "integer";
    case kind::number:
      return "double";
    case kind::boolean:
      return "boolean";
    case kind::bulk_string:
      return "bulk string";
    case kind::verbatim_string:
      return "verbatim string";
    case kind::big_number:
      return "big number";
    case kind::array:
      return "array";
    case kind::map:
      return "map";
    case kind::set:
      return "set";
    case kind::push:
      return "push";
  }
  return "?";
}

void reply::wrong_type(const char* wanted) const {
  throw reply_type_error(std::string("corio::redis::reply: wanted ") + wanted + ", got " +
                         kind_name(m_kind) + " " + describe());
}

std::string_view reply::str() const {
  switch (m_kind) {
    case kind::simple_string:
    case kind::error:
    case kind::bulk_string:
    case kind::verbatim_string:
    case kind::big_number:
      return m_str;
    default:
      wrong_type("a string");
  }
}

std::string reply::take_str() {
  (void)str();  // throws for a non-string
  return std::move(m_str);
}

std::int64_t reply::integer() const {
  if (m_kind != kind::integer) wrong_type("an integer");
  return m_int;
}

double reply::number() const {
  if (m_kind == kind::integer) return static_cast<double>(m_int);
  if (m_kind != kind::number) wrong_type("a double");
  return m_double;
}

bool reply::boolean() const {
  if (m_kind != kind::boolean) wrong_type("a boolean");
  return m_int != 0;
}

const std::vector<reply>& reply::elements() const {
  if (!is_aggregate()) wrong_type("an aggregate");
  return m_elements;
}

std::vector<reply>& reply::elements() {
  if (!is_aggregate()) wrong_type("an aggregate");
  return m_elements;
}

std::string reply::describe() const {
  constexpr std::size_t shown = 64;  // of a long string, and of a long aggregate
  auto quoted = [](std::string_view s) {
    std::string q = "\"";
    for (const char c : s.substr(0, shown)) {
      if (c == '"' || c == '\\') {
        q += '\\';
        q += c;
      } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
        q += buf;
      } else {
        q += c;
      }
    }
    return q + (s.size() > shown ? "...\"" : "\"");
  };
  switch (m_kind) {
    case kind::nil:
      return "nil";
    case kind::error:
      return "(error) " + m_str.substr(0, shown);
    case kind::integer:
      return std::to_string(m_int);
    case kind::number: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", m_double);
      return buf;
    }
    case kind::boolean:
      return m_int != 0 ? "true" : "false";
    case kind::big_number:
      return m_str.substr(0, shown);
    case kind::simple_string:
    case kind::bulk_string:
    case kind::verbatim_string:
      return quoted(m_str);
    case kind::array:
    case kind::set:
    case kind::push:
    case kind::map: {
      const bool is_map = m_kind == kind::map;
      std::string s = is_map ? "{" : m_kind == kind::set ? "~[" : m_kind == kind::push ? ">[" : "[";
      for (std::size_t i = 0; i < m_elements.size() && i < shown; ++i) {
        if (i != 0) s += is_map && i % 2 == 1 ? ": " : ", ";
        s += m_elements[i].describe();
      }
      if (m_elements.size() > shown) s += ", ...";
      return s + (is_map ? "}" : "]");
    }
  }
  return "?";
}

// ---- reader -----------------------------------------------------------------

namespace {

bool parse_int(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool is_big_number(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void resp_reader::fail(const std::string& what) {
  m_failed = true;
  throw protocol_error("corio::redis: protocol error: " + what);
}

// A new node of kind `k` where the next element goes: the next reply, or
// the next element of the aggregate being read.
reply& resp_reader::place(reply::kind k) {
  if (m_stack.empty()) {
    m_partial = true;
    return m_done.emplace_back(k);
  }
  return m_stack.back().node->m_elements.emplace_back(k);
}

// Removes the node placed last (a RESP3 attribute, read and dropped).
void resp_reader::drop_placed() noexcept {
  if (m_stack.empty()) {
    m_done.pop_back();
    m_partial = false;
  } else {
    m_stack.back().node->m_elements.pop_back();
  }
}

// The element placed last is whole: count it in its parent, and close every
// aggregate it completes.
void resp_reader::complete() {
  for (;;) {
    if (m_stack.empty()) {
      m_partial = false;
      m_elements = 0;
      return;
    }
    frame& top = m_stack.back();
    if (--top.remaining > 0) return;
    const bool attribute = top.attribute;
    m_stack.pop_back();
    if (attribute) {  // dropped: the reply it annotates comes next, in its place
      drop_placed();
      return;
    }
  }
}

// A bulk string's bytes are in: a verbatim one parts its format from its text.
void resp_reader::finish_bulk(reply& node) {
  if (node.m_kind == reply::kind::verbatim_string) {
    if (node.m_str.size() < 4 || node.m_str[3] != ':') fail("a verbatim string without format");
    std::memcpy(node.m_format, node.m_str.data(), 3);
    node.m_str.erase(0, 4);
  }
  complete();
}

void resp_reader::count_elements(std::size_t n) {
  if (n > m_limits.max_elements - std::min(m_elements, m_limits.max_elements)) {
    fail("a reply of more than " + std::to_string(m_limits.max_elements) + " elements");
  }
  m_elements += n;
}

void resp_reader::open_aggregate(reply::kind k, std::int64_t count, bool attribute) {
  if (m_stack.size() >= m_limits.max_depth) {
    fail("aggregates nested deeper than " + std::to_string(m_limits.max_depth));
  }
  const bool pairs = k == reply::kind::map || attribute;
  if (count < 0 || static_cast<std::uint64_t>(count) > m_limits.max_elements) {
    fail("an aggregate of " + std::to_string(count) + " elements");
  }
  const auto n = static_cast<std::size_t>(count) * (pairs ? 2 : 1);
  // Each element counts itself as it arrives; a count that could never fit
  // is refused now.
  if (n > m_limits.max_elements - m_elements) {
    fail("a reply of more than " + std::to_string(m_limits.max_elements) + " elements");
  }
  reply& node = place(k);
  if (n == 0) {
    if (attribute) {  // an empty attribute: nothing to keep
      drop_placed();
      return;
    }
    complete();
    return;
  }
  // Reserve no more than a little: the count is the server's word, the
  // elements must still arrive.
  node.m_elements.reserve(std::min<std::size_t>(n, 1024));
  m_stack.push_back({&node, n, attribute});
}

std::size_t resp_reader::feed(std::string_view data) {
  if (m_failed) throw protocol_error("corio::redis: the reply stream already failed");
  std::size_t pos = 0;
  for (;;) {
    if (m_bulk != nullptr) {
      if (!m_bulk_crlf) {
        const std::size_t n = std::min(m_bulk_left, data.size() - pos);
        m_bulk->m_str.append(data.data() + pos, n);
        pos += n;
        m_bulk_left -= n;
        if (m_bulk_left > 0) return pos;
        m_bulk_crlf = true;
      }
      if (data.size() - pos < 2) return pos;
      if (data[pos] != '\r' || data[pos + 1] != '\n') fail("a bulk string not ended by CRLF");
      pos += 2;
      reply& done = *m_bulk;
      m_bulk = nullptr;
      m_bulk_crlf = false;
      finish_bulk(done);
      continue;
    }
    if (pos == data.size()) return pos;
    const char* start = data.data() + pos;
    const auto* cr = static_cast<const char*>(std::memchr(start, '\r', data.size() - pos));
    if (cr == nullptr || cr + 1 == data.data() + data.size()) {
      // The line so far (after its type byte): refused as soon as it is
      // too long, so a server that never ends a line cannot fill memory.
      const std::size_t so_far =
          (cr == nullptr ? data.size() - pos : static_cast<std::size_t>(cr - start)) - 1;
      if (so_far > m_limits.max_line) {
        fail("a line longer than " + std::to_string(m_limits.max_line) + " bytes");
      }
      return pos;
    }
    if (cr[1] != '\n') fail("a CR not followed by LF");
    const std::string_view line(start + 1, static_cast<std::size_t>(cr - start - 1));
    if (line.size() > m_limits.max_line) {
      fail("a line longer than " + std::to_string(m_limits.max_line) + " bytes");
    }
    const char type = *start;
    pos = static_cast<std::size_t>(cr + 2 - data.data());
    if (m_stack.empty()) m_elements = 0;
    count_elements(1);
    std::int64_t n = 0;
    switch (type) {
      case '+':
        place(reply::kind::simple_string).m_str.assign(line);
        complete();
        break;
      case '-':
        place(reply::kind::error).m_str.assign(line);
        complete();
        break;
      case ':':
        if (!parse_int(line, n)) fail("an integer that is not one");
        place(reply::kind::integer).m_int = n;
        complete();
        break;
      case ',': {
        double d = 0;
        if (!parse_double(line, d)) fail("a double that is not one");
        place(reply::kind::number).m_double = d;
        complete();
        break;
      }
      case '#':
        if (line != "t" && line != "f") fail("a boolean that is neither t nor f");
        place(reply::kind::boolean).m_int = line == "t" ? 1 : 0;
        complete();
        break;
      case '_':
        if (!line.empty()) fail("a null with content");
        place(reply::kind::nil);
        complete();
        break;
      case '(':
        if (!is_big_number(line)) fail("a big number that is not one");
        place(reply::kind::big_number).m_str.assign(line);
        complete();
        break;
      case '$':
      case '!':
      case '=': {
        if (!parse_int(line, n)) fail("a bulk length that is not a number");
        if (n == -1 && type == '$') {  // RESP2's null bulk string
          place(reply::kind::nil);
          complete();
          break;
        }
        if (n < 0 || static_cast<std::uint64_t>(n) > m_limits.max_bulk) {
          fail("a bulk string of " + std::to_string(n) + " bytes (the limit is " +
               std::to_string(m_limits.max_bulk) + ")");
        }
        const auto kind = type == '$'   ? reply::kind::bulk_string
                          : type == '!' ? reply::kind::error
                                        : reply::kind::verbatim_string;
        const auto size = static_cast<std::size_t>(n);
        reply& node = place(kind);
        if (data.size() - pos >= size + 2) {  // all here (the usual case): one copy
          if (data[pos + size] != '\r' || data[pos + size + 1] != '\n') {
            fail("a bulk string not ended by CRLF");
          }
          node.m_str.assign(data.data() + pos, size);
          pos += size + 2;
          finish_bulk(node);
          break;
        }
        // As for aggregates: reserve only what is safe to take on trust.
        node.m_str.reserve(std::min<std::size_t>(size, 1 << 20));
        m_bulk = &node;
        m_bulk_left = size;
        break;
      }
      case '*':
      case '%':
      case '~':
      case '>':
      case '|': {
        if (!parse_int(line, n)) fail("an aggregate length that is not a number");
        if (n == -1 && type == '*') {  // RESP2's null array
          place(reply::kind::nil);
          complete();
          break;
        }
        const auto kind = type == '*'   ? reply::kind::array
                          : type == '%' ? reply::kind::map
                          : type == '~' ? reply::kind::set
                          : type == '>' ? reply::kind::push
                                        : reply::kind::map;
        open_aggregate(kind, n, type == '|');
        break;
      }
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(type));
        fail(std::string("an unknown type byte ") + buf);
      }
    }
  }
}

std::optional<reply> resp_reader::next() {
  if (ready() == 0) return std::nullopt;
  std::optional<reply> r(std::move(m_done[m_taken++]));
  if (ready() == 0) recycle();
  return r;
}

// Every completed reply is taken: forget them, keeping the one being read
// (moved to the front: its elements stay where they are, so only pointers
// to the reply itself need to follow it).
void resp_reader::recycle() noexcept {
  if (!m_partial) {
    m_done.clear();
    m_taken = 0;
    return;
  }
  reply* const old = &m_done.back();
  reply* const front = m_done.data();
  if (old != front) {
    *front = std::move(*old);
    m_done.erase(m_done.begin() + 1, m_done.end());
    if (!m_stack.empty() && m_stack.front().node == old) m_stack.front().node = front;
    if (m_bulk == old) m_bulk = front;
  }
  m_taken = 0;
}

// ---- commands ---------------------------------------------------------------

namespace detail {

void append_command(std::string& out, std::span<const std::string_view> args) {
  std::size_t size = 16;
  for (const std::string_view a : args)
    size += a.size() + 24;
  out.reserve(out.size() + size);
  char buf[24];
  auto header = [&](char type, std::size_t n) {
    out += type;
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
    out += "\r\n";
  };
  header('*', args.size());
  for (const std::string_view a : args) {
    header('$', a.size());
    out += a;
    out += "\r\n";
  }
}

}  // namespace detail

}  // namespace corio::redis
