// SPDX-License-Identifier: Apache-2.0
// yield.cpp — leaving a running goroutine for another: switch_away (shared with park and
// exit), yield, and preemption.
//
// A yield switches straight to the next G of its P, with no visit to g0: the yielder goes to
// its ring's tail before its context is saved, still marked running, and whoever takes it waits
// out that window (queues.hpp, wait_switched_out).  A preempted goroutine goes through g0 to
// the global queue, as Go's does: the local ring would hand its P straight back to it.  A wired
// (lock_thread) goroutine always goes through g0, which gives it back to its own M.
#include <mutex>
#include <utility>

#include "runtime/sched/queues.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/threads.hpp"

namespace weft::detail {

// Switches away from the running G on mp (its curg) to the next G of mp's P if there is one
// that may run here, else to g0.  `post` runs once the G is saved (switch.hpp).
void switch_away(m* mp, post_action post, void* arg) noexcept {
  p* pp = mp->pp;
  g* next = nullptr;
  if (may_switch_direct(mp, pp, mp->s)) {
    next = runq_get(pp);
    if (next && next->locked_m) {
      // Wired to another M: g0 hands it over.
      runq_put(mp->s, pp, next, true);
      next = nullptr;
    }
  }
  if (next) claim_g(pp, next);
  switch_to(mp, next, post, arg);
}

static void yield_post(m* mp, g* gp, void*) noexcept {
  set_status(gp, gstatus::running, gstatus::runnable);
  put_runnable_inline(mp->s, mp->pp, gp, false);
}

void gosched() noexcept { gosched_on(current_m()); }

// Everything but the direct switch (and gosched_past_wired): nothing else to run, a wired G,
// the periodic look at the global queue, stopping.  Out of line, so that the common path below
// needs few registers (its prologue and epilogue were a tenth of a yield).
__attribute__((noinline)) static void gosched_slow(m* mp, p* pp, sched* s) noexcept {
  // Nothing else to run anywhere: keep going (saves two switches).
  if (pp && pp->q.empty() && !pp->runnext.load(std::memory_order_relaxed) && s->gq.size() == 0 &&
      !mp->lockedg && !s->stopping.load(std::memory_order_relaxed)) {
    const std::int64_t next = s->timers.next_when();
    if (next == timer_heap::kNever || next > monotonic_ns()) return;
  }
  if (mp->lockedg) {
    // A wired G yields through g0, which gives it straight back (it may not run elsewhere).
    switch_to(mp, nullptr, [](m* m2, g* g2, void*) noexcept {
      set_status(g2, gstatus::running, gstatus::runnable);
      hand_wired(m2, std::exchange(m2->pp, nullptr), g2);
    }, nullptr);
    return;
  }
  switch_away(mp, yield_post, nullptr);
}

#if WEFT_DIRECT_SWITCH
// The next G of this P is wired to another M: back into runnext with it, and through g0,
// which hands it over (schedule, start_locked_m).  Out of line, like gosched_slow.
__attribute__((noinline)) static void gosched_past_wired(m* mp, p* pp, sched* s, g* next) noexcept {
  runq_put(s, pp, next, true);
  switch_to(mp, nullptr, yield_post, nullptr);
}
#endif

void gosched_on(m* mp) noexcept {
  g* gp = mp->curg;
  gp->preempt.store(false, std::memory_order_relaxed);
  p* pp = mp->pp;
  sched* s = mp->s;
#if WEFT_DIRECT_SWITCH
  // The common case: the next G of this P, switched to directly; gp goes to the queue's tail
  // before its context is saved, still marked running (see wait_switched_out).
  if (may_switch_direct(mp, pp, s)) {
    if (g* next = runq_get_inline(pp)) {
      if (__builtin_expect(next->locked_m != nullptr, 0)) {
        gosched_past_wired(mp, pp, s, next);
        return;
      }
      claim_g(pp, next);
      runq_put_inline(s, pp, gp, false);
      switch_direct(mp, gp, next);
      return;
    }
  }
#endif
  gosched_slow(mp, pp, s);
}

// A preempted goroutine goes to the global queue, through g0 — Go's gopreempt_m →
// goschedImpl (runtime/proc.go).  Through g0, because find_runnable runs the timers that came
// due while it ran; to the global queue, because the local ring would hand this P straight
// back to it: a goroutine a timer or another thread readied (both land on the global queue)
// would wait for the 61st schedule, i.e. 61 preemptions — 0.6 s — behind a busy goroutine.
static void preempt_post(m* mp, g* gp, void*) noexcept {
  set_status(gp, gstatus::running, gstatus::runnable);
  std::lock_guard<futex_mutex> l(mp->s->lock);
  mp->s->gq.push(gp);
}

void gopreempt_on(m* mp) noexcept {
  g* gp = mp->curg;
  gp->preempt.store(false, std::memory_order_relaxed);
  p* pp = mp->pp;
  sched* s = mp->s;
  if (mp->lockedg || !pp) {
    gosched_slow(mp, pp, s);  // wired: g0 gives it straight back; nothing else may run it
    return;
  }
  // Nothing else to run anywhere and no timer due: keep going (saves two switches).
  if (pp->q.empty() && !pp->runnext.load(std::memory_order_relaxed) && s->gq.size() == 0 &&
      !s->stopping.load(std::memory_order_relaxed)) {
    const std::int64_t next = s->timers.next_when();
    if (next == timer_heap::kNever || next > monotonic_ns()) return;
  }
  switch_to(mp, nullptr, preempt_post, nullptr);
}

}  // namespace weft::detail
