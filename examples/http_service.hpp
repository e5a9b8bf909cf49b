// The http service of WORKLOADS.md: every request gets `200 OK`,
// `Content-Type: text/plain`, body `Hello, World!`. Shared by
// examples/http_server and `corio-bench --workload http`.
#pragma once

#include "corio/corio.hpp"

namespace corio_examples {

/// A plain function handler: no coroutine frame per request.
inline void hello_world(const corio::http_request& /*request*/, corio::http_response& response) {
  response.add_header("Content-Type", "text/plain");
  response.set_body("Hello, World!");
}

}  // namespace corio_examples
