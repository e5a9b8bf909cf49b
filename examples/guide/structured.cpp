// The examples of docs/guide/structured_concurrency.md: task_group, gather,
// wait_any, as_completed, map_bounded. Each snippet checks what the guide
// says of it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;
using guide::check;

//! [group]
corio::task<std::size_t> fetch_size(std::string url) {
  co_await corio::sleep(1ms * url.size());  // stands in for a request
  co_return url.size();
}

corio::task<> group_of_fetches() {
  const std::vector<std::string> urls{"a", "bb", "ccc"};
  std::size_t total = 0;
  const std::size_t n =
      co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<std::size_t> {
        std::vector<corio::join_handle<std::size_t>> sizes;
        for (const std::string& u : urls)
          sizes.push_back(g.spawn(fetch_size(u)));
        for (auto& h : sizes)
          total += co_await h;
        co_return sizes.size();
      });
  check(n == 3 && total == 6, "the body's value, once every child has finished");
}
//! [group]

//! [group_waits]
corio::task<> count_later(int& finished, int i) {
  co_await corio::sleep(1ms * i);
  ++finished;
}

corio::task<> group_waits_for_children() {
  int finished = 0;
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    for (int i = 1; i <= 3; ++i)
      g.spawn(count_later(finished, i));
    co_return;  // not the end of the group: it waits for the children here
  });
  check(finished == 3, "no child outlives its group");
}
//! [group_waits]

//! [group_failure]
corio::task<> fail_after(std::chrono::milliseconds d, const char* what) {
  co_await corio::sleep(d);
  throw std::runtime_error(what);
}

corio::task<> wait_forever(bool& cancelled) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
    throw;
  }
}

corio::task<> a_failure_cancels_the_rest() {
  bool sibling_cancelled = false;
  bool body_cancelled = false;
  std::vector<std::exception_ptr> errors;
  try {
    co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
      g.spawn(fail_after(1ms, "disk full"));
      g.spawn(wait_forever(sibling_cancelled));
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        body_cancelled = true;
        throw;
      }
    });
  } catch (const corio::task_group_error& e) {
    errors = e.errors();  // cancellations are not failures: only "disk full"
  }
  check(sibling_cancelled && body_cancelled, "the first failure cancels siblings and body");
  check(errors.size() == 1, "one failure, collected");
  std::string what;
  try {
    std::rethrow_exception(errors.front());
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  check(what == "disk full", "the child's own exception, as it was thrown");
}
//! [group_failure]

//! [group_defer]
corio::task<> note_after(std::vector<std::string>& log, const char* what) {
  co_await corio::sleep(1ms);
  log.emplace_back(what);
}

corio::task<> deferred_cleanups() {
  std::vector<std::string> log;
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    g.defer([&log] { return note_after(log, "close the database"); });
    g.defer([&log] { return note_after(log, "flush the cache"); });
    g.spawn(note_after(log, "child done"));
    co_return;
  });
  const std::vector<std::string> expected{"child done", "flush the cache", "close the database"};
  check(log == expected, "cleanups run after the children, newest first");
}
//! [group_defer]

//! [group_cancel]
corio::task<> probe(corio::task_group& g, int id, int& found) {
  co_await corio::sleep(1ms * id);
  if (found == 0) found = id;
  g.cancel();  // the answer is in: stop the others, no error
}

corio::task<> first_answer_stops_the_search() {
  int found = 0;
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    for (int id = 3; id >= 1; --id)
      g.spawn(probe(g, id, found));
    co_return;
  });
  check(found == 1, "task_group::cancel() ends the group without an error");
}
//! [group_cancel]

//! [group_outer_cancel]
corio::task<> worker_pool(bool& child_cancelled, bool& cleaned) {
  co_await corio::with_task_group([&](corio::task_group& g) -> corio::task<> {
    g.defer([&cleaned]() -> corio::task<> {
      cleaned = true;
      co_return;
    });
    g.spawn(wait_forever(child_cancelled));
    co_return;
  });
}

corio::task<> cancelling_the_owner() {
  bool child_cancelled = false;
  bool cleaned = false;
  auto h = corio::spawn(worker_pool(child_cancelled, cleaned));
  co_await corio::yield_now();
  h.cancel();
  bool cancelled = false;
  try {
    co_await h;
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  check(cancelled && child_cancelled && cleaned,
        "cancelling the group's task cancels the children, runs the cleanups, rethrows");
}
//! [group_outer_cancel]

//! [gather]
corio::task<int> after(std::chrono::milliseconds d, int v) {
  co_await corio::sleep(d);
  co_return v;
}

corio::task<int> broken(std::chrono::milliseconds d) {
  co_await corio::sleep(d);
  throw std::invalid_argument("bad input");
}

corio::task<> gathering() {
  auto [a, s] = co_await corio::gather(after(2ms, 1), fetch_size("four"));
  check(a == 1 && s == 4, "variadic gather: a tuple, in argument order");

  std::vector<corio::task<int>> jobs;
  for (int i = 0; i < 5; ++i)
    jobs.push_back(after(std::chrono::milliseconds(5 - i), i));
  const std::vector<int> in_order = co_await corio::gather(std::move(jobs));
  check(in_order == std::vector<int>{0, 1, 2, 3, 4}, "range gather: input order, not finish order");

  bool rethrown = false;
  try {
    co_await corio::gather(after(1h, 0), broken(1ms));
  } catch (const std::invalid_argument&) {
    rethrown = true;  // the hour-long task was cancelled and awaited first
  }
  check(rethrown, "the first failure cancels the rest and is rethrown as it is");

  std::vector<corio::task<int>> more;
  more.push_back(after(1ms, 10));
  more.push_back(broken(1ms));
  std::vector<corio::outcome<int>> all = co_await corio::gather_settled(std::move(more));
  check(all[0].has_value() && all[0].value() == 10 && all[1].has_error(),
        "gather_settled: every outcome, one failure cancels nothing");
}
//! [gather]

//! [wait_any]
corio::task<std::string> replica(std::string name, std::chrono::milliseconds d, int& cancelled) {
  try {
    co_await corio::sleep(d);
  } catch (const corio::cancelled_error&) {
    ++cancelled;
    throw;
  }
  co_return name;
}

corio::task<> first_replica_wins() {
  int cancelled = 0;
  std::vector<corio::task<std::string>> replicas;
  replicas.push_back(replica("eu", 5ms, cancelled));
  replicas.push_back(replica("us", 1ms, cancelled));
  replicas.push_back(replica("ap", 9ms, cancelled));
  const corio::any_result<std::string> r = co_await corio::wait_any(std::move(replicas));
  check(r.index == 1 && r.value == "us", "the first to finish, with its index");
  check(cancelled == 2, "the others were cancelled and awaited before wait_any returned");
}
//! [wait_any]

//! [as_completed]
corio::task<> results_as_they_come() {
  std::vector<corio::task<int>> jobs;
  jobs.push_back(after(3ms, 3));
  jobs.push_back(broken(1ms));
  jobs.push_back(after(2ms, 2));
  auto results = corio::as_completed(std::move(jobs));
  std::vector<int> seen;
  for (;;) {
    try {
      const std::optional<int> r = co_await results.next();
      if (!r) break;
      seen.push_back(*r);
    } catch (const std::invalid_argument&) {
      seen.push_back(-1);  // a failure comes out at its turn; the stream goes on
    }
  }
  check(seen == std::vector<int>{-1, 2, 3}, "finish order, failures included");
}
//! [as_completed]

//! [map_bounded]
corio::task<> bounded_concurrency() {
  std::vector<int> ids(20);
  std::iota(ids.begin(), ids.end(), 0);
  int in_flight = 0;
  int peak = 0;
  int started = 0;
  const std::vector<int> squares = co_await corio::map_bounded(
      ids,
      [&](int id) -> corio::task<int> {
        ++started;
        peak = std::max(peak, ++in_flight);
        co_await corio::sleep(1ms);
        --in_flight;
        co_return id* id;
      },
      4);
  check(peak == 4 && started == 20, "never more than 4 calls at once");
  check(squares.size() == 20 && squares[19] == 361, "results in input order");
}
//! [map_bounded]

//! [map_bounded_failure]
corio::task<> bounded_failure_stops_the_rest() {
  std::vector<int> ids(100);
  std::iota(ids.begin(), ids.end(), 0);
  int started = 0;
  bool failed = false;
  try {
    co_await corio::map_bounded(
        ids,
        [&started](int id) -> corio::task<int> {
          ++started;
          co_await corio::sleep(1ms);
          if (id == 5) throw std::runtime_error("item 5 is bad");
          co_return id;
        },
        4);
  } catch (const std::runtime_error&) {
    failed = true;
  }
  check(failed && started < 100, "the first failure cancels calls in flight and starts no more");
}
//! [map_bounded_failure]

//! [map_batched]
corio::task<> batches() {
  std::vector<int> rows(10, 1);
  const auto spans = corio::batched(rows, 4);
  check(spans.size() == 3 && spans[2].size() == 2, "batches of 4, 4 and 2");
  int calls = 0;
  const std::vector<int> sums = co_await corio::map_batched(
      rows, 4,
      [&calls](std::span<int> batch) -> corio::task<int> {
        ++calls;  // one call, e.g. one INSERT, per batch
        co_return std::accumulate(batch.begin(), batch.end(), 0);
      },
      2);
  check(calls == 3 && sums == std::vector<int>{4, 4, 2}, "one call and one result per batch");
}
//! [map_batched]

corio::task<> all_examples() {
  co_await group_of_fetches();
  co_await group_waits_for_children();
  co_await a_failure_cancels_the_rest();
  co_await deferred_cleanups();
  co_await first_answer_stops_the_search();
  co_await cancelling_the_owner();
  co_await gathering();
  co_await first_replica_wins();
  co_await results_as_they_come();
  co_await bounded_concurrency();
  co_await bounded_failure_stops_the_rest();
  co_await batches();
}

int main() {
  // On the virtual clock, timers fire in deadline order however loaded the
  // machine is: finish orders (wait_any, as_completed) are exact.
  corio::run(all_examples(), corio::loop_options{.virtual_clock = true});
  std::printf("structured: every example checked\n");
}
