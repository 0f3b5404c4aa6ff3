// SPDX-License-Identifier: Apache-2.0
// netpoll.hpp — waiting for file descriptors (Go's netpoller, runtime/netpoll_epoll.go).
#pragma once

#include <cstdint>

namespace weft::detail {

struct sched;
class netpoller;

// The runtime's poller, made on first use.  Returns nullptr if epoll is unavailable (the
// caller falls back to blocking the thread in poll(2) via blocking()).
netpoller* netpoll_get(sched* s);
void netpoll_destroy(sched* s) noexcept;
// Whether a goroutine waits in the poller (a descriptor may still wake it), and how many
// descriptors are waited on.
bool netpoll_has_waiters(sched* s) noexcept;
unsigned long netpoll_waiters(sched* s) noexcept;

// Parks the calling goroutine until fd is ready for `events` (EPOLLIN / EPOLLOUT), an error or
// hang-up is reported on it, or the deadline passes (0: none).  True if ready.
bool netpoll_wait(netpoller* np, int fd, std::uint32_t events, std::int64_t deadline_ns);

}  // namespace weft::detail
