// SPDX-License-Identifier: Apache-2.0
// netpoll.hpp — waiting for file descriptors (Go's netpoller: runtime/netpoll.go's pollDesc,
// runtime/netpoll_epoll.go).  See netpoll.cpp for the design essay.
#pragma once

#include <cstdint>

namespace weft::detail {

struct sched;
class netpoller;

// The runtime's poller, made on first use (throws resource_error if epoll or its eventfd or
// thread cannot be had).
netpoller* netpoll_get(sched* s);
void netpoll_destroy(sched* s) noexcept;
// Whether a goroutine or thread waits in the poller (a descriptor may still wake it), and how
// many descriptors are waited on.
bool netpoll_has_waiters(sched* s) noexcept;
unsigned long netpoll_waiters(sched* s) noexcept;
// epoll_ctl(EPOLL_CTL_ADD) calls made by the running runtime's poller: one per descriptor
// (and per reuse of its number after a close through weft).  Tests assert it.
std::uint64_t netpoll_registrations(sched* s) noexcept;

// ---- the scheduler's side (Go's netpoll calls in findRunnable and sysmon) ---------------
struct m;
struct g;
// A P out of work: polls without blocking and readies what is ready (onto the calling M's P).
// True if it readied something.
bool netpoll_poll_ready(sched* s) noexcept;
// An M about to sleep without a P: if goroutines wait on descriptors and no other M does,
// sleeps in epoll_wait instead (until a descriptor is ready, the earliest timer, or
// netpoll_break), takes an idle P for what became ready if one is free, and returns true (the
// caller looks for work again).  False: nothing to wait for, or another M is the blocker.
bool netpoll_block(sched* s, m* mp) noexcept;
// The M asleep in epoll_wait, if any (idle, for stats and the trace).
m* netpoll_blocker(sched* s) noexcept;
// Breaks the blocker out of epoll_wait (the runtime stops).
void netpoll_break(sched* s) noexcept;
// sysmon: polls if nobody has for 10 ms.
void netpoll_sysmon(sched* s, std::int64_t now_ns) noexcept;

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
