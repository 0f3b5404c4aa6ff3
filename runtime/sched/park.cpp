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
#include "weft/runtime.hpp"

namespace weft::detail {

waiter::waiter() {
  m* mp = current_m();
  gp = mp ? mp->curg : nullptr;
}

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

bool block(waiter& w, void (*unlock)(void*) noexcept, void* arg, const char* reason, std::int64_t deadline_ns) noexcept {
  if (!w.gp) {
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
  g* gp = w.gp;
  if (deadline_ns == 0) {  // the common case: no timer to make, arm or cancel
    block_req r{unlock, arg, nullptr, nullptr};
    pin(gp);
    park(block_commit, &r, reason);
    unpin(gp);
    return true;
  }
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

void completion::signal() noexcept {
  std::uintptr_t old = state_.exchange(kDone, std::memory_order_acq_rel);
  if (old != 0 && old != kDone) {
    auto* w = reinterpret_cast<waiter*>(old);
    w->wake();
  }
}

namespace {
struct completion_wait {
  std::atomic<std::uintptr_t>* state;
  waiter* w;
};
bool completion_commit(g*, void* a) noexcept {
  auto* c = static_cast<completion_wait*>(a);
  std::uintptr_t expected = 0;
  // Fails only if the task finished meanwhile: then resume at once.
  return c->state->compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(c->w), std::memory_order_acq_rel);
}
}  // namespace

void completion::wait() noexcept {
  if (done()) return;
  waiter w;
  if (w.gp) {
    completion_wait c{&state_, &w};
    pin(w.gp);
    park(completion_commit, &c, "join");
    unpin(w.gp);
    return;
  }
  plain_wait pw(&w);  // for the deadlock check
  std::uintptr_t expected = 0;
  if (!state_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&w), std::memory_order_acq_rel)) return;
  w.thread_note.sleep();
}


// ---- park and ready ------------------------------------------------------------------------

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

#if WEFT_DIRECT_SWITCH
// The direct park: commit on the parking goroutine's own stack, then switch straight to the
// next G of its P, storing `waiting` once the context is saved (switch_direct_parked).  From the
// commit on, a waker may find the goroutine `parking`; ready() waits until it is `waiting`
// (cas_status_slow), a few dozen instructions.  Against the park through switch_to (below),
// this saves the ontop call, on_switch and the post action on the far side.  A commit that
// finds the event already happened returns false: the goroutine then keeps running (nobody
// can wake it: it registered nothing), and `next` goes back where it came from, first in line.
static void park_direct(m* mp, g* gp, p* pp, g* next, park_commit commit, void* arg) noexcept {
  set_status(gp, gstatus::running, gstatus::parking);
  if (commit && !commit(gp, arg)) {
    set_status(gp, gstatus::parking, gstatus::running);
    runq_put_inline(mp->s, pp, next, true);
    return;
  }
  claim_g(pp, next);
  switch_direct_parked(mp, gp, next);
}
#endif

void park(park_commit commit, void* arg, const char* reason) noexcept {
  m* mp = current_m();
  g* gp = mp->curg;
  gp->wait_reason = reason;
  gp->wait_since = mp->s->coarse_now.load(std::memory_order_relaxed);
  park_req r{commit, arg};
  if (mp->lockedg) {
    switch_to(mp, nullptr, park_post, &r);
    return;
  }
#if WEFT_DIRECT_SWITCH
  p* pp = mp->pp;
  if (may_switch_direct(mp, pp, mp->s)) {
    if (g* next = runq_get(pp)) {
      if (__builtin_expect(next->locked_m == nullptr, 1)) return park_direct(mp, gp, pp, next, commit, arg);
      runq_put(mp->s, pp, next, true);  // wired to another M: g0 hands it over
      switch_to(mp, nullptr, park_post, &r);
      return;
    }
  }
#endif
  switch_away(mp, park_post, &r);
}

void ready(g* gp) noexcept {
  sched* s = current_sched();
  cas_status(gp, gstatus::waiting, gstatus::runnable);
  if (m* owner = gp->locked_m) {
    // Wired: goes straight back to its own M, with a P found for it.
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
    return;
  }
  m* mp = current_m();
  put_runnable_inline(s, mp && mp->s == s ? mp->pp : nullptr, gp, true);
  wakep(s);
}


}  // namespace weft::detail
