// Prometheus text and JSON exports, and the /metrics endpoint.
#include "corio/observe/metrics.hpp"

#include <cstdio>
#include <sstream>

#include "corio/net/http_server.hpp"
#include "corio/observe/task_dump.hpp"
#include "observe/observe.hpp"

namespace corio {

namespace detail {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string histogram_json(const latency_histogram& h, std::uint64_t errors) {
  std::string s = "{\"count\":" + std::to_string(h.count());
  s += ",\"errors\":" + std::to_string(errors);
  s += ",\"mean_ns\":" + std::to_string(h.mean().count());
  s += ",\"p50_ns\":" + std::to_string(h.quantile(0.5).count());
  s += ",\"p90_ns\":" + std::to_string(h.quantile(0.9).count());
  s += ",\"p99_ns\":" + std::to_string(h.quantile(0.99).count());
  s += ",\"max_ns\":" + std::to_string(h.max().count());
  s += '}';
  return s;
}

}  // namespace detail

namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string seconds(std::chrono::nanoseconds d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(d.count()) / 1e9);
  return buf;
}

// Upper bounds of the exported histogram buckets, in nanoseconds: from
// 10 us (a timer's normal lateness) to 10 s (a stuck operation).
constexpr std::int64_t bucket_bounds_ns[] = {
    10'000,      100'000,       1'000'000,     2'500'000,     5'000'000,
    10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

// Collects the lines of one metric family so that its HELP and TYPE come
// once, before all of its samples.
class prometheus_writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    m_out += "# HELP ";
    m_out += name;
    m_out += ' ';
    m_out += help;
    m_out += "\n# TYPE ";
    m_out += name;
    m_out += ' ';
    m_out += type;
    m_out += '\n';
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    m_out += name;
    if (!labels.empty()) {
      m_out += '{';
      m_out += labels;
      m_out += '}';
    }
    m_out += ' ';
    m_out += value;
    m_out += '\n';
  }
  void histogram(const std::string& name, const std::string& labels, const latency_histogram& h) {
    const std::string sep = labels.empty() ? "" : ",";
    for (const std::int64_t le : bucket_bounds_ns) {
      sample(name + "_bucket",
             labels + sep + "le=\"" + seconds(std::chrono::nanoseconds(le)) + "\"",
             std::to_string(h.count_at_or_below(le)));
    }
    sample(name + "_bucket", labels + sep + "le=\"+Inf\"", std::to_string(h.count()));
    sample(name + "_sum", labels, seconds(h.sum()));
    sample(name + "_count", labels, std::to_string(h.count()));
  }
  std::string take() { return std::move(m_out); }

 private:
  std::string m_out;
};

// One exported figure of a statistics struct: its Prometheus family and its
// JSON key share one table, so the two exports cannot drift apart.
template <class Stats>
struct figure {
  const char* name;  // Prometheus
  const char* type;
  const char* help;
  const char* key;  // JSON
  std::uint64_t (*value)(const Stats&);
  bool is_duration;  // value in ns: seconds in Prometheus, ns in JSON

  [[nodiscard]] std::string prometheus_value(const Stats& s) const {
    const std::uint64_t v = value(s);
    return is_duration ? seconds(std::chrono::nanoseconds(v)) : std::to_string(v);
  }
};

const figure<loop_stats> loop_figures[] = {
    {"corio_loop_iterations_total", "counter", "Loop iterations.", "iterations",
     [](const loop_stats& s) -> std::uint64_t { return s.iterations; }, false},
    {"corio_loop_resumptions_total", "counter", "Task resumptions run.", "resumptions",
     [](const loop_stats& s) -> std::uint64_t { return s.resumptions; }, false},
    {"corio_loop_polls_total", "counter", "Polls of the I/O backend.", "polls",
     [](const loop_stats& s) -> std::uint64_t { return s.polls; }, false},
    {"corio_loop_timers_fired_total", "counter", "Timers fired.", "timers_fired",
     [](const loop_stats& s) -> std::uint64_t { return s.timers_fired; }, false},
    {"corio_loop_syscalls_total", "counter", "System calls made by the I/O backend.", "syscalls",
     [](const loop_stats& s) -> std::uint64_t { return s.syscalls; }, false},
    {"corio_loop_posted_callbacks_total", "counter", "Callbacks posted from other threads.",
     "posted_callbacks", [](const loop_stats& s) -> std::uint64_t { return s.posted_callbacks; },
     false},
    {"corio_loop_messages_sent_total", "counter", "Messages sent to other loops of the runtime.",
     "messages_sent", [](const loop_stats& s) -> std::uint64_t { return s.messages_sent; }, false},
    {"corio_loop_message_batches_total", "counter",
     "Pushes that carried the messages to other loops.", "message_batches",
     [](const loop_stats& s) -> std::uint64_t { return s.message_batches; }, false},
    {"corio_loop_calls_stolen_total", "counter",
     "Balanced spawns this loop took from other loops' queues.", "calls_stolen",
     [](const loop_stats& s) -> std::uint64_t { return s.calls_stolen; }, false},
    {"corio_loop_slow_resumptions_total", "counter",
     "Resumptions longer than slow_callback_duration (debug mode).", "slow_resumptions",
     [](const loop_stats& s) -> std::uint64_t { return s.slow_resumptions; }, false},
    {"corio_loop_tasks", "gauge", "Live tasks.", "live_tasks",
     [](const loop_stats& s) -> std::uint64_t { return s.live_tasks; }, false},
    {"corio_loop_timers_pending", "gauge", "Timers waiting to fire.", "pending_timers",
     [](const loop_stats& s) -> std::uint64_t { return s.pending_timers; }, false},
    {"corio_loop_read_buffer_bytes", "gauge", "Received bytes held for reads not yet made.",
     "read_buffer_bytes", [](const loop_stats& s) -> std::uint64_t { return s.read_buffer_bytes; },
     false},
    {"corio_loop_polling_seconds_total", "counter", "Time blocked waiting for I/O or timers.",
     "polling_ns",
     [](const loop_stats& s) -> std::uint64_t {
       return static_cast<std::uint64_t>(s.polling.count());
     },
     true},
    {"corio_loop_running_seconds_total", "counter", "Time not blocked in a poll.", "running_ns",
     [](const loop_stats& s) -> std::uint64_t {
       return static_cast<std::uint64_t>(s.running.count());
     },
     true},
};

const figure<thread_pool_stats> pool_figures[] = {
    {"corio_pool_threads", "gauge", "Worker threads started.", "threads",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.threads; }, false},
    {"corio_pool_queued", "gauge", "Jobs waiting for a thread.", "queued",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.queued; }, false},
    {"corio_pool_running", "gauge", "Jobs on a thread now.", "running",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.running; }, false},
    {"corio_pool_peak_queued", "gauge", "Most jobs ever queued at once.", "peak_queued",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.peak_queued; }, false},
    {"corio_pool_completed_total", "counter", "Jobs finished.", "completed",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.completed; }, false},
    {"corio_pool_rejected_total", "counter", "Jobs refused because the queue was full.", "rejected",
     [](const thread_pool_stats& s) -> std::uint64_t { return s.rejected; }, false},
};

const figure<pool_stats> connection_pool_figures[] = {
    {"corio_connection_pool_size", "gauge", "Open connections (idle, lent, or being checked).",
     "size", [](const pool_stats& s) -> std::uint64_t { return s.size; }, false},
    {"corio_connection_pool_idle", "gauge", "Idle connections.", "idle",
     [](const pool_stats& s) -> std::uint64_t { return s.idle; }, false},
    {"corio_connection_pool_in_use", "gauge", "Connections lent now.", "in_use",
     [](const pool_stats& s) -> std::uint64_t { return s.in_use; }, false},
    {"corio_connection_pool_creating", "gauge", "Connections being opened.", "creating",
     [](const pool_stats& s) -> std::uint64_t { return s.creating; }, false},
    {"corio_connection_pool_waiters", "gauge", "Tasks waiting for a connection.", "waiters",
     [](const pool_stats& s) -> std::uint64_t { return s.waiters; }, false},
    {"corio_connection_pool_max_size", "gauge", "The most connections allowed.", "max_size",
     [](const pool_stats& s) -> std::uint64_t { return s.max_size; }, false},
    {"corio_connection_pool_acquires_total", "counter", "Leases handed out.", "acquires",
     [](const pool_stats& s) -> std::uint64_t { return s.acquires; }, false},
    {"corio_connection_pool_waits_total", "counter", "Acquires that had to wait.", "waits",
     [](const pool_stats& s) -> std::uint64_t { return s.waits; }, false},
    {"corio_connection_pool_timeouts_total", "counter", "Acquires that timed out.", "timeouts",
     [](const pool_stats& s) -> std::uint64_t { return s.timeouts; }, false},
    {"corio_connection_pool_creations_total", "counter", "Connections opened.", "creations",
     [](const pool_stats& s) -> std::uint64_t { return s.creations; }, false},
    {"corio_connection_pool_creation_failures_total", "counter", "Failed attempts to open one.",
     "creation_failures", [](const pool_stats& s) -> std::uint64_t { return s.creation_failures; },
     false},
    {"corio_connection_pool_validation_failures_total", "counter",
     "Connections a health check rejected.", "validation_failures",
     [](const pool_stats& s) -> std::uint64_t { return s.validation_failures; }, false},
    {"corio_connection_pool_leaks_reported_total", "counter",
     "Leases reported for being held past leak_threshold.", "leaks_reported",
     [](const pool_stats& s) -> std::uint64_t { return s.leaks_reported; }, false},
};

// The eviction causes, as label values and JSON keys.
struct eviction_cause {
  const char* name;
  std::uint64_t pool_stats::evictions_t::*count;
};
const eviction_cause eviction_causes[] = {
    {"broken", &pool_stats::evictions_t::broken},
    {"lifetime", &pool_stats::evictions_t::lifetime},
    {"idle", &pool_stats::evictions_t::idle},
    {"validation", &pool_stats::evictions_t::validation},
    {"closed", &pool_stats::evictions_t::closed},
    {"resized", &pool_stats::evictions_t::resized},
};

// {"key":value,...} from a figure table; `extra` goes before the brace.
template <class Stats, std::size_t N>
std::string figures_json(const figure<Stats> (&figures)[N], const Stats& s,
                         const std::string& extra = {}) {
  std::string j = "{";
  for (const figure<Stats>& f : figures) {
    if (j.size() > 1) j += ',';
    j += '"';
    j += f.key;
    j += "\":";
    j += std::to_string(f.value(s));
  }
  return j + extra + '}';
}

// Every family of a figure table, with one sample per labelled source.
template <class Stats, std::size_t N>
void write_families(prometheus_writer& w, const figure<Stats> (&figures)[N],
                    const std::vector<std::pair<std::string, Stats>>& sources) {
  for (const figure<Stats>& f : figures) {
    w.family(f.name, f.type, f.help);
    for (const auto& [labels, s] : sources)
      w.sample(f.name, labels, f.prometheus_value(s));
  }
}

}  // namespace

void metrics_registry::add_loop(event_loop& loop, std::string label) {
  m_loops.emplace_back(std::move(label), &loop);
}

void metrics_registry::add_every_loop(std::string prefix) {
  m_every_loop.push_back(std::move(prefix));
}

void metrics_registry::add_profiler(const profiler& p, std::string label) {
  m_profilers.emplace_back(std::move(label), &p);
}

void metrics_registry::add_pool(const thread_pool& pool, std::string label) {
  m_pools.emplace_back(std::move(label), &pool);
}

void metrics_registry::add_pool(const detail::pool_core& pool, std::string label) {
  m_connection_pools.emplace_back(std::move(label), &pool);
}

void metrics_registry::add_reports(const report_log& reports) {
  m_reports = &reports;
}

namespace {

detail::pool_reading read_pool(const std::string& label, const detail::pool_core& p) {
  return {label, p.stats(), p.wait_times()};
}

}  // namespace

detail::metrics_readings metrics_registry::read_here() const {
  detail::metrics_readings r;
  for (const auto& [label, loop] : m_loops)
    r.loops.push_back({label, loop->stats(), timer_lag(*loop)});
  if (!m_every_loop.empty()) {
    if (loop_count() > 1) {
      throw std::logic_error(
          "corio::metrics_registry: the loops of a runtime are read on their own threads: "
          "co_await gather_prometheus() or gather_json() instead");
    }
    const event_loop& here = detail::current_event_loop();
    for (const std::string& prefix : m_every_loop)
      r.loops.push_back({prefix + "0", here.stats(), timer_lag(here)});
  }
  for (const auto& [label, p] : m_connection_pools)
    r.pools.push_back(read_pool(label, *p));
  return r;
}

task<detail::metrics_readings> metrics_registry::gather() const {
  detail::metrics_readings r;
  for (const auto& [label, loop] : m_loops)
    r.loops.push_back({label, loop->stats(), timer_lag(*loop)});
  const bool on_runtime = detail::t_runtime != nullptr;
  if (!m_every_loop.empty()) {
    std::vector<detail::loop_reading> each;
    if (!on_runtime) {
      const event_loop& here = detail::current_event_loop();
      each.push_back({"", here.stats(), timer_lag(here)});
    } else {
      for (std::size_t i = 0; i < loop_count(); ++i) {
        detail::loop_reading one = co_await submit_to(i, [] {
          const event_loop& there = detail::current_event_loop();
          return detail::loop_reading{"", there.stats(), timer_lag(there)};
        });
        each.push_back(std::move(one));
      }
    }
    for (const std::string& prefix : m_every_loop) {
      for (std::size_t i = 0; i < each.size(); ++i) {
        r.loops.push_back(each[i]);
        r.loops.back().label = prefix + std::to_string(i);
      }
    }
  }
  for (const auto& source : m_connection_pools) {
    const std::string* label = &source.first;
    const detail::pool_core* p = source.second;
    const std::size_t home = p->loop_index();
    if (!on_runtime || home == this_loop_index()) {
      r.pools.push_back(read_pool(*label, *p));
      continue;
    }
    detail::pool_reading one =
        co_await submit_to(home, [label, p] { return read_pool(*label, *p); });
    r.pools.push_back(std::move(one));
  }
  co_return r;
}

std::string metrics_registry::prometheus() const {
  return prometheus_of(read_here());
}

std::string metrics_registry::json() const {
  return json_of(read_here());
}

task<std::string> metrics_registry::gather_prometheus() const {
  const detail::metrics_readings r = co_await gather();
  co_return prometheus_of(r);
}

task<std::string> metrics_registry::gather_json() const {
  const detail::metrics_readings r = co_await gather();
  co_return json_of(r);
}

std::string metrics_registry::prometheus_of(const detail::metrics_readings& readings) const {
  prometheus_writer w;
  std::vector<std::pair<std::string, loop_stats>> loops;
  loops.reserve(readings.loops.size());
  for (const detail::loop_reading& r : readings.loops)
    loops.emplace_back("loop=\"" + label_value(r.label) + "\"", r.stats);
  if (!loops.empty()) {
    write_families(w, loop_figures, loops);
    w.family("corio_loop_timer_lag_seconds", "histogram",
             "How late sleeping tasks resumed: the loop's lag.");
    for (std::size_t i = 0; i < loops.size(); ++i)
      w.histogram("corio_loop_timer_lag_seconds", loops[i].first, readings.loops[i].lag);
  }

  std::vector<std::pair<std::string, profile_entry>> profiles;
  for (const auto& [label, p] : m_profilers) {
    for (profile_entry& e : p->snapshot()) {
      std::string labels =
          "profiler=\"" + label_value(label) + "\",name=\"" + label_value(e.name) + "\"";
      profiles.emplace_back(std::move(labels), std::move(e));
    }
  }
  if (!profiles.empty()) {
    w.family("corio_profile_seconds", "histogram", "Durations of profiled operations.");
    for (const auto& [labels, e] : profiles)
      w.histogram("corio_profile_seconds", labels, e.histogram);
    w.family("corio_profile_max_seconds", "gauge", "Longest profiled operation.");
    for (const auto& [labels, e] : profiles)
      w.sample("corio_profile_max_seconds", labels, seconds(e.histogram.max()));
    w.family("corio_profile_errors_total", "counter", "Profiled operations ended by an exception.");
    for (const auto& [labels, e] : profiles)
      w.sample("corio_profile_errors_total", labels, std::to_string(e.errors));
  }

  if (!m_pools.empty()) {
    std::vector<std::pair<std::string, thread_pool_stats>> pools;
    for (const auto& [label, p] : m_pools)
      pools.emplace_back("pool=\"" + label_value(label) + "\"", p->stats());
    write_families(w, pool_figures, pools);
  }

  if (!readings.pools.empty()) {
    std::vector<std::pair<std::string, pool_stats>> pools;
    for (const detail::pool_reading& r : readings.pools)
      pools.emplace_back("pool=\"" + label_value(r.label) + "\"", r.stats);
    write_families(w, connection_pool_figures, pools);
    w.family("corio_connection_pool_evictions_total", "counter", "Connections closed, by cause.");
    for (const auto& [labels, st] : pools) {
      for (const eviction_cause& c : eviction_causes)
        w.sample("corio_connection_pool_evictions_total", labels + ",cause=\"" + c.name + "\"",
                 std::to_string(st.evictions.*c.count));
    }
    w.family("corio_connection_pool_wait_seconds", "histogram",
             "How long acquires that had to wait waited.");
    for (std::size_t i = 0; i < pools.size(); ++i)
      w.histogram("corio_connection_pool_wait_seconds", pools[i].first, readings.pools[i].waits);
  }
  return w.take();
}

std::string metrics_registry::json_of(const detail::metrics_readings& readings) const {
  std::string j = "{\"loops\":{";
  for (std::size_t i = 0; i < readings.loops.size(); ++i) {
    const detail::loop_reading& r = readings.loops[i];
    if (i != 0) j += ',';
    j += detail::json_string(r.label) + ':' +
         figures_json(loop_figures, r.stats, ",\"timer_lag\":" + detail::histogram_json(r.lag, 0));
  }
  j += "},\"profilers\":{";
  for (std::size_t i = 0; i < m_profilers.size(); ++i) {
    if (i != 0) j += ',';
    j += detail::json_string(m_profilers[i].first) + ':' + m_profilers[i].second->json();
  }
  j += "},\"pools\":{";
  for (std::size_t i = 0; i < m_pools.size(); ++i) {
    if (i != 0) j += ',';
    j += detail::json_string(m_pools[i].first) + ':' +
         figures_json(pool_figures, m_pools[i].second->stats());
  }
  j += "},\"connection_pools\":{";
  for (std::size_t i = 0; i < readings.pools.size(); ++i) {
    if (i != 0) j += ',';
    const detail::pool_reading& r = readings.pools[i];
    const pool_stats& st = r.stats;
    std::string extra = ",\"evictions\":{";
    for (const eviction_cause& c : eviction_causes) {
      if (extra.back() != '{') extra += ',';
      extra += std::string("\"") + c.name + "\":" + std::to_string(st.evictions.*c.count);
    }
    extra += "},\"wait\":" + detail::histogram_json(r.waits, st.timeouts);
    j += detail::json_string(r.label) + ':' + figures_json(connection_pool_figures, st, extra);
  }
  j += '}';
  if (m_reports != nullptr) j += ",\"reports\":" + m_reports->json();
  return j + '}';
}

namespace {

// The tasks of `loop` as JSON objects, comma-separated, each with `index`
// as its loop. Runs on the loop's thread.
std::string tasks_json_items(event_loop& loop, std::size_t index) {
  std::string j;
  for (const task_info& t : list_tasks(loop)) {
    if (!j.empty()) j += ',';
    j += "{\"name\":" + detail::json_string(t.name);
    j += ",\"loop\":" + std::to_string(index);
    j += ",\"function\":" + detail::json_string(t.function);
    j += ",\"file\":" + detail::json_string(t.file);
    j += ",\"line\":" + std::to_string(t.line);
    j += ",\"state\":" + detail::json_string(t.state);
    j += ",\"waits_on\":" + detail::json_string(t.waits_on);
    j += ",\"age_ms\":" + std::to_string(t.age.count());
    j += ",\"run_ns\":" + std::to_string(t.run_time.count());
    j += ",\"await_chain\":[";
    for (std::size_t i = 0; i < t.await_chain.size(); ++i) {
      if (i != 0) j += ',';
      j += detail::json_string(t.await_chain[i]);
    }
    j += "]}";
  }
  return j;
}

// `part(loop, index)` of every loop of the runtime this runs on, each
// made on its loop's thread; off a runtime, of this loop alone.
template <class Part>
task<std::vector<std::string>> on_every_loop(Part part) {
  std::vector<std::string> parts;
  if (detail::t_runtime == nullptr) {
    parts.push_back(part(detail::current_event_loop(), 0));
    co_return parts;
  }
  for (std::size_t i = 0; i < loop_count(); ++i) {
    std::string text =
        co_await submit_to(i, [&part, i] { return part(detail::current_event_loop(), i); });
    parts.push_back(std::move(text));
  }
  co_return parts;
}

task<std::string> every_loop_tasks_json() {
  const std::vector<std::string> parts = co_await on_every_loop(tasks_json_items);
  std::string j = "[";
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (j.size() > 1) j += ',';
    j += p;
  }
  co_return j + ']';
}

task<std::string> every_loop_tasks_text() {
  const std::vector<std::string> parts = co_await on_every_loop(
      [](event_loop& loop, std::size_t) { return detail::task_dump_text(loop); });
  std::string text;
  for (const std::string& p : parts)
    text += p;
  co_return text;
}

}  // namespace

task<> serve_metrics(tcp_listener& listener, const metrics_registry& metrics) {
  co_await serve_http(listener, [&metrics](const http_request& req, http_response& res) -> task<> {
    if (req.method != "GET") {
      res.set_status(405);
      res.add_header("Allow", "GET");
      co_return;
    }
    const std::string_view path = req.target.substr(0, req.target.find('?'));
    if (path == "/") {
      res.add_header("Content-Type", "text/html; charset=utf-8");
      res.add_header("Cache-Control", "no-cache");
      res.set_body(detail::dashboard_html);
    } else if (path == "/metrics") {
      std::string body = co_await metrics.gather_prometheus();
      res.add_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      res.set_body(std::move(body));
    } else if (path == "/metrics.json") {
      std::string body = co_await metrics.gather_json();
      res.add_header("Content-Type", "application/json");
      res.set_body(std::move(body));
    } else if (path == "/tasks") {
      std::string body = co_await every_loop_tasks_text();
      res.add_header("Content-Type", "text/plain; charset=utf-8");
      res.set_body(std::move(body));
    } else if (path == "/tasks.json") {
      std::string body = co_await every_loop_tasks_json();
      res.add_header("Content-Type", "application/json");
      res.set_body(std::move(body));
    } else {
      res.set_status(404);
      res.add_header("Content-Type", "text/plain");
      res.set_body("not found: try /, /metrics, /metrics.json, /tasks or /tasks.json\n");
    }
  });
}

}  // namespace corio
