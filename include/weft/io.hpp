// weft/io.hpp — blocking system calls and file descriptors from goroutines.
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

}  // namespace weft
