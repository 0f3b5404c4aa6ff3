// SPDX-License-Identifier: Apache-2.0
// sigpipe.hpp — SIGPIPE while a runtime runs (see sigpipe.cpp for the decision).
#pragma once

namespace weft::detail {

// At runtime start: if SIGPIPE has its default disposition (terminate the process), replace
// it with a handler that does nothing, so a write to a closed socket or pipe returns EPIPE
// instead of killing the process silently.  Any other disposition is left alone.
void sigpipe_runtime_started() noexcept;
// At runtime end: puts SIG_DFL back if weft's handler is still the one installed.
void sigpipe_runtime_stopped() noexcept;

}  // namespace weft::detail
