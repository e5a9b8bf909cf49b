// queue<T>: an async FIFO between tasks of one loop, bounded or not.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>

#include "corio/detail/list_waiter.hpp"
#include "corio/detail/ring_buffer.hpp"
#include "corio/errors.hpp"

namespace corio {

/// asyncio.Queue: `co_await q.push(v)` waits while the queue is full,
/// `co_await q.pop()` waits while it is empty. Capacity 0 means unbounded.
/// `close()` ends it: pushes throw `queue_closed`; pops take what is left,
/// then throw `queue_closed`.
///
/// \note FIFO for items and for waiters on each side: an item pushed while
/// tasks wait in pop() is handed straight to the oldest of them, and a slot
/// freed while tasks wait in push() is granted to the oldest of them.
///
/// Cancellation: a cancelled waiter is unlinked at once and its item (for
/// push) is not enqueued. A popper handed an item and cancelled before it
/// resumed puts the item back at the head (or hands it to the next popper);
/// a pusher granted a slot and cancelled before it resumed gives the slot to
/// the next pusher. No item is lost or duplicated.
///
/// \code
///   corio::queue<int> q(16);
///   co_await q.push(1);
///   int v = co_await q.pop();
/// \endcode
template <class T>
class queue {
  struct pop_waiter : detail::list_waiter {
    queue* m_queue;
    // Handed while parked: the waiter then sits in the queue's transit list
    // (through the list node it parked with) until it resumes.
    std::optional<T> m_item;
    bool m_in_transit = false;
    explicit pop_waiter(queue* q) noexcept : m_queue(q) {}
    bool await_ready() {
      if (!m_queue->m_items.empty()) {
        m_item.emplace(m_queue->m_items.pop_front());
        m_queue->grant_pushers();
        return true;
      }
      // Closed: wait only for items that granted pushers still deliver.
      return m_queue->m_closed && m_queue->m_granted == 0;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (!park_in(m_queue->m_poppers, h, "queue pop")) return false;
      m_on_pass = [](detail::waiter& w) noexcept {
        auto& self = static_cast<pop_waiter&>(w);
        if (self.m_in_transit) self.m_queue->give_back(self);
      };
      return true;
    }
    T await_resume() {
      if (m_state != state::idle) finish();
      if (!m_item) throw queue_closed();
      if (m_in_transit) m_queue->arrived(*this);
      return std::move(*m_item);
    }
  };

  struct push_waiter : detail::list_waiter {
    queue* m_queue;
    T m_item;
    bool m_done = false;   // enqueued without waiting
    bool m_grant = false;  // woken with a slot (not by close)
    push_waiter(queue* q, T&& v) : m_queue(q), m_item(std::move(v)) {}
    bool await_ready() {
      if (m_queue->m_closed) return true;
      if (m_queue->offer(m_item)) {
        m_done = true;
        return true;
      }
      return false;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (!park_in(m_queue->m_pushers, h, "queue push")) return false;
      m_on_pass = [](detail::waiter& w) noexcept {
        auto& self = static_cast<push_waiter&>(w);
        if (self.m_grant) {
          --self.m_queue->m_granted;
          self.m_queue->grant_pushers();
          self.m_queue->wake_poppers_if_drained();
        }
      };
      return true;
    }
    void await_resume() {
      if (m_done) return;
      if (m_state != state::idle) finish();
      if (!m_grant) throw queue_closed();  // woken by close()
      --m_queue->m_granted;                // the slot granted to us
      m_queue->deliver(std::move(m_item));
      m_queue->wake_poppers_if_drained();
    }
  };

 public:
  /// A queue holding at most `capacity` items (0: unbounded).
  explicit queue(std::size_t capacity = 0) noexcept : m_capacity(capacity) {}
  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;

  /// Waits for room, then enqueues `v`. Throws queue_closed when closed.
  [[nodiscard]] push_waiter push(T v) { return push_waiter(this, std::move(v)); }

  /// Waits for an item and dequeues it. Throws queue_closed once the queue is
  /// closed and empty.
  [[nodiscard]] pop_waiter pop() noexcept { return pop_waiter(this); }

  /// Enqueues `v` if there is room now; moves from `v` only on success.
  bool try_push(T&& v) {
    if (m_closed) return false;
    return offer(v);
  }
  bool try_push(const T& v) {
    T copy(v);
    return try_push(std::move(copy));
  }

  /// Dequeues an item if one is there now.
  std::optional<T> try_pop() {
    if (m_items.empty()) return std::nullopt;
    std::optional<T> v(m_items.pop_front());
    grant_pushers();
    return v;
  }

  /// Closes the queue: wakes every waiter (pushers still waiting throw
  /// queue_closed; pushers already granted a slot enqueue; poppers take the
  /// remaining items, including those of granted pushers, then throw
  /// queue_closed).
  void close() noexcept {
    if (m_closed) return;
    m_closed = true;
    while (push_waiter* w = m_pushers.pop_front())
      w->wake();
    wake_poppers_if_drained();
  }

  [[nodiscard]] bool closed() const noexcept { return m_closed; }
  [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
  [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
  /// True when a push would wait. Items handed to poppers that have not
  /// resumed yet still count, so the queue never holds more than its
  /// capacity, even when such a popper is cancelled and gives its item back.
  [[nodiscard]] bool full() const noexcept {
    return m_capacity != 0 && m_items.size() + m_granted + m_in_transit >= m_capacity;
  }

 private:
  // Hands `v` to the oldest popper or stores it if there is room; moves
  // from v only when it succeeds.
  bool offer(T& v) {
    if (full() || !m_pushers.empty()) return false;
    if (!m_poppers.empty()) {
      hand_over(std::move(v));
    } else {
      store(std::move(v));
    }
    return true;
  }

  // A granted pusher enqueues its item, or hands it to a popper; either
  // way its slot stays taken until the item leaves.
  void deliver(T&& v) {
    if (!m_poppers.empty()) {
      hand_over(std::move(v));
      return;
    }
    store(std::move(v));
  }

  // Stores `v`, keeping room for every item in transit to come back.
  void store(T&& v) {
    m_items.reserve(m_items.size() + m_in_transit + 1);
    m_items.push_back(std::move(v));
  }

  // Hands `v` to the oldest popper. Room to give it back is reserved first,
  // so that a cancelled popper's give_back never allocates.
  void hand_over(T&& v) {
    m_items.reserve(m_items.size() + m_in_transit + 1);
    pop_waiter* w = m_poppers.pop_front();
    w->m_item.emplace(std::move(v));
    w->m_in_transit = true;
    m_transit.push_back(*w);
    ++m_in_transit;
    w->wake();
  }

  // A popper resumed with the item it was handed: its slot is free.
  void arrived(pop_waiter& w) noexcept {
    w.unlink();
    --m_in_transit;
    grant_pushers();
  }

  // Once closed and no granted pusher has an item to deliver, the poppers
  // still waiting (the queue is empty) get queue_closed.
  void wake_poppers_if_drained() noexcept {
    if (!m_closed || m_granted != 0) return;
    while (pop_waiter* w = m_poppers.pop_front())
      w->wake();
  }

  // A popper handed an item and cancelled before it resumed: the items in
  // transit keep their order, so its item moves to the next popper in
  // transit, whose item moves on in turn; the newest one goes to a popper
  // still waiting, or back to the head of the queue (every stored item is
  // newer: items are stored only while nobody waits).
  void give_back(pop_waiter& w) noexcept {
    std::optional<T> carry(std::move(w.m_item));
    w.m_item.reset();
    bool after = false;
    m_transit.for_each([&](pop_waiter& next) {
      if (after) std::swap(carry, next.m_item);
      after = after || &next == &w;
    });
    w.unlink();
    w.m_in_transit = false;
    if (pop_waiter* next = m_poppers.pop_front()) {
      next->m_item = std::move(carry);
      next->m_in_transit = true;
      m_transit.push_back(*next);
      next->wake();
      return;
    }
    --m_in_transit;
    m_items.push_front(std::move(*carry));  // room was reserved by hand_over
  }

  // Grants free slots to waiting pushers, oldest first.
  void grant_pushers() noexcept {
    while (!m_pushers.empty() && !full()) {
      push_waiter* w = m_pushers.pop_front();
      ++m_granted;
      w->m_grant = true;
      w->wake();
    }
  }

  std::size_t m_capacity;
  std::size_t m_granted = 0;     // slots promised to woken pushers
  std::size_t m_in_transit = 0;  // items handed to poppers that have not resumed
  bool m_closed = false;
  detail::ring_buffer<T> m_items;
  detail::intrusive_list<pop_waiter> m_poppers;
  detail::intrusive_list<pop_waiter> m_transit;  // handed an item, not resumed, oldest first
  detail::intrusive_list<push_waiter> m_pushers;
};

}  // namespace corio
