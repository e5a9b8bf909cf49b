// pg::param: one query parameter as libpq sends it (type, bytes, format).
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace corio::pg {

/// The type OIDs of PostgreSQL's built-in types that corio reads and
/// writes in binary (pg_type.oid).
namespace oid {
inline constexpr unsigned unknown = 0;         ///< the server infers the type
inline constexpr unsigned boolean = 16;        ///< boolean
inline constexpr unsigned bytea = 17;          ///< bytea (binary strings)
inline constexpr unsigned name = 19;           ///< name (identifiers in the system catalogs)
inline constexpr unsigned int8 = 20;           ///< int8 (bigint)
inline constexpr unsigned int2 = 21;           ///< int2 (smallint)
inline constexpr unsigned int4 = 23;           ///< int4 (integer)
inline constexpr unsigned text = 25;           ///< text
inline constexpr unsigned oid = 26;            ///< oid (object identifiers)
inline constexpr unsigned json = 114;          ///< json
inline constexpr unsigned float4 = 700;        ///< float4 (real)
inline constexpr unsigned float8 = 701;        ///< float8 (double precision)
inline constexpr unsigned bpchar = 1042;       ///< bpchar (character(n))
inline constexpr unsigned varchar = 1043;      ///< varchar (character varying)
inline constexpr unsigned timestamp = 1114;    ///< timestamp (without time zone)
inline constexpr unsigned timestamptz = 1184;  ///< timestamptz (timestamp with time zone)
inline constexpr unsigned numeric = 1700;      ///< numeric
inline constexpr unsigned uuid = 2950;         ///< uuid
inline constexpr unsigned jsonb = 3802;        ///< jsonb
}  // namespace oid

/// One parameter of a query, bound in binary where the type is known:
/// `bool` (boolean), 16/32/64-bit integers (int2/int4/int8; unsigned ones
/// one size up), `float`/`double` (float4/float8), byte spans (bytea),
/// `std::chrono::system_clock::time_point` (timestamptz, microseconds),
/// `std::optional<T>` and `std::nullopt` (NULL). Strings go as text of a
/// type the server infers from the query, so a string binds to a `text`
/// column and equally to a `numeric`, `uuid`, `date` or `jsonb` one: pass
/// any other type as its text. A param points into what it was made from;
/// the query copies the bytes before it returns.
///
/// \code
///   co_await db.query("SELECT $1::int8 + $2, $3::numeric", 40, 2, "1.50");
/// \endcode
class param {
 public:
  /// NULL.
  param() noexcept = default;
  /// \fn param(bool v)
  /// A boolean, in binary.
  //
  /// NULL (from `std::nullopt`).
  param(std::nullopt_t /*null*/) noexcept {}  // NOLINT(google-explicit-constructor)
  param(bool v) noexcept {                    // NOLINT(google-explicit-constructor)
    m_buf[0] = v ? 1 : 0;
    binary(oid::boolean, 1);
  }
  /// An integer, in binary: signed 8- and 16-bit as int2, 32-bit as int4,
  /// 64-bit as int8; unsigned ones one size up (a 32-bit unsigned as int8),
  /// except a 64-bit unsigned, which goes as text for the server to check.
  /// `char` is not accepted (pass a string or a number).
  template <std::integral I>
  requires(!std::is_same_v<I, bool> && !std::is_same_v<I, char>) param(I v)
  noexcept {  // NOLINT(google-explicit-constructor)
    if constexpr (std::is_signed_v<I> && sizeof(I) <= 2) {
      put(static_cast<std::uint16_t>(static_cast<std::int16_t>(v)), 2);
      binary(oid::int2, 2);
    } else if constexpr (sizeof(I) < 4 || (std::is_signed_v<I> && sizeof(I) == 4)) {
      put(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)), 4);
      binary(oid::int4, 4);
    } else if constexpr (sizeof(I) == 4 || std::is_signed_v<I>) {
      put(static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), 8);
      binary(oid::int8, 8);
    } else {  // a 64-bit unsigned may not fit int8: as text, checked by the server
      set_decimal(static_cast<std::uint64_t>(v));
    }
  }
  /// \fn param(double v)
  /// A float8, in binary.
  //
  /// A float4, in binary.
  param(float v) noexcept;   // NOLINT(google-explicit-constructor)
  param(double v) noexcept;  // NOLINT(google-explicit-constructor)
  /// Text whose type the server infers from the query; points into `s`.
  param(std::string_view s) noexcept
      : m_value(s.data()), m_length(length_of(s.size())) {}  // NOLINT(google-explicit-constructor)
  /// Text, as the string_view overload; points into `s`.
  param(const std::string& s) noexcept
      : param(std::string_view(s)) {}  // NOLINT(google-explicit-constructor)
  /// \fn param(std::span<const std::byte> b)
  /// A bytea, in binary; points into `b`.
  //
  /// Text, as the string_view overload; `s` must be a non-null,
  /// NUL-terminated string (pass std::nullopt for NULL).
  param(const char* s) noexcept
      : param(std::string_view(s)) {}           // NOLINT(google-explicit-constructor)
  param(std::span<const std::byte> b) noexcept  // NOLINT(google-explicit-constructor)
      : m_oid(oid::bytea),
        m_format(1),
        m_value(reinterpret_cast<const char*>(b.data())),
        m_length(length_of(b.size())) {}
  /// A timestamptz, in binary, to the microsecond (finer parts are truncated).
  param(std::chrono::system_clock::time_point t) noexcept;  // NOLINT(google-explicit-constructor)
  /// NULL when `v` is empty, else as `*v` would bind (pointing into `v` for
  /// strings and byte spans).
  template <class T>
  param(const std::optional<T>& v) noexcept  // NOLINT(google-explicit-constructor)
      : param(std::nullopt) {
    if (v) adopt(param(*v));
  }
  param(const param&) = delete;
  param& operator=(const param&) = delete;

  /// The type OID sent with the value (see corio::pg::oid); oid::unknown
  /// for text and NULL, so that the server infers it.
  [[nodiscard]] unsigned type() const noexcept { return m_oid; }
  /// The bytes; nullptr for NULL.
  [[nodiscard]] const char* value() const noexcept { return m_value; }
  /// The number of bytes of value(); -1 when too_long().
  [[nodiscard]] int length() const noexcept { return m_length; }
  /// 1: binary, 0: text.
  [[nodiscard]] int format() const noexcept { return m_format; }
  /// True when the value is longer than a parameter can be (2 GiB).
  [[nodiscard]] bool too_long() const noexcept { return m_length < 0; }

 private:
  static int length_of(std::size_t n) noexcept {
    return n > static_cast<std::size_t>(INT32_MAX) ? -1 : static_cast<int>(n);
  }
  void put(std::uint64_t v, int size) noexcept {  // big-endian
    for (int i = size - 1; i >= 0; --i, v >>= 8)
      m_buf[i] = static_cast<char>(v & 0xff);
  }
  void binary(unsigned type, int size) noexcept {
    m_oid = type;
    m_format = 1;
    m_value = m_buf;
    m_length = size;
  }
  void set_decimal(std::uint64_t v) noexcept;
  void adopt(const param& o) noexcept;

  unsigned m_oid = oid::unknown;
  int m_format = 0;
  const char* m_value = nullptr;
  int m_length = 0;
  char m_buf[24] = {};
};

}  // namespace corio::pg
