// buffered_writer: many small writes in few syscalls, with backpressure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "corio/errors.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Collects writes in a buffer of `capacity` bytes and sends them in large
/// writes (asyncio's StreamWriter with `drain()` built in). `Stream` is
/// anything with `write_some(const void*, size_t)` returning an awaitable
/// of the byte count; the writer refers to it, so it must outlive the
/// writer, and only the writer should write to it.
///
/// Backpressure: `write` returns at once while the data fits; when the
/// buffer is full it waits until the peer has taken it, so a slow reader
/// slows the writer and memory stays at `capacity`. `put` never waits:
/// when the data does not fit it throws limit_overrun_error and takes
/// nothing. Nothing reaches the peer before a write overflows the buffer
/// or `flush()` is awaited.
///
/// Cancellation: what was buffered and not sent stays buffered (a later
/// flush() sends it); a cancelled `write` took none of its data, except
/// data larger than the buffer, which may be partly sent, as with
/// tcp_stream::write_all.
///
/// \code
///   corio::buffered_writer out(stream);
///   for (const auto& row : rows) co_await out.write(row.to_line());
///   co_await out.flush();
/// \endcode
template <class Stream = tcp_stream>
class buffered_writer {
 public:
  /// The default buffer size: 64 KiB.
  static constexpr std::size_t default_capacity = std::size_t{64} * 1024;

  /// A writer to `stream` (which it refers to, not owns) with a buffer of
  /// `capacity` bytes (0 counts as 1), allocated on the first buffered write.
  /// The destructor does not flush: bytes still buffered then are dropped,
  /// so await flush() before letting the writer go.
  explicit buffered_writer(Stream& stream, std::size_t capacity = default_capacity)
      : m_stream(&stream), m_capacity(std::max<std::size_t>(capacity, 1)) {}

  /// Buffers `data`, first sending what is buffered when it does not fit;
  /// data larger than the buffer is sent straight from the caller's memory
  /// (which must then stay alive until the write finishes, as always).
  [[nodiscard]] task<> write(std::string_view data) {
    if (data.size() > m_capacity - buffered()) co_await flush();
    if (data.size() >= m_capacity) {
      std::size_t sent = 0;
      while (sent < data.size())
        sent += co_await m_stream->write_some(data.data() + sent, data.size() - sent);
      co_return;
    }
    append(data);
  }

  /// Buffers `data` without waiting; limit_overrun_error (nothing taken)
  /// when it does not fit.
  void put(std::string_view data) {
    if (data.size() > m_capacity - buffered())
      throw limit_overrun_error("corio: buffered_writer is full (" + std::to_string(buffered()) +
                                    " of " + std::to_string(m_capacity) + " bytes; " +
                                    std::to_string(data.size()) + " more were put)",
                                buffered());
    append(data);
  }

  /// Sends everything buffered, waiting while the peer is slow.
  [[nodiscard]] task<> flush() {
    while (m_begin < m_end) {
      m_begin += co_await m_stream->write_some(m_data.get() + m_begin, m_end - m_begin);
    }
    m_begin = m_end = 0;
  }

  /// Bytes buffered and not yet sent.
  [[nodiscard]] std::size_t buffered() const noexcept { return m_end - m_begin; }
  /// The buffer's size in bytes: the most `put` can hold before a flush.
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }

 private:
  void append(std::string_view data) {
    if (data.empty()) return;
    if (!m_data) m_data = std::make_unique_for_overwrite<char[]>(m_capacity);
    if (m_capacity - m_end < data.size()) {  // fits only once compacted
      std::memmove(m_data.get(), m_data.get() + m_begin, m_end - m_begin);
      m_end -= m_begin;
      m_begin = 0;
    }
    std::memcpy(m_data.get() + m_end, data.data(), data.size());
    m_end += data.size();
  }

  Stream* m_stream;
  std::size_t m_capacity;
  std::unique_ptr<char[]> m_data;  // allocated on the first append
  std::size_t m_begin = 0;
  std::size_t m_end = 0;
};

}  // namespace corio
