// latency_histogram's queries and duration formatting.
#include "corio/observe/histogram.hpp"

#include <cmath>
#include <cstdio>

namespace corio {

void latency_histogram::merge(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < bucket_count; ++i)
    m_buckets[i] += other.m_buckets[i];
  m_count += other.m_count;
  m_sum_ns += other.m_sum_ns;
  if (other.m_max_ns > m_max_ns) m_max_ns = other.m_max_ns;
}

std::chrono::nanoseconds latency_histogram::quantile(double q) const noexcept {
  if (m_count == 0) return std::chrono::nanoseconds(0);
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The rank of the sample asked for, 1-based: q = 0.5 of 10 samples is the 5th.
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(m_count)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += m_buckets[i];
    if (seen >= rank) {
      // The last bucket also holds everything too long for the others.
      const std::uint64_t upper = i + 1 == bucket_count ? m_max_ns : bucket_upper(i);
      return std::chrono::nanoseconds(upper < m_max_ns ? upper : m_max_ns);
    }
  }
  return std::chrono::nanoseconds(m_max_ns);
}

std::uint64_t latency_histogram::count_at_or_below(std::int64_t ns) const noexcept {
  if (ns < 0) return 0;
  const auto v = static_cast<std::uint64_t>(ns);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < bucket_count && bucket_upper(i) <= v; ++i)
    n += m_buckets[i];
  return n;
}

std::string format_duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  }
  return buf;
}

}  // namespace corio
