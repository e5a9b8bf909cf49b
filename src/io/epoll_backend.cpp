// epoll backend: the fallback (and, until the io_uring backend lands, the
// only one). Waits with epoll_pwait2 for nanosecond timeouts, so a timer is
// never late by the millisecond rounding of epoll_wait.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

#include "io/backend.hpp"

namespace corio::detail {
namespace {

class epoll_backend final : public backend {
 public:
  epoll_backend() {
    m_epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (m_epfd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    m_eventfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_eventfd < 0) {
      int e = errno;
      ::close(m_epfd);
      throw std::system_error(e, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake-up
    if (::epoll_ctl(m_epfd, EPOLL_CTL_ADD, m_eventfd, &ev) != 0) {
      int e = errno;
      ::close(m_eventfd);
      ::close(m_epfd);
      throw std::system_error(e, std::generic_category(), "epoll_ctl");
    }
  }
  ~epoll_backend() override {
    ::close(m_eventfd);
    ::close(m_epfd);
  }
  epoll_backend(const epoll_backend&) = delete;
  epoll_backend& operator=(const epoll_backend&) = delete;

  void poll(std::int64_t timeout_ns) override {
    epoll_event events[64];
    int n = 0;
    if (timeout_ns < 0) {
      n = ::epoll_pwait2(m_epfd, events, 64, nullptr, nullptr);
    } else {
      timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                  static_cast<long>(timeout_ns % 1'000'000'000)};
      n = ::epoll_pwait2(m_epfd, events, 64, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {  // kernels before 5.11: round up to ms
        int ms = static_cast<int>((timeout_ns + 999'999) / 1'000'000);
        n = ::epoll_wait(m_epfd, events, 64, ms);
      }
    }
    if (n < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_pwait2");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        std::uint64_t value = 0;
        // Drains the counter; EAGAIN when another poll already did.
        [[maybe_unused]] ssize_t r = ::read(m_eventfd, &value, sizeof value);
      }
    }
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(m_eventfd, &one, sizeof one);
  }

  [[nodiscard]] std::size_t io_pending() const noexcept override { return 0; }
  [[nodiscard]] const char* name() const noexcept override { return "epoll"; }

 private:
  int m_epfd = -1;
  int m_eventfd = -1;
};

}  // namespace

std::unique_ptr<backend> make_epoll_backend() {
  return std::make_unique<epoll_backend>();
}

}  // namespace corio::detail
