// How reports name a coroutine frame (describe.cpp).
#pragma once

#include <string>

#include "corio/loop/detail/task_base.hpp"

namespace corio::detail {

/// "parse(int)" from GCC's or Clang's full name of a function: without its
/// return type, anonymous namespaces, qualifiers and template arguments;
/// long parameter lists become "(...)".
std::string function_display_name(const char* full);

/// "parse(int) at src/app.cpp:42": a coroutine's function without its
/// return type, and where it is.
std::string describe_frame(const code_site& where);

/// "'worker' serve(int) at app.cpp:40", or without the quotes part when
/// `name` is nullptr: how every report names a frame.
std::string describe_named(const char* name, const code_site& where);

}  // namespace corio::detail
