// report_log: a bounded, locked list of the loops' latest reports.
#include "corio/observe/report_log.hpp"

#include <utility>

#include "loop/report_text.hpp"
#include "observe/observe.hpp"

namespace corio {

report_log::report_log(std::size_t capacity) : m_capacity(capacity == 0 ? 1 : capacity) {}

report_log::~report_log() = default;

report_log::sink_type report_log::sink(sink_type next) {
  return [this, next = std::move(next)](const std::string& text) {
    add(text);
    if (next) {
      next(text);
      return;
    }
    detail::write_report_to_stderr(text);
  };
}

void report_log::add(std::string text) {
  logged_report r{std::chrono::system_clock::now(), std::move(text)};
  const std::lock_guard lock(m_mutex);
  if (m_kept.size() == m_capacity) m_kept.pop_front();
  m_kept.push_back(std::move(r));
  ++m_total;
}

std::vector<logged_report> report_log::recent() const {
  const std::lock_guard lock(m_mutex);
  return {m_kept.begin(), m_kept.end()};
}

std::uint64_t report_log::total() const {
  const std::lock_guard lock(m_mutex);
  return m_total;
}

std::string report_log::json() const {
  std::uint64_t total = 0;
  const std::vector<logged_report> kept = [&] {
    const std::lock_guard lock(m_mutex);
    total = m_total;
    return std::vector<logged_report>(m_kept.begin(), m_kept.end());
  }();
  std::string j = "{\"total\":" + std::to_string(total) + ",\"recent\":[";
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i != 0) j += ',';
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(kept[i].at.time_since_epoch())
            .count();
    j += "{\"unix_ms\":" + std::to_string(ms) + ",\"text\":" + detail::json_string(kept[i].text) +
         '}';
  }
  return j + "]}";
}

}  // namespace corio
