#include "api.hpp"

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "catalog.hpp"
#include "item.hpp"
#include "summary.hpp"

namespace service {
namespace {

void reply(corio::http_response& res, int status, std::string body) {
  res.set_status(status);
  res.body() = std::move(body);
}

void reply_error(corio::http_response& res, int status, std::string_view message) {
  reply(res, status, "{\"error\":" + json_string(message) + "}");
}

/// The status and message that answer a request whose backends failed.
/// Called inside a catch block (it rethrows to sort the error).
std::pair<int, std::string> describe_failure() {
  try {
    throw;
  } catch (const corio::timeout_error& e) {
    return {503, std::string("PostgreSQL did not answer in time: ") + e.what()};
  } catch (const corio::pool_closed&) {
    return {503, "the service is shutting down"};
  } catch (const corio::connection_broken& e) {
    return {503, std::string("PostgreSQL is unavailable: ") + e.what()};
  } catch (const corio::pg::error& e) {
    return {500, std::string("database error: ") + e.what()};
  } catch (const std::exception& e) {
    return {500, std::string("internal error: ") + e.what()};
  }
}

enum class item_view : std::uint8_t { record, summary };

corio::task<> get_item(backends& app, loop_backends& b, std::string_view id_text, item_view view,
                       corio::http_response& res) {
  const std::optional<std::int32_t> id = parse_id(id_text);
  if (!id) {
    reply_error(
        res, 400,
        "malformed item id '" + std::string(id_text) + "': expected a positive 32-bit integer");
    co_return;
  }
  auto timing = app.profiler().measure(view == item_view::record ? "http.item" : "http.summary");
  std::pair<int, std::string> failure;
  try {
    const lookup l = co_await find_item(app, b, *id);
    res.add_header("X-Cache", to_string(l.cache));
    if (!l.found) {
      reply_error(res, 404, "no item " + std::to_string(*id));
      co_return;
    }
    if (view == item_view::record) {
      reply(res, 200, to_json(*l.found));
      co_return;
    }
    auto cpu = app.profiler().measure("cpu.summary");
    std::string body = co_await corio::offload(corio::cpu_pool(), render_summary, *l.found);
    cpu.stop();
    reply(res, 200, std::move(body));
    co_return;
  } catch (const corio::cancelled_error&) {
    throw;
  } catch (...) {
    failure = describe_failure();
  }
  std::fprintf(stderr, "corio_service: GET item %d: %d %s\n", *id, failure.first,
               failure.second.c_str());
  reply_error(res, failure.first, failure.second);
}

}  // namespace

corio::task<> handle_request(backends& app, const corio::http_request& req,
                             corio::http_response& res) {
  loop_backends& b = app.local();
  const request_gate::pass pass(b.gate);
  res.add_header("Content-Type", "application/json");
  res.add_header("X-Loop", std::to_string(corio::this_loop_index()));

  std::string_view path = req.target;
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  // serve_http answers HEAD with a GET's headers and no body.
  if (req.method != "GET" && req.method != "HEAD") {
    res.add_header("Allow", "GET, HEAD");
    reply_error(res, 405, "only GET and HEAD are served here");
    co_return;
  }
  if (path == "/health") {
    if (b.gate.draining()) {
      reply(res, 503, "{\"status\":\"draining\"}");
    } else {
      reply(res, 200, "{\"status\":\"ok\"}");
    }
    co_return;
  }
  if (path == "/stats") {
    std::string loops;
    std::pair<int, std::string> failure;
    try {
      loops = co_await app.figures_json();
    } catch (const corio::cancelled_error&) {
      throw;
    } catch (...) {
      failure = describe_failure();  // the runtime is stopping
    }
    if (failure.first != 0) {
      reply_error(res, 503, failure.second);
    } else {
      reply(res, 200, "{\"loops\":" + loops + "}");
    }
    co_return;
  }
  constexpr std::string_view items = "/items/";
  if (path.starts_with(items)) {
    std::string_view rest = path.substr(items.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
      co_await get_item(app, b, rest, item_view::record, res);
      co_return;
    }
    if (rest.substr(slash) == "/summary") {
      co_await get_item(app, b, rest.substr(0, slash), item_view::summary, res);
      co_return;
    }
  }
  reply_error(res, 404, "no route for " + std::string(path));
}

}  // namespace service
