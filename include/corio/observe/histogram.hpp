// latency_histogram: log-linear buckets for durations, HDR style.
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <string>

namespace corio {

/// A histogram of durations in nanoseconds with log-linear buckets (as
/// HdrHistogram does): each power of two is cut into 16 equal buckets, so
/// any quantile is known within 1/16 (6.25%) of its value, from 1 ns to
/// about 36 minutes (2^41 ns; longer values land in the last bucket; the
/// maximum is kept exactly). Recording is a few instructions and never allocates; the
/// whole histogram is one fixed array (about 5 KiB), so it can be copied as
/// a snapshot. Not thread-safe: one writer, or a lock around it.
///
/// \code
///   corio::latency_histogram h;
///   h.record(std::chrono::microseconds(250));
///   auto p99 = h.quantile(0.99);   // std::chrono::nanoseconds
/// \endcode
class latency_histogram {
 public:
  /// Bits of each power of two that pick its bucket: 2^sub_bits buckets per power.
  static constexpr int sub_bits = 4;
  /// Buckets per power of two (16); also the values below 16 ns, one bucket each.
  static constexpr std::uint64_t sub_count = 1U << sub_bits;
  /// The highest power of two with buckets of its own: values below
  /// 2^(max_exponent + 1) ns are bucketed exactly, larger ones go to the last bucket.
  static constexpr int max_exponent = 40;  // 2^40 ns ~ 18.3 min
  /// The number of buckets (608): the size of the fixed array.
  static constexpr std::size_t bucket_count = (max_exponent - sub_bits + 2) * sub_count;

  /// Records one duration of `ns` nanoseconds (negative counts as 0).
  void record_ns(std::int64_t ns) noexcept {
    const std::uint64_t v = ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
    ++m_buckets[bucket_of(v)];
    ++m_count;
    m_sum_ns += v;
    if (v > m_max_ns) m_max_ns = v;
  }
  /// Records one duration, converted to nanoseconds (truncated; negative counts as 0).
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) noexcept {
    record_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }

  /// Adds every sample of `other` (to combine histograms of several loops).
  void merge(const latency_histogram& other) noexcept;
  /// Forgets every sample: back to an empty histogram.
  void reset() noexcept { *this = latency_histogram(); }

  /// The number of samples recorded.
  [[nodiscard]] std::uint64_t count() const noexcept { return m_count; }
  /// The longest sample, exactly; 0 when empty.
  [[nodiscard]] std::chrono::nanoseconds max() const noexcept {
    return std::chrono::nanoseconds(m_max_ns);
  }
  /// The total of all samples, exactly; 0 when empty.
  [[nodiscard]] std::chrono::nanoseconds sum() const noexcept {
    return std::chrono::nanoseconds(m_sum_ns);
  }
  /// The exact mean, sum() / count() rounded down; 0 when empty.
  [[nodiscard]] std::chrono::nanoseconds mean() const noexcept {
    return std::chrono::nanoseconds(m_count == 0 ? 0 : m_sum_ns / m_count);
  }
  /// The value at quantile `q` (0..1): the upper edge of the bucket that
  /// holds it, never above the maximum. 0 when empty.
  [[nodiscard]] std::chrono::nanoseconds quantile(double q) const noexcept;
  /// Samples at or below `ns` (bucket precision): Prometheus buckets.
  [[nodiscard]] std::uint64_t count_at_or_below(std::int64_t ns) const noexcept;

  /// The bucket holding `v`; exact below 16 ns.
  [[nodiscard]] static constexpr std::size_t bucket_of(std::uint64_t v) noexcept {
    if (v < sub_count) return static_cast<std::size_t>(v);
    const int e = static_cast<int>(std::bit_width(v)) - 1;  // v in [2^e, 2^(e+1))
    if (e > max_exponent) return bucket_count - 1;
    const std::uint64_t sub = (v >> (e - sub_bits)) & (sub_count - 1);
    return static_cast<std::size_t>((e - sub_bits + 1) * sub_count + sub);
  }
  /// The largest value that lands in bucket `i`.
  [[nodiscard]] static constexpr std::uint64_t bucket_upper(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const int e = static_cast<int>(i / sub_count) + sub_bits - 1;
    const std::uint64_t sub = i % sub_count;
    const std::uint64_t width = std::uint64_t{1} << (e - sub_bits);
    return (std::uint64_t{1} << e) + (sub + 1) * width - 1;
  }

 private:
  std::array<std::uint64_t, bucket_count> m_buckets{};
  std::uint64_t m_count = 0;
  std::uint64_t m_sum_ns = 0;
  std::uint64_t m_max_ns = 0;
};

/// "1.25 ms", "830 ns", "2.50 s": a duration for people.
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);

}  // namespace corio
