// loop_local<T>: one T per loop of a runtime (seastar's sharded<T>).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "corio/exec/cross_loop.hpp"

namespace corio {

/// One instance of T per loop of the runtime it is made on, each made by
/// `make()` on its own loop's thread the first time that loop asks for it
/// (so what it holds, a pool, a cache, sync primitives, belongs to that
/// loop). `local()` is that loop's instance: no lock, no atomic. Made off
/// a runtime, it has one instance. The instances are destroyed with the
/// loop_local, on that thread: destroy it after the loops stopped, or
/// `co_await clear()` first, which destroys each on its own loop.
///
/// \code
///   corio::loop_local<lru_cache> caches([] { return lru_cache(10'000); });
///   // on any loop:
///   if (auto* hit = caches.local().find(key)) ...
/// \endcode
template <class T>
class loop_local {
 public:
  /// Sizes one empty slot per loop of the current thread's runtime (one off a
  /// runtime); `make` runs later, on each loop's first `local()`. Make it on
  /// a loop of the runtime it serves: `local()` throws std::logic_error when
  /// the calling loop's index is out of range (a loop of another, larger
  /// runtime), and other use from another runtime is not detected.
  explicit loop_local(std::function<T()> make)
      : m_make(std::move(make)), m_instances(loop_count()) {}
  loop_local(const loop_local&) = delete;
  loop_local& operator=(const loop_local&) = delete;

  /// This loop's instance, made now if it is the loop's first use.
  T& local() {
    const std::size_t i = this_loop_index();
    if (i >= m_instances.size()) {
      throw std::logic_error("corio::loop_local: used on a loop of another runtime");
    }
    std::unique_ptr<T>& slot = m_instances[i];
    // new T(prvalue) builds in place: T need not be movable (a pool is not).
    if (slot == nullptr) slot.reset(new T(m_make()));  // NOLINT(modernize-make-unique)
    return *slot;
  }

  /// Destroys every loop's instance on its own loop (the next local()
  /// makes a new one).
  task<void> clear() {
    if (detail::t_runtime == nullptr) {
      m_instances[0].reset();
      co_return;
    }
    co_await invoke_on_all([this](std::size_t i) { m_instances[i].reset(); });
  }

  /// The number of loops (instances that may exist).
  [[nodiscard]] std::size_t size() const noexcept { return m_instances.size(); }

 private:
  std::function<T()> m_make;
  // Slot i is touched only by loop i's thread (and by the destructor).
  std::vector<std::unique_ptr<T>> m_instances;
};

}  // namespace corio
