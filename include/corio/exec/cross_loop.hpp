// The messages that carry work between the event loops of a runtime
// (corio/runtime.hpp): submit_to, spawn_on, invoke_on_all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/cancelled_error.hpp"
#include "corio/exec/thread_pool.hpp"
#include "corio/flow/gather.hpp"
#include "corio/loop/event_loop.hpp"
#include "corio/task/spawn.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// Thrown by submit_to and spawn_on once the runtime is stopping (its main
/// task ended): no new work crosses loops then.
class runtime_stopping_error : public std::runtime_error {
 public:
  runtime_stopping_error() : std::runtime_error("corio: the runtime is stopping") {}
};

namespace detail {

/// What the loops of one runtime share: their addresses, and the count of
/// calls between them still in flight, which the shutdown waits for.
class runtime_state {
 public:
  runtime_state(const runtime_state&) = delete;
  runtime_state& operator=(const runtime_state&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return m_loops.size(); }
  [[nodiscard]] event_loop& loop(std::size_t i) const noexcept { return *m_loops[i]; }

  /// A call is about to cross to another loop: false when the runtime is
  /// stopping (then nothing may be posted). Pairs with end_call.
  bool begin_call() noexcept {
    m_in_flight.fetch_add(1, std::memory_order_seq_cst);
    if (!m_stopping.load(std::memory_order_seq_cst)) return true;
    end_call();
    return false;
  }
  /// The call's last message was posted: once the runtime stops and none
  /// is in flight, the loops may end.
  void end_call() noexcept {
    if (m_in_flight.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        m_workers_ended.load(std::memory_order_seq_cst)) {
      release_loops();
    }
  }

  /// The main task ended: no call may cross loops from now on; each loop
  /// cancels and drains its tasks, and ends once no call is in flight.
  void stop() noexcept {
    if (m_stopping.exchange(true, std::memory_order_seq_cst)) return;
    // A loop's end message goes before its release (else it could see no
    // work left while its main task still waits for the end): the calls'
    // last end_call releases only once the end messages are out.
    end_workers();
    m_workers_ended.store(true, std::memory_order_seq_cst);
    if (m_in_flight.load(std::memory_order_seq_cst) == 0) release_loops();
  }

 protected:
  runtime_state() = default;
  virtual ~runtime_state() = default;

  // Ends the other loops' main tasks (their tasks are then cancelled).
  virtual void end_workers() noexcept = 0;
  // Lets every loop end once its own tasks are done (each held one guard
  // until now); idempotent.
  virtual void release_loops() noexcept = 0;

  std::vector<event_loop*> m_loops;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_workers_ended{false};
  std::atomic<std::int64_t> m_in_flight{0};
};

/// The runtime of the loop on this thread (nullptr: none), and its index.
inline thread_local constinit runtime_state* t_runtime = nullptr;
inline thread_local constinit std::size_t t_loop_index = 0;

[[nodiscard]] runtime_state& runtime_for(std::size_t target, const char* what);

template <class Fn>
struct remote_call_traits {
  using returned = std::invoke_result_t<Fn&>;
  static constexpr bool is_task = false;
  using value = returned;
};
template <class Fn>
requires requires {
  typename std::invoke_result_t<Fn&>::value_type;
} && std::is_same_v<std::invoke_result_t<Fn&>, task<typename std::invoke_result_t<Fn&>::value_type>>
struct remote_call_traits<Fn> {
  using returned = std::invoke_result_t<Fn&>;
  static constexpr bool is_task = true;
  using value = typename returned::value_type;
};

/// One submit_to: its function, its result, and the three messages that
/// carry it (the request and a cancel to the target, the reply back). Apart
/// from both frames, counted: the caller's loop and the target's each hold
/// a reference while they may still touch it.
template <class Fn>
struct remote_call {
  using traits = remote_call_traits<Fn>;
  using value = typename traits::value;

  struct message : posted_node {
    remote_call* m_call = nullptr;
  };
  // Told when the remote task ends, however it ends: a task cancelled
  // before it started never runs its body.
  struct ended : done_listener {
    remote_call* m_call = nullptr;
  };

  Fn m_fn;
  call_result<value> m_result;
  runtime_state* m_runtime;
  event_loop* m_origin = nullptr;
  event_loop* m_target = nullptr;
  waiter* m_waiter = nullptr;     // the caller's (its loop's thread only)
  task_base* m_remote = nullptr;  // the task running it, until it ends (the target's thread only)
  std::atomic<int> m_refs{2};     // the caller's side and the target's
  message m_request, m_cancel, m_reply;
  ended m_ended;

  remote_call(runtime_state& rt, event_loop& target, Fn fn)
      : m_fn(std::move(fn)), m_runtime(&rt), m_target(&target) {
    m_request.m_call = m_cancel.m_call = m_reply.m_call = this;
    m_request.m_run = [](posted_node& n) noexcept { static_cast<message&>(n).m_call->start(); };
    m_cancel.m_run = [](posted_node& n) noexcept {
      remote_call* c = static_cast<message&>(n).m_call;
      if (c->m_remote != nullptr) c->m_remote->request_cancel();
      c->release();
    };
    m_reply.m_run = [](posted_node& n) noexcept { static_cast<message&>(n).m_call->replied(); };
    m_ended.m_call = this;
    m_ended.m_on_done = [](done_listener& l) noexcept { static_cast<ended&>(l).m_call->reply(); };
  }

  void release() noexcept {
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // On the target: runs the function in a task of its own there.
  void start() noexcept {
    try {
      join_handle<void> h = spawn_into(*core_of(*m_target).owner_for_spawn(), core_of(*m_target),
                                       body(this), "submit_to");
      m_remote = h.get();
      m_ended.m_next = m_remote->m_listeners;
      m_remote->m_listeners = &m_ended;
    } catch (...) {  // out of memory: the caller gets it
      m_result.m_error = std::current_exception();
      reply();
    }
  }

  // Every outcome is caught; the reply goes when the task ends (m_ended).
  static task<void> body(remote_call* self) {
    if constexpr (traits::is_task) {
      try {
        if constexpr (std::is_void_v<value>) {
          co_await self->m_fn();
          self->m_result.m_value.emplace(true);
        } else {
          self->m_result.m_value.emplace(co_await self->m_fn());
        }
      } catch (...) {
        self->m_result.m_error = std::current_exception();
      }
    } else {
      self->m_result.capture(self->m_fn);
    }
  }

  // On the target, the function done: the result goes back. Nothing here
  // touches the call after the post but through locals.
  void reply() noexcept {
    if (!m_result.m_value && !m_result.m_error) {  // cancelled before it ran
      m_result.m_error = std::make_exception_ptr(cancelled_error());
    }
    m_remote = nullptr;
    runtime_state* rt = m_runtime;
    event_loop* origin = m_origin;
    origin->post(m_reply);
    release();  // the target's reference
    rt->end_call();
  }

  // On the caller's loop.
  void replied() noexcept {
    external_work::remove(*m_origin);
    waiter* w = std::exchange(m_waiter, nullptr);
    if (w->m_state == waiter::state::aborted) {
      core_of(*m_origin).schedule(*w->m_task);  // finish() throws cancelled_error
    } else {
      w->wake();
    }
  }
};

/// submit_to's awaitable: parks the caller until the reply, through a
/// cancellation too (the remote task is cancelled and awaited: what it
/// borrowed from the caller stays valid).
template <class Fn>
class remote_call_awaitable : public waiter {
  using call = remote_call<Fn>;

 public:
  remote_call_awaitable(runtime_state& rt, event_loop& target, Fn fn)
      : m_call(new call(rt, target, std::move(fn))) {}
  remote_call_awaitable(remote_call_awaitable&& o) noexcept
      : waiter(), m_call(std::exchange(o.m_call, nullptr)) {}
  remote_call_awaitable(const remote_call_awaitable&) = delete;
  remote_call_awaitable& operator=(const remote_call_awaitable&) = delete;
  remote_call_awaitable& operator=(remote_call_awaitable&&) = delete;
  ~remote_call_awaitable() {
    if (m_call == nullptr) return;
    if (!m_sent) {
      delete m_call;  // never went out
    } else {
      m_call->release();
    }
  }

  static constexpr bool await_ready() noexcept { return false; }

  bool await_suspend(std::coroutine_handle<> h) {
    if (!park(*this, h, "submit_to")) return false;
    m_defer_abort = true;  // the reply resumes it, cancelled or not
    if (!m_call->m_runtime->begin_call()) {
      end_without_suspending();
      throw runtime_stopping_error();
    }
    m_call->m_origin = &current_event_loop();
    m_call->m_waiter = this;
    external_work::add(*m_call->m_origin);
    m_sent = true;
    m_call->m_target->post(m_call->m_request);
    return true;
  }

  // The caller was cancelled: so is the remote task (the call's own
  // reference keeps it for the cancel message).
  void on_abort() noexcept {
    m_call->m_refs.fetch_add(1, std::memory_order_relaxed);
    m_call->m_target->post(m_call->m_cancel);
  }

  typename call::value await_resume() {
    finish();
    return m_call->m_result.take();
  }

 private:
  call* m_call;
  bool m_sent = false;
};

/// spawn_on's message: makes the task on the target loop and spawns it
/// there, detached.
template <class Fn>
struct remote_spawn final : posted_node {
  // The task, with the callable that made it kept in the frame: a
  // coroutine lambda's captures live in the lambda object.
  static task<void> keep(Fn fn) { (void)co_await fn(); }

  Fn m_fn;
  runtime_state* m_runtime;
  event_loop* m_target;
  const char* m_name;
  remote_spawn(runtime_state& rt, event_loop& target, Fn fn, const char* name)
      : m_fn(std::move(fn)), m_runtime(&rt), m_target(&target), m_name(name) {
    m_run = [](posted_node& n) noexcept {
      auto* self = static_cast<remote_spawn*>(&n);
      runtime_state* rt = self->m_runtime;
      try {
        loop_core& core = core_of(*self->m_target);
        (void)spawn_into(*core.owner_for_spawn(), core, keep(std::move(self->m_fn)), self->m_name);
      } catch (...) {
        report_current(std::string_view(
            "corio: spawn_on could not start its task (out of memory); the task is dropped"));
      }
      delete self;
      rt->end_call();
    };
  }
};

}  // namespace detail

/// The index of the loop running this code in its runtime (0 on a loop of
/// its own, as corio::run makes, and off any loop).
[[nodiscard]] inline std::size_t this_loop_index() noexcept {
  return detail::t_loop_index;
}
/// The number of loops of this loop's runtime (1 on a loop of its own).
[[nodiscard]] inline std::size_t loop_count() noexcept {
  return detail::t_runtime != nullptr ? detail::t_runtime->size() : 1;
}

/// Runs `fn()` on loop `loop` of this runtime, in a task of its own there,
/// and gives its result back here (`fn` may return a value or a task,
/// which is awaited there). An exception `fn` throws is rethrown here.
/// Cancelling the awaiting task cancels the remote one and waits for it,
/// so what `fn` borrowed from the caller outlives it; then
/// `cancelled_error`. `fn` is moved to the other loop: it must not touch
/// the caller's loop-local state (tasks, sync primitives) there. Calls
/// are one post each way, and a loop that is awake reads its posts
/// without a system call. Throws runtime_stopping_error once the runtime
/// is stopping.
///
/// \code
///   std::size_t hits = co_await corio::submit_to(2, [&key] { return cache_of_loop_2.count(key);
///   }); auto page = co_await corio::submit_to(1, [url]() -> corio::task<std::string> {
///     co_return co_await fetch(url);
///   });
/// \endcode
template <class Fn>
[[nodiscard]] auto submit_to(std::size_t loop, Fn fn) {
  detail::runtime_state& rt = detail::runtime_for(loop, "submit_to");
  return detail::remote_call_awaitable<Fn>(rt, rt.loop(loop), std::move(fn));
}

/// Starts the task `make()` returns on loop `loop`, detached: that loop
/// owns it (like spawn), and an error it ends with is reported there. The
/// task is made on the target loop, so its frame is allocated and freed
/// by the same thread. For its result, use submit_to. Throws
/// runtime_stopping_error once the runtime is stopping.
///
/// \code
///   corio::spawn_on(1, [conn = std::move(conn)]() mutable { return serve(std::move(conn)); });
/// \endcode
template <class Make>
void spawn_on(std::size_t loop, Make make, const char* name = "spawn_on") {
  detail::runtime_state& rt = detail::runtime_for(loop, "spawn_on");
  auto* node = new detail::remote_spawn<Make>(rt, rt.loop(loop), std::move(make), name);
  if (!rt.begin_call()) {
    delete node;
    throw runtime_stopping_error();
  }
  rt.loop(loop).post(*node);
}

/// Runs `fn(index)` on every loop of this runtime at once (a submit_to
/// each; `fn` is copied for each loop) and waits for all of them; the
/// first error is rethrown once all are done.
///
/// \code
///   co_await corio::invoke_on_all([](std::size_t i) { local_cache().clear(); });
/// \endcode
template <class Fn>
task<void> invoke_on_all(Fn fn) {
  const std::size_t n = loop_count();
  std::vector<task<void>> calls;
  calls.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    calls.push_back([](std::size_t index, Fn f) -> task<void> {
      co_await submit_to(index, [index, f]() mutable { return f(index); });
    }(i, fn));
  }
  co_await gather(std::move(calls));
}

}  // namespace corio
