// quarantine.hpp — stale-pointer detection for moved stacks (options::quarantine,
// WEFT_QUARANTINE=1; DESIGN §3).
#pragma once

#include <cstdint>

#include "runtime/stack/stack_pool.hpp"

namespace weft::detail {

struct sched;
struct m;

// How many moved-from stacks stay quarantined at once; the oldest goes back to the pool when
// another arrives, and a stale pointer into it is no longer caught.
inline constexpr unsigned kQuarantineRecords = 1024;

// Called by copystack instead of freeing `old`: makes old's range inaccessible and records
// that goroutine `goid` moved from `old` to `fresh`.  Returns false if it could not (the
// caller frees `old` as usual).  mp: the M doing it (its P's stack cache takes the evicted
// stack), or nullptr.
bool quarantine_moved(sched* s, m* mp, std::uint64_t goid, const stack& old, const stack& fresh) noexcept;

// Signal handler: if addr lies in a quarantined range of the running runtime, prints the
// fatal report (who moved, old and new ranges, where the object lives now) and exits.
// Otherwise returns.  Async-signal-safe.
void quarantine_check_fault(std::uintptr_t addr) noexcept;

// Forgets every record (a runtime is starting: older records name another runtime's arenas).
void quarantine_reset() noexcept;

}  // namespace weft::detail
