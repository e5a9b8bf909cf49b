// A waiter that parks in an intrusive FIFO list: the shape every sync
// primitive's waiters share. Cancellation unlinks it from the list at once.
#pragma once

#include "corio/detail/intrusive_list.hpp"
#include "corio/loop/detail/loop_core.hpp"

namespace corio::detail {

struct list_waiter : waiter, list_node {
  /// Parks in `list` (FIFO) unless a cancellation is pending; `what` names
  /// the primitive in task dumps.
  template <class W>
  bool park_in(intrusive_list<W>& list, std::coroutine_handle<> h, const char* what) noexcept {
    if (!begin(h)) return false;
    describe(what);
    m_on_abort = [](waiter& w) noexcept { static_cast<list_waiter&>(w).unlink(); };
    list.push_back(static_cast<W&>(*this));
    return true;
  }
};

}  // namespace corio::detail
