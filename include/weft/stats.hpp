// SPDX-License-Identifier: Apache-2.0
// weft/stats.hpp — counters of the running runtime.
//
// Plain threads: get_stats() reads the running runtime from any thread (all zero when none runs).
#pragma once

#include <cstdint>
#include <string>

#include "weft/export.hpp"

namespace weft {

// What an operator watches (README, "Debugging": every field).  Counts are exact when nothing
// changes meanwhile; the by-state counts walk every goroutine's record (a million take a few
// milliseconds).
// Every field starts at 0: `weft::stats s;` is all zero, as get_stats() returns with no runtime.
struct stats {
  std::uint64_t goroutines_live = 0, goroutines_created = 0, threads = 0, procs = 0;
  std::uint64_t stack_grows = 0, stack_shrinks = 0, stack_copies = 0, stack_bytes_copied = 0;
  std::uint64_t stack_bytes_reserved = 0;  // address space of all stack arenas
  std::uint64_t steals = 0;                // successful steals from another P's queue
  std::uint64_t preemptions = 0;           // goroutines asked to yield after 10 ms without a switch
  // Moved-from stack ranges kept inaccessible now (options::quarantine; copy only), and their
  // bytes: address space, no memory.
  std::uint64_t stack_quarantined = 0, stack_bytes_quarantined = 0;
  // Live goroutines by state: running on a thread, queued to run, parked (channel, lock,
  // sleep, join, fd...), inside weft::blocking.
  std::uint64_t goroutines_running = 0, goroutines_runnable = 0, goroutines_waiting = 0, goroutines_blocking = 0;
  std::uint64_t runq_global = 0, runq_local = 0;  // goroutines queued: the global queue, all Ps' own
  std::uint64_t stack_bytes_in_use = 0;       // the live goroutines' stacks (sizes, not RSS)
  std::uint64_t stack_slots_pooled = 0;       // freed slots kept for reuse
  std::uint64_t threads_idle = 0, threads_spinning = 0, threads_blocking = 0;  // Ms: asleep, looking for work, in a blocking call
  std::uint64_t netpoll_waiters = 0;          // descriptors goroutines wait on
  std::uint64_t netpoll_registrations = 0;    // epoll registrations: one per descriptor (and reuse)
  std::uint64_t timers = 0;                   // armed: sleeps, and waits with a deadline
  std::uint64_t scans = 0;                    // scan phases run (stack shrinking, memory release)
};

// A snapshot (all zero when no runtime runs).
WEFT_API stats get_stats();

// Every goroutine of the running runtime, for a person (README, "Debugging"): id, state, what
// it waits for and for how long, its stack, its pins, where it was made, and a parked one's
// frames (by frame pointers).  More than 64 goroutines are grouped by kind, with counts.
// Written to fd, or returned; nothing when no runtime runs.  Safe from any thread.
WEFT_API void dump_goroutines(int fd);
WEFT_API std::string dump_goroutines();

}  // namespace weft
