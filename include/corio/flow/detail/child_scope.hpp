// child_scope: the structured-concurrency core that task_group, gather,
// wait_any, as_completed and map_bounded share.
//
// A scope owns the roots spawned into it (they are linked into its member
// list instead of the loop's). It records failures as children finish and,
// when `fail_fast`, cancels the remaining children at the first one. The
// owner awaits `join()`: it returns once every child has finished; if the
// owner itself is cancelled meanwhile, join() cancels every child, waits
// for them (shielded), and rethrows the cancellation. Nothing outlives the
// scope, except when the scope is destroyed without being joined (a
// generator dropped early): then its children are cancelled and handed to
// the loop, which lets them finish.
//
// A scope that does not `collect` failures (a server's connections: one
// may fail at any time and the scope lives for ever; gather_settled and
// wait_any, which take the results they want through the join handles)
// leaves them to the loop's "nobody retrieved" report instead of keeping
// each one.
#pragma once

#include <exception>
#include <vector>

#include "corio/task/cancel.hpp"
#include "corio/task/spawn.hpp"

namespace corio::detail {

class child_scope final : public task_owner {
 public:
  explicit child_scope(bool fail_fast, bool collect = true) noexcept
      : m_loop(&current_loop()), m_fail_fast(fail_fast), m_collect(collect) {
    m_opener = m_loop->current_task();
    m_home = m_loop;
    m_loop->add_scope(*this);
  }
  child_scope(const child_scope&) = delete;
  child_scope& operator=(const child_scope&) = delete;
  ~child_scope() {
    unlink();
    m_members.for_each([this](task_base& t) {
      t.unlink();
      task_owner* loop_owner = m_loop->owner_for_spawn();
      t.m_owner = loop_owner;
      loop_owner->m_members.push_back(t);
      ++loop_owner->m_count;
      t.request_cancel();
    });
    m_count = 0;
  }

  /// Spawns `t` into the scope. Into a scope that is cancelling (after
  /// cancel_all, or the first failure of a fail-fast scope) the child
  /// starts cancelled, as in Trio: it never runs its body.
  template <class T>
  join_handle<T> spawn(task<T> t, const char* name = nullptr) {
    join_handle<T> h = spawn_into(*this, *m_loop, std::move(t), name);
    if (m_cancelling) h.cancel();
    return h;
  }

  /// Spawns every task of `tasks` (emptied) and returns their handles in order.
  template <class T>
  std::vector<join_handle<T>> spawn_all(std::vector<task<T>>& tasks) {
    std::vector<join_handle<T>> handles;
    handles.reserve(tasks.size());
    for (auto& t : tasks)
      handles.push_back(spawn(std::move(t)));
    tasks.clear();
    return handles;
  }

  /// Requests cancellation of every child still running.
  void cancel_all() noexcept {
    m_cancelling = true;
    m_members.for_each([](task_base& t) { t.request_cancel(); });
  }

  /// Called for each finished child (after the bookkeeping below).
  void (*m_on_child_done)(child_scope&, task_base&) noexcept = nullptr;
  void* m_user = nullptr;

  /// Waits until `pred(*this)` holds, re-checked as children finish.
  /// Cancellation: unlinked at once; the children keep running.
  auto wait_until(bool (*pred)(const child_scope&)) noexcept {
    struct awaiter : waiter {
      child_scope* m_scope;
      bool (*m_pred)(const child_scope&);
      [[nodiscard]] bool await_ready() const noexcept { return m_pred(*m_scope); }
      bool await_suspend(std::coroutine_handle<> h) noexcept {
        if (!park(*this, h, "child tasks")) return false;
        m_scope->m_waiter = this;
        m_scope->m_waiter_pred = m_pred;
        return true;
      }
      void on_abort() noexcept { m_scope->m_waiter = nullptr; }
      void await_resume() { finish(); }
    };
    awaiter a;
    a.m_scope = this;
    a.m_pred = pred;
    return a;
  }

  /// Waits until `pred(*this)` holds. If the opener is cancelled
  /// meanwhile, cancels every child, waits for them all (shielded) and
  /// rethrows the cancellation: nothing outlives a cancelled wait.
  task<> join_until(bool (*pred)(const child_scope&)) {
    return on_cancel(wait_until(pred), [this] {
      cancel_all();
      return wait_until(&all_done);
    });
  }

  /// Waits until every child has finished (see the file comment).
  task<> join() { return join_until(&all_done); }

  static bool all_done(const child_scope& s) noexcept { return s.m_count == 0; }

  [[nodiscard]] const std::vector<std::exception_ptr>& errors() const noexcept { return m_errors; }
  [[nodiscard]] std::size_t active() const noexcept { return m_count; }
  [[nodiscard]] loop_core& loop() const noexcept { return *m_loop; }

 private:
  void on_member_done(task_base& t) noexcept override {
    if (m_collect && (t.m_flags & (tf_has_error | tf_error_is_cancel)) == tf_has_error) {
      t.m_flags |= tf_retrieved;  // the scope reports it
      m_errors.push_back(t.m_error);
      if (m_fail_fast && m_errors.size() == 1) cancel_all();
    }
    if (m_on_child_done != nullptr) m_on_child_done(*this, t);
    if (m_waiter != nullptr && m_waiter_pred(*this)) {
      waiter* w = m_waiter;
      m_waiter = nullptr;
      w->wake();
    }
  }

  loop_core* m_loop;
  bool m_fail_fast;
  bool m_collect;
  bool m_cancelling = false;
  std::vector<std::exception_ptr> m_errors;
  waiter* m_waiter = nullptr;
  bool (*m_waiter_pred)(const child_scope&) = nullptr;
};

/// Reports failures that a cancellation from outside overtook (a group or
/// gather rethrows the cancellation, so that it reaches whoever asked for
/// it): through the loop's report, so they are not lost silently.
void report_overtaken_errors(const char* what,
                             const std::vector<std::exception_ptr>& errors) noexcept;

/// Joins the scope; rethrows the first child failure, or the caller's
/// cancellation (reporting failures it overtook).
inline task<> join_or_rethrow(child_scope& scope, const char* what = "a gather") {
  bool cancelled = false;
  try {
    co_await scope.join();
  } catch (const cancelled_error&) {
    cancelled = true;
  }
  if (cancelled) {
    if (!scope.errors().empty()) report_overtaken_errors(what, scope.errors());
    throw cancelled_error();
  }
  if (!scope.errors().empty()) std::rethrow_exception(scope.errors().front());
}

}  // namespace corio::detail
