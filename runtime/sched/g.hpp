// SPDX-License-Identifier: Apache-2.0
// g.hpp — a goroutine (Go's g), and who owns it in each state.
//
// States, by ownership.  Changes go through set_status/cas_status, which check the transition,
// except the direct switches' assembly (switch.hpp: runnable after a yield, waiting after a
// park, each once the context is saved) and five plain stores, each where nobody else can
// hold the record: a record's first state and its last (goroutine.cpp: dead when made,
// runnable at spawn, dead at exit), and the scanner's and the dump's return to waiting
// (scan.cpp, dump.cpp) after their own CAS took it.
//
//   idle      just made: owned by the spawner until it first enters a run queue.
//   runnable  in a run queue (a P's ring, a P's runnext, or the global queue): owned by the
//             queue; whoever takes it out owns it.
//   running   on an M: owned by that M.  Its stack is live; nobody else reads or moves it.
//   parking   committed to wait (its waker can find it) but still saving its context, on
//             its own M: the direct park (park.cpp).  The switch's assembly stores `waiting`
//             once the context is saved; ready() waits for that, as for a scan.
//   waiting   parked: owned by what will wake it (a wait queue, a timer, a completion).
//             Its stack is still; the scanner may take it (waiting → scanning) to shrink it,
//             and ready() waits for the scan to finish before making it runnable.
//   syscall   inside blocking(f): owned by its M, which may have lost its P.
//   dead      finished: owned by the free list; its stack has gone back to the pool.
//
// A switch never reads a G's fields after the post-switch action that publishes it (makes it
// runnable or visible to a waker): from then on another M may be running it.
//
// Sized and ordered for the cache (below): what only diagnostics read sits in its last lines.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <boost/context/detail/fcontext.hpp>
#if defined(WEFT_SANITIZE_THREAD)
#include <sanitizer/tsan_interface.h>
#endif

#include "runtime/diag/fatal.hpp"
#include "runtime/stack/stack_pool.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

struct closure;
struct m;
struct segment;
using boost::context::detail::fcontext_t;

// `parking`: a goroutine that has committed to wait (its waiter is published, its lock
// released) but whose context is not saved yet: it is between its park and the switch that
// saves it (park.cpp, the direct park).  The switch stores `waiting` once it has saved.
enum class gstatus : std::uint32_t { idle, runnable, running, waiting, syscall, dead, scanning, parking };

const char* status_name(gstatus s) noexcept;

// The per-thread C++ state a goroutine carries with it across switches and migrations.
struct thread_state {
  void* eh_caught = nullptr;  // __cxa_eh_globals::caughtExceptions
  int err = 0;                // errno
  unsigned eh_uncaught = 0;   // __cxa_eh_globals::uncaughtExceptions
};

// Laid out for the cache: a tree of a million goroutines queues tens of thousands at once, and
// the record of each must stay cached until it runs.  Line 0 holds what every switch reads
// or writes, line 1 what spawn, park and exit do, then the closure (its first line, 48 bytes
// of captures, is all most closures use), then the rest.  A spawn writes lines 0-2 only (and
// the closure's second line if it needs it; pinned_parent_id for a pinned parent): a record
// on the free list is clean (gdead_post resets what its last goroutine changed while the
// record is still cached).  The scheduler fetches a queued G's lines ahead of its run (prefetch_queued).
struct alignas(64) g {
  // Line 0.
  fcontext_t ctx = nullptr;        // saved context while not running; null until its first run
  stack stk;                       // its stack (stk.lo moves as it grows in place); until its
                                   // first run, the stack reserved for it (start_context)
  std::atomic<gstatus> status{gstatus::idle};
  std::atomic<std::uint32_t> pins{0};      // pins it holds itself (pin.hpp): only it changes them
  closure* fn = nullptr;           // its body: in `body`, or on the heap if too big for it
  std::uint32_t grows = 0, shrinks = 0;
  // Line 1.
  std::uint64_t id = 0;
  g* sched_link = nullptr;         // run queue / free list link
  thread_state tls;
  m* locked_m = nullptr;           // lock_thread: the M it is wired to
  g* pinned_parent = nullptr;      // whose stack fn points into (pin.hpp); unpinned at exit
  stack* spare = nullptr;          // split stacks: the last segment left, kept for the next link
  std::atomic<bool> preempt{false};        // sysmon asked it to yield
  std::atomic<std::uint32_t> child_pins{0};  // pins its go([&]...) children hold on it (pin.hpp)
  // Lines 2-3: a closure of up to kInlineClosureMax bytes is built here (weft/runtime.hpp), so
  // a spawn needs no heap allocation and the body sits beside the record the scheduler
  // fetches.  Never on the goroutine's stack: the stack a goroutine first runs on is chosen
  // only at that run.  A stack copy adjusts the words here like the stack's (move_stack).
  alignas(16) unsigned char body[kInlineClosureMax];
  // The rest: rarely touched.
  const char* wait_reason = "";    // for dumps: what it is parked on (set by every park)
  segment* seg = nullptr;          // split stacks: the newest link (sched/grow.hpp)
  std::uint64_t pinned_parent_id = 0;  // its id then: a parent that exited first is not unpinned
  g* all_link = nullptr;           // the list of every G (scans, dumps)
  void* asan_fake_stack = nullptr; // AddressSanitizer fiber bookkeeping
  stack* asan_moved_from = nullptr; // AddressSanitizer: stacks it was copied out of (sched/grow.cpp)
  void* tsan_fiber = nullptr;      // ThreadSanitizer fiber
  std::uint32_t quarantined = 0;   // its moved-from stacks still quarantined (sched/quarantine.cpp)
  std::uint32_t lock_depth = 0;    // lock_thread nesting (non-zero only while locked_m is set)
  std::uintptr_t created_pc = 0;   // for dumps: the call site of the go/spawn that made it
  std::int64_t wait_since = 0;     // for dumps: when it last parked (sched::coarse_now, ns)
};
static_assert(offsetof(g, id) == 64 && offsetof(g, body) == 128 && sizeof(g) == 320,
              "g's lines moved: update the layout comment and prefetch_queued");

// The headroom below which a check grows the stack: the runtime's own work on a goroutine
// stack (a post-switch action, a parking call, the check's slow path) fits in it, twice over
// (tests/grow/grow_test.cpp, GrowHeadroom, measures the deepest use; the numbers are in
// BENCHMARKS.md, "Architecture (issue 17)").  Sanitizers grow frames several-fold.
#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
inline constexpr std::size_t kStackHeadroom = 32 * 1024;
#else
inline constexpr std::size_t kStackHeadroom = 4096;
#endif

// What a goroutine's checks compare the stack pointer with.
inline std::uintptr_t limit_of(const g* gp) noexcept { return gp->stk.lo + kStackHeadroom; }

// A transition only the current owner can make (a G it just took from a queue, or the G it is
// running): no other thread writes the status meanwhile, so a store suffices; the queue or
// lock that then publishes the G orders it.  The old state is still checked.
[[noreturn]] void bad_status(g* gp, gstatus from, gstatus to, gstatus cur) noexcept;

inline void set_status(g* gp, gstatus from, gstatus to) noexcept {
  gstatus cur = gp->status.load(std::memory_order_relaxed);
  if (__builtin_expect(cur != from, 0)) bad_status(gp, from, to, cur);
  gp->status.store(to, std::memory_order_release);
}

// The direct switch's assembly stores the status of the goroutine it leaves (switch.hpp), out
// of ThreadSanitizer's sight: the switch annotates a release on the status word before it,
// and whoever acts on a status it read — a claim, a ready, a scan — annotates the acquire.
// Nothing without ThreadSanitizer.
inline void tsan_acquire_status([[maybe_unused]] g* gp) noexcept {
#if defined(WEFT_SANITIZE_THREAD)
  __tsan_acquire(&gp->status);
#endif
}

// Out of line (goroutine.cpp): cas_status found gp held — being scanned (waiting → scanning →
// waiting) or still parking (parking → waiting, once its switch has saved it) — and waits
// that out, or found it in a state the change may not start from (a fatal error).
void cas_status_slow(g* gp, gstatus from, gstatus to, gstatus cur) noexcept;

inline void cas_status(g* gp, gstatus from, gstatus to) noexcept {
  gstatus cur = from;
  if (__builtin_expect(!gp->status.compare_exchange_strong(cur, to, std::memory_order_acq_rel), 0))
    cas_status_slow(gp, from, to, cur);
  tsan_acquire_status(gp);
}

}  // namespace weft::detail
