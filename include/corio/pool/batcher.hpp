// batcher<K, V>: automatic batching (DataLoader style): the loads of one
// loop tick go to one call of a batch function.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "corio/cancelled_error.hpp"
#include "corio/detail/throw.hpp"
#include "corio/pool/detail/job_owner.hpp"
#include "corio/sync/detail/list_waiter.hpp"
#include "corio/task/outcome.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// How a batcher gathers keys.
struct batcher_options {
  /// At most this many distinct keys per call of the batch function; more
  /// are split over several calls. 0: no limit.
  std::size_t max_batch = 0;
  /// Wait this long after a batch's first load before sending it, to gather
  /// more. 0 (the default): send at the end of the loop tick, which adds no
  /// latency at all.
  std::chrono::nanoseconds max_delay{0};
  /// Keep each key's value once loaded and answer later loads from it
  /// (failures are not kept). Scope the batcher to what may share values,
  /// such as one request; `clear(key)` and `clear_all()` forget.
  bool cache = false;
};

/// What a batcher did.
struct batcher_stats {
  std::uint64_t loads = 0;           ///< load() calls
  std::uint64_t cache_hits = 0;      ///< loads answered from the cache
  std::uint64_t batches = 0;         ///< calls of the batch function
  std::uint64_t keys = 0;            ///< keys sent, after duplicates and drops
  std::uint64_t failed_batches = 0;  ///< batches that threw, or gave the wrong count of results
  std::size_t max_keys = 0;          ///< the largest batch sent
  /// keys_per_batch[i]: batches of 2^i up to 2^(i+1) - 1 keys.
  std::array<std::uint64_t, 32> keys_per_batch{};
};

/// Thrown to the loads of a batcher destroyed before their batch was sent.
class batcher_destroyed : public std::runtime_error {
 public:
  batcher_destroyed() : std::runtime_error("corio::batcher destroyed before the batch was sent") {}
};

/// Coalesces concurrent `load(key)` calls into calls of a batch function
/// (GraphQL's DataLoader): every load issued in one loop tick goes out in
/// one call at the tick's end (a loop phase after the ready queue drains,
/// before the loop polls), duplicate keys once. The batch function gets the
/// keys and returns one result per key, in order: `task<std::vector<V>>`,
/// or `task<std::vector<outcome<V>>>` for per-key errors. A batch that
/// throws fails its own loads only. The batch runs as the batcher's own
/// task, so no waiter can cancel it for the others.
///
/// Cancellation: a load cancelled before its batch was sent drops its key
/// (unless another load wants it too); one cancelled after just ignores
/// the result.
///
/// \code
///   corio::batcher<int, user> users([&](std::span<const int> ids) {
///     return db.fetch_users(ids);   // one query for the whole tick
///   });
///   user u = co_await users.load(42);
/// \endcode
template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class batcher final : private detail::job_owner {
  struct batch;

  struct load_waiter : detail::list_waiter {
    batcher* m_owner;
    K m_key;
    batch* m_batch = nullptr;
    std::uint32_t m_index = 0;
    std::optional<V> m_value;
    std::exception_ptr m_error;

    load_waiter(batcher* b, K key) noexcept(std::is_nothrow_move_constructible_v<K>)
        : m_owner(b), m_key(std::move(key)) {}
    bool await_ready() { return m_owner->from_cache(*this); }
    bool await_suspend(std::coroutine_handle<> h) {
      m_owner->enqueue(*this);  // may throw (no memory): nothing is parked yet
      if (detail::park(*this, h, "batcher load")) return true;
      on_abort();  // a cancellation was pending
      return false;
    }
    void on_abort() noexcept {
      unlink();
      if (m_batch != nullptr && !m_batch->m_sent) --m_batch->m_wanted[m_index];
    }
    V await_resume() {
      finish();
      if (m_error) std::rethrow_exception(m_error);
      return std::move(*m_value);
    }
  };

  // The keys of one call and the loads that wait for them. Owned by the
  // batcher until sent, then by the job that runs it, which gives it back
  // for reuse, so a steady stream of batches allocates nothing for them.
  struct batch {
    std::vector<K> m_keys;
    std::vector<std::uint32_t> m_wanted;  // live loads per key
    // Open addressing over m_keys: index + 1 per slot, 0 for empty; a key
    // is stored once, in m_keys.
    std::vector<std::uint32_t> m_table;
    detail::intrusive_list<load_waiter> m_waiters;
    bool m_sent = false;

    /// The index of `key`, or -1.
    std::int64_t find(const batcher& b, const K& key) const {
      if (m_table.empty()) return -1;
      const std::size_t mask = m_table.size() - 1;
      for (std::size_t i = slot_of(b, key, mask);; i = (i + 1) & mask) {
        const std::uint32_t e = m_table[i];
        if (e == 0) return -1;
        if (b.m_eq(m_keys[e - 1], key)) return static_cast<std::int64_t>(e) - 1;
      }
    }
    /// Adds `key` (not present) and returns its index.
    std::uint32_t add(const batcher& b, K&& key) {
      if (m_table.size() < 2 * (m_keys.size() + 1)) grow(b);
      const auto n = static_cast<std::uint32_t>(m_keys.size());
      m_keys.push_back(std::move(key));
      m_wanted.push_back(0);
      place(b, n);
      return n;
    }
    void grow(const batcher& b) {
      m_table.assign(m_table.empty() ? 64 : m_table.size() * 2, 0);
      for (std::uint32_t i = 0; i < m_keys.size(); ++i)
        place(b, i);
    }
    void place(const batcher& b, std::uint32_t index) {
      const std::size_t mask = m_table.size() - 1;
      std::size_t i = slot_of(b, m_keys[index], mask);
      while (m_table[i] != 0)
        i = (i + 1) & mask;
      m_table[i] = index + 1;
    }
    static std::size_t slot_of(const batcher& b, const K& key, std::size_t mask) {
      // Fibonacci hashing: std::hash of an integer is the integer itself.
      return static_cast<std::size_t>(
                 (static_cast<std::uint64_t>(b.m_hash(key)) * 0x9e3779b97f4a7c15ULL) >> 32) &
             mask;
    }
    void clear() noexcept {
      m_keys.clear();
      m_wanted.clear();
      std::fill(m_table.begin(), m_table.end(), 0);
      m_sent = false;
    }
  };

 public:
  /// The batch function returns one value per key, in the keys' order.
  using batch_function = std::function<task<std::vector<V>>(std::span<const K>)>;
  /// The same, with a value or an error per key.
  using outcome_batch_function = std::function<task<std::vector<outcome<V>>>(std::span<const K>)>;

  /// A batcher whose batch function gives one value per key. Throws
  /// std::invalid_argument when `fn` is empty.
  explicit batcher(batch_function fn, batcher_options options = {})
      : m_values_fn(std::move(fn)), m_options(options) {
    if (!m_values_fn) detail::throw_invalid_argument("corio::batcher: no batch function");
    init();
  }
  /// A batcher whose batch function gives a value or an error per key (an
  /// empty outcome fails its loads with std::logic_error). Throws
  /// std::invalid_argument when `fn` is empty.
  explicit batcher(outcome_batch_function fn, batcher_options options = {})
      : m_outcomes_fn(std::move(fn)), m_options(options) {
    if (!m_outcomes_fn) detail::throw_invalid_argument("corio::batcher: no batch function");
    init();
  }
  batcher(const batcher&) = delete;
  batcher& operator=(const batcher&) = delete;
  /// Loads not yet sent fail with `batcher_destroyed`; batches running
  /// finish for their loads.
  ~batcher() {
    m_tick_end.unlink();
    if (m_timer.linked()) m_timer_loop->timers().cancel(m_timer);
    for (auto& b : m_unsent)
      fail_all(*b, std::make_exception_ptr(batcher_destroyed()));
  }

  /// Waits for the value of `key`, loaded with the other keys of this tick.
  [[nodiscard]] load_waiter load(K key) { return load_waiter(this, std::move(key)); }

  /// Forgets the cached value of `key`.
  void clear(const K& key) { m_cache.erase(key); }
  /// Forgets every cached value.
  void clear_all() noexcept { m_cache.clear(); }

  /// What the batcher did so far.
  [[nodiscard]] const batcher_stats& stats() const noexcept { return m_stats; }

 private:
  void init() noexcept {
    m_cancel_on_destroy = false;  // batches others wait for finish
    m_tick_end.m_fire = &on_tick_end;
    m_tick_end.m_self = this;
    m_timer.m_fire = &on_timer;
    m_timer.m_self = this;
  }

  bool from_cache(load_waiter& w) {
    ++m_stats.loads;
    if (!m_options.cache) return false;
    auto it = m_cache.find(w.m_key);
    if (it == m_cache.end()) return false;
    ++m_stats.cache_hits;
    w.m_value.emplace(it->second);
    return true;
  }

  void enqueue(load_waiter& w) {
    batch* target = nullptr;
    std::int64_t index = -1;
    for (auto& b : m_unsent) {  // a key already waiting joins its batch
      index = b->find(*this, w.m_key);
      if (index >= 0) {
        target = b.get();
        break;
      }
    }
    if (target == nullptr) {
      if (m_unsent.empty() ||
          (m_options.max_batch != 0 && m_unsent.back()->m_keys.size() >= m_options.max_batch)) {
        m_unsent.push_back(fresh_batch());
      }
      target = m_unsent.back().get();
      index = target->add(*this, std::move(w.m_key));
    }
    ++target->m_wanted[static_cast<std::size_t>(index)];
    w.m_batch = target;
    w.m_index = static_cast<std::uint32_t>(index);
    target->m_waiters.push_back(w);
    detail::loop_core& loop = detail::current_loop();
    if (m_options.max_delay.count() <= 0) {
      loop.at_tick_end(m_tick_end);
    } else if (!m_timer.linked()) {
      m_timer_loop = &loop;
      m_timer.m_when_ns = loop.now_ns() + m_options.max_delay.count();
      loop.add_timer(m_timer);
    }
  }

  std::unique_ptr<batch> fresh_batch() {
    if (m_spare.empty()) return std::make_unique<batch>();
    std::unique_ptr<batch> b = std::move(m_spare.back());
    m_spare.pop_back();
    return b;
  }
  void recycle(std::unique_ptr<batch> b) noexcept {
    if (m_spare.size() >= 4) return;  // freed
    b->clear();
    try {
      m_spare.push_back(std::move(b));
    } catch (...) {  // NOLINT(bugprone-empty-catch): freed instead
    }
  }

  struct tick_hook : detail::tick_end_node {
    batcher* m_self = nullptr;
  };
  struct delay_timer : detail::timer_node {
    batcher* m_self = nullptr;
  };
  static void on_tick_end(detail::tick_end_node& n) noexcept {
    static_cast<tick_hook&>(n).m_self->send_all();
  }
  static void on_timer(detail::timer_node& t) noexcept {
    static_cast<delay_timer&>(t).m_self->send_all();
  }

  void send_all() noexcept {
    std::vector<std::unique_ptr<batch>> ready;
    ready.swap(m_unsent);
    for (auto& b : ready) {
      try {
        send(b);
      } catch (...) {  // no memory for the job: its loads fail
        if (b) fail_all(*b, std::current_exception());
      }
    }
  }

  // A sent batch's job owns the batch through this link: however the job
  // ends, even cancelled before it ran (the loop shutting down), no load
  // is left waiting.
  struct batch_job : detail::job_link {
    batch_job(batcher* owner, std::unique_ptr<batch> b) noexcept
        : job_link(owner), m_batch(std::move(b)) {}
    batch_job(batch_job&&) noexcept = default;
    batch_job(const batch_job&) = delete;
    batch_job& operator=(const batch_job&) = delete;
    batch_job& operator=(batch_job&&) = delete;
    ~batch_job() {
      if (m_batch) fail_all(*m_batch, std::make_exception_ptr(cancelled_error()));
    }
    [[nodiscard]] batcher* owner() const noexcept { return static_cast<batcher*>(m_owner); }
    std::unique_ptr<batch> m_batch;
  };

  void send(std::unique_ptr<batch>& b) {
    // Keys whose loads were all cancelled are dropped; the others renumbered.
    if (std::find(b->m_wanted.begin(), b->m_wanted.end(), 0U) != b->m_wanted.end()) compact(*b);
    b->m_sent = true;
    if (b->m_keys.empty()) {
      recycle(std::move(b));
      return;
    }
    const std::size_t n = b->m_keys.size();
    ++m_stats.batches;
    m_stats.keys += n;
    if (n > m_stats.max_keys) m_stats.max_keys = n;
    ++m_stats.keys_per_batch[std::bit_width(n) - 1];
    spawn_job(run(batch_job(this, std::move(b)), m_values_fn, m_outcomes_fn), "batcher: batch");
  }

  static void compact(batch& b) {
    std::vector<std::uint32_t> new_index(b.m_keys.size());
    std::vector<K> keys;
    keys.reserve(b.m_keys.size());
    for (std::size_t i = 0; i < b.m_keys.size(); ++i) {
      if (b.m_wanted[i] == 0) continue;
      new_index[i] = static_cast<std::uint32_t>(keys.size());
      keys.push_back(std::move(b.m_keys[i]));
    }
    b.m_keys = std::move(keys);
    b.m_waiters.for_each([&](load_waiter& w) { w.m_index = new_index[w.m_index]; });
  }

  // Runs one batch and hands each load its result.
  static task<> run(batch_job job, batch_function values_fn, outcome_batch_function outcomes_fn) {
    batch* b = job.m_batch.get();
    const std::span<const K> keys(b->m_keys);
    std::vector<V> values;
    std::vector<outcome<V>> outcomes;
    std::exception_ptr error;
    try {
      std::size_t got = 0;
      if (values_fn) {
        values = co_await values_fn(keys);
        got = values.size();
      } else {
        outcomes = co_await outcomes_fn(keys);
        got = outcomes.size();
      }
      if (got != keys.size()) {
        detail::throw_logic_error(
            "corio::batcher: the batch function returned a different number of results than it "
            "was given keys");
      }
    } catch (const cancelled_error&) {
      throw;  // the loop is shutting down: the link fails the loads
    } catch (...) {
      error = std::current_exception();
    }
    batcher* self = job.owner();
    if (error) {
      if (self != nullptr) ++self->m_stats.failed_batches;
      fail_all(*b, error);
    } else {
      if (self != nullptr && self->m_options.cache) self->fill_cache(*b, values, outcomes);
      while (load_waiter* w = b->m_waiters.pop_front()) {
        if (values_fn) {
          w->m_value.emplace(values[w->m_index]);
        } else if (outcome<V>& r = outcomes[w->m_index]; r.has_error()) {
          w->m_error = r.error();
        } else if (r.has_value()) {
          w->m_value.emplace(r.value());
        } else {
          w->m_error =
              std::make_exception_ptr(std::logic_error("corio::batcher: an empty outcome"));
        }
        w->wake();
      }
    }
    if (self != nullptr) self->recycle(std::move(job.m_batch));
  }

  void fill_cache(const batch& b, std::vector<V>& values, std::vector<outcome<V>>& outcomes) {
    for (std::size_t i = 0; i < b.m_keys.size(); ++i) {
      if (!values.empty()) {
        m_cache.insert_or_assign(b.m_keys[i], values[i]);
      } else if (outcomes[i].has_value()) {
        m_cache.insert_or_assign(b.m_keys[i], outcomes[i].value());
      }
    }
  }

  static void fail_all(batch& b, const std::exception_ptr& e) noexcept {
    while (load_waiter* w = b.m_waiters.pop_front()) {
      w->m_error = e;
      w->wake();
    }
  }

  batch_function m_values_fn;
  outcome_batch_function m_outcomes_fn;
  batcher_options m_options;
  Hash m_hash{};
  Eq m_eq{};
  std::vector<std::unique_ptr<batch>> m_unsent;
  std::vector<std::unique_ptr<batch>> m_spare;
  std::unordered_map<K, V, Hash, Eq> m_cache;
  batcher_stats m_stats;
  tick_hook m_tick_end;
  delay_timer m_timer;
  detail::loop_core* m_timer_loop = nullptr;
};

}  // namespace corio
