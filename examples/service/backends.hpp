// What the service's event loops own: each loop its own PostgreSQL pool,
// Redis connection and cache batcher (the multi-core design: state per
// core, no lock and no atomic on a request's path), and what they share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "corio/corio.hpp"
#include "drain.hpp"

namespace service {

/// One loop's connections, made on that loop's thread.
struct loop_backends {
  loop_backends(const config& c, std::size_t loop, corio::profiler& prof);
  loop_backends(const loop_backends&) = delete;
  loop_backends& operator=(const loop_backends&) = delete;

  /// Queries share connections (pg::connection pipelines them), but a
  /// pool bounds how many each loop holds and replaces broken ones.
  corio::pool<corio::pg::connection> db;
  /// One connection serves every request of the loop: the commands of a
  /// tick go out in one write. Connected by `open_every_loop`.
  corio::redis::connection redis;
  /// Cache reads of one tick: one MGET at the tick's end (declared after
  /// `redis`, which its batches use, so it goes first).
  corio::batcher<std::int32_t, std::optional<std::string>> cache_reads;
  request_gate gate;
  std::uint64_t cache_errors = 0;  ///< Redis failures, answered from PostgreSQL
};

/// The service's state: its settings, the profiler every loop records into
/// (thread-safe), and each loop's backends.
class backends {
 public:
  explicit backends(config c);
  backends(const backends&) = delete;
  backends& operator=(const backends&) = delete;

  [[nodiscard]] const config& settings() const noexcept { return m_config; }
  [[nodiscard]] corio::profiler& profiler() noexcept { return m_profiler; }
  /// This loop's backends.
  [[nodiscard]] loop_backends& local() { return *m_loops.local(); }

  /// On every loop: connects its Redis and opens one PostgreSQL connection,
  /// so that a wrong address fails the start-up rather than the first
  /// requests. Gives each loop's PostgreSQL pool, for the metrics.
  corio::task<std::vector<const corio::pool<corio::pg::connection>*>> open_every_loop();
  /// On every loop: closes its pool (waiting a little for leases) and its
  /// Redis connection, then destroys its backends there. Once.
  corio::task<> close_every_loop();
  /// Each loop's figures (cache batching, Redis, pool, requests in flight)
  /// as a JSON array, each read on its own loop.
  corio::task<std::string> figures_json();

 private:
  config m_config;
  corio::profiler m_profiler;
  // unique_ptr: loop_local<T> makes its T by moving `make()`'s result, and
  // a pool or batcher does not move.
  corio::loop_local<std::unique_ptr<loop_backends>> m_loops;
  bool m_closed = false;
};

}  // namespace service
