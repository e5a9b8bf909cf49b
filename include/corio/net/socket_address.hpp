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
  socket_address() noexcept = default;

  /// A numeric IPv4 ("10.0.0.1") or IPv6 ("::1") host and a port. Throws
  /// std::invalid_argument for anything else.
  static socket_address parse(std::string_view host, std::uint16_t port);
  /// 127.0.0.1:port.
  static socket_address loopback(std::uint16_t port) { return parse("127.0.0.1", port); }
  /// A Unix-domain stream address. Throws std::invalid_argument when the
  /// path does not fit sun_path.
  static socket_address unix_path(std::string_view path);

  [[nodiscard]] int family() const noexcept { return m_storage.ss_family; }
  /// The port of an IP address; 0 for Unix ones.
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// "127.0.0.1:8080", "[::1]:8080" or the Unix path.
  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] const sockaddr* data() const noexcept {
    return reinterpret_cast<const sockaddr*>(&m_storage);
  }
  [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&m_storage); }
  [[nodiscard]] socklen_t size() const noexcept { return m_size; }
  void set_size(socklen_t n) noexcept { m_size = n; }
  [[nodiscard]] static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

 private:
  sockaddr_storage m_storage{};
  socklen_t m_size = 0;
};

}  // namespace corio
