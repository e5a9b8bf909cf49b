// corio's version: the one place it is written (CMakeLists.txt reads it from
// here and checks that the string and the macros agree).
#pragma once

/// corio's major version: changes that break the API.
#define CORIO_VERSION_MAJOR 0
/// corio's minor version: features; before 1.0 it may also break the API
/// (CHANGELOG.md says how).
#define CORIO_VERSION_MINOR 2
/// corio's patch version: fixes only.
#define CORIO_VERSION_PATCH 0
/// The version as one number, major * 10000 + minor * 100 + patch, for `#if`.
#define CORIO_VERSION \
  (CORIO_VERSION_MAJOR * 10000 + CORIO_VERSION_MINOR * 100 + CORIO_VERSION_PATCH)

namespace corio {

/// The version of the corio headers this program was compiled with, as
/// "major.minor.patch".
///
/// \code
///   std::printf("corio %s\n", corio::version_string);
/// \endcode
inline constexpr const char* version_string = "0.2.0";

}  // namespace corio
