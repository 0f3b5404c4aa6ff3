// weft/stats.hpp — counters of the running runtime.
//
// Plain threads: get_stats() reads the running runtime from any thread (all zero when none runs).
#pragma once

#include <cstdint>

#include "weft/export.hpp"

namespace weft {

struct stats {
  std::uint64_t goroutines_live, goroutines_created, threads, procs;
  std::uint64_t stack_grows, stack_shrinks, stack_copies, stack_bytes_copied;
  std::uint64_t stack_bytes_reserved;  // address space of all stack arenas
  std::uint64_t steals;                // successful steals from another P's queue
  // Moved-from stack ranges kept inaccessible now (options::quarantine; copy only), and their
  // bytes: address space, no memory.
  std::uint64_t stack_quarantined, stack_bytes_quarantined;
};

// A snapshot (all zero when no runtime runs).
WEFT_API stats get_stats();

}  // namespace weft
