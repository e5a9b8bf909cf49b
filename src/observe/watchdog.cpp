// The watchdog: one thread that notices a loop stuck in one iteration and
// reports it while it is stuck.
//
// Each watched loop publishes its iteration number (one relaxed store per
// iteration) and whether it is blocked in a poll. The watchdog samples them
// every quarter of the threshold; an iteration that has not changed for the
// whole threshold, outside a poll, is a stuck loop. Reading the stuck task's
// await chain from this thread would race with the loop, so the watchdog
// signals the loop's thread instead: the handler walks the chain there
// (allocation-free, into a fixed buffer) and publishes it with a release
// store; the watchdog formats and reports it.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observe/observe.hpp"

namespace corio::detail {

namespace {

// What the signal handler captures on the loop's thread.
struct chain_capture {
  struct entry {
    const char* name;  // a root's name on its first frame
    code_site where;
    const char* link;  // non-null: a link between roots ("child tasks")
  };
  static constexpr int capacity = 128;
  entry entries[capacity];
  int count = 0;
  bool in_task = false;
  const char* waits_on = nullptr;
  std::atomic<int> ready{0};
};

chain_capture g_capture;
// The loop the watchdog asks about; the handler ignores other threads.
std::atomic<const event_loop*> g_capture_loop{nullptr};

int capture_signal() {
  return SIGRTMIN + 4;
}

void on_capture_signal(int /*sig*/) {
  const event_loop* loop = event_loop::current();
  if (loop == nullptr || loop != g_capture_loop.load(std::memory_order_acquire)) return;
  chain_capture& c = g_capture;
  c.count = 0;
  c.waits_on = nullptr;
  const task_base* t = loop->current_task();
  c.in_task = t != nullptr;
  if (t != nullptr) {
    walk_await_chain(
        *t,
        [&c](const char* name, const code_site& where) {
          if (c.count < chain_capture::capacity) c.entries[c.count++] = {name, where, nullptr};
        },
        [&c](const char* what) {
          if (c.count < chain_capture::capacity) c.entries[c.count++] = {nullptr, {}, what};
        });
  }
  c.ready.store(1, std::memory_order_release);
}

std::string format_capture(const chain_capture& c) {
  if (!c.in_task) {
    return "it is not running a task (a timer, a posted callback or an I/O step)";
  }
  std::string s = "it is running task ";
  // The last root entry is the running task.
  int last_root = 0;
  for (int i = 0; i < c.count; ++i)
    if (c.entries[i].link != nullptr && i + 1 < c.count) last_root = i + 1;
  const chain_capture::entry& r = c.entries[last_root];
  if (r.name != nullptr) s += std::string("'") + r.name + "' ";
  s += describe_frame(r.where);
  s += "\n  await chain: ";
  for (int i = 0; i < c.count; ++i) {
    if (i != 0) s += "\n    > ";
    const chain_capture::entry& e = c.entries[i];
    if (e.link != nullptr) {
      s += std::string("[") + e.link + "]";
      continue;
    }
    if (e.name != nullptr) s += std::string("'") + e.name + "' ";
    s += describe_frame(e.where);
  }
  return s;
}

class watchdog {
 public:
  static watchdog& instance() {
    static watchdog w;
    return w;
  }

  void add(event_loop& loop) {
    install_handler();
    std::lock_guard lock(m_mutex);
    m_loops.push_back(watched{&loop, ::pthread_self(), loop.watched_iteration(), now(), false});
    if (!m_thread.joinable()) m_thread = std::thread([this] { run(); });
    m_wake.notify_one();
  }

  void remove(event_loop& loop) noexcept {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_loops, [&](const watched& w) { return w.loop == &loop; });
  }

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

 private:
  struct watched {
    event_loop* loop;
    pthread_t thread;
    std::uint64_t iteration;
    std::chrono::steady_clock::time_point since;
    bool reported;
  };

  watchdog() = default;
  ~watchdog() {
    {
      std::lock_guard lock(m_mutex);
      m_stop = true;
    }
    m_wake.notify_one();
    if (m_thread.joinable()) m_thread.join();
  }

  static std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

  static void install_handler() {
    static const bool installed = [] {
      struct sigaction sa {};
      sa.sa_handler = on_capture_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      ::sigaction(capture_signal(), &sa, nullptr);
      return true;
    }();
    (void)installed;
  }

  void run() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are for the loops' threads
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
      m_wake.wait_for(lock, interval());
      const auto t = now();
      for (watched& w : m_loops)
        check(w, t);
    }
  }

  // A quarter of the smallest threshold, between 1 ms and 100 ms.
  std::chrono::nanoseconds interval() const {
    std::chrono::nanoseconds least = std::chrono::milliseconds(400);
    for (const watched& w : m_loops)
      least = std::min(least, w.loop->options().slow_callback_duration);
    return std::clamp<std::chrono::nanoseconds>(least / 4, std::chrono::milliseconds(1),
                                                std::chrono::milliseconds(100));
  }

  void check(watched& w, std::chrono::steady_clock::time_point t) {
    const std::uint64_t iteration = w.loop->watched_iteration();
    if (iteration != w.iteration || w.loop->watched_polling()) {
      if (w.reported) {
        w.loop->report("corio watchdog: the event loop moves again after about " +
                       format_duration(t - w.since) + " in one iteration");
      }
      w.iteration = iteration;
      w.since = t;
      w.reported = false;
      return;
    }
    const auto threshold = w.loop->options().slow_callback_duration;
    if (w.reported || t - w.since < threshold) return;
    w.reported = true;
    std::string msg = "corio watchdog: the event loop has been stuck in one iteration for " +
                      format_duration(t - w.since) + " (slow_callback_duration " +
                      format_duration(threshold) + "); ";
    msg += capture(w);
    w.loop->report(msg);
  }

  // Asks the loop's thread for its current await chain; gives up after a
  // second (a thread stuck with signals blocked).
  static std::string capture(const watched& w) {
    g_capture.ready.store(0, std::memory_order_relaxed);
    g_capture_loop.store(w.loop, std::memory_order_release);
    std::string text;
    if (::pthread_kill(w.thread, capture_signal()) == 0) {
      for (int i = 0; i < 1000; ++i) {
        if (g_capture.ready.load(std::memory_order_acquire) != 0) {
          text = format_capture(g_capture);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    g_capture_loop.store(nullptr, std::memory_order_release);
    return text.empty() ? "its thread did not answer the watchdog's signal" : text;
  }

  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::vector<watched> m_loops;
  std::thread m_thread;
  bool m_stop = false;
};

}  // namespace

void watch_loop(event_loop& loop) {
  watchdog::instance().add(loop);
}

void unwatch_loop(event_loop& loop) noexcept {
  watchdog::instance().remove(loop);
}

}  // namespace corio::detail
