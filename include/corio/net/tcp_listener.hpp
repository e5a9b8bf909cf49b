// tcp_listener: a listening stream socket (TCP or Unix-domain).
#pragma once

#include "corio/net/socket_address.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// How a listener is set up.
struct listen_options {
  /// listen()'s backlog: connections the kernel queues before accept (it may cap it).
  int backlog = 1024;
  /// SO_REUSEPORT: several listeners (one per loop) share the port and the
  /// kernel spreads connections between them.
  bool reuse_port = false;
};

/// A listening socket, owned. SO_REUSEADDR is always set for IP addresses,
/// so a restarted server binds at once.
///
/// `accept()` never fails for lack of descriptors: on EMFILE, ENFILE,
/// ENOBUFS or ENOMEM it waits (10 ms, doubling up to 1 s) and tries again,
/// so a server at its descriptor limit neither spins nor dies and resumes
/// accepting when connections close. Connections aborted before they were
/// accepted are skipped.
///
/// Cancellation: a cancelled accept() takes no connection, or, on io_uring,
/// returns the one the kernel accepted just before the cancel (the
/// cancellation is then thrown at the next suspension), so none is lost.
///
/// \code
///   auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
///   for (;;) corio::spawn(serve(co_await l.accept()));
/// \endcode
class tcp_listener {
 public:
  /// A listener that holds no socket (native_handle() is -1).
  tcp_listener() noexcept = default;

  /// Binds and listens; port 0 picks a free port (see local_address()).
  /// Throws std::system_error (EADDRINUSE, ...).
  [[nodiscard]] static tcp_listener bind(const socket_address& addr, listen_options options = {});

  /// The next connection.
  [[nodiscard]] task<tcp_stream> accept();

  /// The address the socket is bound to (the port chosen, after binding
  /// port 0). Throws std::system_error (getsockname), as on a closed listener.
  [[nodiscard]] socket_address local_address() const;
  /// True when it was bound with listen_options::reuse_port.
  [[nodiscard]] bool reuses_port() const;
  /// Closes the socket now (the destructor does it otherwise); idempotent.
  void close() noexcept;
  /// The socket's descriptor, still owned by the listener; -1 when closed.
  [[nodiscard]] int native_handle() const noexcept { return m_fd.get(); }

 private:
  detail::owned_fd m_fd;
};

}  // namespace corio
