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
struct stats {
  std::uint64_t goroutines_live, goroutines_created, threads, procs;
  std::uint64_t stack_grows, stack_shrinks, stack_copies, stack_bytes_copied;
  std::uint64_t stack_bytes_reserved;  // address space of all stack arenas
  std::uint64_t steals;                // successful steals from another P's queue
  std::uint64_t preemptions;           // goroutines asked to yield after 10 ms without a switch
  // Moved-from stack ranges kept inaccessible now (options::quarantine; copy only), and their
  // bytes: address space, no memory.
  std::uint64_t stack_quarantined, stack_bytes_quarantined;
  // Live goroutines by state: running on a thread, queued to run, parked (channel, lock,
  // sleep, join, fd...), inside weft::blocking.
  std::uint64_t goroutines_running, goroutines_runnable, goroutines_waiting, goroutines_blocking;
  std::uint64_t runq_global, runq_local;  // goroutines queued: the global queue, all Ps' own
  std::uint64_t stack_bytes_in_use;       // the live goroutines' stacks (sizes, not RSS)
  std::uint64_t stack_slots_pooled;       // freed slots kept for reuse
  std::uint64_t threads_idle, threads_spinning, threads_blocking;  // Ms: asleep, looking for work, in a blocking call
  std::uint64_t netpoll_waiters;          // descriptors goroutines wait on
  std::uint64_t netpoll_registrations;    // epoll registrations: one per descriptor (and reuse)
  std::uint64_t timers;                   // armed: sleeps, and waits with a deadline
  std::uint64_t scans;                    // scan phases run (stack shrinking, memory release)
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
