// SPDX-License-Identifier: Apache-2.0
// poller.hpp — what the scheduler asks of the netpoller, which sits a layer above it
// (runtime/io/netpoll.cpp implements these; runtime/io/netpoll.hpp adds the waiting half that
// only io, net and the API use).  The scheduler holds the poller by an opaque pointer
// (sched::netpoll) and calls it as Go's findRunnable and sysmon call netpoll: to poll without
// blocking when a P runs out of work, to let one idle M block in epoll_wait, to break that M
// out, to end the poller with the runtime, and to count its waiters (deadlock check, stats,
// trace).  Declared here so that sched includes nothing above it (tests/build/layering.py).
#pragma once

#include <cstdint>

namespace weft::detail {

struct sched;
struct m;

// Ends the runtime's poller, if it made one (sched::stop).
void netpoll_destroy(sched* s) noexcept;
// Whether a goroutine or thread waits in the poller (a descriptor may still wake it), and how
// many descriptors are waited on.
bool netpoll_has_waiters(sched* s) noexcept;
unsigned long netpoll_waiters(sched* s) noexcept;
// epoll_ctl(EPOLL_CTL_ADD) calls made by the running runtime's poller: one per descriptor
// (and per reuse of its number after a close through weft).  Tests assert it.
std::uint64_t netpoll_registrations(sched* s) noexcept;

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

}  // namespace weft::detail
