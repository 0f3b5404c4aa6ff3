// SPDX-License-Identifier: Apache-2.0
// goroutine.cpp — a goroutine's life: reserved and launched by a spawn, started on its first
// run, ended when its closure returns; its id and the live count.
//
// A G record is never freed while the runtime runs (scans and dumps walk allg without holding
// every record); a dead one goes to its P's free list clean, so that the next spawn writes only
// what differs per goroutine.  A stack is reserved at the spawn (running out is the spawner's
// error) but set up and written only at the first run, on the stack the P freed last if it has
// one to trade.  Status changes go through g.hpp's checked helpers; an impossible one is a
// fatal error naming the goroutine.
#include <exception>
#include <mutex>
#include <new>

#include <sched.h>

#include "arch/cpu.hpp"

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/pin.hpp"
#include "runtime/sched/quarantine.hpp"
#include "runtime/sched/queues.hpp"
#include "runtime/sched/switch.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

const char* status_name(gstatus st) noexcept {
  switch (st) {
    case gstatus::idle: return "idle";
    case gstatus::runnable: return "runnable";
    case gstatus::running: return "running";
    case gstatus::waiting: return "waiting";
    case gstatus::syscall: return "blocking call";
    case gstatus::dead: return "dead";
    case gstatus::scanning: return "being scanned";
    case gstatus::parking: return "parking";
  }
  return "?";
}

void bad_status(g* gp, gstatus from, gstatus to, gstatus cur) noexcept {
  fatal("goroutine %llu: bad status change %s -> %s (it is %s)", (unsigned long long)gp->id, status_name(from),
        status_name(to), status_name(cur));
}

void cas_status_slow(g* gp, gstatus from, gstatus to, gstatus cur) noexcept {
  // Both holds are short: a scan of one stack, or the few dozen instructions between a park's
  // commit and its saved context — unless the holder's thread was preempted meanwhile, when
  // spinning would only burn this CPU: then yield it.
  for (unsigned spins = 0;; ++spins) {
    if (from != gstatus::waiting || (cur != gstatus::scanning && cur != gstatus::parking)) bad_status(gp, from, to, cur);
    if (spins < 1024) arch::cpu_relax();
    else ::sched_yield();
    cur = from;
    if (gp->status.compare_exchange_weak(cur, to, std::memory_order_acq_rel)) return;
  }
}

// ---- goroutine counts -------------------------------------------------------------------
// Each P's `made` and `ended` have one writer, the M holding the P, which bumps them with a
// plain store (no locked instruction, no shared line); a P-less go() (a plain thread) uses the
// shared *_without_p words.  Live = made - ended, read in this order: every ended first, then
// every made.  A goroutine counted as ended was made before it ended (and its made store is
// visible to whoever saw the ended one: release stores, acquire loads), so made >= ended; and
// a sum of 0 means no goroutine was alive — one made after its P's `made` was read had a
// parent that was alive when the ended counts were read, so the sum could not have been 0.
// (Go likewise batches: runtime/proc.go's goidcache; its gcount() sums per-P free lists.)
namespace {

constexpr std::uint64_t kGoidBatch = 16;  // Go's _GoidCacheBatch

std::uint64_t new_goid(sched* s, p* pp) noexcept {
  if (!pp) return s->next_goid.fetch_add(1, std::memory_order_relaxed);
  if (pp->goid_next == pp->goid_end) {
    pp->goid_next = s->next_goid.fetch_add(kGoidBatch, std::memory_order_relaxed);
    pp->goid_end = pp->goid_next + kGoidBatch;
  }
  return pp->goid_next++;
}

void count_made(sched* s, p* pp) noexcept {
  if (pp) pp->made.store(pp->made.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  else s->made_without_p.fetch_add(1, std::memory_order_release);
}

// A goroutine has ended: counted, and if stop is waiting for the last one and this was it,
// the waiter is woken.  The count's store and the flag's load are sequentially consistent,
// pairing with wait_all_done's (one of the two sees the other).
void count_ended(sched* s, p* pp) noexcept {
  if (pp) pp->ended.store(pp->ended.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
  else s->ended_without_p.fetch_add(1, std::memory_order_seq_cst);
  if (s->waiting_all_done.load(std::memory_order_seq_cst) && live_goroutines(s) == 0) s->all_done.wake();
}

}  // namespace

std::uint64_t made_goroutines(sched* s) noexcept {
  std::uint64_t n = s->made_without_p.load(std::memory_order_seq_cst);
  for (auto& pp : s->allp) n += pp->made.load(std::memory_order_seq_cst);
  return n;
}

std::uint64_t live_goroutines(sched* s) noexcept {
  std::uint64_t ended = s->ended_without_p.load(std::memory_order_seq_cst);
  for (auto& pp : s->allp) ended += pp->ended.load(std::memory_order_seq_cst);
  return made_goroutines(s) - ended;
}

// ---- goroutine creation and exit ---------------------------------------------------------

// Dead G records (gfree.hpp): the P's own, else the global store.
static g* gfree_get(sched* s, p* pp) noexcept {
  if (pp) return pp->gfree.get(s->gfree);
  g* gp = nullptr;
  s->gfree.take(&gp, 1);
  return gp;
}

static void gfree_put(sched* s, p* pp, g* gp) noexcept {
  if (pp) pp->gfree.put(s->gfree, gp);
  else s->gfree.put(&gp, 1);
}

// A goroutine's stack is reserved at its spawn, so running out of stacks is the spawner's
// error (DESIGN §5), but a never-used slot is set up (guards, page tables) only at the first
// run, and nothing is written there until then: the closure is built in
// its record (or on the heap), and start_context makes the initial context only then — on
// the stack the running P freed last, if it has one to trade.  A tree of a million goroutines
// queues ~94,000 between a spawn and its run; a stack reserved at the spawn has long left the
// CPU's caches by then, while the one the previous goroutine just exited on has not.
// Trading cut skynet's time by 21-27% (BENCHMARKS.md).  Rejected: taking the stack only at
// the first run, which measured the same but leaves a spawn unable to report that stacks ran
// out (a first run could only die of it).
g* reserve_goroutine(sched* s, m* mp) {
  p* pp = mp ? mp->pp : nullptr;
  stack_cache* cache = pp ? &pp->scache : nullptr;
  const stack stk = s->stacks.alloc_min(cache);
  g* gp = gfree_get(s, pp);
  if (!gp) {
    void* mem;
    try {
      mem = heap_alloc_aligned(sizeof(g), alignof(g));
    } catch (...) {  // out of memory for the record: give back the stack, then report it
      s->stacks.free(stk, cache);
      throw;
    }
    gp = new (mem) g();
    fiber_created(gp);
    std::lock_guard<futex_mutex> l(s->allg_lock);
    gp->all_link = s->allg;
    s->allg = gp;
  }
  gp->stk = stk;
  return gp;
}

void abandon_goroutine(sched* s, m* mp, g* gp) noexcept {
  p* pp = mp ? mp->pp : nullptr;
  s->stacks.free(gp->stk, pp ? &pp->scache : nullptr);
  gp->stk = {};
  gp->status.store(gstatus::dead, std::memory_order_relaxed);  // (dumps skip dead records)
  gfree_put(s, pp, gp);
}

std::uint64_t launch_goroutine(sched* s, m* mp, g* gp, closure* c, g* pin) noexcept {
  p* pp = mp ? mp->pp : nullptr;
  // The record is clean (gdead_post): what differs per goroutine is written, in lines 0-1
  // (and pinned_parent_id, further on, only for a pinned parent).  pins, child_pins and preempt
  // are reset here, not at exit: a child that outlives its parent may still unpin it, and sysmon may
  // still ask a goroutine that just exited to yield.
  gp->ctx = nullptr;  // not started: start_context makes it
  gp->pins.store(0, std::memory_order_relaxed);
  gp->child_pins.store(0, std::memory_order_relaxed);
  gp->fn = c;
  gp->pinned_parent = pin;
  if (pin) gp->pinned_parent_id = pin->id;
  gp->id = new_goid(s, pp);
  gp->preempt.store(false, std::memory_order_relaxed);
  gp->status.store(gstatus::runnable, std::memory_order_release);
  count_made(s, pp);
  std::uint64_t id = gp->id;
  // The first spawn since the P's runnext was taken goes there (Go's newproc: a child its
  // parent then waits for runs next); later ones queue behind it in spawn order, instead of
  // each taking runnext and kicking the previous child into the ring as Go does.  The same
  // queue, one locked exchange less per spawn of a batch: on 2 Ps a thief polls runnext's
  // line, and that exchange was a fifth of a batch's time (perf, weft-compare spawn p2).
  put_runnable_inline(s, pp, gp, pp && !pp->runnext.load(std::memory_order_relaxed));
  wakep(s);
  return id;
}

// A first run on a slot that was only reserved (stack_pool::alloc_min): its guards go in now.
// Nobody can be told of a failure here (the spawn returned long ago): a named fatal error.
__attribute__((noinline)) static void set_up_first_stack(m* mp, g* gp) noexcept {
  try {
    mp->s->stacks.set_up_unset(gp->stk);
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot start: setting up its stack failed: %s", (unsigned long long)gp->id, e.what());
  }
}

void start_context(m* mp, g* gp) noexcept {
  if (p* pp = mp->pp) mp->s->stacks.trade_for_warm(gp->stk, pp->scache);
  if (__builtin_expect(gp->stk.unset(), 0)) set_up_first_stack(mp, gp);
  stack_reused(gp->stk.lo, gp->stk.hi);  // (AddressSanitizer: nothing left poisoned)
  gp->ctx = boost::context::detail::make_fcontext(reinterpret_cast<void*>(gp->stk.hi), gp->stk.size(), goroutine_entry);
}

// Post-switch action for a dead G: its stack and record go back for reuse.
// The record is left clean, as a new one is, while its lines are still cached: the next
// spawn then writes only what differs per goroutine (launch_goroutine).  (wait_reason is not
// reset: every park sets it, and only a parked G's is read.)
static void gdead_post(m* mp, g* gp, void*) noexcept {
  sched* s = mp->s;
  p* pp = mp->pp;
  stack_reused(gp->stk.open_lo(), gp->stk.hi);  // leave no poison behind for the next user (what it used)
  // The next goroutine starts at stack_min, like every goroutine; the pages this one grew
  // into stay open (stack_pool.hpp: a stack's open part), and a stack with more of them than
  // a P's cache keeps goes to the global pool, where the scan phase gives them back.
  s->stacks.restart(gp->stk);
  s->stacks.free_own(gp->stk, pp ? &pp->scache : nullptr);
  gp->stk = {};
  // No goroutine has this id any more: a child still holding it as its pinned parent's
  // (goroutine_entry) must not unpin whoever gets the record next.
  __atomic_store_n(&gp->id, 0, __ATOMIC_RELAXED);
  gp->grows = gp->shrinks = 0;
  gp->tls = thread_state{};
#if defined(WEFT_SANITIZE_ADDRESS)
  gp->asan_fake_stack = nullptr;
#endif
  gfree_put(s, pp, gp);
  count_ended(s, pp);
}

// Where a goroutine leaves: picks the next G (or g0) and never returns.
[[noreturn]] static void goexit(m* mp, g* gp) noexcept {
  if (gp->locked_m) {
    // A G that ends wired keeps nothing: its M goes back to ordinary work.
    mp->lockedg = nullptr;
    gp->locked_m = nullptr;
    gp->lock_depth = 0;
  }
  // A spare split-stack segment, old stacks under ASan (stack/grow.hpp); most Gs have neither.
#if defined(WEFT_SANITIZE_ADDRESS)
  if (gp->spare || gp->asan_moved_from) release_kept_stacks(mp->s, mp, gp);
#else
  if (gp->spare) release_kept_stacks(mp->s, mp, gp);
#endif
  gp->status.store(gstatus::dead, std::memory_order_release);
  switch_away(mp, gdead_post, nullptr);
  fatal("goroutine %llu resumed after it exited", (unsigned long long)gp->id);
}

void goroutine_entry(boost::context::detail::transfer_t) noexcept {
  // Not t.data: for a fresh context Boost 1.74's trampoline (make_x86_64_sysv_elf_gas.S) does
  // not pass on what the ontop function returned, so the argument is stale.
  m* mp = current_m();
  g* gp = mp->curg;
  // gp->fn stays set while the closure lives: a stack copy adjusts an in-place closure's
  // words (move_stack) while it does.
  closure* c = gp->fn;
  after_exit then;
  try {
    then = c->run();
  } catch (const std::exception& e) {
    fatal("goroutine %llu: uncaught exception: %s", (unsigned long long)gp->id, e.what());
  } catch (...) {
    fatal("goroutine %llu: uncaught exception of a type not derived from std::exception", (unsigned long long)gp->id);
  }
  destroy_closure(c);
  gp->fn = nullptr;
  release_parent_pin(gp);
  // Its moved-from stacks go back before its joiner is woken, so that weft::stats counts none
  // of them once join returns (grow_test.cpp's AGoroutineKeepsAtMostSixteenMovedFromRanges...:
  // given back in gdead_post, on 2 Ps they were still counted now and then).  Nothing from
  // here on checks the stack, so nothing moves it again.  (The count sits in a line of the
  // record that exits otherwise leave alone: only copy with quarantine on reads it.)
  if (m* now = current_m(); __builtin_expect(*now->s->opts.quarantine, 0) && gp->quarantined != 0)
    quarantine_release(now->s, now, gp);  // (the closure may have parked: maybe another M)
  // Last, a spawn's completion: its joiner may count on the captures being gone and on its
  // stack being free to move (grow_test.cpp's AJoinerWakesOnlyAfterTheClosureIsGone).
  if (then.fn) then.fn(then.arg);
  // The closure may have parked, and then.fn (the user's translation unit: it may have
  // split-stack prologues, where sysmon's preemption request is seen) may have yielded: this
  // goroutine may now be on another M.
  mp = current_m();
  goexit(mp, gp);
}

}  // namespace weft::detail
