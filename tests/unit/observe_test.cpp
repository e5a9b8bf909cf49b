// Observation: task dumps with states and await chains, debug mode's
// reports (never awaited, destroyed while pending, slow resumptions, tasks
// alive at close, SIGUSR1 dump), loop statistics and the latency histogram.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "corio/corio.hpp"
#include "corio/observe/task_dump.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

// Each helper sits on one line so that the line GCC records for it (the
// closing brace) is the one __LINE__ gives next to it.
// clang-format off
corio::task<> sleeper() { co_await corio::sleep(1h); }  constexpr unsigned sleeper_line = __LINE__;
corio::task<> inner_wait() { co_await corio::sleep(10min); }  constexpr unsigned inner_line = __LINE__;
corio::task<> outer_wait() { co_await inner_wait(); }  constexpr unsigned outer_line = __LINE__;
corio::task<int> popper(corio::queue<int>& q) { co_return co_await q.pop(); }
corio::task<> never_awaited() { co_return; }  constexpr unsigned never_line = __LINE__;
corio::task<> parked() { co_await std::suspend_always{}; }  constexpr unsigned parked_line = __LINE__;
// clang-format on

corio::task<> grouper() {
  co_await corio::with_task_group([](corio::task_group& g) -> corio::task<> {
    g.spawn(sleeper(), "member");
    co_return;
  });
}

const std::string kFile = "observe_test.cpp";

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// "fn() at /path/observe_test.cpp:LINE" for a helper above.
bool names_frame(const std::string& entry, const char* function, unsigned line) {
  return has(entry, std::string(function) + " at ") &&
         has(entry, kFile + ":" + std::to_string(line));
}

const corio::task_info* find(const std::vector<corio::task_info>& tasks, const std::string& name) {
  auto it = std::find_if(tasks.begin(), tasks.end(),
                         [&](const corio::task_info& t) { return t.name == name; });
  return it == tasks.end() ? nullptr : &*it;
}

struct report_log {
  std::vector<std::string> lines;
  [[nodiscard]] corio::loop_options debug_options() {
    corio::loop_options o;
    o.debug = true;
    o.report = [this](const std::string& s) { lines.push_back(s); };
    return o;
  }
  [[nodiscard]] std::size_t count(const std::string& part) const {
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](const std::string& l) { return has(l, part); }));
  }
  [[nodiscard]] std::string all() const {
    std::string s;
    for (const auto& l : lines)
      s += l + "\n---\n";
    return s;
  }
};

}  // namespace

TEST(TaskDump, ListsEveryTaskWithItsStateAndAwaitChain) {
  std::vector<corio::task_info> tasks;
  std::string text;
  run_virtual([&]() -> corio::task<> {
    corio::queue<int> q(1);
    auto a = corio::spawn(sleeper(), "sleeper");
    auto b = corio::spawn(outer_wait(), "nested");
    auto c = corio::spawn(grouper(), "grouper");
    auto d = corio::spawn(popper(q), "popper");
    co_await corio::sleep(5ms);
    auto e = corio::spawn(sleeper(), "fresh");  // spawned, not yet run
    e.cancel();
    tasks = corio::list_tasks();
    std::ostringstream out;
    corio::dump_tasks(out);
    text = out.str();
    a.cancel();
    b.cancel();
    c.cancel();
    d.cancel();
    co_await corio_test::settle();
  });

  ASSERT_EQ(tasks.size(), 7U) << text;  // main, sleeper, nested, grouper, popper, fresh, member
  const corio::task_info* main = find(tasks, "main");
  ASSERT_NE(main, nullptr);
  EXPECT_EQ(main->state, "running");

  const corio::task_info* s = find(tasks, "sleeper");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, "waiting");
  EXPECT_EQ(s->waits_on, "sleep");
  EXPECT_EQ(s->line, sleeper_line);
  EXPECT_TRUE(has(s->file, kFile)) << s->file;
  EXPECT_EQ(s->age, 5ms);
  ASSERT_EQ(s->await_chain.size(), 1U);
  EXPECT_TRUE(has(s->await_chain[0], "'sleeper' ")) << s->await_chain[0];
  EXPECT_TRUE(names_frame(s->await_chain[0], "sleeper()", sleeper_line)) << s->await_chain[0];

  const corio::task_info* n = find(tasks, "nested");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->waits_on, "sleep");
  ASSERT_EQ(n->await_chain.size(), 2U) << text;
  EXPECT_TRUE(names_frame(n->await_chain[0], "outer_wait()", outer_line)) << n->await_chain[0];
  EXPECT_TRUE(names_frame(n->await_chain[1], "inner_wait()", inner_line)) << n->await_chain[1];

  const corio::task_info* g = find(tasks, "grouper");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->waits_on, "child tasks");

  // A group member's chain starts at the task that opened the group.
  const corio::task_info* m = find(tasks, "member");
  ASSERT_NE(m, nullptr);
  ASSERT_GE(m->await_chain.size(), 3U) << text;
  EXPECT_TRUE(has(m->await_chain.front(), "'grouper' ")) << text;
  EXPECT_NE(std::find(m->await_chain.begin(), m->await_chain.end(), "[child tasks]"),
            m->await_chain.end())
      << text;
  EXPECT_TRUE(has(m->await_chain.back(), "'member' ")) << text;
  EXPECT_TRUE(names_frame(m->await_chain.back(), "sleeper()", sleeper_line)) << text;

  const corio::task_info* p = find(tasks, "popper");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->waits_on, "queue pop");

  const corio::task_info* f = find(tasks, "fresh");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->state, "ready, cancelling");

  EXPECT_TRUE(has(text, "7 live task(s)")) << text;
  EXPECT_TRUE(has(text, "task 'nested' outer_wait() at ")) << text;
  EXPECT_TRUE(has(text, "waiting on sleep, age 5.00 ms")) << text;
}

TEST(TaskDump, JoinHandleAwaitLinksTheChain) {
  std::vector<corio::task_info> tasks;
  run_virtual([&]() -> corio::task<> {
    auto waiter = corio::spawn(
        []() -> corio::task<> {
          auto h = corio::spawn(inner_wait(), "awaited");
          co_await h;
        }(),
        "awaiting");
    co_await corio::sleep(1ms);
    tasks = corio::list_tasks();
    waiter.cancel();  // cancels the awaited task too
    co_await corio_test::settle();
  });
  const corio::task_info* a = find(tasks, "awaited");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->await_chain.size(), 3U);
  EXPECT_TRUE(has(a->await_chain[0], "'awaiting' ")) << a->await_chain[0];
  EXPECT_EQ(a->await_chain[1], "[join_handle]");
  EXPECT_TRUE(names_frame(a->await_chain[2], "inner_wait()", inner_line)) << a->await_chain[2];
}

TEST(DebugMode, NeverAwaitedTaskIsReportedWithFileAndLine) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        { auto t = never_awaited(); }
        co_return;
      },
      log.debug_options());
  ASSERT_EQ(log.count("without ever being awaited"), 1U) << log.all();
  const std::string& r = log.lines.front();
  EXPECT_TRUE(names_frame(r, "never_awaited()", never_line)) << r;
  EXPECT_TRUE(has(r, "dropped while running: 'main' ")) << r;
}

TEST(DebugMode, NothingIsReportedForTasksThatRan) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        co_await never_awaited();
        co_await corio::sleep(1ms);
        auto h = corio::spawn(inner_wait(), "cancelled");
        h.cancel();
        co_await corio_test::settle();
      },
      log.debug_options());
  EXPECT_TRUE(log.lines.empty()) << log.all();
}

TEST(DebugMode, WithoutDebugNothingIsReported) {
  report_log log;
  corio::loop_options o = log.debug_options();
  o.debug = false;
  run_virtual(
      []() -> corio::task<> {
        { auto t = never_awaited(); }
        co_return;
      },
      o);
  EXPECT_TRUE(log.lines.empty()) << log.all();
}

TEST(DebugMode, TaskDestroyedWhilePendingIsReported) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        // Drive a task by hand that awaits parked(), which suspends with
        // nothing to wake it; then drop the outer frame, which destroys
        // parked() under its pending await.
        auto h = [](corio::task<> inner) -> corio::task<> { co_await inner; }(parked()).release();
        h.resume();
        { corio::task<> t(h); }
        co_return;
      },
      log.debug_options());
  // The hand-driven outer task is reported as never awaited (it was not);
  // parked() as destroyed under its pending await.
  ASSERT_EQ(log.count("was destroyed while pending"), 1U) << log.all();
  for (const auto& l : log.lines) {
    if (has(l, "destroyed while pending")) {
      EXPECT_TRUE(names_frame(l, "parked()", parked_line)) << l;
    }
  }
}

namespace {

// handler > parse > compute, where compute makes `blocking_call` between
// two sleeps.
corio::task<> compute(void (*blocking_call)()) {
  co_await corio::sleep(1ms);
  blocking_call();
  co_await corio::sleep(1ms);
}
corio::task<> parse(void (*blocking_call)()) {
  co_await compute(blocking_call);
}
corio::task<> handler(void (*blocking_call)()) {
  co_await parse(blocking_call);
}

void block_150ms() {
  std::this_thread::sleep_for(150ms);
}

}  // namespace

TEST(DebugMode, ATaskThatBlocks150msIsNamedWithItsAwaitChain) {
  report_log log;
  std::uint64_t slow = 0;
  run_virtual(
      [&]() -> corio::task<> {
        co_await corio::spawn(handler(block_150ms), "handler");
        slow = corio_test::stats().slow_resumptions;
      },
      log.debug_options());
  ASSERT_EQ(log.count("'handler'"), 1U) << log.all();
  EXPECT_GE(slow, 1U);
  std::string r;
  for (const auto& l : log.lines)
    if (has(l, "'handler'")) r = l;
  EXPECT_TRUE(has(r, "slow resumption: task 'handler' handler(void (*)()) at ")) << r;
  EXPECT_TRUE(has(r, "slow_callback_duration 100.00 ms")) << r;
  // The chain from the outermost task (main, which awaits the handle) down
  // to the frame that blocked, in order, as it is after the resumption.
  const auto j = r.find("await chain now: 'main' ");
  ASSERT_NE(j, std::string::npos) << r;
  const auto h = r.find("> [join_handle]\n    > 'handler' handler(void (*)()) at ", j);
  const auto p = r.find("> parse(void (*)()) at ", j);
  const auto c = r.find("> compute(void (*)()) at ", j);
  ASSERT_NE(h, std::string::npos) << r;
  ASSERT_NE(p, std::string::npos) << r;
  ASSERT_NE(c, std::string::npos) << r;
  EXPECT_LT(h, p);
  EXPECT_LT(p, c);
  EXPECT_TRUE(has(r, "waiting on: sleep")) << r;
  // "ran 150.xx ms": at least the blocking call's time.
  const auto ran = r.find(" ran ");
  ASSERT_NE(ran, std::string::npos);
  EXPECT_GE(std::stod(r.substr(ran + 5)), 150.0) << r;
}

namespace {

// Blocks until the watchdog has captured the loop's chain (halfway to
// slow_callback_duration; at most 10 s), then past the threshold, then
// finishes: only the capture can show where the time went.
void block_until_captured() {
  for (int i = 0; i < 10000 && corio_test::stats().watchdog_captures == 0; ++i)
    std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);
}
corio::task<> legacy_call() {
  block_until_captured();
  co_return;
}
corio::task<> serve_one() {
  co_await legacy_call();
}

}  // namespace

TEST(DebugMode, TheChainCapturedWhileItRanShowsTheCoroutineThatBlocked) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        co_await corio::spawn(serve_one(), "serve");
        EXPECT_EQ(corio_test::stats().watchdog_captures, 1U);
      },
      log.debug_options());
  ASSERT_EQ(log.count("'serve'"), 1U) << log.all();
  const std::string& r = log.lines.front();
  // Finished by the end, so only the captured chain names legacy_call().
  EXPECT_TRUE(has(r, "it has finished")) << r;
  const auto during = r.find(" into it: 'main' ");
  ASSERT_NE(during, std::string::npos) << r;
  const auto s = r.find("> 'serve' serve_one() at ", during);
  const auto l = r.find("> legacy_call() at ", during);
  ASSERT_NE(s, std::string::npos) << r;
  ASSERT_NE(l, std::string::npos) << r;
  EXPECT_LT(s, l);
}

TEST(DebugMode, ASlowTaskThatFinishesIsStillNamed) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        co_await corio::spawn(
            []() -> corio::task<> {
              std::this_thread::sleep_for(120ms);
              co_return;
            }(),
            "one-shot");
      },
      log.debug_options());
  ASSERT_EQ(log.count("'one-shot'"), 1U) << log.all();
  EXPECT_TRUE(has(log.lines.front(), "has finished")) << log.all();
}

TEST(DebugMode, TasksAliveWhenMainEndsAreListed) {
  report_log log;
  {
    corio::loop_options o = log.debug_options();
    o.virtual_clock = true;
    corio::run(
        []() -> corio::task<> {
          corio::spawn(sleeper(), "straggler");
          co_await corio::sleep(1ms);
        }(),
        o);
  }
  ASSERT_EQ(log.count("still running"), 1U) << log.all();
  EXPECT_TRUE(has(log.lines.front(), "task 'straggler' sleeper() at ")) << log.all();
}

TEST(DebugMode, Sigusr1DumpsTheTasks) {
  report_log log;
  run_virtual(
      []() -> corio::task<> {
        auto h = corio::spawn(sleeper(), "dumped");
        co_await corio::sleep(1ms);
        ::raise(SIGUSR1);
        co_await corio::sleep(1ms);  // the next iteration writes the dump
        h.cancel();
        co_await corio_test::settle();
      },
      log.debug_options());
  ASSERT_EQ(log.count("live task(s) on this loop"), 1U) << log.all();
  EXPECT_TRUE(has(log.lines.front(), "task 'dumped' sleeper() at ")) << log.all();
}

TEST(LoopStats, TimerLagPollingAndPostedCallbacks) {
  corio::event_loop loop;
  corio::run(loop, [](corio::event_loop& l) -> corio::task<> {
    for (int i = 0; i < 5; ++i)
      co_await corio::sleep(4ms);
    std::thread poster([&l] {
      for (int i = 0; i < 3; ++i)
        l.post([] {});
    });
    poster.join();
    co_await corio::sleep(1ms);
  }(loop));
  const corio::loop_stats s = loop.stats();
  EXPECT_GE(s.posted_callbacks, 3U);
  EXPECT_EQ(corio::timer_lag(loop).count(), s.timers_fired);
  EXPECT_GE(s.timers_fired, 6U);
  // The loop slept through most of 21 ms of timers.
  EXPECT_GE(s.polling, 10ms);
  EXPECT_GT(s.running.count(), 0);
}

// A task woken by I/O runs in the tick whose poll woke it: its `running`
// must count up to now, not to the tick's start (before the blocking poll
// the figure already counts as polling), or it steps back by the poll.
TEST(LoopStats, RunningNeverStepsBackAcrossThePollThatWokeTheTask) {
  corio::loop_options o;
  o.stats = true;
  corio::event_loop loop(o);
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  std::thread client;
  corio::run(loop,
             [](corio::event_loop& l, corio::tcp_listener& lis, std::thread& c,
                std::uint16_t p) -> corio::task<void> {
               // The peer writes a while after connecting: the loop blocks in a poll
               // for it, and that poll's completion resumes the reader in its tick.
               c = std::thread([p] {
                 const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
                 sockaddr_in to{};
                 to.sin_family = AF_INET;
                 to.sin_port = htons(p);
                 to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                 ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
                 std::this_thread::sleep_for(30ms);
                 ASSERT_EQ(::write(fd, "x", 1), 1);
                 ::close(fd);
               });
               corio::tcp_stream conn = co_await lis.accept();
               const corio::loop_stats before = l.stats();
               char byte = 0;
               const std::size_t got = co_await conn.read_some(&byte, 1);
               const corio::loop_stats after = l.stats();
               EXPECT_EQ(got, 1U);
               EXPECT_GE(after.running, before.running);
             }(loop, listener, client, port));
  client.join();
}

TEST(LoopStats, OffMeansNoLagHistogram) {
  corio::loop_options o;
  o.stats = false;
  corio::event_loop loop(o);
  corio::run(loop, []() -> corio::task<> { co_await corio::sleep(1ms); }());
  EXPECT_EQ(corio::timer_lag(loop).count(), 0U);
  EXPECT_EQ(loop.stats().polling.count(), 0);
}

TEST(Histogram, QuantilesWithinABucketOfTheTruth) {
  corio::latency_histogram h;
  for (int i = 1; i <= 1000; ++i)
    h.record(std::chrono::microseconds(i));
  EXPECT_EQ(h.count(), 1000U);
  EXPECT_EQ(h.max(), 1000us);
  EXPECT_EQ(h.mean(), 500500ns);
  const auto check = [&](double q, std::chrono::nanoseconds truth) {
    const auto got = h.quantile(q);
    EXPECT_GE(got, truth) << q;
    EXPECT_LE(got.count(), truth.count() + truth.count() / 16) << q;
  };
  check(0.5, 500us);
  check(0.9, 900us);
  check(0.99, 990us);
  EXPECT_EQ(h.quantile(1.0), 1000us);
  EXPECT_EQ(h.count_at_or_below(0), 0U);
  const std::uint64_t below = h.count_at_or_below(std::chrono::nanoseconds(100us).count());
  EXPECT_GE(below, 94U);
  EXPECT_LE(below, 100U);

  corio::latency_histogram other;
  other.record(5s);
  h.merge(other);
  EXPECT_EQ(h.count(), 1001U);
  EXPECT_EQ(h.max(), 5s);
  EXPECT_EQ(h.quantile(1.0), 5s);
}

TEST(Histogram, SmallAndHugeValues) {
  corio::latency_histogram h;
  EXPECT_EQ(h.quantile(0.5), 0ns);
  h.record_ns(-5);
  h.record_ns(3);
  h.record(std::chrono::hours(24));
  EXPECT_EQ(h.quantile(0.0), 0ns);
  EXPECT_EQ(h.quantile(0.3), 0ns);
  EXPECT_EQ(h.quantile(0.5), 3ns);
  EXPECT_EQ(h.quantile(1.0), std::chrono::hours(24));
  for (std::size_t i = 0; i + 1 < corio::latency_histogram::bucket_count; ++i) {
    EXPECT_EQ(corio::latency_histogram::bucket_of(corio::latency_histogram::bucket_upper(i)), i);
    EXPECT_EQ(corio::latency_histogram::bucket_of(corio::latency_histogram::bucket_upper(i) + 1),
              i + 1);
  }
  EXPECT_EQ(corio::format_duration(1500us), "1.50 ms");
  EXPECT_EQ(corio::format_duration(830ns), "830 ns");
}

namespace {

std::atomic<bool> g_watchdog_reported{false};
std::atomic<bool> g_watchdog_moved{false};

// Stuck until the watchdog has reported (at most 10 s): the report is made
// while the loop is stuck, or this never ends early.
void block_until_reported() {
  for (int i = 0; i < 10000 && !g_watchdog_reported.load(); ++i)
    std::this_thread::sleep_for(1ms);
}

}  // namespace

TEST(Watchdog, ReportsAStuckLoopWhileItIsStuck) {
  std::mutex mu;
  std::vector<std::string> lines;
  corio::loop_options o;
  o.watchdog = true;
  o.slow_callback_duration = 50ms;
  o.report = [&](const std::string& s) {
    {
      std::lock_guard lock(mu);
      lines.push_back(s);
    }
    if (has(s, "has been stuck")) g_watchdog_reported = true;
    if (has(s, "moves again")) g_watchdog_moved = true;
  };
  corio::run(
      []() -> corio::task<> {
        co_await corio::spawn(handler(block_until_reported), "stuck");
        for (int i = 0; i < 1000 && !g_watchdog_moved.load(); ++i)
          co_await corio::sleep(10ms);
      }(),
      o);
  std::lock_guard lock(mu);
  ASSERT_TRUE(g_watchdog_reported.load());
  EXPECT_TRUE(g_watchdog_moved.load());
  std::string r;
  for (const auto& l : lines)
    if (has(l, "has been stuck")) r = l;
  EXPECT_TRUE(has(r, "it is running task 'stuck' handler(void (*)()) at ")) << r;
  const auto p = r.find("> parse(void (*)()) at ");
  const auto c = r.find("> compute(void (*)()) at ");
  EXPECT_NE(r.find("await chain: 'main' "), std::string::npos) << r;
  ASSERT_NE(p, std::string::npos) << r;
  ASSERT_NE(c, std::string::npos) << r;
  EXPECT_LT(p, c);
}

namespace {
corio::task<> inner_wait_briefly() {
  co_await corio::sleep(1ms);
}
}  // namespace

TEST(DebugMode, BlockingCallsOnTheLoopThreadAreReported) {
  report_log log;
  corio::channel<int> ch(4);
  run_virtual(
      [&]() -> corio::task<> {
        ch.send_blocking(1);  // room: returns at once, but is still the wrong call here
        EXPECT_EQ(ch.receive_blocking(), 1);
        corio::loop_options inner;
        inner.virtual_clock = true;
        corio::run(inner_wait_briefly(), inner);
        co_return;
      },
      log.debug_options());
  EXPECT_EQ(log.count("blocking call channel::send_blocking on an event loop's thread"), 1U)
      << log.all();
  EXPECT_EQ(log.count("blocking call channel::receive_blocking"), 1U) << log.all();
  EXPECT_EQ(log.count("blocking call corio::run (a loop inside a running loop)"), 1U) << log.all();
  EXPECT_EQ(log.count("in task: 'main' "), 3U) << log.all();
}
