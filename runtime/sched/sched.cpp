// SPDX-License-Identifier: Apache-2.0
// sched.cpp — the runtime instance: made from its options, started, stopped.
//
// A `sched` owns the Ps, the Ms (allm), every G record (allg), the stack pool, the timers and
// the poller.  start() makes sysmon and the first M, and reports at once if the process cannot
// have them; stop() asks every M to leave its loop, joins them (or, abandoning, detaches the
// ones still running a goroutine after a grace) and leaves no runtime current.  The scheduling
// itself is in schedule.cpp, whose essay also lists the scheduler's other files.
#include "runtime/sched/sched.hpp"

#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>

#include <sched.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/deadlock.hpp"
#include "runtime/sched/dump.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/threads.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {
namespace {

std::atomic<sched*> g_current{nullptr};

}  // namespace

// Appended to every fatal error: every live goroutine (dump.cpp), on stderr.
static void dump_goroutines_on_fatal() noexcept { dump_goroutines_to(2, dump_context::dying); }

sched* current_sched() noexcept { return g_current.load(std::memory_order_acquire); }


// ---- the runtime instance ----------------------------------------------------------------

// The options with every "unset" resolved: the strategy's reserve and quarantine.
static options resolved(options o) {
  if (!o.stack_reserve) o.stack_reserve = default_stack_reserve(o.strategy);
  if (!o.quarantine) o.quarantine = o.strategy == stack_strategy::copy;
  return o;
}

static stack_config stack_config_from(const options& o) {
  stack_config c;
  c.stack_min = o.stack_min ? o.stack_min : default_stack_min();
  c.stack_max = o.stack_max;
  c.reserve = *o.stack_reserve;
  c.guard = o.guard;
  // A check moves a stack before its slot is full where the strategy lets it move, so that a
  // frame overshooting its check still lands in room a fault can grow into (stack_pool.hpp):
  // the guard band's worth, and the headroom a fault keeps below the address it grows to.
  c.slack = o.strategy == stack_strategy::in_place ? 0 : c.guard_bytes + kStackHeadroom;
  c.check_frees = o.debug;  // WEFT_DEBUG: a stack freed twice is caught
  return c;
}

static unsigned resolve_procs(unsigned procs) {
  if (procs) return procs;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

sched::sched(const options& o) : opts(resolved(o)), stacks(stack_config_from(opts)) {
  opts.procs = resolve_procs(o.procs);
  for (unsigned i = 0; i < opts.procs; ++i) {
    auto pp = std::make_unique<p>();
    pp->id = i;
    allp.push_back(std::move(pp));
  }
}

sched::~sched() {
  forget_plain_waits(this);  // plain threads still blocked on channels must not touch us
  // Every G record ever made (live ones are abandoned goroutines: their stacks go back with
  // the pool's arenas; their closures are not destroyed, since their frames may still refer
  // to what the closures own).
  for (g* gp = allg; gp;) {
    g* next = gp->all_link;
    if (!gp->stk.empty()) stack_reused(gp->stk.open_lo(), gp->stk.hi);
    fiber_destroyed(gp);
    heap_free(gp);
    gp = next;
  }
  for (auto& pp : allp) {
    stacks.drain(pp->scache);
    drain_task_blocks(pp->tblocks);
  }
}

void sched::start() {
  for (auto it = allp.rbegin(); it != allp.rend(); ++it) {
    std::lock_guard<futex_mutex> l(lock);
    pidle_put_locked(this, it->get());
  }
  coarse_now.store(monotonic_ns(), std::memory_order_relaxed);  // before any goroutine can park
  g_current.store(this, std::memory_order_release);
  set_fatal_dump_hook(dump_goroutines_on_fatal);
  // sysmon and one M start now, so a process that cannot have them finds out here, from the
  // constructor, instead of queueing goroutines no thread will ever run.  Every later M is
  // optional: a failure to start one is said once and the runtime carries on (newm).
  std::system_error err{std::error_code()};
  try {
    start_sysmon(this);
  } catch (const std::system_error& e) {
    err = e;
  }
  p* pp = nullptr;
  if (!err.code()) {
    std::lock_guard<futex_mutex> l(lock);
    pp = pidle_get_locked(this);
  }
  if (!err.code()) try_newm(this, pp, false, &err);
  if (err.code()) {
    stop();  // joins whatever did start; no runtime is current any more
    char why[256];
    thread_failure_reason(err.code().value(), why, sizeof why);
    char buf[640];
    std::snprintf(buf, sizeof buf, "weft: cannot start the runtime's threads (%s); %s", err.code().message().c_str(), why);
    throw resource_error(err.code(), buf);
  }
}

void sched::wait_all_done() noexcept {
  while (live_goroutines(this) != 0) {
    all_done.clear();
    waiting_all_done.store(true, std::memory_order_seq_cst);
    if (live_goroutines(this) == 0) break;
    all_done.sleep();
  }
  waiting_all_done.store(false);
}

bool sched::stop(bool abandoning) noexcept {
  stopping.store(true, std::memory_order_seq_cst);
  stop_sysmon(this);
  netpoll_break(this);  // an M asleep in epoll_wait (netpoll_block); destroyed once all are joined
  // Wake everyone; each M's loop sees `stopping` and returns.  An M still running a goroutine
  // finishes when that goroutine next parks, yields or passes a check (sysmon has asked it to).
  // Abandoning, nobody waits for that long: an M still running a goroutine after a grace of
  // kAbandonGraceNs is detached.  The grace lets the usual cases end cleanly, with every thread
  // joined — a goroutine that was exiting or about to park when main_fn returned, or one that
  // reaches a check (sysmon's own preemption works at 10 ms): a thread left running would be
  // seen by a later fork() (gtest's death tests, ThreadSanitizer refuses to fork then).  What
  // is left is a loop without checks or a blocking call that does not return.  An M in its
  // scheduling loop does not run user code, so it soon either returns (and is joined) or takes
  // a goroutine it found queued before it saw `stopping`: the loop below looks again until
  // every M is one or the other.
  constexpr std::int64_t kAbandonGraceNs = 20'000'000;
  const std::int64_t detach_after = abandoning ? monotonic_ns() + kAbandonGraceNs : 0;
  std::vector<m*> to_join;
  bool left_behind = false;
  for (;;) {
    bool starting;
    {
      std::lock_guard<futex_mutex> l(lock);
      for (auto& mp : allm) mp->park.wake();
      for (auto& mp : allm) {
        g* running = __atomic_load_n(&mp->curg, __ATOMIC_RELAXED);
        if (!running) continue;
        running->preempt.store(true);
        if (mp->limit_slot) __atomic_store_n(mp->limit_slot, ~std::uintptr_t{0}, __ATOMIC_RELAXED);
      }
      to_join.clear();
      for (auto& mp : allm) {
        if (!mp->thread.joinable()) continue;
        if (abandoning && !mp->exited.load(std::memory_order_acquire) && __atomic_load_n(&mp->curg, __ATOMIC_ACQUIRE) &&
            monotonic_ns() >= detach_after) {
          mp->thread.detach();
          left_behind = true;
          continue;
        }
        to_join.push_back(mp.get());
      }
      starting = mstarting != 0;
    }
    // An M being started (by a goroutine's wakep, or a plain thread's ready) is in allm but not
    // yet joinable; wait for its thread to be stored rather than free the records under it.
    if (to_join.empty() && !starting) break;
    bool joined = false;
    for (m* mp : to_join) {
      if (abandoning && !mp->exited.load(std::memory_order_acquire)) continue;
      mp->thread.join();
      joined = true;
    }
    if (!joined) std::this_thread::yield();
  }
  if (!left_behind) netpoll_destroy(this);  // (an M left behind may still use it)
  g_current.store(nullptr, std::memory_order_release);
  return left_behind;
}

}  // namespace weft::detail
