// PostgreSQL's wire protocol: the messages a connected client sends, and
// the reading of the server's, every length checked against the message.
#include "pg/wire.hpp"

#include <charconv>

#include "pg/big_endian.hpp"

namespace corio::pg::detail {

namespace {

void put_u16(std::string& out, std::uint16_t v) {
  char b[2];
  store_big_endian(b, v, 2);
  out.append(b, 2);
}

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  store_big_endian(b, v, 4);
  out.append(b, 4);
}

void put_cstring(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

// A message's type and a length to fill in once its body is written.
std::size_t begin_message(std::string& out, char type) {
  out.push_back(type);
  const std::size_t at = out.size();
  out.append(4, '\0');
  return at;
}

void end_message(std::string& out, std::size_t at) {
  store_big_endian(&out[at], out.size() - at, 4);
}

void put_sync(std::string& out) {
  out.push_back('S');
  put_u32(out, 4);
}

std::uint32_t get_u32(const char* p) noexcept {
  return static_cast<std::uint32_t>(load_big_endian(p, 4));
}

std::uint16_t get_u16(const char* p) noexcept {
  return static_cast<std::uint16_t>(load_big_endian(p, 2));
}

[[noreturn]] void malformed(const char* what) {
  throw protocol_error(std::string("corio::pg: protocol error: a malformed ") + what +
                       " from the server");
}

// Reads the pieces of one message body in order; any overrun is malformed.
class body_reader {
 public:
  body_reader(std::string_view body, const char* what) noexcept : m_rest(body), m_what(what) {}
  std::uint16_t u16() {
    need(2);
    const std::uint16_t v = get_u16(m_rest.data());
    m_rest.remove_prefix(2);
    return v;
  }
  std::uint32_t u32() {
    need(4);
    const std::uint32_t v = get_u32(m_rest.data());
    m_rest.remove_prefix(4);
    return v;
  }
  std::string_view cstring() {
    const std::size_t end = m_rest.find('\0');
    if (end == std::string_view::npos) malformed(m_what);
    const std::string_view s = m_rest.substr(0, end);
    m_rest.remove_prefix(end + 1);
    return s;
  }
  void skip(std::size_t n) {
    need(n);
    m_rest.remove_prefix(n);
  }
  [[nodiscard]] std::size_t offset_in(std::string_view body) const noexcept {
    return body.size() - m_rest.size();
  }
  [[nodiscard]] bool done() const noexcept { return m_rest.empty(); }

 private:
  void need(std::size_t n) const {
    if (m_rest.size() < n) malformed(m_what);
  }
  std::string_view m_rest;
  const char* m_what;
};

}  // namespace

// ---- what the client sends -----------------------------------------------------

void put_parse(std::string& out, std::string_view name, std::string_view sql,
               std::span<const param> params) {
  const std::size_t at = begin_message(out, 'P');
  put_cstring(out, name);
  put_cstring(out, sql);
  put_u16(out, static_cast<std::uint16_t>(params.size()));
  for (const param& p : params)
    put_u32(out, p.type());
  end_message(out, at);
}

void put_describe_statement(std::string& out, std::string_view name) {
  const std::size_t at = begin_message(out, 'D');
  out.push_back('S');
  put_cstring(out, name);
  end_message(out, at);
}

void put_execute(std::string& out, std::string_view name, std::span<const param> params) {
  const std::size_t at = begin_message(out, 'B');
  out.push_back('\0');  // the unnamed portal
  put_cstring(out, name);
  put_u16(out, static_cast<std::uint16_t>(params.size()));
  for (const param& p : params)
    put_u16(out, static_cast<std::uint16_t>(p.format()));
  put_u16(out, static_cast<std::uint16_t>(params.size()));
  for (const param& p : params) {
    if (p.value() == nullptr) {
      put_u32(out, 0xffffffffU);  // NULL
    } else {
      put_u32(out, static_cast<std::uint32_t>(p.length()));
      out.append(p.value(), static_cast<std::size_t>(p.length()));
    }
  }
  put_u16(out, 1);  // one result format for every column:
  put_u16(out, 1);  // binary
  end_message(out, at);
  // Execute the unnamed portal, every row.
  out.push_back('E');
  put_u32(out, 9);
  out.push_back('\0');
  put_u32(out, 0);
  put_sync(out);
}

void put_close_statement(std::string& out, std::string_view name) {
  const std::size_t at = begin_message(out, 'C');
  out.push_back('S');
  put_cstring(out, name);
  end_message(out, at);
  put_sync(out);
}

void put_query(std::string& out, std::string_view sql) {
  const std::size_t at = begin_message(out, 'Q');
  put_cstring(out, sql);
  end_message(out, at);
}

void put_copy_data(std::string& out, std::string_view data) {
  constexpr std::size_t piece = std::size_t{1} << 20;  // far below the server's limit
  while (!data.empty()) {
    const std::string_view now = data.substr(0, piece);
    out.push_back('d');
    put_u32(out, static_cast<std::uint32_t>(now.size() + 4));
    out.append(now);
    data.remove_prefix(now.size());
  }
}

void put_copy_done(std::string& out) {
  out.push_back('c');
  put_u32(out, 4);
}

void put_copy_fail(std::string& out, std::string_view why) {
  const std::size_t at = begin_message(out, 'f');
  put_cstring(out, why);
  end_message(out, at);
}

// ---- what the server sends -------------------------------------------------------

std::optional<message> next_message(std::string_view data, std::size_t limit) {
  if (data.size() < 5) return std::nullopt;
  const std::uint32_t length = get_u32(data.data() + 1);
  if (length < 4 || length - 4 > limit) {
    throw protocol_error("corio::pg: protocol error: a message of " + std::to_string(length) +
                         " bytes from the server (type '" + std::string(1, data[0]) + "')");
  }
  const std::size_t body = length - 4;
  if (data.size() - 5 < body) return std::nullopt;
  return message{data[0], data.substr(5, body)};
}

std::shared_ptr<const columns> read_row_description(std::string_view body) {
  body_reader in(body, "RowDescription");
  const std::uint16_t n = in.u16();
  auto cols = std::make_shared<columns>();
  // Each column takes at least 19 bytes: a count beyond that is a lie.
  if (n > body.size() / 19) malformed("RowDescription");
  cols->reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    column c;
    c.name.assign(in.cstring());
    in.skip(4 + 2);  // table oid, attribute number
    c.type = in.u32();
    in.skip(2 + 4 + 2);  // type size, modifier, format
    cols->push_back(std::move(c));
  }
  if (!in.done()) malformed("RowDescription");
  return cols;
}

struct result_access {
  static void append_row(result& r, std::string_view body) {
    body_reader in(body, "DataRow");
    const std::uint16_t n = in.u16();
    const std::size_t width = r.m_columns == nullptr ? 0 : r.m_columns->size();
    if (n != width) {
      throw protocol_error("corio::pg: protocol error: a row of " + std::to_string(n) +
                           " fields for " + std::to_string(width) + " columns");
    }
    const std::size_t base = r.m_data.size();
    const std::size_t first = r.m_fields.size();
    try {
      for (std::uint16_t i = 0; i < n; ++i) {
        const auto length = static_cast<std::int32_t>(in.u32());
        field_ref f;
        if (length >= 0) {
          f.offset = base + in.offset_in(body);
          f.length = length;
          in.skip(static_cast<std::size_t>(length));
        } else if (length != -1) {
          malformed("DataRow");
        }
        r.m_fields.push_back(f);
      }
      if (!in.done()) malformed("DataRow");
    } catch (...) {
      r.m_fields.resize(first);
      throw;
    }
    r.m_data.append(body);
    ++r.m_rows;
  }

  static void set_tag(result& r, std::string_view body) noexcept {
    r.m_affected = read_command_count(body);
  }

  static void start(result& r, std::shared_ptr<const columns> cols) noexcept {
    r.m_columns = std::move(cols);
    r.m_data.clear();
    r.m_fields.clear();
    r.m_rows = 0;
    r.m_affected = 0;
  }
};

std::uint64_t read_command_count(std::string_view body) noexcept {
  // "INSERT 0 5", "UPDATE 3", "SELECT 2", "COPY 10": the count is the
  // last word; a tag without one ("CREATE TABLE") affected no rows.
  const std::string_view tag = body.substr(0, body.find('\0'));
  const std::size_t space = tag.rfind(' ');
  std::uint64_t n = 0;
  if (space != std::string_view::npos) {
    const std::string_view word = tag.substr(space + 1);
    const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
    if (ec != std::errc() || ptr != word.data() + word.size()) n = 0;
  }
  return n;
}

void start_result(result& r, std::shared_ptr<const columns> cols) {
  result_access::start(r, std::move(cols));
}

void append_row(result& r, std::string_view body) {
  result_access::append_row(r, body);
}

void set_command_tag(result& r, std::string_view body) {
  result_access::set_tag(r, body);
}

server_error read_error(std::string_view body) {
  server_error e;
  body_reader in(body, "ErrorResponse");
  for (;;) {
    if (in.done()) malformed("ErrorResponse");
    const std::string_view code = in.cstring();
    if (code.empty()) break;  // the terminating zero byte
    const std::string_view value = code.substr(1);
    switch (code[0]) {
      case 'V':
        e.severity.assign(value);
        break;
      case 'S':
        if (e.severity.empty()) e.severity.assign(value);  // servers before 9.6: localized
        break;
      case 'C':
        e.sqlstate.assign(value);
        break;
      case 'M':
        e.message.assign(value);
        break;
      case 'D':
        e.detail.assign(value);
        break;
      case 'H':
        e.hint.assign(value);
        break;
      default:
        break;
    }
  }
  return e;
}

notification read_notification(std::string_view body) {
  body_reader in(body, "NotificationResponse");
  notification n;
  n.sender = static_cast<int>(in.u32());
  n.channel.assign(in.cstring());
  n.payload.assign(in.cstring());
  return n;
}

char read_ready(std::string_view body) {
  if (body.size() != 1) malformed("ReadyForQuery");
  return body[0];
}

}  // namespace corio::pg::detail
