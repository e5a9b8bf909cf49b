// The /metrics endpoint over 127.0.0.1 on both backends: Prometheus text,
// JSON, task dumps, and errors for other paths and methods.
#include <string>

#include "backend/io_support.hpp"
#include "corio/observe/metrics.hpp"

using corio_test::io_test;
using corio_test::listen_any;
using corio_test::read_response;
using corio_test::response;
using namespace std::chrono_literals;

namespace {

class Metrics : public io_test {};
CORIO_BOTH_BACKENDS(Metrics);

corio::task<response> get(corio::tcp_stream& c, std::string& in, std::string_view request) {
  co_await c.write_all(request.data(), request.size());
  co_return co_await read_response(c, in);
}

corio::task<> idle() {
  co_await corio::sleep(1h);
}

int twice(int x) {
  return 2 * x;
}

}  // namespace

TEST_P(Metrics, EndpointServesPrometheusJsonAndTasks) {
  run_io([]() -> corio::task<> {
    corio::profiler prof;
    corio::thread_pool pool(1);
    EXPECT_EQ(co_await corio::offload(pool, twice, 21), 42);
    for (int i = 0; i < 3; ++i) {
      auto s = prof.measure("db_query");
      co_await corio::sleep(1ms);
    }
    corio::metrics_registry metrics;
    metrics.add_loop(*corio::event_loop::current(), "main");
    metrics.add_profiler(prof, "app");
    metrics.add_pool(pool, "cpu");

    corio::tcp_listener l = listen_any();
    auto server = corio::spawn(corio::serve_metrics(l, metrics), "metrics");
    auto sleeper = corio::spawn(idle(), "idle");
    corio::tcp_stream c = co_await corio::tcp_stream::connect(l.local_address());
    std::string in;

    const response m = co_await get(c, in, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(m.has("HTTP/1.1 200 OK")) << m.head;
    EXPECT_TRUE(m.has("Content-Type: text/plain; version=0.0.4")) << m.head;
    for (const char* line :
         {"# TYPE corio_loop_iterations_total counter\n", "corio_loop_tasks{loop=\"main\"} ",
          "# TYPE corio_loop_timer_lag_seconds histogram\n",
          "corio_loop_timer_lag_seconds_bucket{loop=\"main\",le=\"+Inf\"} ",
          "corio_profile_seconds_count{profiler=\"app\",name=\"db_query\"} 3\n",
          "corio_profile_errors_total{profiler=\"app\",name=\"db_query\"} 0\n",
          "corio_pool_completed_total{pool=\"cpu\"} 1\n", "corio_pool_threads{pool=\"cpu\"} 1\n"}) {
      EXPECT_NE(m.body.find(line), std::string::npos) << line << "\n" << m.body;
    }

    const response j = co_await get(c, in, "GET /metrics.json HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(j.has("Content-Type: application/json")) << j.head;
    EXPECT_EQ(j.body.rfind("{\"loops\":{\"main\":{\"iterations\":", 0), 0U) << j.body;
    EXPECT_NE(j.body.find("\"app\":{\"db_query\":{\"count\":3,"), std::string::npos) << j.body;
    EXPECT_NE(j.body.find("\"cpu\":{\"threads\":1,"), std::string::npos) << j.body;

    const response t = co_await get(c, in, "GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_NE(t.body.find("task 'idle' idle() at "), std::string::npos) << t.body;
    EXPECT_NE(t.body.find("waiting on sleep"), std::string::npos) << t.body;
    EXPECT_NE(t.body.find("task 'metrics' "), std::string::npos) << t.body;

    const response tj = co_await get(c, in, "GET /tasks.json?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_NE(tj.body.find("{\"name\":\"idle\",\"loop\":0,\"function\":\"idle()\""),
              std::string::npos)
        << tj.body;

    const response nf = co_await get(c, in, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(nf.has("HTTP/1.1 404 ")) << nf.head;
    const response post =
        co_await get(c, in, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_TRUE(post.has("HTTP/1.1 405 ")) << post.head;
    EXPECT_TRUE(post.has("Allow: GET")) << post.head;

    c.close();
    sleeper.cancel();
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
    EXPECT_THROW(co_await sleeper, corio::cancelled_error);
  });
}
