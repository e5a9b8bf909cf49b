// request_gate: one loop's requests in flight, so that a graceful shutdown
// can wait for them before it closes the loop's connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "corio/corio.hpp"

namespace service {

/// Counts the requests a loop's handlers are running. Loop-local, like
/// every corio primitive: one per loop (in loop_local), no atomics.
class request_gate {
 public:
  /// Held by a handler for the whole request.
  class pass {
   public:
    explicit pass(request_gate& g) noexcept : m_gate(&g) {
      ++g.m_in_flight;
      g.m_idle.clear();
    }
    pass(const pass&) = delete;
    pass& operator=(const pass&) = delete;
    ~pass() {
      ++m_gate->m_finished;
      if (--m_gate->m_in_flight == 0 && m_gate->m_draining) m_gate->m_idle.set();
    }

   private:
    request_gate* m_gate;
  };

  /// The shutdown began: from now on, `drained()` ends once no request runs.
  void start_draining() noexcept {
    m_draining = true;
    if (m_in_flight == 0) m_idle.set();
  }
  [[nodiscard]] bool draining() const noexcept { return m_draining; }
  [[nodiscard]] std::size_t in_flight() const noexcept { return m_in_flight; }

  /// Ends once draining and no handler has run for `settle`: a handler's
  /// response is written by serve_http after the handler returns, so the
  /// loop's server may be cancelled only once those writes are done (a
  /// small response to a reading client takes microseconds; `settle` is
  /// the margin), and a request that came meanwhile starts the wait again.
  corio::task<> drained(std::chrono::milliseconds settle) {
    for (;;) {
      co_await m_idle.wait();
      const std::uint64_t finished = m_finished;
      co_await corio::sleep(settle);
      if (m_in_flight == 0 && m_finished == finished) co_return;
    }
  }

 private:
  std::size_t m_in_flight = 0;
  std::uint64_t m_finished = 0;
  bool m_draining = false;
  corio::event m_idle;  // set: draining and nothing in flight
};

}  // namespace service
