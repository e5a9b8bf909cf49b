// outcome<T>: a value or the exception that prevented it.
#pragma once

#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

#include "corio/detail/throw.hpp"
#include "corio/errors.hpp"

namespace corio {

namespace detail {
inline bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const cancelled_error&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

/// What an operation ended with: a value (nothing, for `outcome<void>`) or
/// an exception. `gather_settled` returns one per task.
///
/// A default-constructed outcome holds neither (has_value() and has_error()
/// are both false): reading its value throws std::logic_error.
template <class T>
class outcome {
 public:
  /// An outcome holding `v`.
  static outcome from_value(T v) {
    outcome o;
    o.m_value.emplace(std::move(v));
    return o;
  }
  /// An outcome holding the exception `e` (pass a non-null pointer).
  static outcome from_error(const std::exception_ptr& e) noexcept {
    outcome o;
    o.m_error = e;
    return o;
  }
  /// True when the outcome holds a value.
  [[nodiscard]] bool has_value() const noexcept { return m_value.has_value(); }
  /// True when the outcome holds an exception (including a cancellation).
  [[nodiscard]] bool has_error() const noexcept { return m_error != nullptr; }
  /// True when the error is a cancellation.
  [[nodiscard]] bool cancelled() const noexcept { return detail::is_cancellation(m_error); }
  /// The value; rethrows the error. std::logic_error for a
  /// default-constructed outcome, which holds neither.
  T& value() & {
    check_readable();
    return *m_value;
  }
  /// The value, read-only; rethrows the error (see above).
  const T& value() const& {
    check_readable();
    return *m_value;
  }
  /// The value, moved out of an rvalue outcome; rethrows the error (see above).
  T&& value() && {
    check_readable();
    return std::move(*m_value);
  }
  /// The exception, or a null pointer when the outcome holds a value.
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return m_error; }

 private:
  // Rethrows the error; throws when there is no value either (a
  // default-constructed outcome), rather than reading an empty optional.
  void check_readable() const {
    if (m_error) std::rethrow_exception(m_error);
    if (!m_value) {
      detail::throw_logic_error(
          "corio::outcome::value: the outcome holds neither a value nor an error (it was "
          "default-constructed)");
    }
  }

  std::optional<T> m_value;
  std::exception_ptr m_error;
};

/// The outcome of an operation that produces nothing: success, or the
/// exception that ended it. A default-constructed one is a success.
template <>
class outcome<void> {
 public:
  /// A successful outcome.
  static outcome from_value() noexcept { return outcome(); }
  /// An outcome holding the exception `e` (pass a non-null pointer).
  static outcome from_error(const std::exception_ptr& e) noexcept {
    outcome o;
    o.m_error = e;
    return o;
  }
  /// True when the operation succeeded (there is no error).
  [[nodiscard]] bool has_value() const noexcept { return m_error == nullptr; }
  /// True when the outcome holds an exception (including a cancellation).
  [[nodiscard]] bool has_error() const noexcept { return m_error != nullptr; }
  /// True when the error is a cancellation.
  [[nodiscard]] bool cancelled() const noexcept { return detail::is_cancellation(m_error); }
  /// Returns on success; rethrows the error otherwise.
  void value() const {
    if (m_error) std::rethrow_exception(m_error);
  }
  /// The exception, or a null pointer on success.
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return m_error; }

 private:
  std::exception_ptr m_error;
};

}  // namespace corio
