// SPDX-License-Identifier: Apache-2.0
// morestack.cpp — the C++ half of __morestack (arch/x86_64/morestack_x86_64_sysv_elf_gas.S):
// what a -fsplit-stack prologue that found its stack short gets.
//
// The assembly has saved the function's argument registers in a frame on the goroutine
// stack and calls weft_morestack(frame), still on that stack, inside the headroom below the
// limit.  weft_morestack decides (grow.cpp has the whole list):
//
//   - yield, if sysmon poisoned the limit, and look again;
//   - room after all: run the body (return 0);
//   - grow in place, or copy the stack via g0 (the frame moves with it: the assembly finds
//     it again from %rsp) and run the body on the same stack (return 0);
//   - with stack_strategy::segmented, or when a pinned stack must grow past its slot: link a
//     new segment and return its top; the assembly runs the body there and calls
//     weft_morestack_release when it returns, or weft_morestack_unwind from its landing pad
//     when an exception leaves it.
//
// Segments.  A segment is an ordinary stack from the pool.  The link record (detail::segment)
// lives in the __morestack frame on the previous stack; g::seg points at the newest.  Getting
// a segment from the pool can mean a system call and much stack, so it happens on g0 — unless
// the goroutine has a spare: the last segment it left, kept (one) so that a call that keeps
// crossing a segment boundary — the "hot split" — costs no pool trip.  A segment left by an
// exception always becomes the spare, since the unwinder is still running on it; an older
// spare is freed then, as it is dead by that time.
#if defined(__x86_64__)
#include <algorithm>
#include <bit>
#include <cstring>

#include "arch/cpu.hpp"
#include "arch/x86_64/morestack_x86_64.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/pin.hpp"

namespace weft::detail {

static_assert(sizeof(segment) <= WEFT_MS_SEG_BYTES, "the segment record must fit its slot in the __morestack frame");
static_assert(alignof(segment) <= 8);

namespace {

struct seg_req {
  std::size_t size;
  stack got;
  stack to_free;  // a spare too small to use, to go back to the pool
};

// Post-switch action on g0: get a segment from the pool (and free the old spare), then have
// g0 resume the goroutine.
void segment_post(m* mp, g* gp, void* arg) noexcept {
  auto* r = static_cast<seg_req*>(arg);
  sched* s = mp->s;
  stack_cache* cache = cache_of(mp);
  if (!r->to_free.empty()) s->stacks.free(r->to_free, cache);
  try {
    r->got = s->stacks.alloc(r->size, cache);
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot get a %zu-byte stack segment: %s", (unsigned long long)gp->id, r->size, e.what());
  }
  stack_reused(r->got.lo, r->got.hi);
  mp->resume_g = gp;
}

// Post-switch action on g0: give *arg (a stack) back to the pool, then have g0 resume the
// goroutine.
void free_post(m* mp, g* gp, void* arg) noexcept {
  mp->s->stacks.free(*static_cast<const stack*>(arg), cache_of(mp));
  mp->resume_g = gp;
}

// The segment for a function whose prologue found the stack short: it holds the frame, the
// arguments copied from the caller, the segment's own top record and the headroom.
std::size_t segment_size(const arch::morestack_frame* f) noexcept {
  return std::bit_ceil(f->frame_bytes + f->args_bytes + kSegmentTop + kStackHeadroom);
}

// Makes `leaving` (a segment the goroutine is done with) its spare; a previous spare goes
// back to the pool through g0.  The goroutine must not be running on the previous spare.
void keep_as_spare(m* mp, g* gp, const stack& leaving) noexcept {
  stack* old = gp->spare;
  gp->spare = record_at_top(leaving);
  if (old) {
    stack st = *old;
    switch_to(mp, nullptr, free_post, &st);
  }
}

// Links a segment of at least `size` bytes: returns the address the assembly starts from.
// Fatal if the goroutine's segments together would exceed stack_max.
std::uintptr_t link_segment(m* mp, g* gp, arch::morestack_frame* f, std::size_t size) noexcept {
  sched* s = mp->s;
  require_stack_max(mp, gp, gp->stk.size() + (gp->seg ? gp->seg->below : 0) + size);
  stack fresh;
  if (gp->spare && gp->spare->size() >= size) {
    fresh = *gp->spare;
    gp->spare = nullptr;
  } else {
    seg_req r{size, {}, {}};
    if (gp->spare) {
      r.to_free = *gp->spare;
      gp->spare = nullptr;
    }
    switch_to(mp, nullptr, segment_post, &r);
    fresh = r.got;
  }
  std::size_t below = gp->stk.size() + (gp->seg ? gp->seg->below : 0);
  auto* link = new (f->seg) segment{gp->stk, gp->seg, below};
  gp->seg = link;
  gp->stk = fresh;
  ++gp->grows;
  s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
  publish_limit(gp);
  return fresh.hi - kSegmentTop;
}

// Back to the stack below the newest segment; returns the segment left.
stack unlink_segment(g* gp, arch::morestack_frame* f) noexcept {
  auto* link = reinterpret_cast<segment*>(f->seg);
  if (gp->seg != link)
    fatal_on_g0(current_m(), [](m*, g* g0p, void* a) noexcept {
      fatal("goroutine %llu left a stack segment out of order (segment record %p, newest %p)", (unsigned long long)g0p->id,
            a, static_cast<void*>(g0p->seg));
    }, link);
  stack leaving = gp->stk;
  gp->stk = link->prev;
  gp->seg = link->prev_seg;
  publish_limit(gp);
  return leaving;
}

}  // namespace

}  // namespace weft::detail

using namespace weft::detail;
namespace arch = weft::arch;
using weft::stack_strategy;

extern "C" std::uintptr_t weft_morestack(weft::arch::morestack_frame* f) noexcept {
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp) return 0;  // no goroutine here (a limit word someone else set): just run the body
  // No split-stack prologue fires inside the runtime from here on (grow.cpp,
  // ensure_stack_slow, says why); every way out publishes the limit again.
  arch::store_limit(0);
  if (*reinterpret_cast<const unsigned char*>(f->ret_prologue) != 0xc3)
    fatal_on_g0(mp, [](m*, g*, void* a) noexcept {
      fatal("__morestack was called from %p, which is not a split-stack prologue (no `ret` after the call)", a);
    }, reinterpret_cast<void*>(f->ret_prologue));
  mp = yield_while_preempted(mp, gp);
  const std::uintptr_t sp = f->entry_sp();
  const std::size_t bytes = f->frame_bytes;
  if (sp - bytes >= limit_of(gp) && sp >= bytes) {
    publish_limit(gp);  // the real limit after a yield (or the poison, if sysmon asked again)
    return 0;
  }
  sched* s = mp->s;
  if (s->opts.strategy == stack_strategy::segmented)
    return link_segment(mp, gp, f, std::max(segment_size(f), s->stacks.config().stack_min));
  const std::size_t need = size_needed(gp, sp, bytes, s->stacks.capacity(gp->stk));
  require_stack_max(mp, gp, need + (gp->seg ? gp->seg->below : 0));
  if (grow_in_place(s, gp, need)) return 0;
  if (s->opts.strategy == stack_strategy::in_place) fatal_past_reserve_on_g0(mp, need, "at a -fsplit-stack prologue");
  if (pinned(gp)) {
    // Pinned past its slot: the frames stay where they are and the body runs on a segment
    // as big as the copy would have been.
    return link_segment(mp, gp, f, std::max(segment_size(f), need));
  }
  grow_by_copy(mp, need);
  return 0;  // the frame moved with the stack; the assembly finds it from %rsp
}

// Makes room for a `size`-byte block of dynamic stack (alloca, a VLA) below `sp`, the
// stack pointer of the split-stack function that asked (the assembly then hands it out).
extern "C" void weft_morestack_alloca(std::size_t size, std::uintptr_t sp) noexcept {
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp) return;  // a thread stack: it has the room
  arch::store_limit(0);  // as in weft_morestack; every way out publishes it again
  for (;;) {
    mp = yield_while_preempted(mp, gp);
    // The block, and headroom below it for the calls the function makes next (they check).
    if (sp >= size + kStackHeadroom && sp - size - kStackHeadroom >= limit_of(gp)) {
      publish_limit(gp);
      return;
    }
    sched* s = mp->s;
    const std::size_t need = size_needed(gp, sp, size + kStackHeadroom, s->stacks.capacity(gp->stk));
    require_stack_max(mp, gp, need + (gp->seg ? gp->seg->below : 0));
    if (grow_in_place(s, gp, need)) continue;
    if (s->opts.strategy == stack_strategy::in_place)
      fatal_past_reserve_on_g0(mp, need, "for a block of dynamic stack (alloca, a VLA)");
    if (s->opts.strategy == stack_strategy::segmented || pinned(gp)) {
      struct req {
        std::size_t size, need;
      } r{size, need};
      fatal_on_g0(mp, [](m* m0, g* g0p, void* a) noexcept {
        auto* q = static_cast<req*>(a);
        fatal("goroutine %llu allocates %zu bytes of dynamic stack (alloca or a variable-length array) in "
              "split-stack code, which needs a %zu-byte stack, but its %zu-byte slot is full and its frames may not "
              "move (%s); the block cannot go on a new segment, since the function goes on running on this one.  "
              "Raise WEFT_STACK_RESERVE (options::stack_reserve) to at least %zu, or allocate the block on the heap",
              (unsigned long long)g0p->id, q->size, q->need, m0->s->stacks.capacity(g0p->stk),
              m0->s->opts.strategy == stack_strategy::segmented ? "WEFT_STACK=segmented" : "the stack is pinned",
              q->need);
      }, &r);
    }
    // Copy: our own frame moves too, and `sp` with it — the copy's scan may or may not adjust
    // it (a value in a register or a slot it sees, or not), so it is rebuilt from its distance
    // to the top, a small number no scan mistakes for a pointer.  The empty asm keeps the
    // compiler from rebuilding it as sp + (new hi - old hi) from an sp the copy adjusted
    // already (seen: a 200 KiB block grew the stack to 64 MiB).  The assembly re-derives its own.
    std::size_t below_top = gp->stk.hi - sp;
    asm volatile("" : "+r"(below_top));
    grow_by_copy(mp, need);
    mp = current_m();
    sp = gp->stk.hi - below_top;
  }
}

extern "C" void weft_morestack_release(weft::arch::morestack_frame* f) noexcept {
  arch::store_limit(0);  // as in weft_morestack; unlink_segment publishes it again
  m* mp = current_m();
  g* gp = mp->curg;
  stack leaving = unlink_segment(gp, f);
  keep_as_spare(mp, gp, leaving);
}

extern "C" void weft_morestack_unwind(weft::arch::morestack_frame* f) noexcept {
  // Running on the segment being left (the unwinder will go on using it): free the older
  // spare first, while the goroutine's records still say it runs here, then make this
  // segment the spare.
  arch::store_limit(0);  // as in weft_morestack; unlink_segment publishes it again
  m* mp = current_m();
  g* gp = mp->curg;
  if (stack* old = gp->spare) {
    gp->spare = nullptr;
    stack st = *old;
    switch_to(mp, nullptr, free_post, &st);
  }
  gp->spare = record_at_top(unlink_segment(gp, f));
}

#endif  // __x86_64__
