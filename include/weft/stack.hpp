// weft/stack.hpp — the running goroutine's stack: what it is, making room, keeping it still.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/export.hpp"

namespace weft {

struct stack_info {
  std::uintptr_t lo, hi;       // the accessible range [lo, hi)
  std::size_t size, used;      // hi - lo; bytes from the stack pointer to hi
  std::uint32_t grows, shrinks;
  bool pinned;
};

// The calling goroutine's stack (all zero on a plain thread).
WEFT_API stack_info this_stack();

// One scan phase now: shrinks stacks of parked goroutines that use under a quarter of theirs,
// and returns pooled stack memory to the OS.  Returns when done.
WEFT_API void scan();

}  // namespace weft
