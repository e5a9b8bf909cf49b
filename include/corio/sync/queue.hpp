// queue<T>: an async FIFO between tasks of one loop, bounded or not.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>

#include "corio/detail/ring_buffer.hpp"
#include "corio/errors.hpp"
#include "corio/sync/detail/list_waiter.hpp"

namespace corio {

/// asyncio.Queue: `co_await q.push(v)` waits while the queue is full,
/// `co_await q.pop()` waits while it is empty. Capacity 0 means unbounded.
/// `close()` ends it: pushes throw `queue_closed`; pops take what is left,
/// then throw `queue_closed`. The queue never holds more than its capacity.
///
/// \note FIFO for items and for waiters on each side: an item pushed while
/// tasks wait in pop() is promised to the oldest of them (it stays in the
/// queue, reserved, until that task resumes and takes the oldest item), and
/// a slot freed while tasks wait in push() is granted to the oldest of them.
///
/// Cancellation: a cancelled waiter is unlinked at once and its item (for
/// push) is not enqueued. A popper promised an item and cancelled before it
/// resumed passes the promise to the next popper, or leaves the item to
/// whoever pops next; a pusher granted a slot and cancelled before it
/// resumed gives the slot to the next pusher. No item is lost, duplicated
/// or reordered, and nothing allocates on the way.
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
    // Takes the front item when it resumes: one is free now (ready), or
    // was promised to it while it waited (not set when woken by close).
    bool m_promised = false;
    bool m_ready = false;
    explicit pop_waiter(queue* q) noexcept : m_queue(q) {}
    bool await_ready() noexcept {
      if (m_queue->m_items.size() > m_queue->m_reserved) {
        m_ready = true;
        return true;
      }
      // Closed: wait only for items that granted pushers still deliver.
      return m_queue->m_closed && m_queue->m_granted == 0;
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return park_in(m_queue->m_poppers, h, "queue pop");
    }
    void on_pass() noexcept {
      if (m_promised) m_queue->pass_promise();
    }
    T await_resume() {
      if (!m_ready) {
        finish();
        if (!m_promised) throw queue_closed();  // woken by close()
        --m_queue->m_reserved;
      }
      return m_queue->take_front();
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
      return park_in(m_queue->m_pushers, h, "queue push");
    }
    void on_pass() noexcept {
      if (!m_grant) return;
      --m_queue->m_granted;
      m_queue->grant_pushers();
      m_queue->wake_poppers_if_drained();
    }
    void await_resume() {
      if (m_done) return;
      finish();
      if (!m_grant) throw queue_closed();  // woken by close()
      --m_queue->m_granted;                // the slot granted to us
      m_queue->store(std::move(m_item));
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
  /// As above with a copy of `v`: false when the queue is full, others wait
  /// to push, or it is closed (no queue_closed is thrown).
  bool try_push(const T& v) {
    T copy(v);
    return try_push(std::move(copy));
  }

  /// Dequeues an item if one is there now and not promised to a waiting
  /// popper.
  std::optional<T> try_pop() {
    if (m_items.size() <= m_reserved) return std::nullopt;
    return std::optional<T>(take_front());
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

  /// True once close() was called (items may still be left to pop).
  [[nodiscard]] bool closed() const noexcept { return m_closed; }
  /// Items in the queue now, including those promised to poppers that have
  /// not resumed yet.
  [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
  /// True when size() is 0.
  [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }
  /// The bound given at construction; 0: unbounded.
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
  /// True when a push would wait (items promised to poppers that have
  /// not resumed yet still count: they are in the queue).
  [[nodiscard]] bool full() const noexcept {
    return m_capacity != 0 && m_items.size() + m_granted >= m_capacity;
  }

 private:
  // Stores `v` if there is room; moves from v only when it succeeds.
  bool offer(T& v) {
    if (full() || !m_pushers.empty()) return false;
    store(std::move(v));
    return true;
  }

  // Enqueues `v` and promises it to the oldest waiting popper, if any.
  void store(T&& v) {
    m_items.push_back(std::move(v));
    promise_to_popper();
  }

  void promise_to_popper() noexcept {
    if (pop_waiter* w = m_poppers.pop_front()) {
      ++m_reserved;
      w->m_promised = true;
      w->wake();
    }
  }

  // A popper promised an item was cancelled before it took it: the
  // promise goes to the next popper, or the item is free for anyone.
  void pass_promise() noexcept {
    --m_reserved;
    promise_to_popper();
  }

  T take_front() {
    T v = m_items.pop_front();
    if (!m_pushers.empty()) grant_pushers();
    return v;
  }

  // Once closed and no granted pusher has an item to deliver, the poppers
  // still waiting (every item left is promised) get queue_closed.
  void wake_poppers_if_drained() noexcept {
    if (!m_closed || m_granted != 0) return;
    while (pop_waiter* w = m_poppers.pop_front())
      w->wake();
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
  std::size_t m_granted = 0;   // slots promised to woken pushers
  std::size_t m_reserved = 0;  // items promised to woken poppers (at the front)
  bool m_closed = false;
  detail::ring_buffer<T> m_items;
  detail::intrusive_list<pop_waiter> m_poppers;
  detail::intrusive_list<push_waiter> m_pushers;
};

}  // namespace corio
