#include "corio/net/resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "exec/blocking.hpp"

namespace corio {

resolve_error::resolve_error(int code, const std::string& host)
    : std::runtime_error("corio: cannot resolve '" + host + "': " + ::gai_strerror(code)),
      m_code(code) {}

task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                          resolve_options options) {
  // Numeric hosts need no lookup and no thread.
  addrinfo hints{};
  hints.ai_family = options.family;
  hints.ai_socktype = options.socktype;
  struct outcome {
    int code = 0;
    int error = 0;  // errno, for EAI_SYSTEM (set on the pool's thread)
    std::vector<socket_address> addrs;
  };
  auto lookup = [&host, &hints, port]() {
    outcome out;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    out.code = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (out.code != 0) {
      out.error = errno;
      return out;
    }
    const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, ::freeaddrinfo);
    for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
      if (a->ai_addrlen > socket_address::capacity()) continue;
      socket_address s;
      std::memcpy(s.data(), a->ai_addr, a->ai_addrlen);
      s.set_size(a->ai_addrlen);
      out.addrs.push_back(s);
    }
    return out;
  };
  hints.ai_flags |= AI_NUMERICHOST;
  outcome out = lookup();
  if (out.code != 0) {
    hints.ai_flags &= ~AI_NUMERICHOST;
    out = co_await detail::run_blocking(lookup);
  }
  if (out.code == EAI_SYSTEM)
    throw std::system_error(out.error, std::system_category(), "getaddrinfo");
  if (out.code != 0) throw resolve_error(out.code, host);
  co_return std::move(out.addrs);
}

}  // namespace corio
