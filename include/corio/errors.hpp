// The exceptions corio's awaitables throw.
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/cancelled_error.hpp"

namespace corio {

/// Thrown by `timeout()` and `timeout_at()` when the deadline passes first.
class timeout_error : public std::runtime_error {
 public:
  /// A timeout with the generic message "corio: operation timed out".
  timeout_error() : std::runtime_error("corio: operation timed out") {}
  /// A timeout that says what waited, and for how long (a pool's acquire).
  explicit timeout_error(const std::string& what) : std::runtime_error(what) {}
};

/// Thrown by a client (or by user code) when the connection it used can no
/// longer be trusted: a protocol error, a dropped socket. `with(pool, fn)`
/// discards the connection when `fn` throws it, instead of returning it.
class connection_broken : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a push to a closed `queue`, and by a pop from a closed queue
/// once it is empty.
class queue_closed : public std::runtime_error {
 public:
  queue_closed() : std::runtime_error("corio: queue closed") {}
};

/// Thrown by `read_exact` (of a stream, pipe or buffered_reader) when the peer closes the stream
/// first. `got()` says how many bytes did arrive (asyncio's IncompleteReadError).
class incomplete_read_error : public std::runtime_error {
 public:
  /// Records that `got` of the `wanted` bytes arrived; `what()` reads
  /// "corio: stream ended after <got> of <wanted> bytes".
  incomplete_read_error(std::size_t got, std::size_t wanted);
  /// How many bytes arrived before the end of the stream (fewer than `wanted()`).
  [[nodiscard]] std::size_t got() const noexcept { return m_got; }
  /// How many bytes the read asked for.
  [[nodiscard]] std::size_t wanted() const noexcept { return m_wanted; }

 private:
  std::size_t m_got;
  std::size_t m_wanted;
};

/// Thrown when a buffered read or write would pass its limit: a line
/// longer than `read_line`'s limit, or a `put` into a full writer
/// (asyncio's LimitOverrunError). Nothing is lost: the bytes stay buffered
/// (reader) or are not taken (writer). `buffered()` says how many bytes
/// the buffer held.
class limit_overrun_error : public std::length_error {
 public:
  /// An overrun with message `what`, when the buffer held `buffered` bytes.
  limit_overrun_error(const std::string& what, std::size_t buffered)
      : std::length_error(what), m_buffered(buffered) {}
  /// How many bytes the buffer held when the limit was hit.
  [[nodiscard]] std::size_t buffered() const noexcept { return m_buffered; }

 private:
  std::size_t m_buffered;
};

/// All failures of a `task_group` (the body's and the children's), in the
/// order they happened. `what()` lists their messages. (`gather` rethrows
/// its first failure itself, as asyncio.gather does.)
class task_group_error : public std::runtime_error {
 public:
  /// Takes the failures, first one first; `what()` becomes
  /// "N task(s) failed; <first message>; <second message>...".
  explicit task_group_error(std::vector<std::exception_ptr> errors);

  /// The failures, first one first.
  [[nodiscard]] const std::vector<std::exception_ptr>& errors() const noexcept { return m_errors; }

 private:
  std::vector<std::exception_ptr> m_errors;
};

namespace detail {
/// An exception's message (what() where it has one), for reports.
std::string describe_error(const std::exception_ptr& e);
/// "2 task(s) failed; first message; second message".
std::string join_error_messages(const std::vector<std::exception_ptr>& errors);
}  // namespace detail

}  // namespace corio
