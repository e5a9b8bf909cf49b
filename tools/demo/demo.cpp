// corio-demo: the shared pieces of demo.hpp, and the chapter registry.
#include "demo.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include "process_stats.hpp"

namespace corio_demo {

namespace {

/// The chapters registered so far. A function-local static, so that it
/// exists before the first registrar runs, whichever file that is in.
std::vector<chapter>& registry() {
  static std::vector<chapter> all;
  return all;
}

}  // namespace

u64 hash_rounds(u64 i, u64 rounds) {
  u64 h = 14695981039346656037ULL;
  for (u64 r = 0; r < rounds; ++r)
    h = (h ^ ((i + r) & 0xff)) * 1099511628211ULL;
  return h;
}

double since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

measurement in_child(const std::function<measurement()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("corio-demo: pipe failed");
  std::fflush(stdout);  // or the child would print what is buffered again
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("corio-demo: fork failed");
  if (pid == 0) {
    close(fds[0]);
    measurement m = fn();
    m.peak_rss_kb = static_cast<double>(corio_tools::peak_rss_kb());
    const ssize_t w = write(fds[1], &m, sizeof m);
    _exit(w == static_cast<ssize_t>(sizeof m) ? 0 : 1);
  }
  close(fds[1]);
  measurement m;
  const ssize_t r = read(fds[0], &m, sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (r != static_cast<ssize_t>(sizeof m) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("corio-demo: a measuring child failed");
  return m;
}

void progress(const char* what) {
  std::printf("    .. %s\n", what);
  std::fflush(stdout);
}

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

void report::begin(int number, int count, const char* name) {
  m_number = number;
  m_count = count;
  m_name = name;
  m_first_row = true;
}

void report::heading(const char* format, ...) const {
  std::printf("\n[%d/%d] ", m_number, m_count);
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::printf("\n");
}

void report::add(std::string measure, std::string before, std::string after, std::string gain) {
  std::string label = m_first_row ? std::to_string(m_number) + " " + m_name : std::string();
  m_first_row = false;
  m_rows.push_back(
      {std::move(label), std::move(measure), std::move(before), std::move(after), std::move(gain)});
}

std::pair<measurement, measurement> report::before_and_after(const char* before_label,
                                                             measurement (*before)(),
                                                             const char* after_label,
                                                             measurement (*after)()) {
  progress(before_label);
  const measurement a = in_child(before);
  progress(after_label);
  const measurement b = in_child(after);
  check_same(a.result, b.result);
  add_rss_row(a, b);
  return {a, b};
}

void report::add_rss_row(const measurement& before, const measurement& after) {
  add("peak RSS (MiB)", fmt("%.1f", before.peak_rss_kb / 1024.0),
      fmt("%.1f", after.peak_rss_kb / 1024.0),
      fmt("%.1fx less memory", before.peak_rss_kb / after.peak_rss_kb));
}

void report::check_same(u64 before, u64 after) const {
  if (before != after) {
    std::fprintf(stderr, "corio-demo: %s: before and after disagree (%llu vs %llu)\n", m_name,
                 static_cast<unsigned long long>(before), static_cast<unsigned long long>(after));
    std::exit(1);
  }
}

registrar::registrar(const chapter& c) {
  registry().push_back(c);
}

std::vector<chapter> chapters() {
  std::vector<chapter> sorted = registry();
  std::sort(sorted.begin(), sorted.end(),
            [](const chapter& a, const chapter& b) { return a.order < b.order; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i - 1].order == sorted[i].order)
      throw std::logic_error(std::string("chapters '") + sorted[i - 1].name + "' and '" +
                             sorted[i].name + "' share order key " +
                             std::to_string(sorted[i].order));
  }
  return sorted;
}

}  // namespace corio_demo
