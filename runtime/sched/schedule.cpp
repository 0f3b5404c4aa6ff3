// SPDX-License-Identifier: Apache-2.0
// schedule.cpp — the scheduling loop: Go's G/M/P model (runtime/proc.go) for C++.
//
// Gs are goroutines, Ms are OS threads, Ps are the right to run Gs; there are `procs` Ps, so
// at most `procs` goroutines run at once, and an M needs a P to run one.  Each P has a ring of
// runnable Gs plus a `runnext` slot (a G just readied by the running one runs next: a channel
// hand-off costs one switch); a global queue takes overflow and Gs readied by plain threads.
// Not runnext: a joiner woken by a goroutine that is ending while others wait on its P — the
// ender has no time slice to hand on, and a joiner of a batch would only park again on the
// next sibling (Go's WaitGroup wakes once per batch; a join wakes once per task): it goes to
// the ring's tail, behind the siblings, and joins them done.
//
// The loop.  An M runs `schedule` on its own thread stack (g0): find a runnable G, switch to
// it, and come back when it switches to g0.  Goroutines also switch *directly* to the next G
// of their P when they yield, park or exit (switch.hpp), so g0 only runs when a P has nothing
// local, every 61st schedule (to check the global queue, as Go does, so it cannot starve), or
// when a wired (lock_thread) G is involved.
//
// Finding work, in order: due timers; the global queue every 61st tick; runnext and the local
// ring; the global queue; stealing half of another P's ring (the thief is "spinning").  At
// most half the busy Ps' worth of Ms spin.  An M that finds nothing puts its P on the idle
// list, stops spinning, then *re-checks every queue* before sleeping: a G readied between its
// last look and its sleep was readied by someone who saw no spinning M and so woke an idle M
// — or saw this M still spinning and woke nobody; the re-check closes that window (Go's
// "delicate dance" in findRunnable).  Readying a G wakes an M only if there is an idle P and
// no M is spinning (wakep), so a burst of readies wakes one M, which wakes the next once it
// finds work.
//
// Sleeping.  An idle M sleeps on its own futex word (note) with no timeout — except one, the
// timer sleeper, which sleeps until the earliest timer.  An idle runtime therefore makes no
// system calls but sysmon's (which backs off to 10 ms, or sleeps when every P is idle).
//
// Rejected: one lock-protected queue for all (every switch would contend on it); a dedicated
//
// The files of the scheduler: this loop (finding work, stealing, running a G on g0); the Ms
// (threads.cpp); the run-queue operations all of them share (queues.hpp); a goroutine's life
// (goroutine.cpp: made, started, ended); leaving a running goroutine (yield.cpp: yield and
// preemption; park.cpp: park, block and ready); the runtime instance (sched.cpp).
#include <cstdint>
#include <mutex>

#include "arch/cpu.hpp"
#include "runtime/sched/fastrand.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/queues.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/threads.hpp"

namespace weft::detail {
namespace {

// ---- global queue (sched.lock held) -----------------------------------------------------
// Takes one G to run and moves up to a fair share more into pp's ring.
g* gq_get_locked(sched* s, p* pp, std::uint32_t max) noexcept {
  std::uint32_t n = s->gq.size();
  if (n == 0) return nullptr;
  std::uint32_t share = n / static_cast<std::uint32_t>(s->allp.size()) + 1;
  if (share > n) share = n;
  if (share > max) share = max;
  if (share > runq::kSize / 2) share = runq::kSize / 2;
  g* first = s->gq.pop();
  for (std::uint32_t i = 1; i < share; ++i) {
    g* gp = s->gq.pop();
    if (!gp) break;
    if (!pp->q.push(gp)) {
      s->gq.push(gp);  // pp's ring is full: back to the global queue
      break;
    }
  }
  return first;
}

}  // namespace

// Steals half of victim's ring into pp's; returns one G to run.
static g* steal_from(sched* s, p* pp, p* victim, bool take_runnext) noexcept {
  g* batch[runq::kSize / 2];
  std::uint32_t n = victim->q.steal_half(batch);
  if (n == 0) {
    if (!take_runnext) return nullptr;
    // The victim's runnext is about to run there: a goroutine that just readied another and
    // is about to park hands over in well under a few µs.  Give a running victim that long
    // before taking it, and take only the G seen before the wait, as Go does (runtime/proc.go
    // runqgrab: usleep(3), then runnext.cas(next, 0)); stealing at once makes two goroutines
    // ping-ponging on one P bounce between Ms.  The wait is a real sleep, as Go's is (timer
    // slack makes it ~50 µs): a thief that waited by spinning on the clock came back every
    // few µs and, with two goroutines ping-ponging on the other P, pulled that P's lines at
    // every hand-off (procs 2 round trip 270-300 ns against 180-200 sleeping; polling
    // runnext itself was worse still).  Time the victim's M spends waking another M (wakep's
    // futex call, several µs on a VM) does not count: that wake-up is what brought the thief,
    // and taking the G meanwhile split the pair ~14,000 times per 2M round trips (~400 now).
    g* gp = victim->runnext.load(std::memory_order_acquire);
    if (!gp) return nullptr;
    if (victim->status.load(std::memory_order_acquire) == pstatus::running) {
      do sleep_ns(3'000);
      while (victim->waking.load(std::memory_order_relaxed));
    }
    if (victim->runnext.compare_exchange_strong(gp, nullptr, std::memory_order_acq_rel)) {
      s->st.steals.fetch_add(1, std::memory_order_relaxed);
      return gp;
    }
    return nullptr;
  }
  s->st.steals.fetch_add(1, std::memory_order_relaxed);
  for (std::uint32_t i = 1; i < n; ++i) runq_put_inline(s, pp, batch[i], false);
  return batch[0];
}

// The M stops spinning; if it was the last spinner and found work, another must start, since
// more work may be queued behind what it found (Go's resetspinning).
static void reset_spinning(sched* s, m* mp) noexcept {
  if (!mp->spinning) return;
  mp->spinning = false;
  if (s->nmspinning.fetch_sub(1, std::memory_order_acq_rel) == 1) wakep(s);
}

// Fires the timers that are due.  The clock is read only if one is armed, and once.
static void run_due_timers(sched* s) noexcept {
  const std::int64_t next = s->timers.next_when();
  if (next == timer_heap::kNever) return;
  const std::int64_t now = monotonic_ns();
  if (next <= now) s->timers.run_due(now);
}

// Finds a G to run for mp, sleeping if there is none.  Returns nullptr when the runtime stops.
static g* find_runnable(sched* s, m* mp, std::uint64_t& rnd) noexcept {
  for (;;) {
    if (s->stopping.load(std::memory_order_acquire)) return nullptr;
    if (!mp->pp) {
      if (mp->nextp) {
        acquirep(mp, mp->nextp.exchange(nullptr));
      } else {
        p* pp;
        {
          std::lock_guard<futex_mutex> l(s->lock);
          pp = pidle_get_locked(s);
        }
        if (!pp) {
          run_due_timers(s);
          if (!netpoll_block(s, mp)) stopm(s, mp);  // (netpoll.cpp: one idle M polls the network)
          continue;
        }
        acquirep(mp, pp);
      }
    }
    p* pp = mp->pp;
    run_due_timers(s);

    if (pp->schedtick.load(std::memory_order_relaxed) % kGlobalCheckEvery == 0 && s->gq.size() > 0) {
      std::lock_guard<futex_mutex> l(s->lock);
      if (g* gp = gq_get_locked(s, pp, 1)) return gp;
    }
    if (g* gp = runq_get(pp)) return gp;
    if (s->gq.size_acquire() > 0) {
      std::lock_guard<futex_mutex> l(s->lock);
      if (g* gp = gq_get_locked(s, pp, runq::kSize / 2)) return gp;
    }

    if (netpoll_poll_ready(s)) continue;  // descriptors, without blocking (netpoll.cpp)

    // Steal.  Only so many spinners: half the busy Ps.
    std::uint32_t procs = static_cast<std::uint32_t>(s->allp.size());
    if (procs > 1 && (mp->spinning || 2 * s->nmspinning.load(std::memory_order_acquire) < procs - s->npidle.load(std::memory_order_acquire))) {
      if (!mp->spinning) {
        mp->spinning = true;
        s->nmspinning.fetch_add(1, std::memory_order_acq_rel);
      }
      for (int round = 0; round < 4; ++round) {
        std::uint32_t start = fastrand_n(rnd, procs);
        for (std::uint32_t i = 0; i < procs; ++i) {
          p* victim = s->allp[(start + i) % procs].get();
          if (victim == pp) continue;
          if (g* gp = steal_from(s, pp, victim, round == 3)) return gp;
        }
      }
    }

    // Nothing.  Give up the P, then look once more (see the essay) before sleeping.
    {
      std::lock_guard<futex_mutex> l(s->lock);
      if (s->stopping.load(std::memory_order_acquire)) return nullptr;
      if (s->gq.size() > 0) {
        if (g* gp = gq_get_locked(s, pp, runq::kSize / 2)) return gp;
      }
      mp->pp = nullptr;
      pidle_put_locked(s, pp);
    }
    if (mp->spinning) {
      mp->spinning = false;
      s->nmspinning.fetch_sub(1, std::memory_order_acq_rel);
      // Work that appeared meanwhile.  Not a running P's runnext: its owner is about to run it
      // (the grace above just saw that happen), and counting it kept a thief of two goroutines
      // ping-ponging on one P spinning without end, pulling that P's lines at every hand-off.
      bool work = s->gq.size_acquire() > 0;
      for (auto& victim : s->allp)
        if (!victim->q.empty() || (victim->runnext.load(std::memory_order_acquire) &&
                                   victim->status.load(std::memory_order_acquire) != pstatus::running))
          work = true;
      if (work) {
        p* again;
        {
          std::lock_guard<futex_mutex> l(s->lock);
          again = pidle_get_locked(s);
        }
        if (again) {
          acquirep(mp, again);
          mp->spinning = true;
          s->nmspinning.fetch_add(1, std::memory_order_acq_rel);
          continue;
        }
      }
    }
    if (!netpoll_block(s, mp)) stopm(s, mp);
  }
}

// ---- running a G on g0 --------------------------------------------------------------------

static void execute(m* mp, g* gp) noexcept {
  claim_g(mp->pp, gp);
  switch_to(mp, gp, nullptr, nullptr);
  // Back on g0.  A goroutine that came here only to have its stack copied goes straight back.
  while (g* again = std::exchange(mp->resume_g, nullptr)) switch_to(mp, again, nullptr, nullptr);
}

// A wired G picked by the wrong M: hand our P and the G to its M, and sleep (Go's startlockedm).
static void start_locked_m(m* mp, g* gp) noexcept {
  p* pp = std::exchange(mp->pp, nullptr);
  __atomic_store_n(&pp->mp, nullptr, __ATOMIC_RELAXED);
  wake_wired(gp->locked_m, pp, gp);
}

// An M wired to a G that just parked: give the P away and sleep until the G is readied and
// handed back with a P (Go's stoplockedm).
static void stop_locked_m(sched* s, m* mp) noexcept {
  mp->park.clear();
  p* pp = std::exchange(mp->pp, nullptr);
  if (pp) handoffp(s, pp);
  while (!mp->nextg && !s->stopping.load(std::memory_order_acquire)) {
    mp->park.sleep();
    mp->park.clear();
  }
}


void schedule(sched* s, m* mp) noexcept {
  std::uint64_t rnd = 0x9E3779B97F4A7C15ull ^ (std::uint64_t(mp->id + 1) << 32);
  for (;;) {
    if (mp->lockedg) {
      // This M runs only its wired G.
      g* gp = mp->lockedg;
      if (gp->status.load(std::memory_order_acquire) != gstatus::runnable || mp->nextg != gp) {
        stop_locked_m(s, mp);
        if (s->stopping.load(std::memory_order_acquire)) return;
        continue;
      }
      mp->nextg = nullptr;
      acquirep(mp, mp->nextp.exchange(nullptr));
      reset_spinning(s, mp);
      execute(mp, gp);
      continue;
    }
    g* gp = find_runnable(s, mp, rnd);
    if (!gp) return;
    reset_spinning(s, mp);
    if (gp->locked_m && gp->locked_m != mp) {
      start_locked_m(mp, gp);
      stopm(s, mp);
      continue;
    }
    execute(mp, gp);
  }
}

}  // namespace weft::detail
