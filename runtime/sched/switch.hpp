// SPDX-License-Identifier: Apache-2.0
// switch.hpp — moving an M from one context (a goroutine, or its own g0) to another.
//
// Every switch is one ontop_fcontext: the target resumes, but first `on_switch` runs on the
// target's stack and (1) records where the source stopped, (2) runs the source's post-switch
// action — make it runnable, park it, free it — which is safe only now that its context is
// saved and its stack is no longer in use, (3) installs the target's per-thread C++ state
// (errno, the exception globals) and stack limit.  So a yield or park that finds another
// goroutine ready costs one switch, not two through g0 (Boost.Fiber uses ontop the same way).
//
// A yield needs less: its only post action is "runnable", so switch_direct (below) puts the
// goroutine on its queue first and has the assembly store that status after saving the
// context — no ontop call, no on_switch, no post action: a third fewer instructions per yield
// round trip than through on_switch (BENCHMARKS.md, "Architecture (issue 17)").  Rejected: the same trick
// for parking, whose commit may fail and must run after the save; and doing without the status
// store (a stealer could resume a context that is not yet saved).
//
// What a switch saves: the callee-saved registers, the stack pointer, the x87 control word and
// MXCSR (Boost.Context's frame); errno; libstdc++'s caught-exception stack and uncaught count.
// What it does not: the signal mask, SIMD registers (caller-saved in the SysV ABI), and any
// other thread_local — a goroutine that relies on one must lock_thread().
#pragma once

#include "runtime/sched/sched.hpp"

namespace weft::detail {

// Switches the calling context on `mp` (its curg, or g0 if curg is null) to `to` (null: g0).
// `post` runs on the target's stack once the source is saved.  Returns when the source is
// resumed — possibly on another M.
void switch_to(m* mp, g* to, post_action post, void* arg) noexcept;

// The direct switch, for a yield: from `from` (running, and already on a run queue with that
// status) straight to `to` (taken from a queue and set running by the caller), with no post
// action.  `from`'s status becomes `runnable` only once its context is saved (the assembly
// stores it last), so an M that takes `from` from a queue meanwhile must wait for that
// (wait_switched_out, queues.hpp) before resuming it.  A park uses switch_direct_parked,
// which stores `waiting`: its goroutine is `parking` until then, and ready() waits that out
// (cas_status_slow).  Half the work of switch_to: no ontop call, no on_switch, no post-switch
// action.  Built on x86_64 without AddressSanitizer (whose fiber hooks need a call on the far
// side of every switch); elsewhere gosched and park use switch_to.
#if defined(__x86_64__) && defined(__ELF__) && !defined(WEFT_SANITIZE_ADDRESS)
#define WEFT_DIRECT_SWITCH 1
void switch_direct(m* mp, g* from, g* to) noexcept;
void switch_direct_parked(m* mp, g* from, g* to) noexcept;  // stores `waiting` instead
#else
#define WEFT_DIRECT_SWITCH 0
#endif

// The first code a new goroutine's context runs (make_fcontext target).
void goroutine_entry(boost::context::detail::transfer_t t) noexcept;

// Called once on every M's thread before it runs goroutines: caches this thread's errno and
// exception-globals addresses, the limit slot, and sanitizer fiber handles.
void bind_thread(m* mp) noexcept;

// AddressSanitizer: a stack taken by a goroutine (new, or copied into) may hold the shadow
// poison of frames from its previous user; clear it.
void stack_reused(std::uintptr_t lo, std::uintptr_t hi) noexcept;

// Sanitizer bookkeeping for a G record being created / freed.
void fiber_created(g* gp) noexcept;
void fiber_destroyed(g* gp) noexcept;

}  // namespace weft::detail
