#include <gtest/gtest.h>

#include <chrono>

#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

corio::task<int> add(int a, int b) {
  co_return a + b;
}

corio::task<int> sleeper() {
  co_await corio::sleep(10ms);
  co_return 7;
}

}  // namespace

TEST(Smoke, RunsNestedTasksAndSleeps) {
  int v = corio::run(
      []() -> corio::task<int> {
        int a = co_await add(1, 2);
        auto h = corio::spawn(sleeper());
        int b = co_await h;
        co_return a + b;
      }(),
      {.virtual_clock = true});
  EXPECT_EQ(v, 10);
}
