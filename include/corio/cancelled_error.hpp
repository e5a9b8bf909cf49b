// cancelled_error, apart from the other exceptions (errors.hpp) because
// every co_await may throw it: task.hpp includes this alone, not the
// <string> and <vector> that the others need.
#pragma once

namespace corio {

/// Thrown at a suspension point of a task that was cancelled (by
/// `join_handle::cancel()`, an enclosing `timeout`, a failing sibling in a
/// `task_group`, or loop shutdown).
///
/// Like asyncio's `CancelledError` (a `BaseException`), it does not derive
/// from `std::exception`, so `catch (const std::exception&)` does not swallow
/// a cancellation by accident. Code may catch it, clean up and should
/// rethrow it. Awaiting in that cleanup is allowed, but C++ forbids
/// `co_await` inside a `catch` block: set a flag in the handler and await
/// after it, or use `corio::on_cancel(aw, cleanup)` (cancel.hpp), which
/// awaits the cleanup shielded and rethrows.
class cancelled_error {
 public:
  /// The fixed message "corio: task cancelled" (for logs; there is no other payload).
  [[nodiscard]] const char* what() const noexcept { return "corio: task cancelled"; }
};

}  // namespace corio
