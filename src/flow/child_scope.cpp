// child_scope.hpp's out-of-line part: the report of failures that an
// outside cancellation overtook.
#include "corio/flow/detail/child_scope.hpp"

#include <string>

namespace corio::detail {

void report_overtaken_errors(const char* what,
                             const std::vector<std::exception_ptr>& errors) noexcept {
  try {
    report_current(std::string("corio: ") + what +
                   " was cancelled from outside, and the cancellation overtook " +
                   join_error_messages(errors));
  } catch (...) {  // NOLINT(bugprone-empty-catch): a report must not throw
  }
}

}  // namespace corio::detail
