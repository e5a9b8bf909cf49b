// What corio-demo and corio-bench read about their own process from
// getrusage: peak RSS and CPU time. One definition, so that the demo's
// tables and the bench's JSON lines measure the same thing the same way.
#pragma once

#include <sys/resource.h>

namespace corio_tools {

namespace detail {

/// User plus system CPU of one getrusage reading, in seconds.
inline double cpu_seconds_of(const rusage& ru) {
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

}  // namespace detail

/// The peak resident set size of this process so far, in KiB. It never goes
/// down, which is why the demo measures memory in forked children.
inline long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/// User plus system CPU time of the whole process so far, in seconds.
inline double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return detail::cpu_seconds_of(ru);
}

/// User plus system CPU time of the calling thread only, in seconds: the
/// demo's event-loop chapter charges the server thread, not its client.
inline double thread_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);  // Linux-specific; g++ defines _GNU_SOURCE
  return detail::cpu_seconds_of(ru);
}

}  // namespace corio_tools
