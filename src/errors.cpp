// corio's exceptions (errors.hpp).
#include "corio/errors.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "corio/detail/throw.hpp"

namespace corio {

namespace detail {

[[noreturn]] void throw_logic_error(const char* what) {
  throw std::logic_error(what);
}

[[noreturn]] void throw_invalid_argument(const char* what) {
  throw std::invalid_argument(what);
}

std::string describe_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (const cancelled_error& c) {
    return c.what();
  } catch (...) {
    return "(an exception not derived from std::exception)";
  }
}

std::string join_error_messages(const std::vector<std::exception_ptr>& errors) {
  std::string s = std::to_string(errors.size()) + " task(s) failed";
  for (const auto& e : errors) {
    s += "; ";
    s += describe_error(e);
  }
  return s;
}

}  // namespace detail

incomplete_read_error::incomplete_read_error(std::size_t got, std::size_t wanted)
    : std::runtime_error("corio: stream ended after " + std::to_string(got) + " of " +
                         std::to_string(wanted) + " bytes"),
      m_got(got),
      m_wanted(wanted) {}

task_group_error::task_group_error(std::vector<std::exception_ptr> errors)
    : std::runtime_error(detail::join_error_messages(errors)), m_errors(std::move(errors)) {}

}  // namespace corio
