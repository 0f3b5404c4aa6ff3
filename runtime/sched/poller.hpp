// SPDX-License-Identifier: Apache-2.0
// poller.hpp — what the scheduler asks of the netpoller, which sits a layer above it
// (runtime/io/netpoll.cpp implements these; runtime/io/netpoll.hpp declares them too, with the
// waiting half that only io and the API use).  The scheduler holds the poller by an opaque
// pointer (sched::netpoll) and needs three things from it: to end it with the runtime, and to
// know whether, and how many, goroutines wait on descriptors (deadlock check, stats, trace).
// Declared here so that sched includes nothing above it (tests/build/layering.py).
#pragma once

namespace weft::detail {

struct sched;

// Ends the runtime's poller, if it made one (sched::stop).
void netpoll_destroy(sched* s) noexcept;
// Whether any goroutine waits for a descriptor (the deadlock check).
bool netpoll_has_waiters(sched* s) noexcept;
// How many goroutines wait for descriptors (stats, the scheduler trace).
unsigned long netpoll_waiters(sched* s) noexcept;

}  // namespace weft::detail
