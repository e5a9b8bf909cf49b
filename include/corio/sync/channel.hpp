// channel<T>: a bounded MPMC FIFO across threads and loops.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "corio/detail/intrusive_list.hpp"
#include "corio/detail/ring_buffer.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/sync/detail/spinning_mutex.hpp"

namespace corio {

/// Thrown by a send to a closed channel, and by a receive from a closed
/// channel once it is empty.
class channel_closed : public std::runtime_error {
 public:
  channel_closed() : std::runtime_error("corio: channel closed") {}
};

/// A bounded FIFO that any number of threads and loops send to and receive
/// from at once. On a loop, `co_await ch.send(v)` and `co_await
/// ch.receive()` suspend only the task; on a plain thread, `send_blocking`
/// and `receive_blocking` block the thread. `try_send` / `try_receive`
/// never wait. `close()` ends it: sends throw channel_closed, receives take
/// what is left and then throw channel_closed; every waiter, async or
/// blocking, is woken.
///
/// A task waiting on a channel is woken through its loop's post() when the
/// item comes from another thread (directly when it comes from its own
/// loop). Waiting tasks go before blocked threads; each kind is FIFO.
///
/// Cancellation: a waiting task is cancelled at once. If an item was
/// handed to a cancelled receiver meanwhile, it goes back to the front of
/// the channel (or to the next receiver); a cancelled sender whose item
/// was already taken returns normally (the item was sent) and the
/// cancellation is thrown at its next suspension. No item is lost or sent
/// twice.
///
/// \code
///   corio::channel<std::string> lines(64);
///   std::thread reader([&] {
///     for (std::string l; std::getline(std::cin, l);) lines.send_blocking(l);
///     lines.close();
///   });
///   try {
///     for (;;) handle(co_await lines.receive());
///   } catch (const corio::channel_closed&) {}
/// \endcode
template <class T>
class channel {
  /// A task waiting on one side: claimed (unlinked) by whoever completes
  /// it, under the channel's lock, then resumed on its own loop.
  struct async_waiter : detail::waiter, detail::list_node, detail::posted_node {
    channel* m_channel;
    event_loop* m_loop = nullptr;
    std::optional<T> m_item;  // receive: the item handed over; send: the item to send
    bool m_sent = false;      // send: the item was taken into the channel
    bool m_receiver = false;

    explicit async_waiter(channel* c) noexcept : m_channel(c) {}

    static constexpr bool await_ready() noexcept { return false; }

    // Claimed while on the list: from here the waker owns our wake-up.
    void enlist(std::unique_lock<detail::spinning_mutex>& lock,
                detail::intrusive_list<async_waiter>& list) {
      m_loop = &detail::current_event_loop();
      list.push_back(*this);
      detail::external_work::add(*m_loop);
      m_run = [](detail::posted_node& n) noexcept { static_cast<async_waiter&>(n).on_claimed(); };
      lock.unlock();
    }

    void on_abort() noexcept {
      const std::lock_guard guard(m_channel->m_mutex);
      if (linked()) {  // nobody claimed it: just leave
        unlink();
        detail::external_work::remove(*m_loop);
      } else {  // a wake-up is on its way: it will finish the abort
        m_defer_abort = true;
      }
    }

    // On the waiter's loop thread, after a waker claimed it.
    void on_claimed() noexcept {
      detail::external_work::remove(*m_loop);
      if (m_state != state::aborted) {
        wake();
        return;
      }
      // A receiver hands its item on; a sender's item that was taken stays
      // sent (the cancellation waits for the task's next suspension).
      if (m_receiver && m_item) m_channel->give_back(std::move(*m_item));
      if (m_receiver) m_item.reset();
      if (m_sent) m_state = state::woken;
      detail::current_loop().schedule(*m_task);
    }
  };

  struct receive_awaitable : async_waiter {
    using async_waiter::async_waiter;
    bool await_suspend(std::coroutine_handle<> h) {
      if (!detail::park(*this, h, "channel receive")) return false;
      std::unique_lock lock(this->m_channel->m_mutex);
      if (!this->m_channel->m_items.empty() || this->m_channel->m_closed) {
        this->m_item = this->m_channel->take_locked(lock);
        this->end_without_suspending();
        return false;
      }
      this->m_receiver = true;
      this->enlist(lock, this->m_channel->m_receivers);
      return true;
    }
    void on_pass() noexcept {
      if (this->m_item) this->m_channel->give_back(std::move(*this->m_item));
      this->m_item.reset();
    }
    T await_resume() {
      this->finish();
      if (!this->m_item) throw channel_closed();
      if (this->m_receiver) this->m_channel->note_delivered();
      return std::move(*this->m_item);
    }
  };

  struct send_awaitable : async_waiter {
    send_awaitable(channel* c, T&& v) : async_waiter(c) { this->m_item.emplace(std::move(v)); }
    bool await_suspend(std::coroutine_handle<> h) {
      if (!detail::park(*this, h, "channel send")) return false;
      std::unique_lock lock(this->m_channel->m_mutex);
      if (this->m_channel->m_closed) {
        this->end_without_suspending();
        return false;
      }
      if (this->m_channel->has_room_locked()) {
        this->m_channel->put_locked(std::move(*this->m_item), lock);
        this->m_sent = true;
        this->end_without_suspending();
        return false;
      }
      this->enlist(lock, this->m_channel->m_senders);
      return true;
    }
    void await_resume() {
      if (this->m_sent) return;  // even if cancelled meanwhile: the item is in
      this->finish();
      throw channel_closed();
    }
  };

 public:
  /// A channel holding at most `capacity` items (at least 1).
  explicit channel(std::size_t capacity) : m_capacity(capacity == 0 ? 1 : capacity) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  /// From a task: waits for room, then sends `v`.
  [[nodiscard]] send_awaitable send(T v) { return send_awaitable(this, std::move(v)); }
  /// From a task: waits for an item and takes it.
  [[nodiscard]] receive_awaitable receive() noexcept { return receive_awaitable(this); }

  /// From a thread (never a loop thread: it would block the loop; debug
  /// mode reports such a call).
  void send_blocking(T v) {
    detail::note_blocking_call("channel::send_blocking");
    std::unique_lock lock(m_mutex);
    for (;;) {
      if (m_closed) throw channel_closed();
      if (has_room_locked()) {
        put_locked(std::move(v), lock);
        return;
      }
      ++m_blocked_senders;
      m_can_send.wait(lock);
      --m_blocked_senders;
    }
  }

  /// From a thread: waits for an item; channel_closed once closed and empty.
  T receive_blocking() {
    detail::note_blocking_call("channel::receive_blocking");
    std::unique_lock lock(m_mutex);
    for (;;) {
      if (!m_items.empty() || m_closed) {
        std::optional<T> v = take_locked(lock);
        if (!v) throw channel_closed();
        return std::move(*v);
      }
      ++m_blocked_receivers;
      m_can_receive.wait(lock);
      --m_blocked_receivers;
    }
  }

  /// Sends `v` if there is room now (from anywhere); moves from it only then.
  bool try_send(T&& v) {
    std::unique_lock lock(m_mutex);
    if (m_closed || !has_room_locked()) return false;
    put_locked(std::move(v), lock);
    return true;
  }
  /// As above with a copy of `v`: false when the channel is full or closed.
  bool try_send(const T& v) {
    T copy(v);
    return try_send(std::move(copy));
  }

  /// Takes an item if one is there now (from anywhere).
  std::optional<T> try_receive() {
    std::unique_lock lock(m_mutex);
    if (m_items.empty()) return std::nullopt;
    return take_locked(lock);
  }

  /// Closes the channel and wakes every waiter (see the class comment).
  void close() {
    std::unique_lock lock(m_mutex);
    if (m_closed) return;
    m_closed = true;
    // Receivers wait only while the channel is empty: they all get
    // channel_closed. Senders' items were not taken: they get it too. Each
    // is claimed (unlinked) under the lock, as on_abort expects, and
    // chained through its posted_node link, which nothing else touches
    // until it is resumed.
    detail::posted_node* first = nullptr;
    detail::posted_node** last = &first;
    for (detail::intrusive_list<async_waiter>* list : {&m_receivers, &m_senders}) {
      while (async_waiter* w = list->pop_front()) {
        detail::posted_node& node = *w;
        *last = &node;
        last = &node.m_next;
      }
    }
    *last = nullptr;
    m_can_send.notify_all();
    m_can_receive.notify_all();
    lock.unlock();
    while (first != nullptr) {
      detail::posted_node* next = first->m_next;  // resume may reuse the link
      resume(static_cast<async_waiter&>(*first));
      first = next;
    }
  }

  /// The most items the channel holds (as constructed; 0 became 1).
  [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }
  /// Items held now, waiting for a receiver (a snapshot: other threads may
  /// change it at once). Safe from any thread.
  [[nodiscard]] std::size_t size() const {
    const std::lock_guard lock(m_mutex);
    return m_items.size();
  }
  /// True once close() was called (items may still be left to receive).
  /// Safe from any thread.
  [[nodiscard]] bool closed() const {
    const std::lock_guard lock(m_mutex);
    return m_closed;
  }

 private:
  [[nodiscard]] bool has_room_locked() const noexcept {
    return !m_receivers.empty() || m_items.size() < m_capacity;
  }

  // Hands `v` to the oldest waiting task, or stores it (there is room) at
  // the back; unlocks. Room for the item to come back (give_back) is made
  // here, before anything changes, where an allocation failure may throw.
  void put_locked(T&& v, std::unique_lock<detail::spinning_mutex>& lock) {
    if (!m_receivers.empty()) {
      m_items.reserve(std::max(m_capacity, m_items.size()) + m_handed + 1);
      hand_locked(std::move(v), lock);
      return;
    }
    m_items.push_back(std::move(v));
    if (m_blocked_receivers != 0) m_can_receive.notify_one();
    lock.unlock();
  }

  void hand_locked(T&& v, std::unique_lock<detail::spinning_mutex>& lock) noexcept {
    async_waiter* w = m_receivers.pop_front();
    w->m_item.emplace(std::move(v));
    ++m_handed;
    lock.unlock();
    resume(*w);
  }

  // A receiver took the item handed to it.
  void note_delivered() noexcept {
    const std::lock_guard lock(m_mutex);
    --m_handed;
  }

  // Takes the oldest item (nullopt when there is none: closed) and refills
  // the freed slot from the oldest waiting sender; unlocks.
  std::optional<T> take_locked(std::unique_lock<detail::spinning_mutex>& lock) {
    if (m_items.empty()) {
      lock.unlock();
      return std::nullopt;
    }
    std::optional<T> v(m_items.pop_front());
    async_waiter* sender = m_senders.pop_front();
    if (sender != nullptr) {
      m_items.push_back(std::move(*sender->m_item));
      sender->m_item.reset();
      sender->m_sent = true;
    } else if (m_blocked_senders != 0) {
      m_can_send.notify_one();
    }
    lock.unlock();
    if (sender != nullptr) resume(*sender);
    return v;
  }

  // A cancelled receiver's item goes to the next waiting receiver, or back
  // to the front, into the room put_locked reserved when it was handed out:
  // nothing here can fail.
  void give_back(T&& v) noexcept {
    std::unique_lock lock(m_mutex);
    --m_handed;
    if (!m_receivers.empty()) {
      hand_locked(std::move(v), lock);
      return;
    }
    m_items.push_front_reserved(std::move(v));
    if (m_blocked_receivers != 0) m_can_receive.notify_one();
    lock.unlock();
  }

  // A claimed waiter goes on on its own loop: from another loop in that
  // loop's batch of messages of this tick, from a plain thread at once.
  static void resume(async_waiter& w) noexcept {
    if (event_loop::current() == w.m_loop) {
      w.on_claimed();
    } else {
      w.m_loop->post_batched(w);
    }
  }

  // What every send and receive writes, in one cache line (a channel
  // between loops moves it between cores on each operation): the lock, the
  // counts and the items. The waiters' lists, read by every operation but
  // written only when a task starts or stops waiting, have a line of their
  // own, which the cores can share while nobody waits.
  alignas(64) mutable detail::spinning_mutex m_mutex;
  std::size_t m_capacity;
  // Items handed to receivers that have not taken them yet. Invariant:
  // m_items' capacity >= max(m_capacity, m_items.size()) + m_handed, so a
  // handed item always fits back.
  std::size_t m_handed = 0;
  std::uint32_t m_blocked_senders = 0;
  std::uint32_t m_blocked_receivers = 0;
  detail::ring_buffer<T> m_items;
  static_assert(sizeof(detail::ring_buffer<T>) <= 32, "the items share the lock's line");
  alignas(64) detail::intrusive_list<async_waiter> m_receivers;
  detail::intrusive_list<async_waiter> m_senders;
  bool m_closed = false;
  std::condition_variable_any m_can_send;
  std::condition_variable_any m_can_receive;
};

}  // namespace corio
