// SPDX-License-Identifier: Apache-2.0
// park.cpp — blocking a goroutine or a plain thread on something, and waking it.
//
// Every blocking operation in weft (join, sleep, channels, select, mutex, condition variable)
// comes down to `block(waiter&, unlock, ...)`: the caller registers a waiter under its own
// lock, and block() releases that lock only once the goroutine's context is saved (or, on a
// plain thread, before sleeping on the waiter's futex), so a waker that finds the waiter can
// always wake it.  Several wakers (a sender, a close, a timer) race through try_claim(); only
// the winner wakes.
//
// A waiter and its timer live on the blocked goroutine's stack, and the wait queues point at
// them.  So that the scan phase never moves a stack that runtime records point into, a blocked
// goroutine holds a pin (g::pins) while it waits; a pinned stack may still be shrunk in place,
// which moves nothing.
#include <mutex>
#include <utility>

#include "runtime/sched/deadlock.hpp"
#include "runtime/sched/pin.hpp"
#include "runtime/sched/queues.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/threads.hpp"
#include "runtime/stack/valgrind.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

void waiter::wake() noexcept {
  if (gp) {
    ready(gp);
    return;
  }
  // A plain thread counts as running from here on, for the deadlock check (deadlock.cpp):
  // some wakers (an unshared wait-queue node, a completion) wake without claiming.
  claimed.store(1, std::memory_order_release);
  thread_note.wake();
}

namespace {

struct timed_wait {
  timer t;
  waiter* w;
  bool fired = false;
};

void timed_fire(timer* t) noexcept {
  auto* tw = reinterpret_cast<timed_wait*>(t);  // t is the first member
  if (tw->w->try_claim()) {
    tw->fired = true;
    tw->w->wake();
  }
}

struct block_req {
  void (*unlock)(void*) noexcept;
  void* arg;
  timed_wait* tw;
  sched* s;
};

bool block_commit(g*, void* a) noexcept {
  auto* r = static_cast<block_req*>(a);
  // `r` lives on the parked stack.  Arm the timer first, then release the caller's lock: from
  // either moment on the goroutine may be woken, run elsewhere and pop that frame, so read
  // everything out of `r` before.
  void (*unlock)(void*) noexcept = r->unlock;
  void* arg = r->arg;
  timed_wait* tw = r->tw;
  sched* s = r->s;
  if (tw) {
    std::int64_t when = tw->t.when;
    if (s->timers.add(&tw->t)) wake_timer_sleeper(s, when);
  }
  if (unlock) unlock(arg);
  return true;
}

}  // namespace

// ---- park ---------------------------------------------------------------------------------

struct park_req {
  park_commit commit;
  void* arg;
};

static void park_post(m* mp, g* gp, void* arg) noexcept {
  auto* r = static_cast<park_req*>(arg);
  park_commit commit = r->commit;
  void* carg = r->arg;
  set_status(gp, gstatus::running, gstatus::waiting);
  if (commit && !commit(gp, carg)) {
    // The event already happened: run it again soon.
    cas_status(gp, gstatus::waiting, gstatus::runnable);
    if (mp->lockedg == gp) hand_wired(mp, std::exchange(mp->pp, nullptr), gp);
    else put_runnable_inline(mp->s, mp->pp, gp, true);
  }
}

// Where every park leaves its goroutine: the direct switch to `next`, or through g0
// (switch_to when `via_g0`, else switch_away), from one call site in each caller of park_with
// — the dump groups parked goroutines by their return addresses, and two ways out would split
// one kind in two.  Not left by a tail call, so that a debugger's backtrace shows a park frame
// on every path (tests/gdb).
__attribute__((noinline)) static void park(m* mp, g* gp, g* next, park_req* r, bool via_g0) noexcept {
#if WEFT_DIRECT_SWITCH
  if (next) {
    switch_direct_parked(mp, gp, next);
    asm volatile("" ::: "memory");
    return;
  }
#else
  (void)gp;
  (void)next;
#endif
  if (via_g0) switch_to(mp, nullptr, park_post, r);
  else switch_away(mp, park_post, r);
  asm volatile("" ::: "memory");
}

// park's body, for a commit known where it is called: `commit()` returns whether the
// goroutine is to sleep (false: the event already happened).  Inlined into park and into
// block's common case, where the commit is one unlock, called without an indirection.
//
// The direct park: commit on the parking goroutine's own stack, then switch straight to the
// next G of its P, storing `waiting` once the context is saved (switch_direct_parked).  From
// the commit on, a waker may find the goroutine `parking`; ready() waits until it is
// `waiting` (cas_status_slow), a few dozen instructions.  Against the park through switch_to,
// this saves the ontop call, on_switch and the post action on the far side.  A commit that
// finds the event already happened leaves the goroutine running (nobody can wake it: it
// registered nothing), and `next` goes back where it came from, first in line.  Through g0
// (a wired M, nothing else to run, the periodic look at the global queue) the commit runs in
// park_post, once the goroutine is saved.  Under memcheck too: after a direct park it reported
// the frames a goroutine then pushed while growing its stack as writes to inaccessible memory
// (tests/valgrind; the cause is not found yet), and the park through g0 is what it checked
// clean before.
template <class Commit>
static inline __attribute__((always_inline)) void park_with(m* mp, g* gp, Commit& commit, const char* reason) noexcept {
  gp->wait_reason = reason;
  gp->wait_since = mp->s->coarse_now.load(std::memory_order_relaxed);
  park_req r{[](g*, void* c) noexcept { return (*static_cast<Commit*>(c))(); }, &commit};
  bool via_g0 = mp->lockedg != nullptr;
  g* next = nullptr;
#if WEFT_DIRECT_SWITCH
  p* pp = mp->pp;
  if (!via_g0 && !vg::running() && may_switch_direct(mp, pp, mp->s) && (next = runq_get(pp)) != nullptr) {
    if (__builtin_expect(next->locked_m != nullptr, 0)) {
      runq_put(mp->s, pp, next, true);  // wired to another M: g0 hands it over
      next = nullptr;
      via_g0 = true;
    } else {
      set_status(gp, gstatus::running, gstatus::parking);
      if (!commit()) {
        set_status(gp, gstatus::parking, gstatus::running);
        runq_put_inline(mp->s, pp, next, true);
        return;
      }
      claim_g(pp, next);
    }
  }
#endif
  park(mp, gp, next, &r, via_g0);
}

void park(park_commit commit, void* arg, const char* reason) noexcept {
  m* mp = current_m();
  g* gp = mp->curg;
  auto c = [commit, arg, gp]() noexcept { return !commit || commit(gp, arg); };
  park_with(mp, gp, c, reason);
}

// block's paths other than a goroutine's wait without a deadline, out of line: kept apart,
// the common path saves fewer registers (a channel round trip: 29 instructions fewer).
__attribute__((noinline)) static bool block_thread(waiter& w, void (*unlock)(void*) noexcept, void* arg,
                                                   std::int64_t deadline_ns) noexcept {
  if (deadline_ns == 0) {
    plain_wait pw(&w);  // for the deadlock check
    if (unlock) unlock(arg);
    w.thread_note.sleep();
    return true;
  }
  if (unlock) unlock(arg);
  if (w.thread_note.sleep(deadline_ns)) return true;
  if (w.try_claim()) return false;
  w.thread_note.sleep();  // claimed by a waker racing the deadline: its wake is coming
  return true;
}

__attribute__((noinline)) static bool block_until(waiter& w, void (*unlock)(void*) noexcept, void* arg,
                                                  const char* reason, std::int64_t deadline_ns) noexcept {
  g* gp = w.gp;
  sched* s = current_sched();
  timed_wait tw;
  tw.t.when = deadline_ns;
  tw.t.fire = timed_fire;
  tw.w = &w;
  block_req r{unlock, arg, &tw, s};
  pin(gp);
  park(block_commit, &r, reason);
  s->timers.cancel(&tw.t);
  unpin(gp);
  return !tw.fired;
}

bool block(waiter& w, void (*unlock)(void*) noexcept, void* arg, const char* reason, std::int64_t deadline_ns) noexcept {
  if (__builtin_expect(!w.gp, 0)) return block_thread(w, unlock, arg, deadline_ns);
  if (__builtin_expect(deadline_ns != 0, 0)) return block_until(w, unlock, arg, reason, deadline_ns);
  // The common case: a goroutine, no timer to make, arm or cancel.
  g* gp = w.gp;
  auto commit = [unlock, arg]() noexcept {
    if (unlock) unlock(arg);  // (reads nothing of this frame afterwards: see block_commit)
    return true;
  };
  pin(gp);
  park_with(current_m(), gp, commit, reason);
  unpin(gp);
  return true;
}

void wake_timer_sleeper(sched* s, std::int64_t when) noexcept {
  m* sleeper = nullptr;
  bool none;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    none = s->timer_sleeper == nullptr;
    if (!none && s->timer_sleeper_deadline > when) {
      sleeper = s->timer_sleeper;
      s->timer_sleeper_deadline = when;
    }
  }
  if (sleeper) sleeper->park.wake();
  else if (none) wakep(s);  // an M that goes idle from now on becomes the sleeper
}

// ---- completion (task join) -------------------------------------------------------------

// Called only as a spawned goroutine ends (task_state::finish): a goroutine joiner is readied
// by_ending.
void completion::signal() noexcept {
  std::uintptr_t old = state_.exchange(kDone, std::memory_order_acq_rel);
  if (old != 0 && old != kDone) {
    auto* w = reinterpret_cast<waiter*>(old);
    if (w->gp) ready(w->gp, true);
    else w->wake();
  }
}

void completion::wait() noexcept {
  if (done()) return;
  waiter w;
  if (w.gp) {
    // Sleeps unless the task finished meanwhile (the CAS fails: resume at once).
    auto commit = [state = &state_, wp = &w]() noexcept {
      std::uintptr_t expected = 0;
      return state->compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(wp), std::memory_order_acq_rel);
    };
    pin(w.gp);
    park_with(current_m(), w.gp, commit, "join");
    unpin(w.gp);
    return;
  }
  plain_wait pw(&w);  // for the deadlock check
  std::uintptr_t expected = 0;
  if (!state_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&w), std::memory_order_acq_rel)) return;
  w.thread_note.sleep();
}


// ---- ready --------------------------------------------------------------------------------

// Wired: gp goes straight back to its own M, with a P found for it.  Out of line, so that the
// common path saves fewer registers (a channel round trip: 16 instructions fewer).
__attribute__((noinline)) static void ready_wired(sched* s, g* gp, m* owner) noexcept {
  p* pp = nullptr;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    pp = pidle_get_locked(s);
    if (!pp) {
      s->gq.push(gp);  // whichever M pops it hands its P over (start_locked_m)
      return;
    }
  }
  wake_wired(owner, pp, gp);
}

void ready(g* gp, bool by_ending) noexcept {
  sched* s = current_sched();
  cas_status(gp, gstatus::waiting, gstatus::runnable);
  if (m* owner = gp->locked_m; __builtin_expect(owner != nullptr, 0)) return ready_wired(s, gp, owner);
  m* mp = current_m();
  p* pp = mp && mp->s == s ? mp->pp : nullptr;
  // A goroutine that ends hands on no time slice: its joiner goes behind the work already
  // queued on this P (its siblings, typically, which it joins next) unless there is none.
  put_runnable_inline(s, pp, gp, !(pp && by_ending) || pp->q.empty());
  wakep(s);
}


}  // namespace weft::detail
