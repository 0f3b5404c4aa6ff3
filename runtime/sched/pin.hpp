// SPDX-License-Identifier: Apache-2.0
// pin.hpp — stack pins: what keeps a goroutine's stack where it is.
//
// A copy (stack_strategy::copy, or a shrink into a smaller slot) moves a stack and adjusts
// only the pointers it can find; a pointer into the stack held anywhere else would dangle.
// So whatever holds such a pointer pins the stack first, and a pinned stack is never moved:
// it grows in place or by a segment, shrinks in place, and a growth that could only be done by
// moving it is a fatal error naming the pins (copystack.cpp).  The pins, all counted in one
// word, g::pins:
//   - a blocked goroutine's waiter and timer, which wait queues point at (park.cpp, block);
//   - a weft sync object living on the stack (wait_group, mutex...; weft/detail/pin.hpp);
//   - the user's weft::stack_pin (weft/stack.hpp);
//   - a spawn whose closure holds an address in the spawner's stack (go([&]...)), held in the
//     child's record until its closure is destroyed (DESIGN §3).
// Two counts.  g::pins holds the pins a goroutine takes itself (its waits, its sync objects,
// its stack_pins): only it changes them, with a plain load and store — a park pins and unpins
// at every wait, and a locked add twice per wait was a measurable part of a channel round
// trip.  g::child_pins holds its children's pins, which the children release from other
// threads: atomic adds, with release, and the code that decides to move a stack reads both
// counts with acquire, so a pin released by a child is seen together with everything the child
// did before.  Whoever reads another goroutine's own count does so while it is parked (a scan
// or a dump holds its status), after the park that published it.
//
// Rejected: a pin per object in a side table (a lookup on every growth decision, and memory
// per pin); wrapping a pinning closure in another (a heap allocation per spawn).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/sched/g.hpp"
#include "runtime/stack/valgrind.hpp"
#include "weft/detail/goroutine.hpp"

namespace weft::detail {

// A pin the running goroutine gp takes on its own stack, and its release.
inline void pin(g* gp) noexcept { gp->pins.store(gp->pins.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
inline void unpin(g* gp) noexcept { gp->pins.store(gp->pins.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
// Every pin on gp's stack, its own and its children's.
inline std::uint32_t pin_count(const g* gp) noexcept {
  return gp->pins.load(std::memory_order_acquire) + gp->child_pins.load(std::memory_order_acquire);
}
// Whether gp's stack may not move now.
inline bool pinned(const g* gp) noexcept { return pin_count(gp) != 0; }

// Whether any aligned word of [data, data + len) holds an address in [lo, hi).  Every word
// counts, whatever its type: an integer that happens to look like such an address pins the
// parent for nothing.
inline bool points_into(const void* data, std::size_t len, std::uintptr_t lo, std::uintptr_t hi) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (addr + 7) & ~std::uintptr_t{7}, end = addr + len, span = hi - lo;
  vg::make_defined(data, len);  // memcheck: the captures' padding is read on purpose
  bool hit = false;
  for (std::uintptr_t w = first; w + 8 <= end; w += 8) {
    std::uintptr_t v;
    __builtin_memcpy(&v, reinterpret_cast<const void*>(w), sizeof v);
    hit |= v - lo < span;
  }
  return hit;
}

// At a spawn from goroutine `parent` (or nullptr, a plain thread): pins parent's stack if the
// child's closure c points into it, and returns the goroutine to record as the child's pinned
// parent (or nullptr).  Only the captures are scanned (closure::bytes), not the closure's own
// header, whose padding holds whatever the record held before; only the current stack counts
// (older segments of a segmented stack never move).
inline g* pin_parent_if_captured(g* parent, closure* c) noexcept {
  if (!parent) return nullptr;
  auto [data, len] = c->bytes();
  if (!points_into(data, len, parent->stk.slot_lo, parent->stk.hi)) return nullptr;
  parent->child_pins.fetch_add(1, std::memory_order_relaxed);
  return parent;
}

// At a child's exit, once its closure is destroyed: releases the pin on its parent, if any
// (pin.cpp).
void release_parent_pin_slow(g* child) noexcept;
inline void release_parent_pin(g* child) noexcept {
  if (__builtin_expect(child->pinned_parent != nullptr, 0)) release_parent_pin_slow(child);
}

}  // namespace weft::detail
