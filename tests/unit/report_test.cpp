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
