// profiler on the virtual clock: scopes across awaits, errors, the slow
// log, the text and JSON reports; the Prometheus export's format.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "corio/observe/metrics.hpp"
#include "corio/observe/profiler.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

corio::task<> query(corio::profiler& prof, std::chrono::milliseconds d) {
  auto s = prof.measure("db_query");
  co_await corio::sleep(d);
}

corio::task<> failing(corio::profiler& prof) {
  auto s = prof.measure("db_query");
  co_await corio::sleep(1ms);
  throw std::runtime_error("boom");
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)) != 0);
}

// A Prometheus sample line: name, optional {label="value",...} (values
// escape backslash, quote and newline), one space, a number.
bool valid_sample(const std::string& line) {
  std::size_t i = 0;
  if (i >= line.size() || !name_char(line[i], true)) return false;
  while (i < line.size() && name_char(line[i], false))
    ++i;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      if (!name_char(line[i], true) || line[i] == ':') return false;
      while (i < line.size() && name_char(line[i], false) && line[i] != ':')
        ++i;
      if (line.compare(i, 2, "=\"") != 0) return false;
      i += 2;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= line.size() ||
              (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n'))
            return false;
          ++i;
        }
        ++i;
      }
      if (i >= line.size()) return false;
      ++i;  // the closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  const std::string value = line.substr(i + 1);
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  return !value.empty() && end == value.c_str() + value.size();
}

}  // namespace

TEST(Profiler, ScopesSpanAwaitsAndFeedHistograms) {
  corio::profiler prof;
  run_virtual([&]() -> corio::task<> {
    for (int i = 0; i < 9; ++i)
      co_await query(prof, 10ms);
    co_await query(prof, 100ms);
    auto other = prof.measure("render");
    co_await corio::sleep(2ms);
    other.stop();
    other.stop();  // once only
  });
  const std::vector<corio::profile_entry> entries = prof.snapshot();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].name, "db_query");
  const corio::latency_histogram& h = entries[0].histogram;
  EXPECT_EQ(h.count(), 10U);
  EXPECT_EQ(entries[0].errors, 0U);
  // Virtual time: each sleep lands within a wheel tick of its deadline.
  EXPECT_GE(h.quantile(0.5), 10ms);
  EXPECT_LE(h.quantile(0.5), 10ms + 625us);
  EXPECT_GE(h.max(), 100ms);
  EXPECT_LE(h.max(), 100ms + corio_test::wheel_tick);
  EXPECT_EQ(entries[1].name, "render");
  EXPECT_EQ(entries[1].histogram.count(), 1U);

  const std::string table = prof.report();
  EXPECT_TRUE(has(table, "operation")) << table;
  EXPECT_TRUE(has(table, "p99")) << table;
  std::istringstream rows(table);
  std::string header, row;
  std::getline(rows, header);
  std::getline(rows, row);
  EXPECT_EQ(row.rfind("db_query", 0), 0U) << table;
  EXPECT_TRUE(has(row, " 10 ")) << row;
  EXPECT_TRUE(has(row, "100.00 ms")) << row;  // the max

  const std::string json = prof.json();
  EXPECT_EQ(json.rfind("{\"db_query\":{\"count\":10,\"errors\":0,\"mean_ns\":", 0), 0U) << json;
  EXPECT_TRUE(has(json, ",\"render\":{\"count\":1,")) << json;

  prof.reset();
  EXPECT_EQ(prof.snapshot()[0].histogram.count(), 0U);
}

TEST(Profiler, ExceptionsAndCancellationCountAsErrors) {
  corio::profiler prof;
  run_virtual([&]() -> corio::task<> {
    EXPECT_THROW(co_await failing(prof), std::runtime_error);
    EXPECT_THROW(co_await corio::timeout(5ms, query(prof, 1h)), corio::timeout_error);
    co_await query(prof, 1ms);
  });
  const auto entries = prof.snapshot();
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].histogram.count(), 3U);
  EXPECT_EQ(entries[0].errors, 2U);
}

TEST(Profiler, SlowOperationsAreLoggedWithTheirTask) {
  std::vector<std::string> log;
  corio::profiler prof(
      {.slow_threshold = 50ms, .log = [&](const std::string& s) { log.push_back(s); }});
  run_virtual([&]() -> corio::task<> {
    co_await query(prof, 10ms);
    co_await corio::spawn(query(prof, 60ms), "slow-caller");
  });
  ASSERT_EQ(log.size(), 1U);
  EXPECT_TRUE(has(log[0], "corio profiler: 'db_query' took 60.00 ms (threshold 50.00 ms)"))
      << log[0];
  EXPECT_TRUE(has(log[0], "in task 'slow-caller' query(corio::profiler&, ")) << log[0];
}

TEST(Profiler, WorksOutsideALoopAndAcrossThreads) {
  corio::profiler prof;
  prof.record("outside", 3ms);
  { auto s = prof.measure("outside"); }
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i)
      prof.record("threaded", 1us);
  });
  for (int i = 0; i < 1000; ++i)
    prof.record("threaded", 2us);
  t.join();
  const auto entries = prof.snapshot();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].name, "outside");
  EXPECT_EQ(entries[0].histogram.count(), 2U);
  EXPECT_EQ(entries[0].histogram.max(), 3ms);  // record() takes the duration as given
  EXPECT_EQ(entries[1].histogram.count(), 2000U);
}

TEST(MetricsExport, PrometheusTextIsWellFormed) {
  corio::profiler prof;
  prof.record("with \"quotes\"\\ and\nnewline", 2ms);
  prof.record("plain", 20ms, true);
  std::string text;
  std::string json;
  run_virtual([&]() -> corio::task<> {
    for (int i = 0; i < 3; ++i)
      co_await corio::sleep(1ms);
    corio::metrics_registry m;
    m.add_loop(*corio::event_loop::current(), "main");
    m.add_profiler(prof, "app");
    text = m.prometheus();
    json = m.json();
  });
  // Every line is a comment or `name{labels} value`.
  std::istringstream lines(text);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(valid_sample(line)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 40);
  EXPECT_FALSE(valid_sample("bad name 1"));
  EXPECT_FALSE(valid_sample("x{a=\"unterminated} 1"));
  EXPECT_FALSE(valid_sample("x{a=\"v\"} one"));
  EXPECT_TRUE(valid_sample("x{a=\"q\\\"\",b=\"\"} 1.5e-06"));
  EXPECT_TRUE(has(text, "name=\"with \\\"quotes\\\"\\\\ and\\nnewline\"")) << text;
  EXPECT_TRUE(has(text, "corio_profile_errors_total{profiler=\"app\",name=\"plain\"} 1\n"));
  // Buckets are cumulative: 2 ms is under le=0.0025 but not le=0.001.
  EXPECT_TRUE(
      has(text, "corio_profile_seconds_bucket{profiler=\"app\",name=\"plain\",le=\"0.01\"} 0\n"));
  EXPECT_TRUE(
      has(text, "corio_profile_seconds_bucket{profiler=\"app\",name=\"plain\",le=\"0.025\"} 1\n"));
  EXPECT_TRUE(has(text, "corio_loop_timers_fired_total{loop=\"main\"} 3\n")) << text;
  EXPECT_TRUE(has(text, "corio_loop_timer_lag_seconds_count{loop=\"main\"} 3\n")) << text;
  EXPECT_TRUE(has(json, "\"with \\\"quotes\\\"\\\\ and\\nnewline\":{\"count\":1,")) << json;
  EXPECT_TRUE(has(json, "\"timers_fired\":3,")) << json;
}
