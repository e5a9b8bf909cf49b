// Out-of-line throws of standard exceptions (src/errors.cpp), so that a
// header whose inline code may throw one need not include <stdexcept>
// (about 29,000 preprocessed lines) for it.
#pragma once

namespace corio::detail {

/// Throws std::logic_error(what): a bug in the caller.
[[noreturn]] void throw_logic_error(const char* what);
/// Throws std::invalid_argument(what).
[[noreturn]] void throw_invalid_argument(const char* what);

}  // namespace corio::detail
