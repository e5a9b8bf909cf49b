// PostgreSQL's wire protocol (version 3), the part a connected client
// speaks: the extended-query and COPY messages it sends, and the reading of
// what the server sends back, with limits (a server's bytes are
// untrusted). libpq still makes the connection (authentication, TLS) and
// sends cancel requests; once connected, corio writes a tick's queries
// into one buffer and reads the replies itself, which libpq 15 cannot do
// (PQpipelineSync sends each query's Sync at once: a system call per
// query).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "corio/pg/connection.hpp"
#include "corio/pg/error.hpp"
#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"

namespace corio::pg::detail {

// ---- what the client sends -----------------------------------------------------

/// Parse: prepares `sql` as statement `name` ("": the unnamed one), with
/// the parameters' types.
void put_parse(std::string& out, std::string_view name, std::string_view sql,
               std::span<const param> params);
/// Describe of a statement: the server answers with its parameter types
/// and its row description (or NoData).
void put_describe_statement(std::string& out, std::string_view name);
/// Bind of statement `name` to the unnamed portal, every result column in
/// binary, then Execute (all rows) and Sync: one query, its own implicit
/// transaction.
void put_execute(std::string& out, std::string_view name, std::span<const param> params);
/// Close of a statement, then Sync.
void put_close_statement(std::string& out, std::string_view name);
/// Query: `sql` in the simple protocol (a COPY's start).
void put_query(std::string& out, std::string_view sql);
/// CopyData: a piece of a COPY FROM STDIN's data (any size: split into
/// messages the server takes).
void put_copy_data(std::string& out, std::string_view data);
/// CopyDone: the end of a COPY FROM STDIN's data.
void put_copy_done(std::string& out);
/// CopyFail: aborts a COPY FROM STDIN, with `why` as the server's error.
void put_copy_fail(std::string& out, std::string_view why);

// ---- what the server sends -------------------------------------------------------

/// A server's bytes that are not the protocol, or pass a limit; the
/// connection is closed (a connection_error, so pools drop it).
class protocol_error : public connection_error {
 public:
  using connection_error::connection_error;
};

/// The largest message accepted (PostgreSQL's own limit on a field is 1 GB).
inline constexpr std::size_t max_message = std::size_t{1} << 30;

/// One message: its type byte and its body.
struct message {
  char type = 0;
  std::string_view body;
  /// The bytes it took of the input: 5 + body.
  [[nodiscard]] std::size_t size() const noexcept { return 5 + body.size(); }
};

/// The whole message at the front of `data`, or nullopt when it has not
/// all arrived; protocol_error for a length below 4 or above `limit`.
std::optional<message> next_message(std::string_view data, std::size_t limit = max_message);

/// RowDescription: the columns (names and types).
std::shared_ptr<const columns> read_row_description(std::string_view body);

/// DataRow: appends the row to `r` (which has its columns); protocol_error
/// when its fields do not match them or overrun the message.
void append_row(result& r, std::string_view body);
/// Starts `r` as a result of `cols` (nullptr: a command, no columns).
void start_result(result& r, std::shared_ptr<const columns> cols);
/// CommandComplete: the rows the command reports ("INSERT 0 5" is 5,
/// "SELECT 3" is 3, "COPY 10" is 10, "CREATE TABLE" is 0).
std::uint64_t read_command_count(std::string_view body) noexcept;
/// The same, recorded in `r`.
void set_command_tag(result& r, std::string_view body);

/// ErrorResponse (or NoticeResponse): the fields corio reports.
struct server_error {
  std::string severity;  // non-localized: ERROR, FATAL, PANIC...
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
  /// FATAL and PANIC end the session: the server closes the connection next.
  [[nodiscard]] bool ends_session() const noexcept {
    return severity == "FATAL" || severity == "PANIC";
  }
};
server_error read_error(std::string_view body);

/// NotificationResponse.
notification read_notification(std::string_view body);

/// ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed one.
char read_ready(std::string_view body);

}  // namespace corio::pg::detail
