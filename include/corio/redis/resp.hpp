// RESP, Redis's protocol: an incremental reader of replies (RESP2 and
// RESP3) with limits, and the encoding of commands.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "corio/redis/reply.hpp"

namespace corio::redis {

/// What a reader accepts from a server before it calls the bytes a
/// protocol error: a hostile or broken server cannot make the client
/// allocate without bound, or recurse without bound.
struct resp_limits {
  /// The longest bulk string (Redis's own proto-max-bulk-len is 512 MiB).
  std::size_t max_bulk = std::size_t{512} << 20;
  /// The deepest nesting of aggregates.
  std::size_t max_depth = 32;
  /// The most elements in one reply, counting nested ones.
  std::size_t max_elements = std::size_t{1} << 23;
  /// The longest line (a simple string, an error, a number, a header).
  std::size_t max_line = std::size_t{64} << 10;
};

/// Reads replies from a stream of bytes that arrive in any pieces. `feed`
/// takes what it can use (a bulk string's bytes are taken as they come, so
/// the caller's buffer need not hold a whole reply; a line is taken only
/// whole) and returns how many bytes it took; `next()` gives the replies
/// completed so far, in order. Throws `protocol_error` on bytes that are
/// not RESP or that pass a limit; the reader is then unusable.
///
/// \code
///   redis::resp_reader r;
///   std::size_t used = r.feed(buffer);   // drop `used` bytes from the buffer
///   while (auto reply = r.next()) handle(std::move(*reply));
/// \endcode
class resp_reader {
 public:
  /// A reader that enforces `limits`.
  explicit resp_reader(resp_limits limits = {}) : m_limits(limits) {}

  /// Parses as much of `data` as it can; returns the bytes used.
  std::size_t feed(std::string_view data);
  /// The next completed reply, or nullopt.
  std::optional<reply> next();
  /// Completed replies not yet taken.
  [[nodiscard]] std::size_t ready() const noexcept {
    return m_done.size() - m_taken - (m_partial ? 1 : 0);
  }
  /// True while a reply is partly read.
  [[nodiscard]] bool in_reply() const noexcept { return m_partial; }

 private:
  struct frame {
    reply* node;
    std::size_t remaining;
    bool attribute;  // RESP3 attribute: read and dropped
  };
  reply& place(reply::kind k);
  void drop_placed() noexcept;
  void complete();
  void finish_bulk(reply& node);
  void recycle() noexcept;
  void open_aggregate(reply::kind k, std::int64_t count, bool attribute);
  void count_elements(std::size_t n);
  [[noreturn]] void fail(const std::string& what);

  resp_limits m_limits;
  std::vector<frame> m_stack;
  std::size_t m_elements = 0;  // in the reply being read
  reply* m_bulk = nullptr;     // a bulk string being filled
  std::size_t m_bulk_left = 0;
  bool m_bulk_crlf = false;  // its bytes are in: the CRLF after it is due
  // Replies are built where they are taken from: completed ones, then the
  // one being read (when m_partial), so a reply is never moved to queue it.
  std::vector<reply> m_done;
  std::size_t m_taken = 0;
  bool m_partial = false;
  bool m_failed = false;
};

namespace detail {

/// One argument of a command as bytes: strings and byte spans as they
/// are, numbers in decimal.
class command_arg {
 public:
  command_arg(std::string_view s) noexcept : m_view(s) {}    // NOLINT(google-explicit-constructor)
  command_arg(const std::string& s) noexcept : m_view(s) {}  // NOLINT(google-explicit-constructor)
  command_arg(const char* s) noexcept : m_view(s) {}         // NOLINT(google-explicit-constructor)
  command_arg(std::span<const std::byte> b) noexcept         // NOLINT(google-explicit-constructor)
      : m_view(reinterpret_cast<const char*>(b.data()), b.size()) {}
  template <class N>
  requires(std::is_arithmetic_v<N> && !std::is_same_v<N, bool> && !std::is_same_v<N, char>)
      command_arg(N n)
  noexcept {  // NOLINT(google-explicit-constructor)
    const auto r = std::to_chars(m_digits, m_digits + sizeof m_digits, n);
    m_view = std::string_view(m_digits, static_cast<std::size_t>(r.ptr - m_digits));
  }
  command_arg(const command_arg&) = delete;
  command_arg& operator=(const command_arg&) = delete;
  [[nodiscard]] std::string_view view() const noexcept { return m_view; }

 private:
  char m_digits[32] = {};
  std::string_view m_view;
};

void append_command(std::string& out, std::span<const std::string_view> args);

}  // namespace detail

/// Appends the RESP encoding of a command (an array of bulk strings) to
/// `out`: arguments are strings, string views, byte spans or numbers.
///
/// \code
///   std::string wire;
///   redis::append_command(wire, "SET", "k", "v", "EX", 10);
/// \endcode
template <class... Args>
void append_command(std::string& out, const Args&... args) {
  const detail::command_arg converted[] = {detail::command_arg(args)...};
  std::string_view views[sizeof...(Args)];
  for (std::size_t i = 0; i < sizeof...(Args); ++i)
    views[i] = converted[i].view();
  detail::append_command(out, std::span<const std::string_view>(views, sizeof...(Args)));
}

}  // namespace corio::redis
