// buffered_reader: lines and delimited records from a stream, in bounded
// memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "corio/errors.hpp"
#include "corio/net/detail/input_buffer.hpp"
#include "corio/net/detail/stream_ops.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Reads a stream through a buffer that never holds more than `max_buffer`
/// bytes (asyncio's StreamReader and its `limit`). `Stream` is anything
/// with `read_some(void*, size_t)` returning an awaitable of the byte count
/// (tcp_stream, a pipe); the reader refers to it, so it must outlive the
/// reader, and only the reader should read from it.
///
/// Views returned by read_line and read_until point into the buffer: they
/// stay valid until the next call on the reader.
///
/// Cancellation loses nothing: bytes that arrived before the cancel stay
/// buffered for the next call (for read_exact, up to the buffer's limit).
///
/// \code
///   corio::buffered_reader in(stream);
///   for (;;) {
///     std::string_view line = co_await in.read_line();  // "...\n"
///     if (line.empty()) break;                           // end of stream
///     handle(line);
///   }
/// \endcode
template <class Stream = tcp_stream>
class buffered_reader {
 public:
  /// The default buffer bound: 64 KiB (asyncio's default `limit`).
  static constexpr std::size_t default_max_buffer = std::size_t{64} * 1024;

  /// A reader of `stream` (which it refers to, not owns) whose buffer holds
  /// at most `max_buffer` bytes (0 counts as 1). Reads nothing until asked;
  /// the buffer is allocated, and grown up to `max_buffer`, as reads need it.
  explicit buffered_reader(Stream& stream, std::size_t max_buffer = default_max_buffer)
      : m_stream(&stream), m_max(std::max<std::size_t>(max_buffer, 1)) {}

  /// The next line, '\n' included. At the end of the stream: the last
  /// bytes without '\n', then "" for ever. A line longer than `limit`
  /// bytes (at most max_buffer) throws limit_overrun_error and stays
  /// buffered; `discard()` drops it.
  [[nodiscard]] task<std::string_view> read_line(std::size_t limit = SIZE_MAX) {
    std::string_view line;
    if (co_await scan_for("\n", limit, line)) co_return line;
    line = m_in.pending();  // the end: what is left, maybe nothing
    m_in.consume(line.size());
    co_return line;
  }

  /// The bytes up to and including `delimiter` (not empty). When the
  /// stream ends first, incomplete_read_error (got() = bytes buffered,
  /// which stay there); past `limit`, limit_overrun_error as read_line.
  [[nodiscard]] task<std::string_view> read_until(std::string_view delimiter,
                                                  std::size_t limit = SIZE_MAX) {
    if (delimiter.empty()) throw std::invalid_argument("corio: read_until needs a delimiter");
    std::string_view record;
    if (co_await scan_for(delimiter, limit, record)) co_return record;
    throw incomplete_read_error(m_in.size(), m_in.size() + delimiter.size());
  }

  /// Up to `len` bytes: buffered ones first; else one read of the stream
  /// (straight into `buf` when it is large). 0 at the end of the stream.
  [[nodiscard]] task<std::size_t> read_some(void* buf, std::size_t len) {
    if (m_in.empty() && len >= m_max) co_return co_await m_stream->read_some(buf, len);
    if (m_in.empty() && !co_await fill()) co_return 0;
    const std::size_t n = std::min(len, m_in.size());
    take(buf, n);
    co_return n;
  }

  /// Exactly `len` bytes; incomplete_read_error when the stream ends
  /// first (what did arrive is then in `buf`, and consumed). Up to the
  /// buffer's limit the bytes gather in the buffer and are copied out at
  /// once, so a cancelled read_exact loses nothing; a longer one copies as
  /// bytes come, and a cancel leaves what came in `buf`, consumed.
  [[nodiscard]] task<> read_exact(void* buf, std::size_t len) {
    if (len > m_max) return detail::read_exact(*this, buf, len);
    return read_exact_buffered(buf, len);
  }

  /// What is buffered now, without reading (zero-copy parsing); drop what
  /// you used with discard().
  [[nodiscard]] std::string_view buffered() const noexcept { return m_in.pending(); }
  /// Drops the first `n` buffered bytes (all of them when fewer are buffered).
  void discard(std::size_t n) noexcept { m_in.consume(std::min(n, m_in.size())); }
  /// True once the stream has ended and the buffer is empty.
  [[nodiscard]] bool at_eof() const noexcept { return m_eof && m_in.empty(); }

 private:
  task<> read_exact_buffered(void* buf, std::size_t len) {
    while (m_in.size() < len) {
      if (!co_await fill()) {  // the end (never full: len <= m_max)
        const std::size_t got = m_in.size();
        take(buf, got);
        throw incomplete_read_error(got, len);
      }
    }
    take(buf, len);
  }

  // Moves the first n buffered bytes to buf (n may be 0, with nothing buffered).
  void take(void* buf, std::size_t n) noexcept {
    if (n == 0) return;
    std::memcpy(buf, m_in.pending().data(), n);
    m_in.consume(n);
  }

  // Reads once into the buffer; false at the end of the stream or when the
  // buffer is full.
  task<bool> fill() {
    if (m_eof) co_return false;
    const auto space = m_in.read_space(std::min(m_max, k_min_read), m_max);
    if (space.empty()) co_return false;
    const std::size_t n = co_await m_stream->read_some(space.data(), space.size());
    if (n == 0) {
      m_eof = true;
      co_return false;
    }
    m_in.received(n);
    co_return true;
  }

  // Finds `delim` in the buffer, reading more as needed. True with `out`
  // set (and consumed); false at the end of the stream.
  task<bool> scan_for(std::string_view delim, std::size_t limit, std::string_view& out) {
    limit = std::min(limit, m_max);
    std::size_t from = 0;  // where the delimiter can start, no earlier
    for (;;) {
      const std::string_view data = m_in.pending();
      const std::size_t at = data.find(delim, from);
      if (at != std::string_view::npos && at + delim.size() <= limit) {
        out = data.substr(0, at + delim.size());
        m_in.consume(out.size());
        co_return true;
      }
      if (at != std::string_view::npos || data.size() >= limit)
        throw limit_overrun_error(
            "corio: no delimiter within the first " + std::to_string(limit) + " bytes",
            data.size());
      if (data.size() >= delim.size()) from = data.size() - delim.size() + 1;
      if (!co_await fill()) co_return false;
    }
  }

  static constexpr std::size_t k_min_read = std::size_t{4} * 1024;

  Stream* m_stream;
  std::size_t m_max;
  detail::input_buffer m_in;
  bool m_eof = false;
};

}  // namespace corio
