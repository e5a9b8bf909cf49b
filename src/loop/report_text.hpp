// How a loop writes a report when no loop_options::report is set, shared
// with report_log, which passes reports on the same way.
#pragma once

#include <string_view>

namespace corio::detail {

/// Writes one report to stderr in one write (so that the reports of several
/// loops do not interleave), with a line end if it has none.
void write_report_to_stderr(std::string_view text);

}  // namespace corio::detail
