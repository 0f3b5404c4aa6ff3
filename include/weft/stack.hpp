// SPDX-License-Identifier: Apache-2.0
// weft/stack.hpp — the running goroutine's stack: what it is, making room, keeping it still.
//
// Plain threads: all of it: no-ops there (no goroutine stack), except scan(), which scans the runtime.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/detail/tcb.hpp"
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

namespace detail {
// The slow path of ensure_stack: yields if sysmon asked, then grows the stack (in place, or by
// copying it) so that `bytes` more fit below the stack pointer.
WEFT_API void ensure_stack_slow(std::size_t bytes);
WEFT_API void pin_current(int delta) noexcept;
}  // namespace detail

// Makes sure `bytes` of stack are free below the caller's frame, growing the stack if not.
// Use it before deep recursion or big frames in code built without -fsplit-stack.  The fast
// path is two loads and a compare (two for a `bytes` the compiler does not know): the limit lives in the thread's stack-limit slot (on
// x86_64 the word -fsplit-stack prologues read, %fs:0x70; 0 on threads without goroutines).
// A stack grown past its slot is *copied*: see README "What a stack copy breaks".
// Always inlined and without a split-stack prologue of its own, even at -O0 in code built
// with -fsplit-stack: the check must be about the caller's stack, not answered by a segment
// that __morestack linked for this function alone.
#if defined(__GNUC__)
[[gnu::always_inline, gnu::no_split_stack]] inline void ensure_stack(std::size_t bytes);
#endif
inline void ensure_stack(std::size_t bytes) {
#if defined(__x86_64__)
  std::uintptr_t sp, limit;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  asm volatile("mov %%fs:%c1, %0" : "=r"(limit) : "i"(WEFT_TCB_LIMIT_SLOT));  // weft/detail/tcb.hpp
  // A request of a terabyte or more (more than any stack_max allows) would wrap sp - bytes
  // past zero and pass the compare: it goes to the slow path, which reports it.  For a
  // constant `bytes` the compiler drops the first test.
  if (__builtin_expect(bytes >= (std::size_t{1} << 40) || sp - bytes < limit, 0)) detail::ensure_stack_slow(bytes);
#else
  detail::ensure_stack_slow(bytes);
#endif
}

// Keeps the calling goroutine's stack where it is while the pin lives: it is never moved by
// copying (growth past its slot becomes a fatal error naming the pin; shrinking happens in
// place only).  Use it while something the stack scan cannot see — a heap object, another
// thread — holds the address of a local.  Pins nest; a pin must end on the goroutine that
// made it.  On a plain thread it does nothing.
class stack_pin {
 public:
  stack_pin() noexcept { detail::pin_current(+1); }
  ~stack_pin() { detail::pin_current(-1); }
  stack_pin(const stack_pin&) = delete;
  stack_pin& operator=(const stack_pin&) = delete;
};

// One scan phase now: shrinks stacks of parked goroutines that use under a quarter of theirs,
// and returns pooled stack memory to the OS.  Returns when done.
WEFT_API void scan();

}  // namespace weft

// WEFT_STACK_CHECK(bytes): the macro form of weft::ensure_stack.
#define WEFT_STACK_CHECK(bytes) ::weft::ensure_stack(bytes)
