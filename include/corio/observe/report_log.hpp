// report_log: the latest reports of the loops (slow resumptions, tasks never
// awaited, the watchdog's findings), kept for the dashboard and exports.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace corio {

/// One report a loop made, with the wall-clock time it arrived.
struct logged_report {
  std::chrono::system_clock::time_point at;  ///< when the report reached the log
  std::string text;                          ///< the report, as the loop wrote it
};

/// Keeps the last `capacity` reports of the loops whose `loop_options::report`
/// is its `sink()`, for a person to read later (`metrics_registry::add_reports`
/// puts them in `/metrics.json`, where the dashboard shows them). Reports
/// still go where they went before: to `next`, stderr by default. Thread-safe:
/// every loop of a runtime may report into one log. The log must outlive the
/// loops that report into it.
///
/// \code
///   corio::report_log reports;
///   corio::loop_options options;
///   options.debug = true;
///   options.report = reports.sink();
///   corio::event_loop loop(options);
///   // ... later, on any thread:
///   for (const corio::logged_report& r : reports.recent()) std::cout << r.text << '\n';
/// \endcode
class report_log {
 public:
  /// What `loop_options::report` holds: called with one complete report.
  using sink_type = std::function<void(const std::string&)>;

  /// A log that keeps the latest `capacity` reports (at least one).
  explicit report_log(std::size_t capacity = 64);
  report_log(const report_log&) = delete;
  report_log& operator=(const report_log&) = delete;
  ~report_log();

  /// A function for `loop_options::report`: keeps each report here, then
  /// hands it to `next` (stderr when empty).
  [[nodiscard]] sink_type sink(sink_type next = {});
  /// Keeps one report (what the sink does before passing it on).
  void add(std::string text);
  /// The reports kept, oldest first.
  [[nodiscard]] std::vector<logged_report> recent() const;
  /// Every report ever added, including those no longer kept.
  [[nodiscard]] std::uint64_t total() const;
  /// `{"total": n, "recent": [{"unix_ms": t, "text": "..."}, ...]}`, oldest first.
  [[nodiscard]] std::string json() const;

 private:
  mutable std::mutex m_mutex;
  std::deque<logged_report> m_kept;
  std::size_t m_capacity;
  std::uint64_t m_total = 0;
};

}  // namespace corio
