// SPDX-License-Identifier: Apache-2.0
// version.cpp — weft::version(): the library's own WEFT_VERSION_*, fixed when it was compiled.
#include "weft/version.hpp"

namespace weft {

version_info version() noexcept { return {WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH}; }

}  // namespace weft
