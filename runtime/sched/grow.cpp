// SPDX-License-Identifier: Apache-2.0
// grow.cpp — growth, copystack and shrinking (DESIGN §3; Go's newstack/copystack/shrinkstack,
// runtime/stack.go).
//
// Three things notice a short stack, all on the goroutine's own stack and inside the headroom
// the limit keeps free below it (g.hpp kStackHeadroom):
//
//   a prologue   -fsplit-stack code compares sp with the limit word and calls __morestack
//                (arch/x86_64/), which lands in weft_morestack (morestack.cpp);
//   a check      WEFT_STACK_CHECK / ensure_stack, and the runtime's own calls that park;
//   a fault      code without checks touched the reserve below the stack (sched/signals.cpp).
//
// What they do, in order:
//
//   preempt  sysmon poisoned the limit: restore it and yield.  Then look again.
//   in place the slot has room: expose the pages below (grow_in_place) and move the limit.
//            Nothing moves; no switch.  The common case by design.
//   segment  (prologue only) with stack_strategy::segmented, or when the stack is pinned and
//            past its slot: run the function on a new segment (morestack.cpp).
//   copy     (prologue or check) past the slot: switch to g0, which copies the used part into
//            a slot of the new size and adjusts every pointer into the old stack, then
//            resumes the goroutine on the copy.
//   fatal    a fault past the slot (it cannot move the frames of code that has no check); a
//            check with segmented or a pin (it cannot link a segment: its caller's frame would
//            have to continue on the old one).  Each message names the setting to change.
//
//        old slot                               new slot (2x or more)
//      hi +---------+ <- frames, saved ctx    hi' +---------+
//         | used    |  ------ memcpy ------>      | used'   |  every aligned word w in used'
//         |         | <- sp                       |         |  with sp <= w < hi (the used
//      lo +---------+                             |         |  part) becomes w + (hi' - hi)
//         | reserve |                          lo'+---------+
//
// The copy itself, and why its pointer adjustment is conservative, is copystack.cpp's.  In short:
// the adjustment is conservative: any word that looks like a pointer into the old stack's
// used part is moved, so plain data that happens to hold such a value is corrupted.  Whole
// integers rarely do; words written only in part do: a short std::string keeps the top bytes
// of a dead pointer into this stack in the unused part of its buffer, and two or three
// characters below them make an address just past a 16 MiB or 4 GiB boundary (move_stack).
// Go avoids the problem with exact pointer maps, which C++ compilers do not emit.  What the
// scan cannot see — pointers held in heap objects, other stacks, or other threads — is why
// pins exist, and why quarantine (quarantine.cpp) exists to find the ones nobody pinned.
//
// Shrinking (the scan phase) halves a parked goroutine's stack: in place (MADV_DONTNEED and
// re-guard the lower half; nothing moves) whenever the stack has a reserve, is pinned, or is
// segmented; with pure copying (stack_reserve = 0) by copying into a smaller slot, as Go does.
// A stack that outgrew its reserve keeps its bigger slot while it shrinks: address space, not
// memory.
#include "runtime/sched/grow.hpp"
#include "runtime/sched/pin.hpp"

#include <bit>
#include <cstring>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "weft/stack.hpp"

namespace weft::detail {

std::size_t size_needed(const g* gp, std::uintptr_t sp, std::size_t bytes, std::size_t cap) noexcept {
  // A request past any stack_max (1T at most) saturates, rather than wrapping the sum or
  // overflowing bit_ceil: check_stack_max then reports it.
  if (bytes >= (std::size_t{1} << 60)) return ~std::size_t{0};
  const std::size_t exact = gp->stk.hi - sp + bytes + kStackHeadroom;
  std::size_t need = std::bit_ceil(exact);
  if (need < 2 * gp->stk.size()) need = 2 * gp->stk.size();
  // The last doubling inside a slot stops at its end (an in_place slot holds 8 MiB less its
  // guard, not a power of two).
  if (need > cap && exact <= cap) need = cap;
  return need;
}

void fatal_past_reserve(sched* s, g* gp, std::size_t need, const char* what) noexcept {
  const std::size_t reserve = *s->opts.stack_reserve;
  fatal("goroutine %llu needs a %zu-byte stack (%s), more than its slot holds: %zu bytes of the %zu-byte "
        "WEFT_STACK_RESERVE, and with WEFT_STACK=in_place a stack never moves.\n"
        "  Raise WEFT_STACK_RESERVE (options::stack_reserve) to %zu or more: it costs address space, not memory.  "
        "Or use WEFT_STACK=copy for code that is copy-safe (README: What a copy breaks), or WEFT_STACK=segmented "
        "for code built with -fsplit-stack.  Or look for runaway recursion",
        (unsigned long long)gp->id, need, what, s->stacks.room(gp->stk), reserve,
        std::max(std::bit_ceil(need + s->stacks.config().guard_bytes), 2 * reserve));
}

void check_stack_max(sched* s, g* gp, std::size_t size) noexcept {
  std::size_t max = s->stacks.config().stack_max;
  if (size > max)
    fatal("goroutine %llu stack exceeds %zu-byte limit (it needs %zu bytes; raise WEFT_STACK_MAX or "
          "options::stack_max, or look for runaway recursion)",
          (unsigned long long)gp->id, max, size);
}

m* yield_while_preempted(m* mp, g* gp) noexcept {
  while (gp->preempt.load(std::memory_order_acquire)) {
    gopreempt_on(mp);  // clears preempt; may resume on another M
    arch::store_limit(0);  // the caller's slow path goes on without prologue checks
    mp = current_m();
  }
  return mp;
}

void fatal_on_g0(m* mp, void (*report)(m* mp, g* gp, void* arg) noexcept, void* arg) noexcept {
  switch_to(mp, nullptr, report, arg);
  fatal("a fatal error report returned");
}

void fatal_past_reserve_on_g0(m* mp, std::size_t need, const char* what) noexcept {
  struct req {
    std::size_t need;
    const char* what;
  } r{need, what};
  fatal_on_g0(mp, [](m* m0, g* gp, void* a) noexcept {
    const auto* q = static_cast<const req*>(a);
    fatal_past_reserve(m0->s, gp, q->need, q->what);
  }, &r);
}

void require_stack_max(m* mp, g* gp, std::size_t size) noexcept {
  if (size <= mp->s->stacks.config().stack_max) return;
  struct req {
    g* gp;
    std::size_t size;
  } r{gp, size};
  fatal_on_g0(mp, [](m* m0, g*, void* a) noexcept {
    auto* q = static_cast<req*>(a);
    check_stack_max(m0->s, q->gp, q->size);
  }, &r);
}

namespace {

// Post-switch action on g0: grow the goroutine that just switched here to *arg bytes (a
// std::size_t), and have g0 resume it.
void grow_post(m* mp, g* gp, void* arg) noexcept {
  copy_stack(mp->s, mp, gp, *static_cast<const std::size_t*>(arg));
  mp->resume_g = gp;
}

// What a check that found its stack short asks of g0: `bytes` free below `sp`.
struct newstack_req {
  std::size_t bytes;
  std::uintptr_t sp;
};

// Post-switch action on g0 for a check (Go's newstack): the request is read before the
// stack may move (it lives there), then the stack grows in place, moves, or the strategy's
// fatal error is reported; g0 then resumes the goroutine.
void newstack_post(m* mp, g* gp, void* arg) noexcept {
  const newstack_req r = *static_cast<const newstack_req*>(arg);
  sched* s = mp->s;
  const std::size_t need = size_needed(gp, r.sp, r.bytes, s->stacks.capacity(gp->stk));
  check_stack_max(s, gp, need);
  if (!grow_in_place(s, gp, need)) {
    switch (s->opts.strategy) {
      case stack_strategy::in_place:
        fatal_past_reserve(s, gp, need, "at a WEFT_STACK_CHECK / weft::ensure_stack");
      case stack_strategy::segmented:
        fatal("goroutine %llu needs a %zu-byte stack but its %zu-byte slot is full, and with WEFT_STACK=segmented "
              "frames never move, while an explicit check (WEFT_STACK_CHECK / weft::ensure_stack) cannot start a new "
              "segment.  Build the code with split-stack checks (WEFT_SPLIT_STACK / weft::split_stack), raise "
              "WEFT_STACK_RESERVE (options::stack_reserve) to at least %zu, or use WEFT_STACK=in_place",
              (unsigned long long)gp->id, need, s->stacks.capacity(gp->stk), need);
      case stack_strategy::copy:
        ++gp->grows;
        s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
        copy_stack(s, mp, gp, need);
        break;
    }
  }
  mp->resume_g = gp;
}

}  // namespace

bool grow_in_place(sched* s, g* gp, std::size_t need) noexcept {
  try {
    if (!s->stacks.grow_in_place(gp->stk, need)) return false;  // past the slot's capacity
    ++gp->grows;
    s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
    publish_limit(gp);
    return true;
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot grow its stack in place to %zu bytes: %s", (unsigned long long)gp->id, need, e.what());
  }
}

void grow_by_copy(m* mp, std::size_t need) noexcept {
  ++mp->curg->grows;
  mp->s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
  switch_to(mp, nullptr, grow_post, &need);
}

void shrink_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept {
  // Copy only in pure copying mode (reserve 0, Go's rule): with a reserve, halving releases
  // pages in place, so that copies stay limited to growth past the slot.
  const stack_config& cfg = s->stacks.config();
  bool in_place = pinned(gp) || cfg.reserve != 0 ||
                  s->opts.strategy == stack_strategy::segmented;
  if (!in_place) {
    try {
      move_stack(s, mp, gp, s->stacks.alloc(new_size, cache_of(mp)));
      return;
    } catch (...) {
      in_place = true;  // no memory for a smaller copy: halving in place is still correct
    }
  }
  try {
    s->stacks.shrink_in_place(gp->stk, new_size);
  } catch (...) {
    // madvise refused: the stack keeps its size, which is still correct.
  }
}

void adopt_unchecked_growth(sched* s, g* gp, std::uintptr_t sp) noexcept {
  if (sp >= gp->stk.lo || sp < gp->stk.slot_lo) return;
  const std::size_t room = s->stacks.room(gp->stk);
  const std::size_t need = size_needed(gp, sp, 0, room);
  try {
    if (need > room || !s->stacks.grow_in_place(gp->stk, need, true)) return;
  } catch (...) {
    return;  // madvise refused: the record stays as it was, which the next fault corrects
  }
  ++gp->grows;
  s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
}

void release_spare_segment(sched* s, m* mp, g* gp) noexcept {
  stack* spare = gp->spare;
  if (!spare) return;
  gp->spare = nullptr;
  stack st = *spare;
  stack_reused(st.open_lo(), st.hi);
  s->stacks.free(st, cache_of(mp));
}

void release_kept_stacks(sched* s, m* mp, g* gp) noexcept {
  release_spare_segment(s, mp, gp);
  stack_cache* cache = cache_of(mp);
  for (stack* rec = gp->asan_moved_from; rec;) {
    auto at = reinterpret_cast<std::uintptr_t>(rec);
    stack_reused(at, at + kSegmentTop);  // stale marks may cover the record itself
    stack st = rec[0];
    stack* next;
    std::memcpy(&next, static_cast<const void*>(&rec[1]), sizeof next);
    stack_reused(st.open_lo(), st.hi);
    s->stacks.free(st, cache);
    rec = next;
  }
  gp->asan_moved_from = nullptr;
}

// A check's slow path (Go's morestack): it may run with the stack pointer at, or past, the
// stack's bottom — a check promises `bytes` below the frame that made it, and a frame that
// holds several inlined recursive calls overshoots that — so it uses only a few words of the
// goroutine's stack: it saves the request there and switches to g0, which decides
// (newstack_post).  Only with the room assured does it yield to a preemption request.  The
// limit word is 0 meanwhile, so no split-stack prologue fires inside the runtime's slow path
// (at -O0 the library calls out-of-line template functions — std::atomic's — and the linker
// may have picked the copies a user compiled with -fsplit-stack).
void ensure_stack_slow(std::size_t bytes) {
  arch::store_limit(0);
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp) return;
  const std::uintptr_t sp = arch::stack_pointer();
  // In the function's scope, not the branch's: AddressSanitizer's use-after-scope mark at the
  // end of a block would land on the stack's copy, where nothing clears it.
  newstack_req r{bytes, sp};
  if (sp < bytes || sp - bytes < limit_of(gp)) {
    switch_to(mp, nullptr, newstack_post, &r);
    mp = current_m();
  }
  yield_while_preempted(mp, gp);
  publish_limit(gp);
}

}  // namespace weft::detail
