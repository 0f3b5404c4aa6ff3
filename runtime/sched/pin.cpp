// SPDX-License-Identifier: Apache-2.0
// pin.cpp — the out-of-line pins: a child releasing its parent's, the user's weft::stack_pin,
// and the automatic pins of weft sync objects on a stack (pin.hpp has the design).
#include "runtime/sched/pin.hpp"

#include <utility>

#include "runtime/sched/sched.hpp"
#include "weft/detail/pin.hpp"
#include "weft/stack.hpp"

namespace weft::detail {

void release_parent_pin_slow(g* child) noexcept {
  g* parent = std::exchange(child->pinned_parent, nullptr);
  // A parent that exited first left its children dangling references — a bug in the user's
  // program; the id check keeps it from unpinning whoever reuses the parent's record.
  if (__atomic_load_n(&parent->id, __ATOMIC_RELAXED) == child->pinned_parent_id)
    parent->child_pins.fetch_sub(1, std::memory_order_release);
}

void pin_current(int delta) noexcept {
  g* gp = current_g();
  if (!gp) return;
  if (delta > 0) pin(gp);
  else unpin(gp);
}

namespace {

// The whole slot counts, not just the accessible part: the object may sit in a part of the
// stack that a later in-place shrink makes inaccessible only after the object is gone, and
// the range [slot_lo, hi) never changes while the goroutine runs on this slot.
g* owner_of(const void* p) noexcept {
  g* gp = current_g();
  if (!gp) return nullptr;
  auto a = reinterpret_cast<std::uintptr_t>(p);
  return a >= gp->stk.slot_lo && a < gp->stk.hi ? gp : nullptr;
}

}  // namespace

void pin_if_on_stack(const void* p) noexcept {
  if (g* gp = owner_of(p)) pin(gp);
}

void unpin_if_on_stack(const void* p) noexcept {
  if (g* gp = owner_of(p)) unpin(gp);
}

}  // namespace weft::detail
