// Prometheus text and JSON exports, and the /metrics endpoint.
#include "corio/metrics.hpp"

#include <cstdio>
#include <sstream>

#include "corio/net/http_server.hpp"
#include "corio/task_dump.hpp"
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

struct loop_figure {
  const char* name;
  const char* type;
  const char* help;
  std::string (*value)(const loop_stats&);
};

template <class T>
std::string num(T v) {
  return std::to_string(v);
}

const loop_figure loop_figures[] = {
    {"corio_loop_iterations_total", "counter", "Loop iterations.",
     [](const loop_stats& s) { return num(s.iterations); }},
    {"corio_loop_resumptions_total", "counter", "Task resumptions run.",
     [](const loop_stats& s) { return num(s.resumptions); }},
    {"corio_loop_polls_total", "counter", "Polls of the I/O backend.",
     [](const loop_stats& s) { return num(s.polls); }},
    {"corio_loop_timers_fired_total", "counter", "Timers fired.",
     [](const loop_stats& s) { return num(s.timers_fired); }},
    {"corio_loop_syscalls_total", "counter", "System calls made by the I/O backend.",
     [](const loop_stats& s) { return num(s.syscalls); }},
    {"corio_loop_posted_callbacks_total", "counter", "Callbacks posted from other threads.",
     [](const loop_stats& s) { return num(s.posted_callbacks); }},
    {"corio_loop_slow_resumptions_total", "counter",
     "Resumptions longer than slow_callback_duration (debug mode).",
     [](const loop_stats& s) { return num(s.slow_resumptions); }},
    {"corio_loop_tasks", "gauge", "Live tasks.",
     [](const loop_stats& s) { return num(s.live_tasks); }},
    {"corio_loop_timers_pending", "gauge", "Timers waiting to fire.",
     [](const loop_stats& s) { return num(s.pending_timers); }},
    {"corio_loop_read_buffer_bytes", "gauge", "Received bytes held for reads not yet made.",
     [](const loop_stats& s) { return num(s.read_buffer_bytes); }},
    {"corio_loop_polling_seconds_total", "counter", "Time blocked waiting for I/O or timers.",
     [](const loop_stats& s) { return seconds(s.polling); }},
    {"corio_loop_running_seconds_total", "counter", "Time not blocked in a poll.",
     [](const loop_stats& s) { return seconds(s.running); }},
};

struct pool_figure {
  const char* name;
  const char* type;
  const char* help;
  std::string (*value)(const thread_pool_stats&);
};

const pool_figure pool_figures[] = {
    {"corio_pool_threads", "gauge", "Worker threads started.",
     [](const thread_pool_stats& s) { return num(s.threads); }},
    {"corio_pool_queued", "gauge", "Jobs waiting for a thread.",
     [](const thread_pool_stats& s) { return num(s.queued); }},
    {"corio_pool_running", "gauge", "Jobs on a thread now.",
     [](const thread_pool_stats& s) { return num(s.running); }},
    {"corio_pool_peak_queued", "gauge", "Most jobs ever queued at once.",
     [](const thread_pool_stats& s) { return num(s.peak_queued); }},
    {"corio_pool_completed_total", "counter", "Jobs finished.",
     [](const thread_pool_stats& s) { return num(s.completed); }},
    {"corio_pool_rejected_total", "counter", "Jobs refused because the queue was full.",
     [](const thread_pool_stats& s) { return num(s.rejected); }},
};

std::string stats_json(const loop_stats& s, const latency_histogram& lag) {
  std::string j = "{";
  j += "\"iterations\":" + num(s.iterations);
  j += ",\"resumptions\":" + num(s.resumptions);
  j += ",\"polls\":" + num(s.polls);
  j += ",\"timers_fired\":" + num(s.timers_fired);
  j += ",\"syscalls\":" + num(s.syscalls);
  j += ",\"posted_callbacks\":" + num(s.posted_callbacks);
  j += ",\"slow_resumptions\":" + num(s.slow_resumptions);
  j += ",\"live_tasks\":" + num(s.live_tasks);
  j += ",\"pending_timers\":" + num(s.pending_timers);
  j += ",\"read_buffer_bytes\":" + num(s.read_buffer_bytes);
  j += ",\"polling_ns\":" + num(s.polling.count());
  j += ",\"running_ns\":" + num(s.running.count());
  j += ",\"timer_lag\":" + detail::histogram_json(lag, 0);
  j += '}';
  return j;
}

}  // namespace

void metrics_registry::add_loop(event_loop& loop, std::string label) {
  m_loops.emplace_back(std::move(label), &loop);
}

void metrics_registry::add_profiler(const profiler& p, std::string label) {
  m_profilers.emplace_back(std::move(label), &p);
}

void metrics_registry::add_pool(const thread_pool& pool, std::string label) {
  m_pools.emplace_back(std::move(label), &pool);
}

std::string metrics_registry::prometheus() const {
  prometheus_writer w;
  std::vector<std::pair<std::string, loop_stats>> loops;
  loops.reserve(m_loops.size());
  for (const auto& [label, loop] : m_loops)
    loops.emplace_back("loop=\"" + label_value(label) + "\"", loop->stats());
  if (!loops.empty()) {
    for (const loop_figure& f : loop_figures) {
      w.family(f.name, f.type, f.help);
      for (const auto& [labels, s] : loops)
        w.sample(f.name, labels, f.value(s));
    }
    w.family("corio_loop_timer_lag_seconds", "histogram", "How late timers fired: the loop's lag.");
    for (std::size_t i = 0; i < loops.size(); ++i)
      w.histogram("corio_loop_timer_lag_seconds", loops[i].first, m_loops[i].second->timer_lag());
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
      w.sample("corio_profile_errors_total", labels, num(e.errors));
  }

  if (!m_pools.empty()) {
    std::vector<std::pair<std::string, thread_pool_stats>> pools;
    for (const auto& [label, p] : m_pools)
      pools.emplace_back("pool=\"" + label_value(label) + "\"", p->stats());
    for (const pool_figure& f : pool_figures) {
      w.family(f.name, f.type, f.help);
      for (const auto& [labels, s] : pools)
        w.sample(f.name, labels, f.value(s));
    }
  }
  return w.take();
}

std::string metrics_registry::json() const {
  std::string j = "{\"loops\":{";
  for (std::size_t i = 0; i < m_loops.size(); ++i) {
    if (i != 0) j += ',';
    j += detail::json_string(m_loops[i].first) + ':' +
         stats_json(m_loops[i].second->stats(), m_loops[i].second->timer_lag());
  }
  j += "},\"profilers\":{";
  for (std::size_t i = 0; i < m_profilers.size(); ++i) {
    if (i != 0) j += ',';
    j += detail::json_string(m_profilers[i].first) + ':' + m_profilers[i].second->json();
  }
  j += "},\"pools\":{";
  for (std::size_t i = 0; i < m_pools.size(); ++i) {
    if (i != 0) j += ',';
    const thread_pool_stats s = m_pools[i].second->stats();
    j += detail::json_string(m_pools[i].first) + ":{\"threads\":" + num(s.threads) +
         ",\"queued\":" + num(s.queued) + ",\"running\":" + num(s.running) +
         ",\"completed\":" + num(s.completed) + ",\"rejected\":" + num(s.rejected) +
         ",\"peak_queued\":" + num(s.peak_queued) + '}';
  }
  j += "}}";
  return j;
}

namespace {

std::string tasks_json(event_loop& loop) {
  std::string j = "[";
  bool first = true;
  for (const task_info& t : list_tasks(loop)) {
    if (!first) j += ',';
    first = false;
    j += "{\"name\":" + detail::json_string(t.name);
    j += ",\"function\":" + detail::json_string(t.function);
    j += ",\"file\":" + detail::json_string(t.file);
    j += ",\"line\":" + num(t.line);
    j += ",\"state\":" + detail::json_string(t.state);
    j += ",\"waits_on\":" + detail::json_string(t.waits_on);
    j += ",\"age_ms\":" + num(t.age.count());
    j += ",\"run_ns\":" + num(t.run_time.count());
    j += ",\"await_chain\":[";
    for (std::size_t i = 0; i < t.await_chain.size(); ++i) {
      if (i != 0) j += ',';
      j += detail::json_string(t.await_chain[i]);
    }
    j += "]}";
  }
  j += ']';
  return j;
}

}  // namespace

task<> serve_metrics(tcp_listener& listener, const metrics_registry& metrics) {
  event_loop* loop = event_loop::current();
  co_await serve_http(listener, [&metrics, loop](const http_request& req, http_response& res) {
    if (req.method != "GET") {
      res.set_status(405);
      res.add_header("Allow", "GET");
      return;
    }
    const std::string_view path = req.target.substr(0, req.target.find('?'));
    if (path == "/metrics") {
      res.add_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      res.set_body(metrics.prometheus());
    } else if (path == "/metrics.json") {
      res.add_header("Content-Type", "application/json");
      res.set_body(metrics.json());
    } else if (path == "/tasks") {
      std::ostringstream out;
      dump_tasks(out, *loop);
      res.add_header("Content-Type", "text/plain; charset=utf-8");
      res.set_body(out.str());
    } else if (path == "/tasks.json") {
      res.add_header("Content-Type", "application/json");
      res.set_body(tasks_json(*loop));
    } else {
      res.set_status(404);
      res.add_header("Content-Type", "text/plain");
      res.set_body("not found: try /metrics, /metrics.json, /tasks or /tasks.json\n");
    }
  });
}

}  // namespace corio
