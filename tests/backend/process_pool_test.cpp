// process_pool on both backends: bytes through worker processes, a
// function's exception, an unknown name, a worker that crashes (its caller
// gets a clear error, the worker is replaced), one killed while idle, and a
// cancelled call (its worker is killed at once); no descriptor leaks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend/io_support.hpp"
#include "corio/os/process_pool.hpp"

using corio_test::io_test;
using namespace std::chrono_literals;

namespace {

class ProcessPool : public io_test {};
CORIO_BOTH_BACKENDS(ProcessPool);

corio::process_functions test_functions() {
  corio::process_functions f;
  f.add("echo", [](std::string_view in) { return std::string(in); });
  f.add("pid", [](std::string_view) { return std::to_string(::getpid()); });
  f.add("throw", [](std::string_view in) -> std::string {
    throw std::runtime_error("bad input: " + std::string(in));
  });
  f.add("crash", [](std::string_view) -> std::string {
    ::kill(::getpid(), SIGKILL);  // as a segfault would end it, but uncatchable
    return {};
  });
  f.add("hang", [](std::string_view) -> std::string {
    std::this_thread::sleep_for(60s);
    return {};
  });
  return f;
}

// Whether `pid` has exited and can be reaped, without reaping it: what the
// pool's waitpid(WNOHANG) will see. (/proc showing the leader as a zombie
// is not enough: a process with more threads, such as a sanitizer's, is
// reapable only once all of them have gone.)
bool reapable(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

bool contains(const std::vector<pid_t>& v, pid_t p) {
  return std::find(v.begin(), v.end(), p) != v.end();
}

TEST_P(ProcessPool, CallsRunInWorkerProcessesAndReturnTheirBytes) {
  run_io([]() -> corio::task<> {
    corio::process_pool pool(2, test_functions());
    std::string big(1 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>(i * 7);
    EXPECT_EQ(co_await pool.call("echo", big), big);
    EXPECT_EQ(co_await pool.call("echo", ""), "");
    // Four calls at once on two workers: each runs in one of them.
    std::vector<corio::task<std::string>> calls;
    for (int i = 0; i < 4; ++i)
      calls.push_back(pool.call("pid", ""));
    const std::vector<std::string> pids = co_await corio::gather(std::move(calls));
    const std::vector<pid_t> workers = pool.worker_pids();
    for (const std::string& p : pids) {
      EXPECT_NE(std::stoi(p), ::getpid());
      EXPECT_TRUE(contains(workers, std::stoi(p))) << p;
    }
    EXPECT_EQ(pool.stats().calls, 6U);
  });
}

TEST_P(ProcessPool, AFunctionsExceptionAndAnUnknownNameAreClearErrors) {
  run_io([]() -> corio::task<> {
    corio::process_pool pool(1, test_functions());
    bool failed = false;
    try {
      co_await pool.call("throw", "x");
    } catch (const corio::process_error& e) {
      failed = e.why() == corio::process_error::reason::failed &&
               std::string(e.what()).find("bad input: x") != std::string::npos;
    }
    EXPECT_TRUE(failed);
    bool unknown = false;
    try {
      co_await pool.call("nope", "");
    } catch (const corio::process_error& e) {
      unknown = e.why() == corio::process_error::reason::unknown_function;
    }
    EXPECT_TRUE(unknown);
    EXPECT_EQ(co_await pool.call("echo", "still fine"), "still fine");
    EXPECT_EQ(pool.stats().crashes, 0U);
  });
}

TEST_P(ProcessPool, ACrashedWorkerIsReplacedAndItsCallerToldWhy) {
  run_io([]() -> corio::task<> {
    corio::process_pool pool(2, test_functions());
    const std::vector<pid_t> before = pool.worker_pids();
    std::string why;
    try {
      co_await pool.call("crash", "");
    } catch (const corio::process_error& e) {
      if (e.why() == corio::process_error::reason::crashed) why = e.what();
    }
    EXPECT_NE(why.find("killed by signal 9"), std::string::npos) << why;
    EXPECT_NE(why.find("'crash'"), std::string::npos) << why;
    EXPECT_EQ(pool.stats().crashes, 1U);
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(co_await pool.call("echo", std::to_string(i)), std::to_string(i));
    EXPECT_EQ(pool.stats().restarts, 1U);
    const std::vector<pid_t> after = pool.worker_pids();
    int replaced = 0;
    for (pid_t p : after)
      replaced += contains(before, p) ? 0 : 1;
    EXPECT_EQ(replaced, 1);
  });
}

TEST_P(ProcessPool, AWorkerKilledWhileIdleIsReplacedWithoutFailingACall) {
  run_io([]() -> corio::task<> {
    corio::process_pool pool(1, test_functions());
    const pid_t victim = pool.worker_pids()[0];
    ::kill(victim, SIGKILL);
    // Bounded wait until it has exited (reapable; the pool has not reaped it).
    for (int i = 0; i < 2000 && !reapable(victim); ++i)
      co_await corio::sleep(1ms);
    EXPECT_TRUE(reapable(victim));
    EXPECT_EQ(pool.worker_pids()[0], -1) << "it has exited and is not replaced yet";
    EXPECT_TRUE(reapable(victim)) << "worker_pids() reaped nothing";
    EXPECT_EQ(co_await pool.call("echo", "after"), "after");
    EXPECT_EQ(pool.stats().crashes, 1U);
    EXPECT_NE(pool.worker_pids()[0], victim);
  });
}

TEST_P(ProcessPool, CancellingACallKillsItsWorkerAtOnce) {
  run_io([]() -> corio::task<> {
    corio::process_pool pool(1, test_functions());
    const pid_t first = pool.worker_pids()[0];
    auto h = corio::spawn(pool.call("hang", ""));
    co_await corio::sleep(5ms);
    EXPECT_TRUE(h.cancel());
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_EQ(pool.worker_pids()[0], -1);  // killed and reaped
    EXPECT_NE(::kill(first, 0), 0);
    EXPECT_EQ(co_await pool.call("echo", "next"), "next");
    EXPECT_EQ(pool.stats().restarts, 1U);
  });
}

}  // namespace
