// SPDX-License-Identifier: Apache-2.0
// quarantine.hpp — stale-pointer detection for moved stacks (options::quarantine,
// WEFT_QUARANTINE=1; DESIGN §3).
#pragma once

#include <cstdint>

#include "runtime/stack/stack_pool.hpp"

namespace weft::detail {

struct sched;
struct m;

// How many moved-from stacks stay quarantined at once in the process, and per goroutine; the
// oldest goes back to the pool when another arrives, and a stale pointer into it is no longer
// caught.  Per goroutine: a stack that doubles from 256 KiB (copy's reserve) to 1 GiB moves
// 12 times, so 16 catches every stale pointer of a growing goroutine; pure copying also
// moves at every halving, and there the newest 16 moves are what is caught.  What a record
// costs: the range's address space, and the page tables its guard markers need (a 4 KiB page
// of them per 2 MiB the range spans) — no memory.
inline constexpr unsigned kQuarantineRecords = 1024;
inline constexpr unsigned kQuarantinePerGoroutine = 16;

struct g;

// Called by copystack instead of freeing `old`: makes old's range inaccessible and records
// that gp moved from `old` to `fresh`.  Returns false if it could not (the caller frees `old`
// as usual).  mp: the M doing it (its P's stack cache takes an evicted stack), or nullptr.
bool quarantine_moved(sched* s, m* mp, g* gp, const stack& old, const stack& fresh) noexcept;

// A goroutine that moved is exiting: its quarantined ranges go back to the pool.
void quarantine_release(sched* s, m* mp, g* gp) noexcept;

// Ranges quarantined now, and their bytes (weft::stats).
void quarantine_counts(std::uint64_t* ranges, std::uint64_t* bytes) noexcept;

// Signal handler: if addr lies in a quarantined range of the running runtime, prints the
// fatal report (who moved, old and new ranges, where the object lives now) and exits.
// Otherwise returns.  Async-signal-safe.
void quarantine_check_fault(std::uintptr_t addr) noexcept;

// Forgets every record (a runtime is starting: older records name another runtime's arenas).
void quarantine_reset() noexcept;

}  // namespace weft::detail
