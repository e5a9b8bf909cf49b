// outcome<T>: a value or the exception that prevented it.
#pragma once

#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

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
template <class T>
class outcome {
 public:
  static outcome from_value(T v) {
    outcome o;
    o.m_value.emplace(std::move(v));
    return o;
  }
  static outcome from_error(const std::exception_ptr& e) noexcept {
    outcome o;
    o.m_error = e;
    return o;
  }
  [[nodiscard]] bool has_value() const noexcept { return m_value.has_value(); }
  [[nodiscard]] bool has_error() const noexcept { return m_error != nullptr; }
  /// True when the error is a cancellation.
  [[nodiscard]] bool cancelled() const noexcept { return detail::is_cancellation(m_error); }
  /// The value; rethrows the error.
  T& value() & {
    if (m_error) std::rethrow_exception(m_error);
    return *m_value;
  }
  T&& value() && {
    if (m_error) std::rethrow_exception(m_error);
    return std::move(*m_value);
  }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return m_error; }

 private:
  std::optional<T> m_value;
  std::exception_ptr m_error;
};

template <>
class outcome<void> {
 public:
  static outcome from_value() noexcept { return outcome(); }
  static outcome from_error(const std::exception_ptr& e) noexcept {
    outcome o;
    o.m_error = e;
    return o;
  }
  [[nodiscard]] bool has_value() const noexcept { return m_error == nullptr; }
  [[nodiscard]] bool has_error() const noexcept { return m_error != nullptr; }
  [[nodiscard]] bool cancelled() const noexcept { return detail::is_cancellation(m_error); }
  void value() const {
    if (m_error) std::rethrow_exception(m_error);
  }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return m_error; }

 private:
  std::exception_ptr m_error;
};

}  // namespace corio
