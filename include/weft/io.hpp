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
// goroutines keep running meanwhile.  Go's entersyscall/exitsyscall.  f may wake goroutines
// (a channel send with room, a wait_group's done, a mutex unlock) and start new ones; it must
// not wait on weft itself (a receive, a lock, a sleep, a yield): that is a fatal error, as a
// goroutine in a blocking call cannot park.  On a plain thread it just calls f.
template <class F>
decltype(auto) blocking(F&& f) {
  struct exit_on_return {
    ~exit_on_return() { detail::exit_blocking(); }
  };
  detail::enter_blocking();
  exit_on_return guard;
  return std::forward<F>(f)();
}

// A timeout meaning "wait for as long as it takes" (the default of the waits below).
inline constexpr std::chrono::nanoseconds no_timeout = std::chrono::nanoseconds::max();

// Parks the calling goroutine until fd is readable / writable (or reports an error or hang-up,
// which a read or write will then return), or until `timeout` passes.  Returns true if ready,
// false on timeout.  A timeout of zero or less polls once and returns at once (as select's
// on_timeout(d <= 0) does); no_timeout waits for ever.  The descriptor should be non-blocking.
// One goroutine at a time may wait per descriptor and direction (a second throws weft::error).
// Closing fd with weft::close_fd wakes its waiters with std::system_error (EBADF, "was
// closed"); a raw ::close(fd) cannot be seen by weft — a goroutine parked on fd then stays
// parked, and a second waiter on the reused number is refused — so close descriptors you
// wait on through weft::close_fd (Go's netFD.Close does the same).  Edge-triggered inside
// (one epoll registration per descriptor), level-triggered to the caller: it returns at once
// if fd is ready now (one poll(2), plus one epoll_ctl(MOD) checking that a raw close has not
// dropped the registration; weft::net avoids both).  On a plain thread it blocks the
// thread (in the runtime's poller, or in poll(2) when no runtime runs).
WEFT_API bool wait_readable(int fd, std::chrono::nanoseconds timeout = no_timeout);
WEFT_API bool wait_writable(int fd, std::chrono::nanoseconds timeout = no_timeout);

// Closes fd after waking every goroutine or thread waiting on it in wait_readable /
// wait_writable / weft::net (they get a "closed" error) and removing it from the poller, so a
// descriptor that reuses the number starts clean.  Throws std::system_error if close(2) fails
// (EINTR is not a failure: Linux has closed the descriptor then).
WEFT_API void close_fd(int fd);

}  // namespace weft
