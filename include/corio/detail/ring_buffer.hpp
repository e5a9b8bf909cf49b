// A growable circular buffer with push at both ends (channel<T> gives an
// item back to the head). `reserve` makes room in advance, so that a push on
// a path that must not fail (a cancelled receiver giving its item back)
// never allocates.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace corio::detail {

template <class T>
class ring_buffer {
 public:
  ring_buffer() noexcept = default;
  ring_buffer(const ring_buffer&) = delete;
  ring_buffer& operator=(const ring_buffer&) = delete;
  ~ring_buffer() {
    clear();
    if (m_data != nullptr) ::operator delete(m_data, std::align_val_t(alignof(T)));
  }

  [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return m_size; }

  void push_back(T&& v) {
    grow_if_full();
    ::new (slot((m_head + m_size) & m_mask)) T(std::move(v));
    ++m_size;
  }
  /// Pushes at the head into room that `reserve` made: never allocates.
  void push_front_reserved(T&& v) noexcept {
    static_assert(std::is_nothrow_move_constructible_v<T>);
    m_head = (m_head - 1) & m_mask;
    ::new (slot(m_head)) T(std::move(v));
    ++m_size;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return m_data == nullptr ? 0 : m_mask + 1; }
  /// Grows (to a power of two) until `n` items fit.
  void reserve(std::size_t n) {
    while (capacity() < n)
      grow();
  }
  T pop_front() {
    T* p = std::launder(slot(m_head));
    T v = std::move(*p);
    p->~T();
    m_head = (m_head + 1) & m_mask;
    --m_size;
    return v;
  }
  void clear() noexcept {
    while (m_size > 0) {
      std::launder(slot(m_head))->~T();
      m_head = (m_head + 1) & m_mask;
      --m_size;
    }
  }

 private:
  T* slot(std::size_t i) noexcept { return reinterpret_cast<T*>(m_data) + i; }

  void grow_if_full() {
    if (m_data != nullptr && m_size <= m_mask) [[likely]]
      return;
    grow();
  }

  // Out of line, so that push_back stays small enough to inline into the
  // coroutines that push.
  [[gnu::noinline]] void grow() {
    const std::size_t cap = m_data == nullptr ? 4 : (m_mask + 1) * 2;
    // NOLINTNEXTLINE(bugprone-sizeof-expression): T may be a pointer (a queue of pointers)
    void* fresh = ::operator new(cap * sizeof(T), std::align_val_t(alignof(T)));
    T* dst = static_cast<T*>(fresh);
    for (std::size_t i = 0; i < m_size; ++i) {
      T* src = std::launder(slot((m_head + i) & m_mask));
      ::new (dst + i) T(std::move(*src));
      src->~T();
    }
    if (m_data != nullptr) ::operator delete(m_data, std::align_val_t(alignof(T)));
    m_data = fresh;
    m_head = 0;
    m_mask = cap - 1;
  }

  void* m_data = nullptr;
  std::size_t m_head = 0;
  std::size_t m_size = 0;
  std::size_t m_mask = 0;
};

}  // namespace corio::detail
