// Helpers for the I/O suites: every suite runs on both backends (epoll and
// io_uring), on the real clock, over 127.0.0.1, and ends by checking that
// no task is left and no descriptor leaked.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "corio/corio.hpp"

namespace corio_test {

/// Open descriptors of this process.
inline int count_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      n += e->d_name[0] != '.' ? 1 : 0;
    ::closedir(d);
  }
  return n - 1;  // the directory stream itself
}

/// The backend the environment forces, if any (CORIO_BACKEND=epoll reruns
/// the io_uring cases "refused").
inline bool uring_forced_off() {
  const char* env = std::getenv("CORIO_BACKEND");
  return env != nullptr && std::strcmp(env, "epoll") == 0;
}

/// Whether io_uring's multishot reads are in use on the uring backend
/// (CORIO_URING_MULTISHOT=0 reruns the socket suites without them).
inline bool uring_multishot_on() {
  const char* env = std::getenv("CORIO_URING_MULTISHOT");
  return !uring_forced_off() && (env == nullptr || std::strcmp(env, "0") != 0);
}

/// Whether this kernel sets up an io_uring with these setup flags (CI
/// containers may refuse io_uring entirely; the loop then falls back, which
/// is what we check).
inline bool kernel_has_uring(unsigned setup_flags = 0) {
  io_uring_params p{};
  p.flags = setup_flags;
  const long fd = ::syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

/// Whether this kernel defers io_uring's completion work until the loop
/// enters it (IORING_SETUP_DEFER_TASKRUN, 6.1), which lets the loop see
/// waiting completions while it is busy.
inline bool kernel_defers_uring_task_work() {
  return kernel_has_uring(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                          IORING_SETUP_TASKRUN_FLAG);
}

inline std::string backend_label(const testing::TestParamInfo<corio::io_backend_kind>& info) {
  return info.param == corio::io_backend_kind::epoll ? "epoll" : "uring";
}

/// Parameterised fixture: GetParam() is the backend.
class io_test : public testing::TestWithParam<corio::io_backend_kind> {
 protected:
  /// Whether this test's loop gets io_uring: asked for, not forced off by
  /// the environment, and allowed by the kernel.
  [[nodiscard]] static bool runs_uring() {
    return GetParam() == corio::io_backend_kind::uring && !uring_forced_off() && kernel_has_uring();
  }

  /// Runs `body()` on a fresh loop with this test's backend and checks that
  /// the loop is clean and every descriptor was closed afterwards.
  /// On the virtual clock, time jumps whenever every task waits: a test of
  /// timeouts waits no real time, and a deadline still passes only after
  /// the kernel found nothing to deliver.
  template <class F>
  void run_io(F body, bool virtual_clock = false) {
    const int fds_before = count_fds();
    {
      corio::loop_options options;
      options.backend = GetParam();
      options.virtual_clock = virtual_clock;
      corio::event_loop loop(options);
      const std::string want = runs_uring() ? "io_uring" : "epoll";
      EXPECT_EQ(std::string(loop.backend_name()), want);
      corio::run(loop, [](F& b) -> corio::task<> {
        co_await b();
        EXPECT_EQ(corio::event_loop::current()->stats().live_tasks, 1U)
            << "a task was still running when the test body returned";
      }(body));
      EXPECT_EQ(loop.stats().live_tasks, 0U);
    }
    EXPECT_EQ(count_fds(), fds_before) << "a descriptor leaked";
  }
};

/// A listener on 127.0.0.1 with a port the kernel picks.
inline corio::tcp_listener listen_any(int backlog = 128) {
  corio::listen_options o;
  o.backlog = backlog;
  return corio::tcp_listener::bind(corio::socket_address::loopback(0), o);
}

// A listener and one connection through it: client end c, server end s.
struct connection {
  corio::tcp_listener l;
  corio::tcp_stream c;
  corio::tcp_stream s;
};

inline corio::task<connection> connect_pair() {
  connection p{listen_any(), {}, {}};
  p.c = co_await corio::tcp_stream::connect(p.l.local_address());
  p.s = co_await p.l.accept();
  co_return p;
}

/// An HTTP response as a raw client reads it.
struct response {
  std::string head;  // status line and headers
  std::string body;
  [[nodiscard]] bool has(std::string_view line) const {
    return head.find(line) != std::string::npos;
  }
};

/// Reads one HTTP response (head, then Content-Length bytes of body) from `in`,
/// which keeps what came after it.
inline corio::task<response> read_response(corio::tcp_stream& c, std::string& in) {
  char buf[4096];
  for (;;) {
    const std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      response r{in.substr(0, end + 2), {}};
      std::size_t len = 0;
      if (const std::size_t at = r.head.find("Content-Length: "); at != std::string::npos)
        len = std::stoul(r.head.substr(at + 16));
      if (in.size() >= end + 4 + len) {
        r.body = in.substr(end + 4, len);
        in.erase(0, end + 4 + len);
        co_return r;
      }
    }
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    if (n == 0) throw std::runtime_error("connection closed before a whole response: " + in);
    in.append(buf, n);
  }
}

#define CORIO_BOTH_BACKENDS(suite)                                                            \
  INSTANTIATE_TEST_SUITE_P(                                                                   \
      , suite, testing::Values(corio::io_backend_kind::epoll, corio::io_backend_kind::uring), \
      corio_test::backend_label)

}  // namespace corio_test
