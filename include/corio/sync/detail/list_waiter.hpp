// A waiter that parks in an intrusive FIFO list: the shape every sync
// primitive's waiters share. Cancellation unlinks it from the list at once.
#pragma once

#include "corio/detail/intrusive_list.hpp"
#include "corio/loop/detail/loop_core.hpp"

namespace corio::detail {

struct list_waiter : waiter, list_node {
  /// Cancellation: leave the list at once.
  void on_abort() noexcept { unlink(); }

  /// Parks in `list` (FIFO) unless a cancellation is pending; `what` names
  /// the primitive in task dumps. W, the awaiter, may add an on_pass().
  template <class W>
  bool park_in(intrusive_list<W>& list, std::coroutine_handle<> h, const char* what) noexcept {
    W& self = static_cast<W&>(*this);
    if (!park(self, h, what)) return false;
    list.push_back(self);
    return true;
  }
};

}  // namespace corio::detail
