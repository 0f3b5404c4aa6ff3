// SPDX-License-Identifier: Apache-2.0
// fatal.hpp — the one way weft stops a process.
//
// A fatal error prints "weft: fatal error: <message>" on stderr, then (where it can) the state
// of every goroutine, and exits with status 2, as Go's runtime does.  It must work from a
// signal handler on an alternate stack and with the scheduler's locks held, so it formats
// into a fixed buffer and writes with write(2); it never allocates.
#pragma once

#include <cstdarg>

#include "weft/export.hpp"

namespace weft::detail {

// Prints "weft: fatal error: " + the formatted message and a newline, then the goroutine dump
// if a hook is installed, then _exit(2).  Async-signal-safe as far as vsnprintf is.
// Exported (WEFT_API) for the kernel model, a library of its own (weft::kmodel) that needs
// nothing else of the runtime.
[[noreturn]] WEFT_API void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes a message to stderr with write(2), retrying on EINTR and short writes.
void write_stderr(const char* text, unsigned long len) noexcept;

// The scheduler installs a hook that appends every goroutine's state to a fatal error.
using dump_hook = void (*)() noexcept;
void set_fatal_dump_hook(dump_hook hook) noexcept;

}  // namespace weft::detail
