// SPDX-License-Identifier: Apache-2.0
// blocking.cpp — Go's entersyscall / exitsyscall.
//
// Entering: the P stays with the M but is marked `syscall`; nothing is handed off yet, so a
// short call costs two atomic stores.  The M no longer counts it as its own meanwhile (m::pp
// is null, m::oldp keeps it, as Go's m.oldp): sysmon may give it to another M at any moment,
// so whatever f does that would use a P's queues or caches — readying a goroutine (a
// wait_group's done, a channel send), spawning one, growing its stack — uses the global ones.
// sysmon, on its next pass (≤ 20 µs while any P is in a call), takes a P still in the same
// call (status CAS syscall → idle) and hands it off.
// Leaving: if the CAS back to `running` succeeds, nothing happened.  Otherwise the P is gone:
// take an idle P if there is one, else queue the goroutine globally and let this M go idle.
#include <mutex>
#include <utility>

#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "weft/io.hpp"

namespace weft::detail {

void enter_blocking() noexcept {
  m* mp = current_m();
  if (!mp || !mp->curg) return;
  g* gp = mp->curg;
  p* pp = mp->pp;
  if (!pp) {
    // Inside blocking() already: a bad status change (running -> blocking call), fatal.
    if (mp->oldp) set_status(gp, gstatus::running, gstatus::syscall);
    return;
  }
  set_status(gp, gstatus::running, gstatus::syscall);
  bump(pp->syscalltick);
  mp->oldp = pp;
  mp->pp = nullptr;
  pp->status.store(pstatus::syscall, std::memory_order_release);
  sysmon_wake(mp->s);
}

void exit_blocking() noexcept {
  m* mp = current_m();
  if (!mp || !mp->curg) return;
  g* gp = mp->curg;
  if (gp->status.load(std::memory_order_relaxed) != gstatus::syscall) return;
  sched* s = mp->s;
  p* pp = std::exchange(mp->oldp, nullptr);
  pstatus expected = pstatus::syscall;
  if (pp && pp->status.compare_exchange_strong(expected, pstatus::running, std::memory_order_acq_rel)) {
    mp->pp = pp;
    set_status(gp, gstatus::syscall, gstatus::running);
    return;
  }
  // sysmon took the P.
  p* np;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    np = s->stopping.load() ? nullptr : pidle_get_locked(s);
  }
  if (np) {
    acquirep(mp, np);
    set_status(gp, gstatus::syscall, gstatus::running);
    return;
  }
  set_status(gp, gstatus::syscall, gstatus::running);
  // No P: to the global queue, from g0 once this goroutine is saved.
  switch_to(mp, nullptr, [](m* m2, g* g2, void*) noexcept {
    set_status(g2, gstatus::running, gstatus::runnable);
    put_runnable(m2->s, nullptr, g2, false);
  }, nullptr);
}

}  // namespace weft::detail
