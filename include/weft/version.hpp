// SPDX-License-Identifier: Apache-2.0
// weft/version.hpp — which weft this is: the headers' version (the macros) and the library's
// (weft::version()), so a program can tell when it was built against other headers than the
// library it runs with.
//
// Plain threads: all of it, with or without a runtime.
#pragma once

#include "weft/export.hpp"

// Kept equal to project() in CMakeLists.txt and meson.build (tests/build/version_match.sh).
#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

namespace weft {

struct version_info {
  int major, minor, patch;
  friend constexpr bool operator==(const version_info&, const version_info&) = default;
};

// The version of the weft library linked into the program (WEFT_VERSION_* as it was built).
WEFT_API version_info version() noexcept;

}  // namespace weft
