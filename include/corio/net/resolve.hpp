// resolve: host names to socket addresses (DNS, /etc/hosts).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/net/socket_address.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// A failed lookup: `code()` is getaddrinfo's EAI_* value (EAI_NONAME for
/// an unknown host), `what()` its message and the name looked up.
class resolve_error : public std::runtime_error {
 public:
  /// A failure `code` (an EAI_* value) looking up `host`; `what()` reads
  /// "corio: cannot resolve '<host>': <gai_strerror(code)>".
  resolve_error(int code, const std::string& host);
  /// getaddrinfo's EAI_* code (EAI_SYSTEM never appears here: `resolve`
  /// throws std::system_error for it instead).
  [[nodiscard]] int code() const noexcept { return m_code; }

 private:
  int m_code;
};

/// Which addresses a lookup returns.
struct resolve_options {
  /// AF_UNSPEC (both), AF_INET or AF_INET6.
  int family = 0;
  /// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP): each address appears once.
  int socktype = 1;
};

/// Looks `host` up (a name, or a numeric IPv4 or IPv6 address) and
/// returns its addresses with `port`, in the order the system prefers
/// (RFC 6724). getaddrinfo runs on the blocking pool, so the loop goes
/// on meanwhile (asyncio's loop.getaddrinfo). A cancelled lookup throws
/// cancelled_error once getaddrinfo returns (it cannot be interrupted).
///
/// \code
///   for (const auto& a : co_await corio::resolve("localhost", 6379))
///     std::puts(a.to_string().c_str());
/// \endcode
[[nodiscard]] task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                                        resolve_options options = {});

}  // namespace corio
