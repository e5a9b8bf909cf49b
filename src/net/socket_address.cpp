#include "corio/net/socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <stdexcept>

namespace corio {

socket_address socket_address::parse(std::string_view host, std::uint16_t port) {
  const std::string h(host);
  socket_address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.m_storage);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.m_size = sizeof(sockaddr_in);
    return a;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.m_storage);
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.m_size = sizeof(sockaddr_in6);
    return a;
  }
  throw std::invalid_argument("corio: not a numeric IPv4 or IPv6 address: " + h);
}

socket_address socket_address::unix_path(std::string_view path) {
  socket_address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.m_storage);
  if (path.empty() || path.size() >= sizeof un->sun_path)
    throw std::invalid_argument("corio: Unix socket path empty or too long");
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.m_size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

std::uint16_t socket_address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_port);
  return 0;
}

std::string socket_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_addr, buf,
                sizeof buf);
    std::string out(buf);
    out += ':';
    out += std::to_string(port());
    return out;
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_addr, buf,
                sizeof buf);
    std::string out("[");
    out += buf;
    out += "]:";
    out += std::to_string(port());
    return out;
  }
  if (family() == AF_UNIX) return reinterpret_cast<const sockaddr_un*>(&m_storage)->sun_path;
  return "(unset)";
}

}  // namespace corio
