// Which backend a loop gets: io_uring when the kernel allows it, epoll
// otherwise. CORIO_BACKEND=epoll|uring in the environment overrides the
// loop's option (operators can switch without a rebuild, and the test suite
// reruns with io_uring "refused"). A fallback is reported once per process
// when CORIO_DEBUG is set.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "corio/loop/event_loop.hpp"
#include "detail/environment.hpp"
#include "io/backend.hpp"

namespace corio::detail {

std::unique_ptr<backend> make_backend(io_backend_kind wanted) {
  if (const char* env = env_value("CORIO_BACKEND")) {
    if (std::strcmp(env, "epoll") == 0) wanted = io_backend_kind::epoll;
    if (std::strcmp(env, "uring") == 0 || std::strcmp(env, "io_uring") == 0)
      wanted = io_backend_kind::uring;
  }
  if (wanted == io_backend_kind::epoll) return make_epoll_backend();
  const char* why = nullptr;
  if (auto b = make_uring_backend(&why)) return b;
  static std::atomic<bool> reported{false};
  if (env_flag("CORIO_DEBUG", false) && !reported.exchange(true))
    std::fprintf(stderr, "corio: %s; using epoll\n", why);
  return make_epoll_backend();
}

}  // namespace corio::detail
