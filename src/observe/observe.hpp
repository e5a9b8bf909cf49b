// Texts of the loop's reports (debug mode, task dumps), written in
// src/observe/task_dump.cpp so that the loop itself stays small.
#pragma once

#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>

#include "corio/event_loop.hpp"

namespace corio::detail {

/// "parse(int) at src/app.cpp:42": a coroutine's function without its
/// return type, and where it is.
std::string describe_frame(const std::source_location& where);

/// The await chain of root `t`, outermost first: the roots that wait for it
/// (through a task group, gather or join_handle), each with its nested
/// frames, then `t`'s own frames down to the one suspended now.
std::string await_chain_text(const task_base& t);

std::string slow_resumption_report(const task_base& t, std::int64_t ns, std::int64_t threshold_ns);
std::string slow_finished_report(const char* name, const std::source_location& where,
                                 std::int64_t ns, std::int64_t threshold_ns);
std::string task_dump_text(event_loop& loop);
std::string alive_at_close_report(event_loop& loop, std::size_t count);

}  // namespace corio::detail

namespace corio::detail {

/// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);
/// {"count":..,"errors":..,"mean_ns":..,"p50_ns":..,"p90_ns":..,"p99_ns":..,"max_ns":..}
std::string histogram_json(const latency_histogram& h, std::uint64_t errors);

}  // namespace corio::detail
