// profiler: the metric table, scopes, the slow-operation log and reports.
#include "corio/observe/profiler.hpp"

#include <time.h>

#include <cstdio>
#include <exception>
#include <sstream>

#include "corio/loop/event_loop.hpp"
#include "observe/observe.hpp"

namespace corio {

struct profiler::metric {
  std::string name;
  latency_histogram histogram;
  std::uint64_t errors = 0;
};

profiler::profiler(profiler_options options) : m_options(std::move(options)) {}

profiler::~profiler() = default;

std::int64_t profiler::now_ns() noexcept {
  // The loop's clock (virtual in virtual-clock tests), read fresh.
  if (detail::loop_core* loop = detail::loop_core::current()) return loop->refresh_now_ns();
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

profiler::metric& profiler::find(std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto it = m_metrics.find(name);
  if (it == m_metrics.end()) {
    auto m = std::make_unique<metric>();
    m->name = std::string(name);
    it = m_metrics.emplace(m->name, std::move(m)).first;
  }
  return *it->second;
}

profiler::scope profiler::measure(std::string_view name) {
  metric& m = find(name);
  return scope(this, &m, now_ns());
}

void profiler::record(std::string_view name, std::chrono::nanoseconds d, bool error) {
  add_sample(find(name), d.count(), error);
}

void profiler::add_sample(metric& m, std::int64_t ns, bool error) {
  {
    std::lock_guard lock(m_mutex);
    m.histogram.record_ns(ns);
    if (error) ++m.errors;
  }
  if (m_options.slow_threshold.count() <= 0 || ns < m_options.slow_threshold.count()) return;
  std::string msg = "corio profiler: '" + m.name + "' took " +
                    format_duration(std::chrono::nanoseconds(ns)) + " (threshold " +
                    format_duration(m_options.slow_threshold) + ")";
  if (error) msg += ", ended by an exception";
  detail::loop_core* loop = detail::loop_core::current();
  if (loop != nullptr && loop->current_task() != nullptr) {
    const detail::task_base& t = *loop->current_task();
    msg += " in task " + detail::describe_named(t.name(), t.where());
  }
  if (m_options.log) {
    m_options.log(msg);
  } else if (loop != nullptr) {
    loop->report(msg);
  } else {
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
}

std::vector<profile_entry> profiler::snapshot() const {
  std::lock_guard lock(m_mutex);
  std::vector<profile_entry> out;
  out.reserve(m_metrics.size());
  for (const auto& [name, m] : m_metrics)
    out.push_back(profile_entry{name, m->histogram, m->errors});
  return out;
}

std::string profiler::report() const {
  const std::vector<profile_entry> entries = snapshot();
  std::size_t width = 9;
  for (const auto& e : entries)
    width = std::max(width, e.name.size());
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-*s %10s %8s %10s %10s %10s %10s %10s\n",
                static_cast<int>(width), "operation", "count", "errors", "mean", "p50", "p90",
                "p99", "max");
  out += line;
  for (const auto& e : entries) {
    const latency_histogram& h = e.histogram;
    std::snprintf(
        line, sizeof line, "%-*s %10llu %8llu %10s %10s %10s %10s %10s\n", static_cast<int>(width),
        e.name.c_str(), static_cast<unsigned long long>(h.count()),
        static_cast<unsigned long long>(e.errors), format_duration(h.mean()).c_str(),
        format_duration(h.quantile(0.5)).c_str(), format_duration(h.quantile(0.9)).c_str(),
        format_duration(h.quantile(0.99)).c_str(), format_duration(h.max()).c_str());
    out += line;
  }
  return out;
}

std::string profiler::json() const {
  std::string out = "{";
  bool first = true;
  for (const auto& e : snapshot()) {
    if (!first) out += ',';
    first = false;
    out += detail::json_string(e.name);
    out += ':';
    out += detail::histogram_json(e.histogram, e.errors);
  }
  out += '}';
  return out;
}

void profiler::reset() {
  std::lock_guard lock(m_mutex);
  for (auto& [name, m] : m_metrics) {
    m->histogram.reset();
    m->errors = 0;
  }
}

profiler::scope::scope(profiler* owner, metric* m, std::int64_t start_ns) noexcept
    : m_owner(owner), m_metric(m), m_start_ns(start_ns), m_exceptions(std::uncaught_exceptions()) {}

void profiler::scope::stop() noexcept {
  profiler* p = std::exchange(m_owner, nullptr);
  if (p == nullptr) return;
  try {
    p->add_sample(*m_metric, now_ns() - m_start_ns, std::uncaught_exceptions() > m_exceptions);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a measurement must never throw out of a scope
  }
}

}  // namespace corio
