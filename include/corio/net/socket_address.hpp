// socket_address: an IPv4, IPv6 or Unix-domain socket address.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace corio {

/// A socket address by value (a sockaddr_storage and its length). Built
/// from numeric hosts only: name resolution is asynchronous and lives in
/// the DNS layer.
///
/// \code
///   auto a = corio::socket_address::parse("127.0.0.1", 8080);
///   auto b = corio::socket_address::unix_path("/tmp/app.sock");
/// \endcode
class socket_address {
 public:
  /// An empty address: family AF_UNSPEC (0) and size 0.
  socket_address() noexcept = default;

  /// A numeric IPv4 ("10.0.0.1") or IPv6 ("::1") host and a port. Throws
  /// std::invalid_argument for anything else.
  static socket_address parse(std::string_view host, std::uint16_t port);
  /// 127.0.0.1:port.
  static socket_address loopback(std::uint16_t port) { return parse("127.0.0.1", port); }
  /// A Unix-domain stream address. Throws std::invalid_argument when the
  /// path does not fit sun_path.
  static socket_address unix_path(std::string_view path);

  /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC (0) for an empty address.
  [[nodiscard]] int family() const noexcept { return m_storage.ss_family; }
  /// The port of an IP address; 0 for Unix ones.
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// "127.0.0.1:8080", "[::1]:8080" or the Unix path.
  [[nodiscard]] std::string to_string() const;

  /// The address as a `sockaddr*` for system calls (bind, connect, sendto),
  /// with size() as its length.
  [[nodiscard]] const sockaddr* data() const noexcept {
    return reinterpret_cast<const sockaddr*>(&m_storage);
  }
  /// The storage as a `sockaddr*`, for a system call to fill in (accept,
  /// getsockname, recvfrom); then call set_size() with the length it gave.
  [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&m_storage); }
  /// The length of the address in bytes (0 for an empty one).
  [[nodiscard]] socklen_t size() const noexcept { return m_size; }
  /// Sets the length after data() was filled in; `n` must not exceed capacity().
  void set_size(socklen_t n) noexcept { m_size = n; }
  /// The most bytes an address can take: sizeof(sockaddr_storage).
  [[nodiscard]] static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

 private:
  sockaddr_storage m_storage{};
  socklen_t m_size = 0;
};

}  // namespace corio
