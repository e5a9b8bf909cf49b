// server_shutdown: a closed channel as a signal every loop can wait for.
#include "corio/net/server_shutdown.hpp"

namespace corio {

void server_shutdown::request() {
  m_requested.store(true, std::memory_order_release);
  m_signal.close();
}

task<> server_shutdown::wait() {
  try {
    (void)co_await m_signal.receive();
  } catch (const channel_closed&) {
  }
}

}  // namespace corio
