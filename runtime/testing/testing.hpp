// SPDX-License-Identifier: Apache-2.0
// testing.hpp — FOR TESTS ONLY.  A look at runtime internals that weft::get_stats() does not
// show, so tests can assert that nothing leaked (tests/reliability).  Not part of the public
// API: names and fields may change with the runtime.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/export.hpp"

namespace weft::detail::testing {

// The running runtime's stack pool and thread records.
struct runtime_snapshot {
  std::uint64_t slots_in_use = 0;    // stacks given out and not freed
  std::uint64_t slots_pooled = 0;    // carved slots waiting for reuse (caches and pools)
  std::uint64_t slots_carved = 0;    // slots ever set up
  std::uint64_t bytes_reserved = 0;  // address space of the stack arenas
  std::uint64_t m_records = 0;       // M records the scheduler holds (started or not)
  std::uint64_t g_waiting = 0;       // goroutines parked (status waiting) at the moment of the look
};

// Fills `out` and returns true, or returns false when no runtime is running.
WEFT_API bool snapshot(runtime_snapshot* out);

// The `nth` heap allocation of the runtime from now (1: the next one; runtime/sched/api.cpp
// heap_alloc: closures, task states, G records, channel buffers) throws std::bad_alloc, once,
// as if the heap were exhausted at exactly that point.  0 cancels.
WEFT_API void fail_heap_alloc(unsigned nth);

}  // namespace weft::detail::testing
