// The errors of the PostgreSQL client: a statement the server refused, a
// lost connection, a column read as a type it does not hold.
#pragma once

#include <stdexcept>
#include <string>

#include "corio/errors.hpp"

namespace corio::pg {

/// An error the server reported for one statement: its SQLSTATE (`23505`
/// for a unique violation, `57014` for a cancelled query), message, detail
/// and hint. `what()` is "corio::pg: ERROR: message (SQLSTATE 23505)". The
/// connection stays usable; other queries pipelined with it are unaffected.
///
/// \code
///   try {
///     co_await db.execute("INSERT INTO users (id) VALUES ($1)", 1);
///   } catch (const corio::pg::error& e) {
///     if (e.sqlstate() == "23505") { /* already there */ }
///   }
/// \endcode
class error : public std::runtime_error {
 public:
  /// An error with the server's fields; `what()` becomes "corio::pg: ERROR:
  /// <message> (SQLSTATE <sqlstate>)", plus "; DETAIL: <detail>" when there is one.
  error(std::string sqlstate, std::string message, std::string detail = {}, std::string hint = {});
  /// The five-character SQLSTATE code ("23505"); may be empty.
  [[nodiscard]] const std::string& sqlstate() const noexcept { return m_sqlstate; }
  /// The server's primary message, without the SQLSTATE.
  [[nodiscard]] const std::string& message() const noexcept { return m_message; }
  /// The server's DETAIL field; empty when it sent none.
  [[nodiscard]] const std::string& detail() const noexcept { return m_detail; }
  /// The server's HINT field (a suggestion for fixing it); empty when it sent none.
  [[nodiscard]] const std::string& hint() const noexcept { return m_hint; }

 private:
  std::string m_sqlstate;
  std::string m_message;
  std::string m_detail;
  std::string m_hint;
};

/// The connection could not be made, or was lost (the server closed it,
/// restarted, or sent bytes that are not the protocol): every pending query fails
/// with it. A `connection_broken`, so a pool discards such a connection.
class connection_error : public connection_broken {
 public:
  using connection_broken::connection_broken;
};

/// A column read as a C++ type that cannot hold its SQL type (an `int8`
/// as `std::int32_t`), a NULL read without `std::optional`, or a column
/// that is not there. Says which column and what it holds.
class type_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace corio::pg
