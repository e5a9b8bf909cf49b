// corio-demo: what the chapters of the guide tour share. Each chapter is one
// chapter_<name>.cpp that registers itself (see `registrar`); main.cpp runs
// them in order and prints the table they filled in.
//
// Chapters that compare memory run each variant in a forked child process:
// peak RSS only ever grows, so measuring two variants in one process would
// credit the second with the first one's peak.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace corio_demo {

using u64 = std::uint64_t;
using steady = std::chrono::steady_clock;

/// What one variant measured: its wall time, its peak RSS (when run in a
/// child), a result that both variants must agree on, and a free note.
/// Plain data with a fixed-size note, because it crosses a pipe byte for
/// byte from the measuring child.
struct measurement {
  double seconds = 0;
  double peak_rss_kb = 0;
  u64 result = 0;
  char note[96] = {};
};

/// CPU work for the chapters: `rounds` rounds of FNV-style hashing of `i`
/// (a million take about 1.5 ms here).
u64 hash_rounds(u64 i, u64 rounds);

/// Seconds from `t0` until now.
double since(steady::time_point t0);

/// Times `run()` (one variant, typically a whole corio::run) and keeps the
/// result it returns.
template <class F>
measurement timed(F run) {
  const auto t0 = steady::now();
  measurement m;
  m.result = run();
  m.seconds = since(t0);
  return m;
}

/// Runs `fn` in a forked child and brings its measurement back through a
/// pipe, with the child's own peak RSS filled in.
measurement in_child(const std::function<measurement()>& fn);

/// Prints one step of a chapter as it starts, so that a slow step shows.
void progress(const char* what);

/// printf of one number, as a string for the table.
std::string fmt(const char* format, double value);

/// One line of the closing table. `chapter` is empty on a chapter's rows
/// after its first, so that each chapter reads as one block.
struct row {
  std::string chapter, measure, before, after, gain;
};

/// What the chapters report into, instead of printing the table
/// themselves: main.cpp tells it which chapter runs (number and name come
/// from the registry, never from the chapter), and it numbers the heading
/// and the chapter's first row accordingly.
class report {
 public:
  /// Starts chapter `number` of `count`, called `name` in the table.
  void begin(int number, int count, const char* name);

  /// Prints the chapter's heading, "[number/count] " and then `format`
  /// with its arguments, as printf would.
  void heading(const char* format, ...) const __attribute__((format(printf, 2, 3)));

  /// Adds a row to the table for the current chapter.
  void add(std::string measure, std::string before, std::string after, std::string gain);

  /// Adds the peak-RSS row that the memory chapters (run in children) share.
  void add_rss_row(const measurement& before, const measurement& after);

  /// The memory chapters' common step: runs `before` and then `after`,
  /// each in a child (announced with its label), checks that they agree,
  /// adds the peak-RSS row and returns both measurements.
  std::pair<measurement, measurement> before_and_after(const char* before_label,
                                                       measurement (*before)(),
                                                       const char* after_label,
                                                       measurement (*after)());

  /// Exits with status 1 when the before and after variants computed
  /// different results: a faster "after" that does other work proves nothing.
  void check_same(u64 before, u64 after) const;

  /// The rows so far, in the order the chapters added them.
  [[nodiscard]] const std::vector<row>& rows() const { return m_rows; }

 private:
  std::vector<row> m_rows;
  const char* m_name = "";
  int m_number = 0;
  int m_count = 0;
  bool m_first_row = true;
};

/// One chapter of the tour. `order` decides where it runs (lower first);
/// the registry numbers chapters 1, 2, ... in that order, so keys leave
/// gaps (100, 200, ...) for chapters still to come.
struct chapter {
  const char* name;  // as in the table and in error messages
  int order;
  void (*run)(report&);
};

/// Registers a chapter while the program starts: each chapter file holds
/// one `const registrar` at namespace scope. This works because the
/// chapter files are compiled straight into corio-demo: an object file in
/// an executable is always linked, so its registrar always runs (from a
/// static library, an object nobody references would be dropped, and its
/// chapter with it). The registry is a function-local static, so the
/// registrars' order of initialisation across files does not matter.
struct registrar {
  /// Adds `c` to the registry.
  explicit registrar(const chapter& c);
};

/// Every registered chapter, sorted by `order`. Throws std::logic_error
/// when two chapters share an order key, since their order would then
/// depend on the link order.
std::vector<chapter> chapters();

}  // namespace corio_demo
