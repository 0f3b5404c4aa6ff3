// SPDX-License-Identifier: Apache-2.0
// sysmon.cpp — the background monitor (Go's sysmon, runtime/proc.go).
//
// One thread, no P.  Each pass it:
//   - retakes a P whose M has been inside blocking(f) for a whole pass (≥ 20 µs), so the P's
//     goroutines keep running on another M (handoffp);
//   - asks a goroutine that has run for 10 ms without a switch to yield: it sets g::preempt
//     and poisons the M's stack-limit slot, so the goroutine's next check (prologue, explicit,
//     or runtime call) enters the runtime, which sees the request and yields;
//   - runs timers that nobody has run for a millisecond (every M busy in one goroutine);
//   - polls the network if nobody has for 10 ms (runtime/io/netpoll.cpp);
//   - drives the periodic scan phase (stack shrinking, returning pooled stack memory), paced
//     so that it takes at most about a twentieth of a CPU;
//   - with every P idle, checks for a deadlock (deadlock.cpp);
//   - prints the scheduler trace, if asked (WEFT_DEBUG=schedtrace=MS, trace.cpp).
// It sleeps 20 µs between passes while something needs watching, doubling to 10 ms when
// nothing does, and sleeps until woken when every P is idle and no scan is due.
#include <algorithm>
#include <mutex>

#include "runtime/sched/poller.hpp"
#include "runtime/sched/deadlock.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/scan.hpp"

namespace weft::detail {
namespace {

constexpr std::int64_t kMinDelayNs = 20'000;
constexpr std::int64_t kMaxDelayNs = 10'000'000;
constexpr std::int64_t kPreemptAfterNs = 10'000'000;
constexpr std::int64_t kLateTimerNs = 1'000'000;
constexpr std::int64_t kScanPaceFactor = 20;

// One pass over the Ps.  Returns true if something was retaken or preempted.
bool retake(sched* s, std::int64_t now) noexcept {
  bool acted = false;
  for (auto& up : s->allp) {
    p* pp = up.get();
    pstatus st = pp->status.load(std::memory_order_acquire);
    if (st == pstatus::syscall) {
      std::uint64_t t = pp->syscalltick.load(std::memory_order_acquire);
      if (pp->sm_syscalltick != t) {
        pp->sm_syscalltick = t;
        pp->sm_when = now;
        continue;
      }
      // In the same blocking call since our last pass.  Nothing to hand off to if its queue
      // is empty and other Ms are already looking or idle Ps exist (Go's retake condition).
      bool idle_elsewhere = s->nmspinning.load() + s->npidle.load() > 0;
      if (pp->q.empty() && !pp->runnext.load() && idle_elsewhere && now - pp->sm_when < kMaxDelayNs) continue;
      pstatus expected = pstatus::syscall;
      if (pp->status.compare_exchange_strong(expected, pstatus::idle, std::memory_order_acq_rel)) {
        __atomic_store_n(&pp->mp, nullptr, __ATOMIC_RELAXED);
        handoffp(s, pp);
        acted = true;
      }
    } else if (st == pstatus::running) {
      std::uint64_t t = pp->schedtick.load(std::memory_order_acquire);
      if (pp->sm_schedtick != t) {
        pp->sm_schedtick = t;
        pp->sm_when = now;
        continue;
      }
      if (now - pp->sm_when < kPreemptAfterNs) continue;
      {
        std::lock_guard<futex_mutex> l(s->lock);  // keeps the M (and its curg) from going away
        m* mp = __atomic_load_n(&pp->mp, __ATOMIC_ACQUIRE);
        g* gp = mp ? __atomic_load_n(&mp->curg, __ATOMIC_ACQUIRE) : nullptr;
        if (gp && !gp->preempt.load(std::memory_order_relaxed)) {
          gp->preempt.store(true, std::memory_order_release);
          if (mp->limit_slot) __atomic_store_n(mp->limit_slot, ~std::uintptr_t{0}, __ATOMIC_RELEASE);
          s->st.preemptions.fetch_add(1, std::memory_order_relaxed);
          acted = true;
        }
      }
      // A goroutine that never reaches a check ignores the request, and what is queued
      // behind it on this P would wait for it forever: wake an idle P to steal it (Go
      // preempts by signal instead, runtime/preempt.go; weft has no asynchronous preemption).
      if ((!pp->q.empty() || pp->runnext.load(std::memory_order_relaxed)) && s->npidle.load() > 0) wakep(s);
      pp->sm_when = now;  // ask again in another 10 ms if it has not yielded
    }
  }
  return acted;
}

bool watching(sched* s) noexcept {
  for (auto& pp : s->allp)
    if (pp->status.load(std::memory_order_acquire) != pstatus::idle) return true;
  return false;
}

void sysmon_main(sched* s) noexcept {
  std::int64_t delay = kMinDelayNs;
  std::int64_t scan_ns = std::int64_t(s->opts.scan_interval.count()) * 1'000'000;
  std::int64_t next_scan_ns = scan_ns ? monotonic_ns() + scan_ns : 0;
  const std::int64_t start_ns = monotonic_ns();
  const std::int64_t trace_ns = std::int64_t(s->opts.schedtrace.count()) * 1'000'000;
  std::int64_t next_trace_ns = trace_ns ? start_ns + trace_ns : timer_heap::kNever;
  while (!s->stopping.load(std::memory_order_acquire)) {
    std::int64_t now = monotonic_ns();
    s->coarse_now.store(now, std::memory_order_relaxed);
    if (now >= next_trace_ns) {  // WEFT_DEBUG=schedtrace=MS (trace.cpp)
      sched_trace(s, (now - start_ns) / 1'000'000);
      next_trace_ns += trace_ns * ((now - next_trace_ns) / trace_ns + 1);
    }
    bool acted = retake(s, now);
    netpoll_sysmon(s, now);  // nobody polled the network for 10 ms (netpoll.cpp)
    if (s->timers.next_when() < now - kLateTimerNs) s->timers.run_due(now);
    if (scan_ns && now >= next_scan_ns) {
      // Paced: the next scan waits at least 20 times as long as this one took, so the scans
      // of a million goroutines (each walks every record) cost at most ~5% of a CPU — Go
      // paces its stack scans by the GC's cycle instead (runtime/mgc.go).
      scan_phase(s, scan_kind::periodic);
      const std::int64_t done = monotonic_ns();
      next_scan_ns = done + std::max(scan_ns, kScanPaceFactor * (done - now));
    }
    delay = acted ? kMinDelayNs : std::min(delay * 2, kMaxDelayNs);
    std::int64_t deadline = monotonic_ns() + delay;
    if (!watching(s)) {
      // Every P idle: perhaps no goroutine can ever run again (deadlock.cpp).  Suspected, it
      // looks again in 10 ms; seen twice, it reports and does not return.
      const bool suspect = check_deadlock(s);
      // Else sleep until woken (wakep / blocking / a plain thread blocking) or until the next
      // scan or timer.
      std::int64_t until = std::min(s->timers.next_when(), next_trace_ns);
      if (scan_ns) until = std::min(until, next_scan_ns);
      if (suspect) until = std::min(until, monotonic_ns() + kMaxDelayNs);
      s->sysmon_note.clear();
      s->sysmon_sleeping.store(true, std::memory_order_seq_cst);
      if (!watching(s) && !s->stopping.load()) s->sysmon_note.sleep(until == timer_heap::kNever ? 0 : until);
      s->sysmon_sleeping.store(false, std::memory_order_seq_cst);
      delay = kMinDelayNs;
      continue;
    }
    s->sysmon_note.clear();
    s->sysmon_note.sleep(std::min(deadline, next_trace_ns));
  }
}

}  // namespace

void sysmon_wake(sched* s) noexcept {
  if (s->sysmon_sleeping.load(std::memory_order_relaxed) && s->sysmon_sleeping.exchange(false)) s->sysmon_note.wake();
}

void start_sysmon(sched* s) { s->sysmon_thread = std::thread(sysmon_main, s); }

void stop_sysmon(sched* s) noexcept {
  s->stopping.store(true, std::memory_order_seq_cst);
  s->sysmon_note.wake();
  if (s->sysmon_thread.joinable()) s->sysmon_thread.join();
}

}  // namespace weft::detail
