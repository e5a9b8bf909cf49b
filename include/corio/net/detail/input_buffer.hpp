// input_buffer: the read-side buffer that the HTTP server and
// buffered_reader share.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace corio::detail {

/// Bytes read but not yet consumed, in one contiguous block that is
/// compacted in place and grown geometrically, never past the capacity
/// the caller allows. The storage is allocated on the first read.
class input_buffer {
 public:
  /// The unconsumed bytes.
  [[nodiscard]] std::string_view pending() const noexcept {
    return {m_data.get() + m_begin, m_end - m_begin};
  }
  [[nodiscard]] std::size_t size() const noexcept { return m_end - m_begin; }
  [[nodiscard]] bool empty() const noexcept { return m_end == m_begin; }
  /// Bytes of storage held.
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
  /// Gives the storage back (only when empty); the next read allocates.
  void release() noexcept {
    if (!empty()) return;
    m_data.reset();
    m_capacity = m_begin = m_end = 0;
  }
  void consume(std::size_t n) noexcept {
    m_begin += n;
    if (m_begin == m_end) m_begin = m_end = 0;
  }

  /// Room for the next read: at least `min_read` bytes (compacting or
  /// growing), but the whole block stays within `max_capacity`, so the
  /// span may be smaller, or empty when the pending bytes fill it.
  std::span<char> read_space(std::size_t min_read, std::size_t max_capacity);
  /// `n` bytes were read into the span read_space() returned.
  void received(std::size_t n) noexcept { m_end += n; }

 private:
  std::unique_ptr<char[]> m_data;
  std::size_t m_capacity = 0;
  std::size_t m_begin = 0;
  std::size_t m_end = 0;
};

}  // namespace corio::detail
