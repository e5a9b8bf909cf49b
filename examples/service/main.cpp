// corio_service: an HTTP JSON API on every core. Each event loop accepts
// on the same port (SO_REUSEPORT) and owns its PostgreSQL pool, its Redis
// connection and the batcher that turns its cache reads of one tick into
// one MGET; CPU work goes to the CPU pool; metrics are served on a second
// port. SIGTERM or SIGINT drains it: requests in flight are answered, the
// listeners and connections close, the pools close, exit status 0. See
// README.md.
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "../until_signal.hpp"
#include "api.hpp"
#include "backends.hpp"
#include "catalog.hpp"
#include "config.hpp"
#include "corio/corio.hpp"

namespace {

using namespace std::chrono_literals;

// The margin for the last responses' writes (see request_gate::drained).
constexpr auto k_settle = 50ms;
// How long requests in flight may take to finish once a signal came.
constexpr auto k_grace = 10s;

// One loop's server: the API until the loop has drained, then the server
// is cancelled, which closes its listener and its (idle) connections.
corio::task<> serve_loop(corio::tcp_listener& listener, service::backends* app) {
  service::loop_backends& b = app->local();
  std::vector<corio::task<>> parts;
  parts.push_back(corio::serve_http(listener, service::api_handler{app}));
  parts.push_back(b.gate.drained(k_settle));
  co_await corio::wait_any(std::move(parts));
}

// 0 when the server ended first (it failed: its error is in `server`).
corio::task<int> server_ended(corio::join_handle<>& server) {
  co_await server.wait();
  co_return 0;
}

// The first signal's number, or 0 when the server failed first.
corio::task<int> signal_or_failure(corio::signal_set& stop, corio::join_handle<>& server) {
  std::vector<corio::task<int>> first;
  first.push_back(stop.wait());
  first.push_back(server_ended(server));
  const corio::any_result<int> r = co_await corio::wait_any(std::move(first));
  co_return r.value;
}

corio::task<> serve(service::backends& app, corio::signal_set& stop) {
  const service::config& cfg = app.settings();
  co_await service::prepare_schema(cfg.pg);
  const auto pools = co_await app.open_every_loop();

  corio::metrics_registry metrics;
  metrics.add_every_loop();  // loop="0", loop="1", ...
  metrics.add_profiler(app.profiler(), "service");
  metrics.add_pool(corio::cpu_pool(), "cpu");
  for (std::size_t i = 0; i < pools.size(); ++i)
    metrics.add_pool(*pools[i], "pg_loop" + std::to_string(i));

  auto api_listener = corio::tcp_listener::bind(corio::socket_address::parse(cfg.host, cfg.port),
                                                {.reuse_port = true});
  auto metrics_listener =
      corio::tcp_listener::bind(corio::socket_address::parse(cfg.host, cfg.metrics_port));
  std::printf("corio_service: http://%s/ on %zu loops; metrics on http://%s/metrics\n",
              api_listener.local_address().to_string().c_str(), corio::loop_count(),
              metrics_listener.local_address().to_string().c_str());
  std::fflush(stdout);

  auto api = corio::spawn(
      corio::serve_every_loop(
          api_listener, [app = &app](corio::tcp_listener& mine) { return serve_loop(mine, app); }),
      "api");
  auto metrics_server = corio::spawn(corio::serve_metrics(metrics_listener, metrics), "metrics");

  // From here on the servers are cancelled and awaited however this ends:
  // they use `metrics` and `app`.
  std::exception_ptr failure;
  std::optional<corio::join_handle<>> second;
  try {
    const int sig = co_await signal_or_failure(stop, api);
    if (sig != 0) {
      second.emplace(corio::spawn(corio_examples::exit_on_second_signal(stop)));
      std::printf("corio_service: signal %d: draining\n", sig);
      std::fflush(stdout);
      co_await corio::invoke_on_all(
          [app = &app](std::size_t) { app->local().gate.start_draining(); });
      const bool drained = co_await corio::move_on_after(k_grace, api.wait());
      if (!drained) std::fprintf(stderr, "corio_service: requests still running: cut short\n");
    }
  } catch (...) {
    failure = std::current_exception();
  }
  api.cancel();  // nothing, once it ended
  try {
    co_await api;
  } catch (const corio::cancelled_error&) {
  } catch (...) {
    if (!failure) failure = std::current_exception();
  }
  metrics_server.cancel();
  try {
    co_await metrics_server;
  } catch (const corio::cancelled_error&) {
  } catch (...) {
    if (!failure) failure = std::current_exception();
  }
  co_await app.close_every_loop();
  if (second) {
    second->cancel();
    try {
      co_await *second;
    } catch (const corio::cancelled_error&) {
    }
  }
  if (failure) std::rethrow_exception(failure);
}

corio::task<int> amain(service::config cfg, corio::signal_set& stop) {
  service::backends app(std::move(cfg));
  std::string error;
  try {
    co_await serve(app, stop);
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Whatever happened: each loop's pool and connection close on their loop.
  co_await app.close_every_loop();
  if (!error.empty()) {
    std::fprintf(stderr, "corio_service: %s\n", error.c_str());
    co_return 1;
  }
  std::printf("corio_service: stopped cleanly\n");
  std::fflush(stdout);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  std::optional<service::config> cfg = service::parse_command_line(argc, argv, exit_code);
  if (!cfg) return exit_code;
  // Before the runtime starts its threads: they inherit the blocked mask.
  corio::signal_set stop{SIGINT, SIGTERM};
  corio::runtime rt({.threads = cfg->threads});
  return rt.run(amain(std::move(*cfg), stop));
}
