// The examples of docs/guide/tasks.md: tasks, spawn, cancellation, timeouts,
// shields and cancel safety. Each snippet checks what the guide says of it.
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;
using guide::check;

//! [lazy]
corio::task<int> square(int x, int& calls) {
  ++calls;
  co_return x* x;
}

corio::task<> lazy_tasks() {
  int calls = 0;
  corio::task<int> t = square(7, calls);
  check(calls == 0, "a task does not start when it is made");
  const int v = co_await std::move(t);  // runs now, inside this task: nothing is scheduled
  check(v == 49 && calls == 1, "awaiting a task runs it to its end");
}
//! [lazy]

//! [spawn]
// Parameters by value: the task may outlive the caller's temporaries.
corio::task<std::string> greet(std::string name) {
  co_await corio::sleep(1ms);
  co_return "hello " + name;
}

corio::task<> spawn_and_join() {
  corio::join_handle<std::string> h = corio::spawn(greet("ada"), "greet");
  check(!h.done(), "spawned tasks start when this one suspends");
  co_await h.wait();  // waits, takes nothing, and would not cancel it
  check(h.done(), "wait() returns once the task has finished");
  const std::string s = co_await h;  // takes the value
  check(s == "hello ada", "awaiting the handle gives the task's value");
  bool taken_twice = false;
  try {
    (void)h.result();
  } catch (const std::logic_error&) {
    taken_twice = true;
  }
  check(taken_twice, "a value is taken once");
}
//! [spawn]

//! [detach]
corio::task<> set_later(corio::event& e) {
  co_await corio::sleep(1ms);
  e.set();
}

corio::task<> dropped_handle() {
  corio::event done;
  { auto h = corio::spawn(set_later(done)); }  // the handle is gone, the task runs on
  co_await done.wait();
}
//! [detach]

//! [cancel]
corio::task<> sleeper(bool& cleaned_up) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cleaned_up = true;  // synchronous cleanup: C++ allows no co_await in a handler
    throw;              // always rethrow
  }
}

corio::task<> cancel_a_task() {
  bool cleaned_up = false;
  auto h = corio::spawn(sleeper(cleaned_up));
  co_await corio::yield_now();  // let it reach its sleep
  check(h.cancel(), "cancel() is true while the task runs");
  bool cancelled = false;
  try {
    co_await h;
  } catch (const std::exception&) {
    check(false, "cancelled_error is not a std::exception");
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  check(cancelled && cleaned_up && h.cancelled(), "the sleep threw; the handle rethrows");
}
//! [cancel]

//! [cancel_before_start]
corio::task<> never_runs(bool& ran) {
  ran = true;
  co_return;
}

corio::task<> cancel_before_start() {
  bool ran = false;
  auto h = corio::spawn(never_runs(ran));
  h.cancel();  // before its first step: the body never runs
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
  }
  check(!ran && h.cancelled(), "a task cancelled before it started never runs");
}
//! [cancel_before_start]

//! [on_cancel]
corio::task<> say_goodbye(int& goodbyes) {
  co_await corio::sleep(1ms);  // async cleanup: a message to the peer, say
  ++goodbyes;
}

corio::task<> session(int& goodbyes) {
  co_await corio::on_cancel(corio::sleep(1h), [&goodbyes] { return say_goodbye(goodbyes); });
}

corio::task<> async_cleanup() {
  int goodbyes = 0;
  auto h = corio::spawn(session(goodbyes));
  co_await corio::yield_now();
  h.cancel();
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
  }
  check(goodbyes == 1, "the cleanup ran to its end, shielded, and the cancellation went on");
}
//! [on_cancel]

//! [timeout]
corio::task<int> slow_answer() {
  co_await corio::sleep(1h);
  co_return 42;
}

corio::task<int> quick_answer() {
  co_await corio::sleep(1ms);
  co_return 7;
}

corio::task<> timeouts() {
  bool timed_out = false;
  try {
    co_await corio::timeout(5ms, slow_answer());
  } catch (const corio::timeout_error&) {
    timed_out = true;  // slow_answer() was cancelled, and has finished
  }
  check(timed_out, "timeout() throws timeout_error when the time runs out");

  const std::optional<int> none = co_await corio::move_on_after(5ms, slow_answer());
  check(!none.has_value(), "move_on_after() gives nullopt when the time runs out");
  const std::optional<int> seven = co_await corio::move_on_after(1s, quick_answer());
  check(seven == 7, "and the value when the awaitable is quicker");

  const int again = co_await corio::timeout_at(corio::now() + 1s, quick_answer());
  check(again == 7, "timeout_at() takes a point on the loop's clock");
  check(!corio::cancel_requested(), "a deadline cancels the awaitable, not the task");
}
//! [timeout]

//! [outer_wins]
corio::task<> timed_sleep(bool& saw_timeout) {
  try {
    co_await corio::timeout(5ms, corio::sleep(1h));
  } catch (const corio::timeout_error&) {
    saw_timeout = true;
  }
}

corio::task<> outer_cancel_is_not_a_timeout() {
  bool saw_timeout = false;
  auto h = corio::spawn(timed_sleep(saw_timeout));
  co_await corio::yield_now();
  h.cancel();  // from outside, before the deadline
  bool cancelled = false;
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  check(cancelled && !saw_timeout, "a cancellation from outside comes out as itself");
}
//! [outer_wins]

//! [shield]
corio::task<> write_record(bool& written) {
  co_await corio::sleep(2ms);  // must not stop half-way
  written = true;
}

corio::task<> save(bool& written) {
  co_await corio::shield(write_record(written));
  co_await corio::sleep(1h);  // a cancellation that came during the shield lands here
}

corio::task<> shielding() {
  bool written = false;
  auto h = corio::spawn(save(written));
  co_await corio::yield_now();  // save() is inside the shield now
  h.cancel();
  bool cancelled = false;
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  check(written && cancelled, "the shielded write finished, then the cancellation landed");
}
//! [shield]

//! [checkpoint]
corio::task<> after_a_shield(corio::semaphore& s, int& stage) {
  co_await corio::shield(corio::sleep(2ms));  // a cancellation arrives in here
  stage = 1;
  auto permit = co_await s.acquire_guard();  // a free permit: no suspension, no throw
  stage = 2;
  co_await corio::yield_now();  // always suspends: the cancellation lands here
  stage = 3;
}

corio::task<> checkpoints() {
  corio::semaphore s(1);
  int stage = 0;
  auto h = corio::spawn(after_a_shield(s, stage));
  co_await corio::yield_now();
  h.cancel();
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
  }
  check(stage == 2, "only a real suspension delivers a pending cancellation");
  check(s.available() == 1, "the guard gave the permit back as the task unwound");
}
//! [checkpoint]

//! [run_leftovers]
corio::task<> forever(bool& cancelled) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
    throw;
  }
}

corio::task<int> main_task(bool& cancelled) {
  corio::spawn(forever(cancelled), "forever");  // never awaited
  co_return 1;
}

void leftovers_are_cancelled() {
  bool cancelled = false;
  const int v = corio::run(main_task(cancelled));
  check(v == 1 && cancelled, "run() cancelled and awaited the task main left running");
}
//! [run_leftovers]

//! [run_rethrows]
corio::task<int> fails() {
  co_await corio::sleep(1ms);
  throw std::runtime_error("no answer");
}

void run_rethrows() {
  std::string what;
  try {
    (void)corio::run(fails());
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  check(what == "no answer", "run() rethrows main's exception");
}
//! [run_rethrows]

//! [queue_pass_on]
corio::task<> pop_one(corio::queue<int>& q, int& got) {
  const int v = co_await q.pop();
  got = v;
}

corio::task<> queue_item_survives_a_cancel() {
  corio::queue<int> q(4);
  int got = -1;
  auto popper = corio::spawn(pop_one(q, got));
  co_await corio::yield_now();  // the popper waits on the empty queue
  check(q.try_push(1), "room in the queue");
  popper.cancel();  // the item was promised to it, but it has not resumed yet
  try {
    co_await popper;
  } catch (const corio::cancelled_error&) {
  }
  check(got == -1, "the cancelled popper took nothing");
  check(q.try_pop() == std::optional<int>(1), "the item stayed in the queue");
}
//! [queue_pass_on]

//! [read_exact_not_cancel_safe]
corio::task<> read_exact_loses_a_partial_read(corio::tcp_stream& in, corio::tcp_stream& out) {
  co_await out.write_all("abcd", 4);
  char buf[8];
  const bool done = co_await corio::move_on_after(5ms, in.read_exact(buf, sizeof buf));
  check(!done, "only 4 of the 8 bytes came");
  co_await out.write_all("efgh", 4);
  char rest[8];
  const std::size_t n = co_await in.read_some(rest, sizeof rest);
  check(std::string_view(rest, n) == "efgh", "abcd went into buf, and nobody knows how much");
}
//! [read_exact_not_cancel_safe]

//! [read_line_cancel_safe]
corio::task<> read_line_keeps_a_partial_line(corio::tcp_stream& in, corio::tcp_stream& out) {
  corio::buffered_reader reader(in);
  co_await out.write_all("hel", 3);
  const auto partial = co_await corio::move_on_after(5ms, reader.read_line());
  check(!partial.has_value(), "no whole line before the deadline");
  co_await out.write_all("lo\n", 3);
  const std::string_view line = co_await reader.read_line();
  check(line == "hello\n", "the bytes read before the cancel stayed in the buffer");
}
//! [read_line_cancel_safe]

// A connected pair of stream sockets for the two examples above.
corio::task<> stream_examples() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::system_category(), "socketpair");
  corio::tcp_stream a(fds[0]);
  corio::tcp_stream b(fds[1]);
  co_await read_exact_loses_a_partial_read(a, b);
  co_await read_line_keeps_a_partial_line(a, b);
}

corio::task<> all_examples() {
  co_await lazy_tasks();
  co_await spawn_and_join();
  co_await dropped_handle();
  co_await cancel_a_task();
  co_await cancel_before_start();
  co_await async_cleanup();
  co_await timeouts();
  co_await outer_cancel_is_not_a_timeout();
  co_await shielding();
  co_await checkpoints();
  co_await queue_item_survives_a_cancel();
  co_await stream_examples();
}

int main() {
  corio::run(all_examples());
  leftovers_are_cancelled();
  run_rethrows();
  std::printf("tasks: every example checked\n");
}
