// redis::reply: one reply of a Redis server (RESP2 or RESP3), and the
// errors a Redis client throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "corio/errors.hpp"

namespace corio::redis {

/// An error reply of the server (`-ERR ...`, `!...`), thrown by a command:
/// `what()` is the server's message. The connection stays usable.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The server sent bytes that are not RESP, or passed a limit (a bulk
/// string too long, nesting too deep). The connection is closed: every
/// command on it fails with this error. A `connection_broken`, so a pool
/// discards such a connection.
class protocol_error : public connection_broken {
 public:
  using connection_broken::connection_broken;
};

/// A reply read as a type it is not (`integer()` of a bulk string).
class reply_type_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// One reply: nil, a scalar, or an aggregate of replies. RESP3's map is
/// kept flat (key, value, key, value...), and its attributes are read and
/// dropped; a verbatim string keeps its three-letter format apart from its
/// text.
///
/// \code
///   redis::reply r = co_await conn.command("HGETALL", "user:1");
///   for (std::size_t i = 0; i + 1 < r.size(); i += 2)
///     std::cout << r[i].str() << " = " << r[i + 1].str() << '\n';
/// \endcode
class reply {
 public:
  /// The RESP type of a reply (RESP2's five, and RESP3's additions).
  enum class kind : std::uint8_t {
    nil,
    simple_string,
    error,
    integer,
    number,  ///< RESP3 double
    boolean,
    bulk_string,
    verbatim_string,
    big_number,
    array,
    map,
    set,
    push,
  };

  /// A nil reply.
  reply() noexcept = default;
  /// A reply of kind `k` with no value (an empty string or aggregate, or nil).
  explicit reply(kind k) noexcept : m_kind(k) {}
  /// A string-like reply (string, error, verbatim string, big number) holding `s`.
  reply(kind k, std::string s) noexcept : m_kind(k), m_str(std::move(s)) {}
  /// An integer reply.
  static reply from_integer(std::int64_t v) noexcept {
    reply r(kind::integer);
    r.m_int = v;
    return r;
  }
  /// A RESP3 double reply.
  static reply from_number(double v) noexcept {
    reply r(kind::number);
    r.m_double = v;
    return r;
  }
  /// A RESP3 boolean reply.
  static reply from_boolean(bool v) noexcept {
    reply r(kind::boolean);
    r.m_int = v ? 1 : 0;
    return r;
  }

  /// The reply's RESP type.
  [[nodiscard]] kind type() const noexcept { return m_kind; }
  /// True for nil (RESP2's null bulk string and null array, RESP3's null).
  [[nodiscard]] bool is_nil() const noexcept { return m_kind == kind::nil; }
  /// True for an error reply (a command's `co_await` throws redis::error
  /// instead; such a reply is seen inside aggregates, as in a pipeline's).
  [[nodiscard]] bool is_error() const noexcept { return m_kind == kind::error; }
  /// True for an array, map, set or push: then elements() and operator[] work.
  [[nodiscard]] bool is_aggregate() const noexcept {
    return m_kind == kind::array || m_kind == kind::map || m_kind == kind::set ||
           m_kind == kind::push;
  }
  /// The text of a string, error, verbatim string or big number.
  [[nodiscard]] std::string_view str() const;
  /// Moves the text out (as str()).
  [[nodiscard]] std::string take_str();
  /// A verbatim string's format ("txt", "mkd").
  [[nodiscard]] std::string_view format() const noexcept { return {m_format, 3}; }
  /// An integer reply's value; reply_type_error for any other kind.
  [[nodiscard]] std::int64_t integer() const;
  /// A double's value, or an integer's as a double; reply_type_error otherwise.
  [[nodiscard]] double number() const;
  /// A RESP3 boolean's value; reply_type_error for any other kind (RESP2
  /// answers with integers 0 and 1: read those with integer()).
  [[nodiscard]] bool boolean() const;
  /// The elements of an aggregate (a map's are key, value, key, value...).
  /// reply_type_error when the reply is not an aggregate.
  [[nodiscard]] const std::vector<reply>& elements() const;
  /// The elements, to modify or move out; reply_type_error when the reply
  /// is not an aggregate.
  [[nodiscard]] std::vector<reply>& elements();
  /// The number of elements of an aggregate; 0 for any other reply (no throw).
  [[nodiscard]] std::size_t size() const noexcept { return m_elements.size(); }
  /// Element `i` of an aggregate: reply_type_error when the reply is not one,
  /// std::out_of_range when `i` >= size().
  [[nodiscard]] const reply& operator[](std::size_t i) const { return elements().at(i); }

  /// The reply as text, for messages and tests: "nil", "123", "\"abc\"",
  /// "[1, 2]", "{\"k\": \"v\"}", "(error) ERR ...".
  [[nodiscard]] std::string describe() const;

  /// "integer", "bulk string", ...
  static const char* kind_name(kind k) noexcept;

 private:
  friend class resp_reader;
  [[noreturn]] void wrong_type(const char* wanted) const;

  kind m_kind = kind::nil;
  char m_format[3] = {'t', 'x', 't'};
  union {  // by m_kind: integer and boolean, or number
    std::int64_t m_int = 0;
    double m_double;
  };
  std::string m_str;
  std::vector<reply> m_elements;
};

}  // namespace corio::redis
