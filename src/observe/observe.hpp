// Texts of the loop's reports (debug mode, task dumps), written in
// src/observe/task_dump.cpp so that the loop itself stays small.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "corio/loop/event_loop.hpp"
#include "corio/observe/histogram.hpp"
#include "task/describe.hpp"

namespace corio::detail {

/// The root that waits for root `t`: the opener of its task group or
/// gather, or a task awaiting its join_handle; nullptr for none.
inline const task_base* awaited_by(const task_base& t) noexcept {
  if (t.m_owner != nullptr && t.m_owner->m_opener != nullptr) return t.m_owner->m_opener;
  for (const done_listener* l = t.m_listeners; l != nullptr; l = l->m_next)
    if (l->m_waiting != nullptr) return l->m_waiting;
  return nullptr;
}

/// Walks the await chain of root `t`, outermost first: `frame(name, where)`
/// for each coroutine frame (`name` is the root's name on a root's first
/// frame, else nullptr), `link(what)` between one root and the root it
/// waits for ("child tasks", "join_handle"). Allocation-free and bounded
/// (16 roots, 64 frames each): the watchdog's signal handler uses it.
template <class Frame, class Link>
void walk_await_chain(const task_base& t, Frame frame, Link link) {
  constexpr int max_roots = 16;
  constexpr int max_frames = 64;
  const task_base* roots[max_roots];
  int n = 0;
  roots[n++] = &t;
  while (n < max_roots) {
    const task_base* up = awaited_by(*roots[n - 1]);
    bool seen = false;
    for (int i = 0; i < n; ++i)
      seen = seen || roots[i] == up;
    if (up == nullptr || seen) break;
    roots[n++] = up;
  }
  for (int i = n - 1; i >= 0; --i) {
    const task_base& r = *roots[i];
    const frame_info* f = &r;
    // A forwarding root (spawn_on's wrapper) is shown as the task it awaits.
    if ((r.m_flags & tf_forwarding) != 0 && f->awaiting() != nullptr) f = f->awaiting();
    for (int depth = 0; f != nullptr && depth < max_frames; ++depth) {
      frame(depth == 0 ? r.name() : nullptr, f->where());
      f = f->awaiting();
    }
    if (i > 0 && r.m_waiter != nullptr && r.m_waiter->m_what != nullptr) link(r.m_waiter->m_what);
  }
}

/// The await chain of root `t`, outermost first: the roots that wait for it
/// (through a task group, gather or join_handle), each with its nested
/// frames, then `t`'s own frames down to the one suspended now.
std::string await_chain_text(const task_base& t);

/// "[child tasks]": a link between two roots in a chain.
std::string describe_link(const char* what);
/// The entries of a chain on one indented line each, joined by "> ".
std::string join_chain(const std::vector<std::string>& chain);

std::string slow_resumption_report(const task_base& t, std::int64_t ns, std::int64_t threshold_ns);
std::string slow_finished_report(const char* name, const code_site& where, std::int64_t ns,
                                 std::int64_t threshold_ns);
std::string task_dump_text(event_loop& loop);
std::string alive_at_close_report(event_loop& loop, std::size_t count);

/// Debug mode: reports `what`, a call that blocks its thread, made on a
/// loop's thread.
void report_blocking_call(event_loop& loop, const char* what);

}  // namespace corio::detail

namespace corio::detail {

/// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

/// The dashboard page serve_metrics serves at `/` (src/observe/dashboard.html).
extern const std::string_view dashboard_html;
/// {"count":..,"errors":..,"mean_ns":..,"p50_ns":..,"p90_ns":..,"p99_ns":..,"max_ns":..}
std::string histogram_json(const latency_histogram& h, std::uint64_t errors);

}  // namespace corio::detail
