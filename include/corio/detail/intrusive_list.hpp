// Intrusive doubly-linked list: a node unlinks itself in O(1) without knowing
// which list holds it. Every waiter list, the timer wheel's slots and the
// task member lists are built on it, so linking and unlinking never allocate.
#pragma once

#include <cstddef>

namespace corio::detail {

/// A link embedded in an object. A node is in at most one list at a time;
/// `linked()` tells whether it is in one now.
struct list_node {
  list_node* m_prev = nullptr;
  list_node* m_next = nullptr;

  [[nodiscard]] bool linked() const noexcept { return m_next != nullptr; }

  /// Removes the node from whatever list holds it; a no-op when unlinked.
  void unlink() noexcept {
    if (m_next != nullptr) {
      m_prev->m_next = m_next;
      m_next->m_prev = m_prev;
      m_prev = m_next = nullptr;
    }
  }
};

/// A circular list with a sentinel head. `T` derives from `list_node`.
/// The list does not own its elements and cannot be moved (nodes point at
/// the head).
template <class T>
class intrusive_list {
 public:
  intrusive_list() noexcept { m_head.m_prev = m_head.m_next = &m_head; }
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  [[nodiscard]] bool empty() const noexcept { return m_head.m_next == &m_head; }

  void push_back(T& item) noexcept { insert_before(m_head, item); }
  void push_front(T& item) noexcept { insert_before(*m_head.m_next, item); }

  [[nodiscard]] T& front() noexcept { return static_cast<T&>(*m_head.m_next); }
  [[nodiscard]] T& back() noexcept { return static_cast<T&>(*m_head.m_prev); }

  /// Removes and returns the first element, or nullptr when empty.
  T* pop_front() noexcept {
    if (empty()) return nullptr;
    list_node* n = m_head.m_next;
    n->unlink();
    return static_cast<T*>(n);
  }

  /// Moves every element of `other` to the end of this list.
  void splice_back(intrusive_list& other) noexcept {
    if (other.empty()) return;
    list_node* first = other.m_head.m_next;
    list_node* last = other.m_head.m_prev;
    other.m_head.m_prev = other.m_head.m_next = &other.m_head;
    first->m_prev = m_head.m_prev;
    m_head.m_prev->m_next = first;
    last->m_next = &m_head;
    m_head.m_prev = last;
  }

  /// Calls `fn(T&)` for each element; `fn` may unlink the element it gets.
  template <class F>
  void for_each(F&& fn) {
    list_node* n = m_head.m_next;
    while (n != &m_head) {
      list_node* next = n->m_next;
      fn(static_cast<T&>(*n));
      n = next;
    }
  }

  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t k = 0;
    for (const list_node* n = m_head.m_next; n != &m_head; n = n->m_next)
      ++k;
    return k;
  }

 private:
  static void insert_before(list_node& pos, T& item) noexcept {
    list_node& n = item;
    n.m_prev = pos.m_prev;
    n.m_next = &pos;
    pos.m_prev->m_next = &n;
    pos.m_prev = &n;
  }

  list_node m_head;
};

}  // namespace corio::detail
