// SPDX-License-Identifier: Apache-2.0
// pin.cpp — automatic pins for sync objects on a goroutine's stack (weft/detail/pin.hpp).
#include "runtime/sched/sched.hpp"
#include "weft/detail/pin.hpp"

namespace weft::detail {

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
  if (g* gp = owner_of(p)) gp->pins.fetch_add(1, std::memory_order_relaxed);
}

void unpin_if_on_stack(const void* p) noexcept {
  if (g* gp = owner_of(p)) gp->pins.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace weft::detail
