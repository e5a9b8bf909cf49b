// profiler: named latency histograms measured by scopes that may span awaits.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "corio/observe/histogram.hpp"

namespace corio {

/// How a profiler reports slow operations.
struct profiler_options {
  /// A measured operation at least this long is logged at once (the
  /// guide's AsyncProfiler threshold), naming the operation and the task
  /// that ran it. Zero: never.
  std::chrono::nanoseconds slow_threshold{0};
  /// Where slow operations are logged, one message per call: the current
  /// loop's report sink (see loop_options::report), or stderr outside a loop.
  std::function<void(const std::string&)> log{};
};

/// One operation's statistics, as `profiler::snapshot()` gives them.
struct profile_entry {
  std::string name;             ///< The operation's name, as given to measure() or record().
  latency_histogram histogram;  ///< Its durations (a copy, taken under the profiler's lock).
  /// Scopes that ended by an exception (cancellation included).
  std::uint64_t errors = 0;
};

/// Per-name latency histograms, fed by scopes: `auto s = prof.measure("db")`
/// records the time from here to the end of the scope, across any awaits
/// in between; a scope left by an exception counts as an error too. Inside
/// an event loop the loop's clock is used, so a virtual-clock test measures
/// virtual time. Thread-safe (one short lock per recorded sample), so pool
/// threads and several loops may share one profiler.
///
/// \code
///   corio::profiler prof({.slow_threshold = std::chrono::milliseconds(100)});
///   corio::task<row> load(int id) {
///     auto s = prof.measure("db_query");
///     co_return co_await db.query(id);
///   }
///   std::cout << prof.report();   // count, mean, p50, p90, p99, max per name
/// \endcode
class profiler {
 public:
  class scope;

  /// An empty profiler that logs slow operations as `options` says.
  explicit profiler(profiler_options options = {});
  profiler(const profiler&) = delete;
  profiler& operator=(const profiler&) = delete;
  ~profiler();

  /// Starts measuring `name`; the sample is recorded when the scope ends
  /// (or at `scope::stop()`).
  [[nodiscard]] scope measure(std::string_view name);
  /// Records one sample of `name` measured some other way.
  void record(std::string_view name, std::chrono::nanoseconds d, bool error = false);

  /// Every name's statistics, sorted by name.
  [[nodiscard]] std::vector<profile_entry> snapshot() const;
  /// A text table: name, count, errors, mean, p50, p90, p99, max.
  [[nodiscard]] std::string report() const;
  /// The same as a JSON object keyed by name; durations in nanoseconds.
  [[nodiscard]] std::string json() const;
  /// Forgets every sample.
  void reset();

 private:
  struct metric;
  metric& find(std::string_view name);
  void add_sample(metric& m, std::int64_t ns, bool error);
  static std::int64_t now_ns() noexcept;

  profiler_options m_options;
  mutable std::mutex m_mutex;
  std::map<std::string, std::unique_ptr<metric>, std::less<>> m_metrics;
};

/// A running measurement (see profiler::measure). Move-only.
class profiler::scope {
 public:
  /// Takes over `o`'s measurement; `o` then records nothing. The scope (and
  /// any it was moved into) must not outlive its profiler.
  scope(scope&& o) noexcept
      : m_owner(std::exchange(o.m_owner, nullptr)),
        m_metric(o.m_metric),
        m_start_ns(o.m_start_ns),
        m_exceptions(o.m_exceptions) {}
  scope& operator=(scope&&) = delete;
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;
  ~scope() { stop(); }

  /// Records the sample now instead of at the end of the scope.
  void stop() noexcept;

 private:
  friend class profiler;
  scope(profiler* owner, metric* m, std::int64_t start_ns) noexcept;

  profiler* m_owner;
  metric* m_metric;
  std::int64_t m_start_ns;
  int m_exceptions;  // std::uncaught_exceptions() at the start
};

}  // namespace corio
