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
#include "observe/observer.hpp"

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
  std::uint64_t step = 0;
  bool in_task = false;
  const char* waits_on = nullptr;
  std::atomic<int> ready{0};

  /// Appends `e` while there is room (a longer chain is cut short).
  void add(const entry& e) noexcept {
    if (count < capacity) entries[count++] = e;
  }
};

chain_capture g_capture;
// The observer of the loop the watchdog asks about; the handler ignores
// other threads. Release/acquire: the handler sees the observer whole.
std::atomic<const observer*> g_capture_observer{nullptr};

int capture_signal() {
  return SIGRTMIN + 4;
}

void on_capture_signal(int /*sig*/) {
  event_loop* loop = event_loop::current();
  const observer* o = g_capture_observer.load(std::memory_order_acquire);
  if (loop == nullptr || o == nullptr || &o->loop() != loop) return;
  chain_capture& c = g_capture;
  c.count = 0;
  c.waits_on = nullptr;
  c.step = o->step_on_loop_thread();
  const task_base* t = core_of(*loop).current_task();
  c.in_task = t != nullptr;
  if (t != nullptr) {
    // g_capture is a global: the walkers use it without a capture.
    walk_await_chain(
        *t,
        [](const char* name, const code_site& where) {
          g_capture.add({name, where, nullptr});
        },
        [](const char* what) {
          g_capture.add({nullptr, {}, what});
        });
  }
  c.ready.store(1, std::memory_order_release);
}

// The captured chain as text: "'main' main() at ... > [child tasks] > ...".
std::string format_chain(const chain_capture& c) {
  std::vector<std::string> chain;
  for (int i = 0; i < c.count; ++i) {
    const chain_capture::entry& e = c.entries[i];
    chain.push_back(e.link != nullptr ? describe_link(e.link) : describe_named(e.name, e.where));
  }
  return join_chain(chain);
}

// "it is running task 'x' f() at ...\n  await chain: ..." for a report.
std::string format_running(const chain_capture& c) {
  if (!c.in_task) return "it is not running a task (a timer, a posted callback or an I/O step)";
  // The running task is the last root: the first frame after the last link.
  int last_root = 0;
  for (int i = 0; i < c.count; ++i)
    if (c.entries[i].link != nullptr && i + 1 < c.count) last_root = i + 1;
  const chain_capture::entry& r = c.entries[last_root];
  return "it is running task " + describe_named(r.name, r.where) +
         "\n  await chain: " + format_chain(c);
}

class watchdog {
 public:
  static watchdog& instance() {
    static watchdog w;
    return w;
  }

  void add(observer& o) {
    install_handler();
    std::lock_guard lock(m_mutex);
    m_loops.push_back(watched{&o, ::pthread_self(), o.watched_step(), now(), false, false});
    if (!m_thread.joinable()) m_thread = std::thread([this] { run(); });
    m_wake.notify_one();
  }

  void remove(observer& o) noexcept {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_loops, [&](const watched& w) { return w.obs == &o; });
  }

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

 private:
  struct watched {
    observer* obs;
    pthread_t thread;
    std::uint64_t iteration;
    std::chrono::steady_clock::time_point since;
    bool reported;
    bool captured;
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

  // An eighth of the smallest threshold, between 1 ms and 100 ms.
  std::chrono::nanoseconds interval() const {
    std::chrono::nanoseconds least = std::chrono::milliseconds(400);
    for (const watched& w : m_loops)
      least = std::min(least, w.obs->loop().options().slow_callback_duration);
    return std::clamp<std::chrono::nanoseconds>(least / 8, std::chrono::milliseconds(1),
                                                std::chrono::milliseconds(100));
  }

  void check(watched& w, std::chrono::steady_clock::time_point t) {
    const event_loop& loop = w.obs->loop();
    const std::uint64_t iteration = w.obs->watched_step();
    if (iteration != w.iteration || w.obs->watched_polling()) {
      if (w.reported) {
        loop.report("corio watchdog: the event loop moves again after about " +
                    format_duration(t - w.since) + " in one step");
      }
      w.iteration = iteration;
      w.since = t;
      w.reported = false;
      w.captured = false;
      return;
    }
    const auto threshold = loop.options().slow_callback_duration;
    const auto stuck = t - w.since;
    const bool debug = loop.options().debug;
    // Debug mode: capture halfway for the loop's own report, which comes
    // when the resumption ends; report here only a loop that seems hung.
    if (debug && !w.captured && stuck >= threshold / 2) {
      w.captured = true;
      if (capture(w)) {
        w.obs->deposit_capture(g_capture.in_task ? format_chain(g_capture) : std::string(),
                               g_capture.step, stuck);
      }
    }
    if (w.reported || stuck < (debug ? threshold * 10 : threshold)) return;
    w.reported = true;
    std::string msg = "corio watchdog: the event loop has been stuck in one step for " +
                      format_duration(stuck) + " (slow_callback_duration " +
                      format_duration(threshold) + "); ";
    msg += capture(w) ? format_running(g_capture)
                      : std::string("its thread did not answer the watchdog's signal");
    loop.report(msg);
  }

  // Asks the loop's thread for its current await chain, into g_capture;
  // gives up after a second (a thread stuck with signals blocked).
  static bool capture(const watched& w) {
    g_capture.ready.store(0, std::memory_order_relaxed);
    g_capture_observer.store(w.obs, std::memory_order_release);
    bool ok = false;
    if (::pthread_kill(w.thread, capture_signal()) == 0) {
      for (int i = 0; i < 1000 && !ok; ++i) {
        ok = g_capture.ready.load(std::memory_order_acquire) != 0;
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    g_capture_observer.store(nullptr, std::memory_order_release);
    return ok;
  }

  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::vector<watched> m_loops;
  std::thread m_thread;
  bool m_stop = false;
};

}  // namespace

void watch_loop(observer& o) {
  watchdog::instance().add(o);
}

void unwatch_loop(observer& o) noexcept {
  watchdog::instance().remove(o);
}

}  // namespace corio::detail
