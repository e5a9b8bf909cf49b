// A TCP echo server: `echo_server [PORT]` (default 8007) on 127.0.0.1,
// until SIGINT or SIGTERM. Set CORIO_BACKEND=epoll to run it without
// io_uring.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "echo_service.hpp"
#include "until_signal.hpp"

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8007);
  corio::signal_set stop{SIGINT, SIGTERM};  // before any thread starts
  return corio::run([](std::uint16_t port, corio::signal_set& stop) -> corio::task<int> {
    auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(port));
    std::printf("echo_server on %s (%s)\n", listener.local_address().to_string().c_str(),
                corio::event_loop::current()->backend_name());
    std::fflush(stdout);
    co_await corio_examples::until_signal(corio_examples::serve_echo(listener), stop);
    co_return 0;
  }(port, stop));
}
