// The out-of-line part of the waiter protocol (task_base.hpp).
#include "corio/loop/detail/task_base.hpp"

#include "corio/errors.hpp"

namespace corio::detail {

[[noreturn]] void throw_cancelled(task_base& t) {
  t.consume_cancel();
  throw cancelled_error();
}

}  // namespace corio::detail
