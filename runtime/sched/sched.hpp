// SPDX-License-Identifier: Apache-2.0
// sched.hpp — the scheduler's internal interface: Ms, Ps, the runtime instance, parking.
//
// See schedule.cpp for the design essay (the scheduling loop, the spinning protocol, handoff).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/sched/futex.hpp"
#include "runtime/sched/g.hpp"
#include "runtime/sched/gfree.hpp"
#include "runtime/sched/global_queue.hpp"
#include "runtime/sched/runq.hpp"
#include "runtime/sched/timers.hpp"
#include "runtime/stack/stack_pool.hpp"
#include "weft/options.hpp"

namespace weft::detail {

struct p;
struct sched;
struct plain_wait;
class netpoller;

enum class pstatus : std::uint32_t { idle, running, syscall, dead };

// An OS thread that runs goroutines.  Its scheduler context (Go's g0) runs on the thread's own
// stack; `g0ctx` holds it while a goroutine runs.
struct m {
  std::uint32_t id = 0;
  sched* s = nullptr;
  fcontext_t g0ctx = nullptr;
  g* curg = nullptr;              // the goroutine running on it, if any
  p* pp = nullptr;                // its P, if it holds one
  p* oldp = nullptr;              // in a blocking call: the P it held, which sysmon may take
  // Handed over by other threads: nextp before nextg (a reader that sees nextg sees nextp).
  std::atomic<p*> nextp{nullptr}; // a P handed to it while it slept
  std::atomic<g*> nextg{nullptr}; // with a wired goroutine to run (lock_thread)
  g* lockedg = nullptr;           // the goroutine wired to this M, if any
  g* resume_g = nullptr;          // a goroutine g0 must resume at once (after growing its stack)
  bool spinning = false;          // looking for work without finding it yet
  bool on_idle_list = false;      // on sched::midle (guarded by sched::lock)
  m* idle_link = nullptr;
  note park;                      // sleeps here when idle
  std::uintptr_t* limit_slot = nullptr;  // this thread's stack-limit slot (sysmon poisons it)
  thread_state g0_tls;            // the thread's own errno/EH state while on g0
  void* eh_globals = nullptr;     // this thread's __cxa_eh_globals
  int* errno_ptr = nullptr;       // this thread's errno
  void* sigaltstack_mem = nullptr;
  void* asan_fake_stack = nullptr;
  void* g0_stack_lo = nullptr;    // the thread's own stack, for AddressSanitizer
  std::size_t g0_stack_size = 0;
  void* tsan_fiber = nullptr;     // the thread's own (g0) fiber
  std::atomic<bool> exited{false};  // its scheduling loop has returned (stop may join it)
  std::thread thread;
};

// Freed task-state blocks (weft/detail/goroutine.hpp, kTaskBlockBytes), linked through
// their first word; only the M holding the P touches them.
struct task_blocks {
  static constexpr unsigned kCap = 1024;  // 128 KiB: a batch of a thousand joins fits
  void* head = nullptr;
  unsigned n = 0;
};
void drain_task_blocks(task_blocks& tb) noexcept;

// A processor: the right to run goroutines.  `procs` of them.
struct p {
  std::uint32_t id = 0;
  std::atomic<pstatus> status{pstatus::idle};
  m* mp = nullptr;
  runq q;
  std::atomic<g*> runnext{nullptr};
  // Set while this P's M is inside wakep's wake-up of another M (a futex syscall, some µs):
  // a thief does not count that time towards its runnext grace (steal_from).
  // On its own cache line: thieves poll it, and runnext's line is written at every hand-off.
  alignas(64) std::atomic<bool> waking{false};
  stack_cache scache;
  gfree_local gfree;              // dead Gs' records for reuse (gfree.hpp)
  task_blocks tblocks;            // freed task states' blocks for reuse (api.cpp)
  // Goroutines made and ended by the M holding this P (one writer: see live_goroutines), and
  // the goroutine ids it hands out next, taken from sched::next_goid kGoidBatch at a time.
  std::atomic<std::uint64_t> made{0}, ended{0};
  std::uint64_t goid_next = 0, goid_end = 0;
  std::atomic<std::uint64_t> schedtick{0};    // goroutines scheduled here (sysmon watches it)
  std::atomic<std::uint64_t> syscalltick{0};  // blocking() calls entered here
  p* idle_link = nullptr;
  // sysmon's view of this P on its last pass
  std::uint64_t sm_schedtick = 0, sm_syscalltick = 0;
  std::int64_t sm_when = 0;
};

// Counters with one writer (the P's M) and relaxed readers (sysmon): no locked increment.
inline void bump(std::atomic<std::uint64_t>& c) noexcept { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

struct sched_stats {
  std::atomic<std::uint64_t> threads{0}, steals{0}, scans{0}, preemptions{0};
  std::atomic<std::uint64_t> stack_grows{0}, stack_shrinks{0}, stack_copies{0}, stack_bytes_copied{0};
};

// The runtime instance.
struct sched {
  explicit sched(const options& o);
  ~sched();
  void start();                   // starts the Ms and sysmon
  void wait_all_done() noexcept;  // until no goroutine is alive
  // Stops Ms and sysmon.  Waiting (the runtime's destructor): joins every M, and goroutines
  // abandoned parked are freed.  Abandoning (weft::run once main_fn returned): an M still
  // running a goroutine — one that never reaches a check, or sits in a blocking call — is
  // detached and left to run; then it returns true, and the caller must keep this sched (its
  // records and stacks are that M's) for the rest of the process.
  bool stop(bool abandoning = false) noexcept;

  options opts;
  stack_pool stacks;
  std::vector<std::unique_ptr<p>> allp;
  std::vector<std::unique_ptr<m>> allm;   // guarded by lock
  int mstarting = 0;              // guarded by lock: Ms in allm whose std::thread is not stored yet

  futex_mutex lock;                  // idle lists, global queue, allm, timer sleeper
  global_queue gq;                // global run queue (runtime/sched/global_queue.hpp)
  p* pidle = nullptr;
  std::atomic<std::uint32_t> npidle{0};
  m* midle = nullptr;
  std::atomic<std::uint32_t> nmspinning{0};
  std::atomic<bool> stopping{false};
  m* timer_sleeper = nullptr;     // the idle M sleeping until the next timer
  std::int64_t timer_sleeper_deadline = 0;

  gfree_global gfree;             // dead Gs' records beyond the Ps' own (gfree.hpp)

  futex_mutex allg_lock;             // every G ever made and not freed, for scans and dumps
  g* allg = nullptr;

  timer_heap timers;
  std::atomic<netpoller*> netpoll{nullptr};  // made on the first wait_readable/wait_writable
  std::atomic<std::uint64_t> next_goid{1};
  sched_stats st;

  // Goroutines made / ended where no P was held (a plain thread's go()); with the Ps' own
  // counters they give live_goroutines.
  std::atomic<std::uint64_t> made_without_p{0}, ended_without_p{0};
  note all_done;                  // signalled when live_goroutines() drops to zero
  std::atomic<bool> waiting_all_done{false};

  sched* left_behind_link = nullptr;  // on the list of schedulers a stop left Ms running in

  // Plain threads blocked inside weft without a deadline, for the deadlock check (deadlock.hpp).
  // (The lock is one for the process, plain_wait_lock in deadlock.cpp: a plain thread may
  // still be blocked when this sched is destroyed, and then must not touch it.)
  plain_wait* plain_waits = nullptr;  // guarded by plain_wait_lock
  std::uint64_t plain_gen = 0;        // guarded by plain_wait_lock: bumped at every change
  std::uint64_t deadlock_seen = 0;    // sysmon's: the quiet state its last pass saw, or 0

  // A clock for what only dumps read (g::wait_since): monotonic ns, refreshed by sysmon on
  // each pass and by an M leaving its idle sleep, so a park stores it instead of reading the
  // clock.  It may lag by one sysmon pass (up to 10 ms while anything runs).
  std::atomic<std::int64_t> coarse_now{0};

  // sysmon
  std::thread sysmon_thread;
  note sysmon_note;
  std::atomic<bool> sysmon_sleeping{false};
};

// ---- the current thread ----------------------------------------------------------------
// These read thread_locals through a call the compiler cannot fold: after a switch a goroutine
// may be on another thread, and a cached TLS address would name the old one.
m* current_m() noexcept;
sched* current_sched() noexcept;          // the running runtime, or nullptr
inline g* current_g() noexcept {
  m* mp = current_m();
  return mp ? mp->curg : nullptr;
}
// "goroutine N", or "a thread that runs no goroutine": who runs here, for fatal reports.
void describe_current(char* buf, std::size_t n) noexcept;

// ---- parking -----------------------------------------------------------------------------
// Runs after the parked goroutine's context is saved, on another stack.  Returns false to
// resume the goroutine at once (the event it waited for already happened).
using park_commit = bool (*)(g* gp, void* arg) noexcept;

// Parks the running goroutine.  Must be called on a goroutine.
void park(park_commit commit, void* arg, const char* reason) noexcept;
// Makes a parked goroutine runnable (waiting → runnable) and wakes an M if one is needed.
// `by_ending`: the waker is a goroutine that is ending (a task's completion): gp goes behind
// the work queued on the waker's P rather than into runnext (schedule.cpp's essay).
void ready(g* gp, bool by_ending = false) noexcept;
// Yields the running goroutine to others (goroutine only).
void gosched() noexcept;
void gosched_on(m* mp) noexcept;  // mp: current_m(), already looked up
// Yields because sysmon asked (g::preempt): to the global queue, through g0.
void gopreempt_on(m* mp) noexcept;

// A goroutine or plain thread blocked on something, with a one-shot claim so that exactly one
// of several wakers (a sender, a timer, a close) wakes it.
struct waiter {
  g* gp = nullptr;                         // nullptr: a plain thread, sleeping on `thread_note`
  note thread_note;
  std::atomic<std::uint32_t> claimed{0};
  void* data = nullptr;                    // what the waker hands over (e.g. a value slot)
  std::uintptr_t result = 0;               // what happened (defined by the user of the waiter)
  waiter* next = nullptr;                  // in a wait queue
  waiter* prev = nullptr;

  waiter() noexcept {                      // binds to the current goroutine or thread
    m* mp = current_m();
    gp = mp ? mp->curg : nullptr;
  }
  bool try_claim() noexcept {
    std::uint32_t z = 0;
    return claimed.compare_exchange_strong(z, 1, std::memory_order_acq_rel);
  }
  // After a successful try_claim: wakes the goroutine or thread.
  void wake() noexcept;
};

// Blocks until `w` is woken.  `unlock(arg)` runs once the caller is committed to sleeping
// (for a goroutine: after its context is saved) and releases whatever lock protected the
// registration of `w`.  With a deadline (CLOCK_MONOTONIC ns, 0 = none), a timer claims and
// wakes `w` when it passes.  Returns true if woken by someone else, false if by the deadline.
bool block(waiter& w, void (*unlock)(void*) noexcept, void* arg, const char* reason, std::int64_t deadline_ns = 0) noexcept;

// ---- goroutine counts --------------------------------------------------------------------
// Made and ended are counted per P, not on two shared words every goroutine would write
// (with 2 Ps those cache lines bounced on every spawn and exit: BENCHMARKS.md, "Architecture (issue 17)").
std::uint64_t live_goroutines(sched* s) noexcept;   // exact when nothing is being made or ending
std::uint64_t made_goroutines(sched* s) noexcept;

// ---- scheduler internals shared by the files of runtime/sched ---------------------------
// Wakes an M to look for work if there is an idle P and nobody is looking (Go's wakep), and
// sysmon if it sleeps.  Every ready and spawn calls it, and mostly there is nothing to do:
// the three loads here, the rest out of line (threads.cpp).
void wakep_slow(sched* s) noexcept;
inline void wakep(sched* s) noexcept {
  if (__builtin_expect(s->sysmon_sleeping.load(std::memory_order_relaxed), 0) ||
      (s->npidle.load(std::memory_order_acquire) != 0 && s->nmspinning.load(std::memory_order_relaxed) == 0))
    wakep_slow(s);
}
p* pidle_get_locked(sched* s) noexcept;          // an idle P, or nullptr; sched.lock held
void acquirep(m* mp, p* pp) noexcept;             // mp takes pp and runs with it
void handoffp(sched* s, p* pp) noexcept;
void runq_put(sched* s, p* pp, g* gp, bool next) noexcept;
// Puts a runnable gp on pp's run queue (in runnext if `next`), or, without a P, on the global
// queue.
void put_runnable(sched* s, p* pp, g* gp, bool next) noexcept;
// Making a goroutine, in two steps around building its closure (api.cpp).  reserve_goroutine
// takes a G record and a stack_min stack for it from the calling thread's P (mp may be
// nullptr), or throws (resource_error, std::bad_alloc) with nothing taken.  Then either
// launch_goroutine makes it runnable with closure c — in gp->body or on the heap; `pin`, which
// the caller has pinned, is the goroutine whose stack c points into, unpinned once c is
// destroyed — or abandon_goroutine gives both back.
g* reserve_goroutine(sched* s, m* mp);
std::uint64_t launch_goroutine(sched* s, m* mp, g* gp, closure* c, g* pin) noexcept;
void abandon_goroutine(sched* s, m* mp, g* gp) noexcept;
// A G's first run, just before the switch to it (switch.cpp): trades its reserved stack for
// the warmest one mp's P has cached, and makes its initial context there.
void start_context(m* mp, g* gp) noexcept;
// heap_alloc (weft/runtime.hpp) for an over-aligned object: `bytes` a multiple of `align`.
void* heap_alloc_aligned(std::size_t bytes, std::size_t align);
// Called by heap_alloc and heap_alloc_aligned before they allocate, when set; may throw
// std::bad_alloc.  Only the test kit sets it (runtime/testing/testing.cpp).
extern std::atomic<void (*)()> heap_alloc_hook;
void start_sysmon(sched* s);
// WEFT_DEBUG=schedtrace: one summary line (and with scheddetail, one per P and M) on stderr,
// `since_start_ms` after the runtime started (trace.cpp).
void sched_trace(sched* s, std::int64_t since_start_ms) noexcept;
// What stats and the trace count by walking the records (trace.cpp).
struct sched_counts {
  std::uint64_t running = 0, runnable = 0, waiting = 0, blocking = 0, stack_bytes = 0;
  std::uint64_t runq_global = 0, runq_local = 0;
  std::uint64_t ms_idle = 0, ms_spinning = 0, ms_blocking = 0;
};
sched_counts count_sched(sched* s) noexcept;
void stop_sysmon(sched* s) noexcept;
void sysmon_wake(sched* s) noexcept;
void wake_timer_sleeper(sched* s, std::int64_t when) noexcept;
using post_action = void (*)(m* mp, g* from, void* arg) noexcept;
void switch_away(m* mp, post_action post, void* arg) noexcept;

// ---- blocking calls ----------------------------------------------------------------------
void enter_blocking() noexcept;   // Go's entersyscall
void exit_blocking() noexcept;    // Go's exitsyscall

}  // namespace weft::detail
