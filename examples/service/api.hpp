// The HTTP JSON API: routes, answers, and errors mapped to status codes.
#pragma once

#include "backends.hpp"
#include "corio/corio.hpp"

namespace service {

/// Answers one request:
///   GET /items/<id>          the item (Redis first, then PostgreSQL);
///                            header X-Cache: hit, miss or bypass
///   GET /items/<id>/summary  the item with fields computed on the CPU pool
///   GET /health              200 while serving, 503 once draining
///   GET /stats               each loop's cache batching and connections
/// 400 for an id that is not a positive 32-bit integer, 404 for unknown
/// items and paths, 405 for methods other than GET and HEAD, 503 when
/// PostgreSQL is down or slow, 500 when it refuses a query; every answer
/// is JSON.
corio::task<> handle_request(backends& app, const corio::http_request& req,
                             corio::http_response& res);

/// The handler serve_http copies for each connection: a pointer, so the
/// copy is free and nothing outlives the service.
struct api_handler {
  backends* app;
  corio::task<> operator()(const corio::http_request& req, corio::http_response& res) const {
    return handle_request(*app, req, res);
  }
};

}  // namespace service
