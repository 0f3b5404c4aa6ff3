// grow.cpp — growth, copystack and shrinking (DESIGN §3; Go's newstack/copystack/shrinkstack,
// runtime/stack.go).
//
// A check (prologue, WEFT_STACK_CHECK, a runtime call) that finds sp - bytes below the limit
// lands in ensure_stack_slow, on the goroutine's own stack, inside the headroom the limit
// keeps free.  Three cases:
//
//   preempt  sysmon poisoned the limit: restore it and yield.  Then look again.
//   in place the slot has room: expose the pages below (grow_in_place) and move the limit.
//            Nothing moves; no switch.  This is the common case by design.
//   copy     past the slot: switch to g0, which copies the used part into a slot of the new
//            size and adjusts every pointer into the old stack, then resumes the goroutine.
//
//        old slot                               new slot (2x or more)
//      hi +---------+ <- frames, saved ctx    hi' +---------+
//         | used    |  ------ memcpy ------>      | used'   |  every aligned word w in used'
//         |         | <- sp                       |         |  with old.slot_lo <= w < old.hi
//      lo +---------+                             |         |  becomes w + (hi' - hi)
//         | reserve |                          lo'+---------+
//
// The adjustment is conservative: any word that looks like a pointer into the old stack is
// moved, so an integer that happens to hold such a value is corrupted.  Addresses in the
// range of a live stack are unlikely as plain integers; Go avoids the problem with exact
// pointer maps, which C++ compilers do not emit.  What the scan cannot see — pointers held in
// heap objects, other stacks, or other threads — is why pins exist.
//
// Shrinking (the scan phase) halves a parked goroutine's stack: in place (MADV_DONTNEED and
// re-guard the lower half) while the halved stack still fills at least its reserve, or when
// pinned; otherwise (pure copying, stack_reserve = 0, or a stack in a big slot) by copying into
// a smaller slot, as Go does.
#include "runtime/stack/grow.hpp"

#include <cstring>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "weft/stack.hpp"

namespace weft::detail {

std::size_t round_up_pow2(std::size_t v) noexcept {
  std::size_t r = 1;
  while (r < v) r <<= 1;
  return r;
}

void check_stack_max(sched* s, g* gp, std::size_t size) noexcept {
  std::size_t max = s->stacks.config().stack_max;
  if (size > max)
    fatal("goroutine %llu stack exceeds %zu-byte limit (it needs %zu bytes; raise WEFT_STACK_MAX or "
          "options::stack_max, or look for runaway recursion)",
          (unsigned long long)gp->id, max, size);
}

namespace {

// Adjusts every aligned word in [from, to) that points into [old_lo, old_hi) by delta.
void adjust_pointers(std::uintptr_t from, std::uintptr_t to, std::uintptr_t old_lo, std::uintptr_t old_hi,
                     std::intptr_t delta) noexcept {
  for (auto* w = reinterpret_cast<std::uintptr_t*>(from); w < reinterpret_cast<std::uintptr_t*>(to); ++w) {
    std::uintptr_t v = *w;
    if (v - old_lo < old_hi - old_lo) *w = v + static_cast<std::uintptr_t>(delta);
  }
}

// Moves gp (not running) into `fresh`, which the caller allocated.
void move_stack(sched* s, m* mp, g* gp, const stack& fresh) noexcept {
  stack old = gp->stk;
  auto sp = reinterpret_cast<std::uintptr_t>(gp->ctx);
  std::size_t used = old.hi - sp;
  std::intptr_t delta = static_cast<std::intptr_t>(fresh.hi) - static_cast<std::intptr_t>(old.hi);
  std::uintptr_t new_sp = fresh.hi - used;
  stack_reused(fresh.lo, fresh.hi);
  std::memcpy(reinterpret_cast<void*>(new_sp), reinterpret_cast<void*>(sp), used);
  adjust_pointers(new_sp, fresh.hi, old.slot_lo, old.hi, delta);
  gp->ctx = reinterpret_cast<fcontext_t>(new_sp);
  gp->stk = fresh;
  gp->limit = fresh.lo + kStackHeadroom;
  s->st.stack_copies.fetch_add(1, std::memory_order_relaxed);
  s->st.stack_bytes_copied.fetch_add(used, std::memory_order_relaxed);
  p* pp = mp ? mp->pp : nullptr;
  stack_reused(old.slot_lo, old.hi);
  s->stacks.free(old, pp ? &pp->scache : nullptr);
}

struct grow_req {
  std::size_t new_size;
};

// Post-switch action on g0: grow the goroutine that just switched here, and have g0 resume it.
void grow_post(m* mp, g* gp, void* arg) noexcept {
  std::size_t new_size = static_cast<grow_req*>(arg)->new_size;
  copy_stack(mp->s, mp, gp, new_size);
  mp->resume_g = gp;
}

}  // namespace

void copy_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept {
  if (gp->pins.load(std::memory_order_acquire) != 0)
    fatal("goroutine %llu needs a %zu-byte stack but its %zu-byte slot is full and the stack is pinned "
          "(%u pins: a weft::stack_pin, a weft sync object on its stack, or a go([&]...) child still "
          "running), so it cannot be copied.  Raise WEFT_STACK_RESERVE (options::stack_reserve) to at "
          "least %zu so it grows in place, or end the pin before recursing deeper",
          (unsigned long long)gp->id, new_size, s->stacks.capacity(gp->stk), gp->pins.load(), new_size);
  p* pp = mp ? mp->pp : nullptr;
  stack fresh;
  try {
    fresh = s->stacks.alloc(new_size, pp ? &pp->scache : nullptr);
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot grow its stack to %zu bytes: %s", (unsigned long long)gp->id, new_size, e.what());
  }
  move_stack(s, mp, gp, fresh);
}

void shrink_stack(sched* s, m* mp, g* gp, std::size_t new_size) noexcept {
  const stack_config& cfg = s->stacks.config();
  bool in_place = gp->pins.load(std::memory_order_acquire) != 0 || new_size >= cfg.reserve;
  if (!in_place) {
    p* pp = mp ? mp->pp : nullptr;
    try {
      move_stack(s, mp, gp, s->stacks.alloc(new_size, pp ? &pp->scache : nullptr));
      return;
    } catch (...) {
      in_place = true;  // no memory for a smaller copy: halving in place is still correct
    }
  }
  try {
    s->stacks.shrink_in_place(gp->stk, new_size);
    gp->limit = gp->stk.lo + kStackHeadroom;
  } catch (...) {
    // madvise refused: the stack keeps its size, which is still correct.
  }
}

void ensure_stack_slow(std::size_t bytes) {
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp) return;
  if (gp->preempt.load(std::memory_order_acquire)) {
    arch::store_limit(gp->limit);
    gosched();  // clears preempt; may resume on another M
    mp = current_m();
  }
  std::uintptr_t sp = arch::stack_pointer();
  if (sp - bytes >= gp->limit && sp >= bytes) return;
  sched* s = mp->s;
  std::size_t need = round_up_pow2(gp->stk.hi - sp + bytes + kStackHeadroom);
  if (need < 2 * gp->stk.size()) need = 2 * gp->stk.size();
  check_stack_max(s, gp, need);
  ++gp->grows;
  s->st.stack_grows.fetch_add(1, std::memory_order_relaxed);
  if (need <= s->stacks.capacity(gp->stk)) {
    bool grown = false;
    try {
      grown = s->stacks.grow_in_place(gp->stk, need);
    } catch (const std::exception& e) {
      fatal("goroutine %llu cannot grow its stack in place to %zu bytes: %s", (unsigned long long)gp->id, need, e.what());
    }
    if (grown) {
      gp->limit = gp->stk.lo + kStackHeadroom;
      arch::store_limit(gp->preempt.load(std::memory_order_relaxed) ? ~std::uintptr_t{0} : gp->limit);
      return;
    }
  }
  grow_req req{need};
  switch_to(mp, nullptr, grow_post, &req);
}

void pin_current(int delta) noexcept {
  g* gp = current_g();
  if (!gp) return;
  if (delta > 0) gp->pins.fetch_add(1, std::memory_order_relaxed);
  else gp->pins.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace weft::detail
