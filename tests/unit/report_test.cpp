// Unretrieved task errors are reported on stderr with the task's name;
// retrieved ones, cancellations and errors a combinator rethrows are not.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

constexpr const char* kReport = "failed and nobody retrieved its exception";

corio::task<> fail_after(std::chrono::milliseconds d, const char* what) {
  co_await corio::sleep(d);
  throw std::runtime_error(what);
}

// Runs `body` on a virtual loop and returns what it wrote to stderr.
template <class F>
std::string stderr_of(F body) {
  testing::internal::CaptureStderr();
  run_virtual(std::move(body));
  return testing::internal::GetCapturedStderr();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(Report, DroppedHandleOfAFailedTaskIsReportedByName) {
  const std::string err = stderr_of([]() -> corio::task<> {
    corio::spawn(fail_after(1ms, "kaboom"), "doomed-worker");  // handle dropped at once
    co_await corio::sleep(2ms);
  });
  EXPECT_TRUE(contains(err, "'doomed-worker'")) << err;
  EXPECT_TRUE(contains(err, kReport)) << err;
  EXPECT_TRUE(contains(err, "kaboom")) << err;
}

TEST(Report, KeptButNeverAwaitedHandleIsReportedWhenDropped) {
  const std::string err = stderr_of([]() -> corio::task<> {
    {
      auto h = corio::spawn(fail_after(1ms, "ignored"), "lazy-owner");
      co_await corio::sleep(2ms);
      EXPECT_TRUE(h.done());
    }
  });
  EXPECT_TRUE(contains(err, "'lazy-owner'")) << err;
  EXPECT_TRUE(contains(err, "ignored")) << err;
}

TEST(Report, UnnamedTaskIsReportedByItsFunction) {
  const std::string err = stderr_of([]() -> corio::task<> {
    corio::spawn(fail_after(1ms, "anonymous"));
    co_await corio::sleep(2ms);
  });
  EXPECT_TRUE(contains(err, "fail_after(std::chrono::milliseconds, const char*) at ")) << err;
  EXPECT_TRUE(contains(err, "report_test.cpp:")) << err;
  EXPECT_TRUE(contains(err, "anonymous")) << err;
}

TEST(Report, RetrievedErrorIsNotReported) {
  const std::string err = stderr_of([]() -> corio::task<> {
    auto h = corio::spawn(fail_after(1ms, "seen"), "careful-owner");
    EXPECT_THROW(co_await h, std::runtime_error);
    auto h2 = corio::spawn(fail_after(1ms, "seen-too"), "result-reader");
    co_await corio::sleep(2ms);
    EXPECT_THROW(h2.result(), std::runtime_error);
  });
  EXPECT_FALSE(contains(err, kReport)) << err;
}

TEST(Report, CancellationAndCombinatorErrorsAreNotReported) {
  const std::string err = stderr_of([]() -> corio::task<> {
    corio::spawn([]() -> corio::task<> { co_await corio::sleep(1h); }(), "cancelled-one").cancel();
    std::vector<corio::task<>> ts;
    ts.push_back(fail_after(1ms, "gathered"));
    ts.push_back(fail_after(1ms, "gathered-too"));
    EXPECT_THROW(co_await corio::gather(std::move(ts)), std::runtime_error);
    EXPECT_THROW(co_await corio::with_task_group([](corio::task_group& g) -> corio::task<> {
                   g.spawn(fail_after(1ms, "grouped"), "group-child");
                   co_return;
                 }),
                 corio::task_group_error);
    co_await corio::sleep(1ms);
  });
  EXPECT_FALSE(contains(err, kReport)) << err;
}

TEST(Report, ReportLogKeepsTheLatestReportsAndPassesThemOn) {
  corio::report_log log(2);
  std::vector<std::string> passed;
  corio::loop_options options;
  options.report = log.sink([&passed](const std::string& text) { passed.push_back(text); });
  {
    corio::event_loop loop(options);
    corio::run(loop, []() -> corio::task<> {
      for (const char* what : {"first", "second", "third"}) {
        corio::spawn(fail_after(1ms, what), what);  // each one reported when it fails
        co_await corio::sleep(2ms);
      }
    }());
  }
  ASSERT_EQ(passed.size(), 3U) << "every report still reaches the next sink";
  EXPECT_EQ(log.total(), 3U);
  const std::vector<corio::logged_report> kept = log.recent();
  ASSERT_EQ(kept.size(), 2U) << "the log keeps its capacity, the latest";
  EXPECT_TRUE(contains(kept[0].text, "'second'")) << kept[0].text;
  EXPECT_TRUE(contains(kept[1].text, "'third'")) << kept[1].text;
  EXPECT_LE(kept[0].at, kept[1].at);

  log.add("a \"quoted\"\nline");
  const std::string json = log.json();
  EXPECT_EQ(json.rfind("{\"total\":4,\"recent\":[{\"unix_ms\":", 0), 0U) << json;
  EXPECT_TRUE(contains(json, "\"text\":\"a \\\"quoted\\\"\\nline\"}]}")) << json;

  corio::metrics_registry metrics;
  metrics.add_reports(log);
  EXPECT_TRUE(contains(metrics.json(), ",\"reports\":{\"total\":4,")) << metrics.json();
}
