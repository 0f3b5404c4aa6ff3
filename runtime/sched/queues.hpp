// SPDX-License-Identifier: Apache-2.0
// queues.hpp — the run-queue operations every part of the scheduler shares, inlined.
//
// A yield, a park, an exit and g0's loop all take the next G of a P and put one back; these
// are the few instructions each of them costs, kept in one header so that the scheduling loop
// (schedule.cpp), leaving a goroutine (yield.cpp, park.cpp) and the Ms (threads.cpp) use the
// same ones without a call.  The ring itself is runq.hpp; the global queue global_queue.hpp.
#pragma once

#include <cstdint>
#include <sched.h>

#include "arch/cpu.hpp"
#include "runtime/sched/sched.hpp"

namespace weft::detail {

constexpr std::uint32_t kGlobalCheckEvery = 61;  // Go's schedtick%61 fairness check

// The ring is full: half of it and gp go to the global queue (queues.cpp).
void runq_put_slow(sched* s, p* pp, g* gp) noexcept;
// A P-less put (a plain thread readying a goroutine): the global queue, under sched.lock.
void put_global(sched* s, g* gp) noexcept;

// Puts a runnable G on pp: in runnext (kicking the previous one to the ring) or at the tail.
inline __attribute__((always_inline)) void runq_put_inline(sched* s, p* pp, g* gp, bool next) noexcept {
  if (next) {
    g* old = pp->runnext.exchange(gp, std::memory_order_acq_rel);
    if (!old) return;
    gp = old;
  }
  if (__builtin_expect(!pp->q.push(gp), 0)) runq_put_slow(s, pp, gp);
}

// With many goroutines queued (a tree of a million), each one's record and stack are cold by
// the time it runs: a cache miss or two per switch that nothing overlaps.  So, on taking a G
// from the ring, fetch ahead for the ones behind it: the record of the G two places back, and
// for the next one, whose record the previous take fetched, its saved context (on its stack)
// or, if it has not run yet, its closure (in the record's third line; its stack is chosen
// only when it starts, start_context).
// Hints only: a G may be stolen meanwhile; G records are never freed while the runtime runs.
inline __attribute__((always_inline)) void prefetch_queued(p* pp) noexcept {
#if !defined(WEFT_SANITIZE_THREAD)  // reads ctx unsynchronised, which TSan would report
  if (g* next = pp->q.peek(0)) __builtin_prefetch(next->ctx ? static_cast<const void*>(next->ctx) : next->body);
#endif
  if (g* after = pp->q.peek(1)) {
    __builtin_prefetch(after);
    __builtin_prefetch(reinterpret_cast<const char*>(after) + 64);
  }
}

inline __attribute__((always_inline)) g* take_runnext(p* pp) noexcept {
  if (!pp->runnext.load(std::memory_order_relaxed)) return nullptr;
  return pp->runnext.exchange(nullptr, std::memory_order_acq_rel);
}

inline __attribute__((always_inline)) g* runq_get_inline(p* pp) noexcept {
  if (g* gp = take_runnext(pp)) return gp;
  return pp->q.pop();
}

// Parking, exiting and g0 take the next G here, fetching ahead (yield's direct switch does
// not: its round trip between two goroutines has nothing queued behind, and pays 8% for it).
inline __attribute__((always_inline)) g* runq_get(p* pp) noexcept {
  if (g* gp = take_runnext(pp)) return gp;
  g* gp = pp->q.pop();
  if (gp) prefetch_queued(pp);
  return gp;
}

// Puts a runnable G on pp's queues, or on the global queue if there is no P (a plain thread).
inline __attribute__((always_inline)) void put_runnable_inline(sched* s, p* pp, g* gp, bool next) noexcept {
  if (__builtin_expect(pp != nullptr, 1)) runq_put_inline(s, pp, gp, next);
  else put_global(s, gp);
}

// A G a yield put on a run queue is published before its switch is done: its status says
// `running` until the assembly has saved its context (switch.hpp, switch_direct).  Whoever
// takes it from a queue waits out that window (a few dozen instructions on the other CPU).
// (If that CPU was preempted inside the window, spinning would only burn ours: yield it.)
inline void wait_switched_out(g* gp) noexcept {
  for (unsigned spins = 0; __builtin_expect(gp->status.load(std::memory_order_acquire) == gstatus::running, 0);) {
    if (++spins < 1024) arch::cpu_relax();
    else ::sched_yield();
  }
  tsan_acquire_status(gp);
}

// Takes gp, just taken from a run queue, to run on pp: once a yield's save is done, runnable →
// running, counted as one schedule of pp.
inline __attribute__((always_inline)) void claim_g(p* pp, g* gp) noexcept {
  wait_switched_out(gp);
  set_status(gp, gstatus::runnable, gstatus::running);
  bump(pp->schedtick);
}

// Whether a goroutine leaving mp may switch straight to the next G of its P: not when the M
// is wired, on the periodic tick when g0 looks at the global queue, or when stopping.
inline __attribute__((always_inline)) bool may_switch_direct(m* mp, p* pp, sched* s) noexcept {
  return pp && !mp->lockedg && pp->schedtick.load(std::memory_order_relaxed) % kGlobalCheckEvery != 0 &&
         !s->stopping.load(std::memory_order_relaxed);
}

}  // namespace weft::detail
