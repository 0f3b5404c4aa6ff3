// SPDX-License-Identifier: Apache-2.0
// weft/io.hpp — blocking system calls and file descriptors from goroutines.
//
// Plain threads: all of it (blocking() just calls f; the waits block the thread in poll(2)).
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "weft/export.hpp"

namespace weft {

namespace detail {
WEFT_API void enter_blocking() noexcept;
WEFT_API void exit_blocking() noexcept;
}  // namespace detail

// Runs f() — a call that may block its thread (a read(2) on a pipe, a database client) —
// with this M's P handed off if f takes long (sysmon retakes it after about 20 µs), so other
// goroutines keep running meanwhile.  Go's entersyscall/exitsyscall.  On a plain thread it
// just calls f.
template <class F>
decltype(auto) blocking(F&& f) {
  struct exit_on_return {
    ~exit_on_return() { detail::exit_blocking(); }
  };
  detail::enter_blocking();
  exit_on_return guard;
  return std::forward<F>(f)();
}

// Parks the calling goroutine until fd is readable / writable (or reports an error or hang-up,
// which a read or write will then return), or until `timeout` passes ({}: no timeout).
// Returns true if ready, false on timeout.  The descriptor should be non-blocking.  One
// goroutine at a time may wait per descriptor and direction (a second throws weft::error).
// On a plain thread it blocks the thread in poll(2).
WEFT_API bool wait_readable(int fd, std::chrono::nanoseconds timeout = {});
WEFT_API bool wait_writable(int fd, std::chrono::nanoseconds timeout = {});

}  // namespace weft
