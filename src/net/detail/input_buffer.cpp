#include "corio/net/detail/input_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace corio::detail {

std::span<char> input_buffer::read_space(std::size_t min_read, std::size_t max_capacity) {
  if (m_capacity - m_end < min_read && m_begin > 0) {
    // Move the pending bytes to the front (offsets into pending() that a
    // caller keeps, such as a parser's, stay valid: they are relative).
    std::memmove(m_data.get(), m_data.get() + m_begin, m_end - m_begin);
    m_end -= m_begin;
    m_begin = 0;
  }
  if (m_capacity - m_end < min_read && m_capacity < max_capacity) {
    // The first block is one read's worth: a server holds one per idle
    // connection, and most requests fit in it.
    const std::size_t grown = std::min(max_capacity, std::max(m_end + min_read, m_capacity * 2));
    auto data = std::make_unique_for_overwrite<char[]>(grown);
    if (m_end > 0) std::memcpy(data.get(), m_data.get(), m_end);
    m_data = std::move(data);
    m_capacity = grown;
  }
  return {m_data.get() + m_end, m_capacity - m_end};
}

}  // namespace corio::detail
