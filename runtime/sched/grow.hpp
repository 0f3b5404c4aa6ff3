// SPDX-License-Identifier: Apache-2.0
// grow.hpp — making a goroutine's stack bigger or smaller (DESIGN §3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/cpu.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/stack/stack_pool.hpp"

namespace weft::detail {

struct g;
struct m;
struct sched;

// One link of a segmented stack: the goroutine ran on `prev` before the current segment was
// linked.  It lives in the __morestack frame on `prev` (arch/x86_64/morestack_x86_64.hpp), so
// a link costs no allocation and dies with the frame that made it; g::seg points at the
// newest.  Segments come only from split-stack prologues: with stack_strategy::segmented,
// and with copy when a pinned stack must grow past its slot.
struct segment {
  stack prev;
  segment* prev_seg;
  std::size_t below;  // bytes of every stack below this segment (prev and its own links)
};

// Bytes at the top of a segment that no frame uses: the segment's own `stack` record goes
// there when it becomes a goroutine's spare (g::spare points at it).
inline constexpr std::size_t kSegmentTop = 64;
// A kept stack's record: the stack, and (the AddressSanitizer list of copied-from stacks) a
// link to the next one.
static_assert(sizeof(stack) + sizeof(stack*) <= kSegmentTop, "a kept stack's record must fit its top");

// Writes st's own record into its top kSegmentTop bytes, which no frame uses, and returns it:
// how a stack the goroutine keeps (its spare segment; under AddressSanitizer a stack it was
// copied out of) is remembered without an allocation.
inline stack* record_at_top(const stack& st) noexcept {
  auto* rec = reinterpret_cast<stack*>(st.hi - kSegmentTop);
  *rec = st;
  return rec;
}

// The per-P stack cache of the P this M holds, or nullptr (no M, or an M without a P): the
// global pool is used then.
inline stack_cache* cache_of(m* mp) noexcept {
  p* pp = mp ? mp->pp : nullptr;
  return pp ? &pp->scache : nullptr;
}

// The stack size that leaves `bytes` free below `sp` with the headroom to spare: doubling to
// the smallest power of two that fits, and at least twice the current size — but no more
// than `cap` (what the slot allows) when that is enough.
std::size_t size_needed(const g* gp, std::uintptr_t sp, std::size_t bytes, std::size_t cap) noexcept;

// With stack_strategy::in_place, a stack that needs `need` bytes, more than its slot holds:
// the fatal error that names the reserve and the ways out.  `what` says what asked.
[[noreturn]] void fatal_past_reserve(sched* s, g* gp, std::size_t need, const char* what) noexcept;
// The same from the goroutine's own stack (at its limit): reported from g0.
[[noreturn]] void fatal_past_reserve_on_g0(m* mp, std::size_t need, const char* what) noexcept;

// Makes gp's stack `need` bytes in place if its slot allows (up to its capacity), and
// publishes the new limit.  True if done; false if the slot is too small.  A failing
// madvise/mprotect is fatal.  (The fault handler grows through the pool itself, into the
// slack too, and reports a failure as the overflow it is handling.)
bool grow_in_place(sched* s, g* gp, std::size_t need) noexcept;

// On the goroutine's own stack: switches to g0, which copies the stack into a slot of `need`
// bytes (copy_stack), and returns on the copy.  Fatal if pinned (names the pin and the
// setting) or out of memory.
void grow_by_copy(m* mp, std::size_t need) noexcept;

// On g0, with gp suspended: moves gp's stack into a fresh slot of new_size bytes, adjusting
// every pointer into the old stack (copystack).  Fatal if gp is pinned or memory runs out.
void copy_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept;
// Moves gp (not running) into `fresh`, which the caller allocated: the copy of its used part
// with every pointer into it adjusted (copystack.cpp).  Frees or quarantines the old stack.
void move_stack(sched* s, m* mp, g* gp, const stack& fresh) noexcept;

// On g0 (or the scanner), with gp not running: halves its stack — in place, or, with pure
// copying (stack_reserve = 0) and no pin, by copying it into a smaller slot.
void shrink_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept;

// On the goroutine's own stack, in a slow path with room: while sysmon asks gp to yield
// (g::preempt, with the limit word poisoned), yields.  Leaves the limit word 0 (the caller
// publishes the real one when it is done).  Returns the M it then runs on.
m* yield_while_preempted(m* mp, g* gp) noexcept;

// Fatal if a goroutine needing `size` bytes of stack would exceed stack_max.  Called on g0
// or in the signal handler (on the alternate stack).
void check_stack_max(sched* s, g* gp, std::size_t size) noexcept;
// The same check on the goroutine's own stack, where only the headroom is left: the report
// is made from g0 (fatal() alone needs several KiB).
void require_stack_max(m* mp, g* gp, std::size_t size) noexcept;

// Reports a fatal error from g0: switches there and runs `report` (which must not return)
// as the post-switch action.  For fatal errors found on a goroutine stack at its limit.
[[noreturn]] void fatal_on_g0(m* mp, void (*report)(m* mp, g* gp, void* arg) noexcept, void* arg) noexcept;

// Code without checks whose frame was bigger than the band below the stack may have jumped
// it into the reserve without a fault: gp (parked, or the caller itself) runs at `sp`, below
// its recorded stack.  Grows the record (and moves the band) to cover it, so the scan and
// this_stack() see the stack as it is.  Does nothing if sp is inside the stack.
void adopt_unchecked_growth(sched* s, g* gp, std::uintptr_t sp) noexcept;

// The stacks a goroutine keeps beside its current one go back to the pool: its spare
// segment, and (AddressSanitizer) the stacks it was copied out of.  At goroutine exit; the
// scan phase passes a parked goroutine with mp = nullptr.  It must not run on any of them.
void release_kept_stacks(sched* s, m* mp, g* gp) noexcept;
// Only the spare segment (what the scan phase may drop from a parked goroutine).
void release_spare_segment(sched* s, m* mp, g* gp) noexcept;

// Puts the goroutine's limit into this thread's limit word (or the preemption poison).
inline void publish_limit(g* gp) noexcept {
  arch::store_limit(gp->preempt.load(std::memory_order_relaxed) ? ~std::uintptr_t{0} : limit_of(gp));
}

}  // namespace weft::detail
