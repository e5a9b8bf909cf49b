// An HTTP/1.1 server: `http_server [PORT]` (default 8080) on 127.0.0.1,
// answering every request with "Hello, World!" until SIGINT or SIGTERM,
// then stopping gracefully (requests under way answered, connections and
// listener closed). Set
// CORIO_BACKEND=epoll to run it without io_uring.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "http_service.hpp"
#include "until_signal.hpp"

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  corio::signal_set stop{SIGINT, SIGTERM};  // before any thread starts
  return corio::run([](std::uint16_t port, corio::signal_set& stop) -> corio::task<int> {
    auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(port));
    std::printf("http_server on http://%s/ (%s)\n", listener.local_address().to_string().c_str(),
                corio::event_loop::current()->backend_name());
    std::fflush(stdout);
    corio::server_shutdown graceful;
    const int sig = co_await corio_examples::until_signal(
        corio::serve_http(listener, corio_examples::hello_world, {.shutdown = &graceful}), stop,
        &graceful);
    std::printf("http_server: signal %d, requests under way answered, connections closed\n", sig);
    std::fflush(stdout);  // before the signal set goes: nothing left to lose
    co_return 0;
  }(port, stop));
}
