// grow.hpp — making a goroutine's stack bigger or smaller (DESIGN §3).
#pragma once

#include <cstddef>

namespace weft::detail {

struct g;
struct m;
struct sched;

// The smallest power of two >= v.
std::size_t round_up_pow2(std::size_t v) noexcept;

// On g0, with gp suspended: moves gp's stack into a fresh slot of new_size bytes, adjusting
// every pointer into the old stack (copystack).  Fatal if gp is pinned or memory runs out.
void copy_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept;

// On g0 (or the scanner), with gp not running: halves its stack — in place when the slot
// allows or the stack is pinned, else by copying it into a smaller slot.
void shrink_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept;

// Called by the signal handler and the checks when a goroutine needs `size` bytes that its
// limit says it may not have: fatal if size exceeds stack_max.
void check_stack_max(sched* s, g* gp, std::size_t size) noexcept;

}  // namespace weft::detail
