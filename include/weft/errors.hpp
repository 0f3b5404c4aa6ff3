// SPDX-License-Identifier: Apache-2.0
// weft/errors.hpp — the exceptions weft throws.  Every message names what was wrong and what
// is allowed or what to change.
//
// Plain threads: all of it (exception types; no runtime needed).
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

#include "weft/export.hpp"

namespace weft {

// The base of weft's own errors.
struct WEFT_API error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A send on, or a second close of, a closed channel.
struct WEFT_API closed_channel : error {
  closed_channel() : error("weft: send on or close of a closed channel") {}
  using error::error;
};

// A WEFT_* environment variable or an options field holds a value weft does not accept.
struct WEFT_API config_error : error {
  using error::error;
};

// The system refused a resource (memory for a stack, a mapping, a thread); the runtime keeps
// running, and the message says what ran out and how to get more.
struct WEFT_API resource_error : std::system_error {
  using std::system_error::system_error;
};

}  // namespace weft
