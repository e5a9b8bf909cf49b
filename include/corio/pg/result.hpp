// pg::result and pg::row: the rows of a query, read as C++ types.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/pg/error.hpp"

namespace corio::pg {

class result;

namespace detail {

/// A result's column: its name and type OID.
struct column {
  std::string name;
  unsigned type = 0;
};
using columns = std::vector<column>;

/// Where one field's bytes are in its result's data; NULL: length -1.
struct field_ref {
  std::size_t offset = 0;
  std::int32_t length = -1;
};

/// How the connection fills results (src/pg/wire.cpp).
struct result_access;

/// One field of a result, as the readers below see it.
struct field {
  const result* res = nullptr;
  int row = 0;
  int column = 0;
  unsigned type = 0;
  const char* data = nullptr;
  std::size_t length = 0;
  bool null = false;
};

[[noreturn]] void throw_type_error(const field& f, const char* wanted);
std::int64_t read_integer(const field& f);
double read_double(const field& f);
bool read_bool(const field& f);
std::string read_string(const field& f);
std::string_view read_view(const field& f);
std::vector<std::byte> read_bytes(const field& f);
std::chrono::system_clock::time_point read_time(const field& f);

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
T read_value(const field& f) {
  if constexpr (std::is_same_v<T, bool>) {
    return read_bool(f);
  } else if constexpr (std::is_integral_v<T>) {
    const std::int64_t v = read_integer(f);
    if (!std::in_range<T>(v)) throw_type_error(f, "an integer this narrow");
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(read_double(f));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return read_string(f);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return read_view(f);
  } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
    return read_bytes(f);
  } else if constexpr (std::is_same_v<T, std::chrono::system_clock::time_point>) {
    return read_time(f);
  } else {
    static_assert(sizeof(T) == 0,
                  "pg::row::get<T>: T is bool, an integer, float, double, std::string, "
                  "std::string_view, std::vector<std::byte>, system_clock::time_point, or "
                  "std::optional of one");
  }
}

}  // namespace detail

/// One row of a result; valid while its result lives.
///
/// \code
///   for (const corio::pg::row& r : co_await db.query("SELECT id, name FROM users")) {
///     std::int64_t id = r.get<std::int64_t>(0);
///     std::optional<std::string> name = r.get<std::optional<std::string>>("name");
///   }
/// \endcode
class row {
 public:
  /// A row of no result: size() is 0 and every read throws
  /// std::out_of_range. Rows come from a result.
  row() noexcept = default;
  /// Column `column` as T: an integer type reads int2/int4/int8 (and a
  /// whole numeric) when the value fits; a floating type reads
  /// float4/float8; std::string reads text types, numeric, uuid and
  /// bytea; std::string_view the same without copying; time_point reads
  /// timestamptz and timestamp (as UTC). A NULL needs std::optional<T>.
  /// Anything else throws pg::type_error naming the column and its type.
  template <class T>
  [[nodiscard]] T get(int column) const {
    const detail::field f = field(column);
    if constexpr (detail::is_optional<T>::value) {
      if (f.null) return std::nullopt;
      return detail::read_value<typename T::value_type>(f);
    } else {
      if (f.null) detail::throw_type_error(f, "a value (it is NULL: read a std::optional)");
      return detail::read_value<T>(f);
    }
  }
  /// The same for the column named `name`.
  template <class T>
  [[nodiscard]] T get(std::string_view name) const {
    return get<T>(column_index(name));
  }
  /// True when column `column` holds NULL. Throws pg::type_error for a
  /// column that is not there, std::out_of_range for a row that is not
  /// (past the end of its result, or of no result).
  [[nodiscard]] bool is_null(int column) const { return field(column).null; }
  /// The number of columns (0 for a row of no result).
  [[nodiscard]] int size() const noexcept;
  /// This row's index in its result.
  [[nodiscard]] std::size_t index() const noexcept { return static_cast<std::size_t>(m_row); }

 private:
  friend class result;
  row(const result* r, int index) noexcept : m_result(r), m_row(index) {}
  [[nodiscard]] detail::field field(int column) const;
  [[nodiscard]] int column_index(std::string_view name) const;
  /// The result, or std::out_of_range for a row of none.
  [[nodiscard]] const result& owner() const;

  const result* m_result = nullptr;
  int m_row = 0;
};

/// The outcome of one statement: its rows (read in binary), its columns,
/// and the rows a command affected. Move-only; its rows' fields are views
/// into one buffer it owns.
class result {
 public:
  /// A forward iterator over the rows; dereferencing gives a `row` by value.
  /// Valid while the result lives (and is not moved from).
  class iterator {
   public:
    using value_type = row;                  ///< What the iterator gives: a row, by value.
    using difference_type = std::ptrdiff_t;  ///< Iterator boilerplate.
    /// A singular iterator, for the iterator concepts; do not dereference it.
    iterator() noexcept = default;
    /// An iterator at row `i` of `r`; made by begin() and end().
    iterator(const result* r, int i) noexcept : m_result(r), m_index(i) {}
    /// The current row.
    row operator*() const noexcept { return {m_result, m_index}; }
    /// Moves to the next row.
    iterator& operator++() noexcept {
      ++m_index;
      return *this;
    }
    /// Moves to the next row, returning the iterator as it was.
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++m_index;
      return old;
    }
    /// Equal when at the same row index (iterators of one result only).
    bool operator==(const iterator& o) const noexcept { return m_index == o.m_index; }

   private:
    const result* m_result = nullptr;
    int m_index = 0;
  };

  /// An empty result: no rows, no columns.
  result() noexcept = default;
  /// Takes over the rows; the source is left empty (no rows, no columns),
  /// so a row of it throws std::out_of_range when read. Its iterators must
  /// not be used after.
  result(result&& o) noexcept { *this = std::move(o); }
  /// Takes over the rows; the source is left empty (see above). Rows and
  /// iterators of this result must not be used after, nor iterators of the source.
  result& operator=(result&& o) noexcept {
    if (this != &o) {
      m_columns = std::move(o.m_columns);
      m_data = std::move(o.m_data);
      m_fields = std::move(o.m_fields);
      m_rows = std::exchange(o.m_rows, 0);
      m_affected = std::exchange(o.m_affected, 0);
    }
    return *this;
  }
  result(const result&) = delete;
  result& operator=(const result&) = delete;
  ~result() = default;

  /// The number of rows.
  [[nodiscard]] std::size_t size() const noexcept { return m_rows; }
  /// True when there are no rows.
  [[nodiscard]] bool empty() const noexcept { return m_rows == 0; }
  /// Row `i`, unchecked here: reading from a row past the end throws
  /// std::out_of_range (use at() to fail at once).
  [[nodiscard]] row operator[](std::size_t i) const noexcept { return {this, static_cast<int>(i)}; }
  /// Row `i`, or std::out_of_range.
  [[nodiscard]] row at(std::size_t i) const;
  /// An iterator at the first row.
  [[nodiscard]] iterator begin() const noexcept { return {this, 0}; }
  /// An iterator past the last row.
  [[nodiscard]] iterator end() const noexcept { return {this, static_cast<int>(m_rows)}; }
  /// The rows, for range-for: `for (auto r : res.rows())`.
  [[nodiscard]] const result& rows() const noexcept { return *this; }

  /// The number of columns (0 for a command that returns no rows).
  [[nodiscard]] int columns() const noexcept;
  /// The name of column `column` (as the query labels it); pg::type_error
  /// when there is no such column. The view lives as long as the result.
  [[nodiscard]] std::string_view column_name(int column) const;
  /// The index of the column named `name`, or pg::type_error.
  [[nodiscard]] int column_index(std::string_view name) const;
  /// The column's type OID (pg::oid).
  [[nodiscard]] unsigned column_type(int column) const;
  /// The rows an INSERT, UPDATE, DELETE, MERGE, COPY or SELECT touched.
  [[nodiscard]] std::uint64_t affected() const noexcept { return m_affected; }

 private:
  friend class row;
  friend struct detail::result_access;
  /// Column `column`'s description, or pg::type_error.
  [[nodiscard]] const detail::column& column_at(int column) const;
  std::shared_ptr<const detail::columns> m_columns;  // shared by a statement's results
  std::string m_data;                                // the rows' DataRow messages, back to back
  std::vector<detail::field_ref> m_fields;           // row-major: rows x columns
  std::size_t m_rows = 0;
  std::uint64_t m_affected = 0;
};

}  // namespace corio::pg
