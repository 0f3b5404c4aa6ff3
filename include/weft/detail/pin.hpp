// SPDX-License-Identifier: Apache-2.0
// weft/detail/pin.hpp — automatic stack pins for weft sync objects (DESIGN.md §3).
//
// A wait_group, mutex or condition_variable keeps a queue of waiters whose records point at
// it, so one that lives on a goroutine's stack must keep that stack from being moved by a
// copy while it lives.  Their constructors call pin_if_on_stack(this) and their destructors
// unpin_if_on_stack(this).  Both do nothing on a plain thread or for an address outside the
// calling goroutine's stack (a global, a heap object).  The object must be destroyed on the
// goroutine that constructed it — the normal case for a local.
//
// Plain threads: both functions do nothing there.
#pragma once

#include "weft/export.hpp"

namespace weft::detail {

// Adds one pin to the calling goroutine if `p` lies in its stack slot.
WEFT_API void pin_if_on_stack(const void* p) noexcept;
// Removes the pin pin_if_on_stack(p) added (same test, same goroutine).
WEFT_API void unpin_if_on_stack(const void* p) noexcept;

}  // namespace weft::detail
