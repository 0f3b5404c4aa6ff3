// SPDX-License-Identifier: Apache-2.0
// netpoll.hpp — waiting for file descriptors (Go's netpoller: runtime/netpoll.go's pollDesc,
// runtime/netpoll_epoll.go).  See netpoll.cpp for the design essay.
#pragma once

#include <cstdint>

#include "runtime/sched/poller.hpp"  // the scheduler's side: polling, blocking, counts

namespace weft::detail {

class netpoller;

// The runtime's poller, made on first use (throws resource_error if epoll or its eventfd
// cannot be had).
netpoller* netpoll_get(sched* s);

enum class poll_result { ready, timeout, closed };

// Registers fd with the poller now (once; later calls do nothing).  Sockets made by weft::net
// call it at creation.  Throws std::system_error if fd cannot be polled (a regular file).
void netpoll_open(netpoller* np, int fd);

// Parks the caller (a goroutine, or a plain thread: its thread sleeps) until fd is ready for
// reading (`write` false) or writing, the deadline passes (CLOCK_MONOTONIC ns; 0: none), or fd
// is closed through netpoll_close.  Edge-triggered: call it only after the operation returned
// EAGAIN (a readiness seen since the last wait returns at once).  `level` asks instead whether
// fd is ready *now* first (one poll(2)): the contract of the public wait_readable.
// Throws weft::error if another waits on fd in the same direction.
poll_result netpoll_wait(netpoller* np, int fd, bool write, std::int64_t deadline_ns, bool level);

// Before ::close(fd): wakes every waiter on fd with poll_result::closed, deregisters it, and
// forgets its readiness, so that a descriptor reusing the number starts clean.  Any runtime's
// poller, and the plain threads blocked in poll(2) on fd without a runtime.
void netpoll_close(int fd) noexcept;

// A plain thread with no runtime blocks in poll(2) on fd (with a deadline, 0: none); a close
// through weft wakes it (shutdown(2): the only way to wake a poll(2) on a socket).
poll_result poll_plain(int fd, bool write, std::int64_t deadline_ns);

}  // namespace weft::detail
