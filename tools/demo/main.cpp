// corio-demo: the guide tour. Each chapter runs the guide's "before" and
// "after" for real and prints what it measured, so the advice comes with
// numbers from this machine. The chapters are the chapter_*.cpp files next
// to this one (demo.hpp says how they register); this file runs them in
// order and prints the table they filled in.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "demo.hpp"

namespace {

/// Prints the rows as a Markdown table, numbers right-aligned.
void print_table(const std::vector<corio_demo::row>& rows) {
  const char* head[] = {"chapter", "measure", "before", "after", "gain"};
  std::size_t w[5] = {};
  for (int i = 0; i < 5; ++i)
    w[i] = std::strlen(head[i]);
  for (const corio_demo::row& r : rows) {
    const std::string* c[] = {&r.chapter, &r.measure, &r.before, &r.after, &r.gain};
    for (int i = 0; i < 5; ++i)
      w[i] = std::max(w[i], c[i]->size());
  }
  auto line = [&](const std::string* c[5]) {
    std::printf("|");
    for (int i = 0; i < 5; ++i) {
      if (i == 2 || i == 3) {
        std::printf(" %*s |", static_cast<int>(w[i]), c[i]->c_str());
      } else {
        std::printf(" %-*s |", static_cast<int>(w[i]), c[i]->c_str());
      }
    }
    std::printf("\n");
  };
  std::printf("\n");
  std::string hs[5];
  const std::string* hp[5];
  for (int i = 0; i < 5; ++i) {
    hs[i] = head[i];
    hp[i] = &hs[i];
  }
  line(hp);
  std::string dashes[5];
  const std::string* dp[5];
  for (int i = 0; i < 5; ++i) {
    dashes[i] = std::string(w[i], '-');
    dp[i] = &dashes[i];
  }
  line(dp);
  for (const corio_demo::row& r : rows) {
    const std::string* c[] = {&r.chapter, &r.measure, &r.before, &r.after, &r.gain};
    line(c);
  }
}

}  // namespace

// `corio-demo` runs every chapter; `corio-demo 3 8` runs chapters 3 and 8.
int main(int argc, char** argv) {
  std::printf("corio guide tour: each chapter runs the guide's before and after\n");
  const auto t0 = corio_demo::steady::now();
  corio_demo::report report;
  try {
    const std::vector<corio_demo::chapter> chapters = corio_demo::chapters();
    const int count = static_cast<int>(chapters.size());
    // Numbers come from the position in the registry's order, so a chapter
    // keeps its number whether it runs alone or in the whole tour.
    auto run = [&](int number) {
      const corio_demo::chapter& c = chapters[static_cast<std::size_t>(number - 1)];
      report.begin(number, count, c.name);
      c.run(report);
    };
    if (argc == 1) {
      for (int n = 1; n <= count; ++n)
        run(n);
    }
    for (int i = 1; i < argc; ++i) {
      const int n = std::atoi(argv[i]);
      if (n < 1 || n > count) {
        std::fprintf(stderr, "corio-demo: chapters are 1 to %d\n", count);
        return 2;
      }
      run(n);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio-demo: %s\n", e.what());
    return 1;
  }
  print_table(report.rows());
  std::printf("\ntour finished in %.1f s\n", corio_demo::since(t0));
  return 0;
}
