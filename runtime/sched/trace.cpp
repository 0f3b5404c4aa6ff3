// SPDX-License-Identifier: Apache-2.0
// trace.cpp — counting the scheduler's state, for weft::get_stats and the scheduler trace.
//
// WEFT_DEBUG=schedtrace=MS prints, every MS, one line in the shape of Go's schedtrace
// (runtime/proc.go, schedtrace): the Ps and how many are idle, the threads and how many spin
// or sleep, the global queue and each P's own, the goroutines (and how many wait), the stacks'
// bytes and the scans so far.  With scheddetail=1 a line follows per P and per M.  sysmon
// prints it, so it keeps coming while every goroutine is stuck — which is when it is wanted.
// The counts are read without stopping anything: each is exact, the line as a whole is a
// moment's blur.
#include <cstdio>
#include <mutex>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/sched.hpp"

namespace weft::detail {

// Reads the records as they change (a running goroutine's stack bounds move as it grows):
// counts for a person, each word whole on the CPUs weft runs on.  Not watched by
// ThreadSanitizer for that reason.
__attribute__((no_sanitize("thread"))) sched_counts count_sched(sched* s) noexcept {
  sched_counts c;
  {
    std::lock_guard<futex_mutex> l(s->allg_lock);
    for (g* gp = s->allg; gp; gp = gp->all_link) {
      switch (gp->status.load(std::memory_order_relaxed)) {
        case gstatus::running:
        case gstatus::parking: ++c.running; break;
        case gstatus::idle:
        case gstatus::runnable: ++c.runnable; break;
        case gstatus::waiting:
        case gstatus::scanning: ++c.waiting; break;
        case gstatus::syscall: ++c.blocking; break;
        case gstatus::dead: continue;
      }
      c.stack_bytes += gp->stk.size();
    }
  }
  c.runq_global = s->gq.size();
  for (auto& pp : s->allp) c.runq_local += pp->q.size() + (pp->runnext.load(std::memory_order_relaxed) ? 1 : 0);
  m* const poller = netpoll_blocker(s);  // asleep in epoll_wait: idle too
  std::lock_guard<futex_mutex> l(s->lock);
  for (auto& mp : s->allm) {
    if (mp->on_idle_list || mp.get() == poller) ++c.ms_idle;
    else if (mp->spinning) ++c.ms_spinning;
    else if (g* gp = __atomic_load_n(&mp->curg, __ATOMIC_RELAXED);
             gp && gp->status.load(std::memory_order_relaxed) == gstatus::syscall)
      ++c.ms_blocking;
  }
  return c;
}

namespace {

const char* pstatus_name(pstatus st) noexcept {
  switch (st) {
    case pstatus::idle: return "idle";
    case pstatus::running: return "running";
    case pstatus::syscall: return "syscall";
    case pstatus::dead: return "dead";
  }
  return "?";
}

}  // namespace

// Reads other threads' words as they change, as count_sched does.
__attribute__((no_sanitize("thread"))) void sched_trace(sched* s, std::int64_t since_start_ms) noexcept {
  const sched_counts c = count_sched(s);
  char line[2048];
  int n = std::snprintf(line, sizeof line,
                        "SCHED %lldms: procs=%zu idleprocs=%u threads=%llu spinningthreads=%u idlethreads=%llu "
                        "blockingthreads=%llu runqueue=%llu [",
                        (long long)since_start_ms, s->allp.size(), s->npidle.load(std::memory_order_relaxed),
                        (unsigned long long)s->st.threads.load(), s->nmspinning.load(std::memory_order_relaxed),
                        (unsigned long long)c.ms_idle, (unsigned long long)c.ms_blocking,
                        (unsigned long long)c.runq_global);
  for (std::size_t i = 0; i < s->allp.size() && n > 0 && n < static_cast<int>(sizeof line) - 64; ++i)
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), "%s%u", i ? " " : "",
                       s->allp[i]->q.size() + (s->allp[i]->runnext.load(std::memory_order_relaxed) ? 1u : 0u));
  if (n > 0 && n < static_cast<int>(sizeof line))
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n),
                       "] goroutines=%llu waiting=%llu stackbytes=%llu scans=%llu timers=%zu netpoll=%lu\n",
                       (unsigned long long)(c.running + c.runnable + c.waiting + c.blocking),
                       (unsigned long long)c.waiting, (unsigned long long)c.stack_bytes,
                       (unsigned long long)s->st.scans.load(), s->timers.armed(), netpoll_waiters(s));
  if (n > 0) write_stderr(line, static_cast<unsigned long>(std::min<int>(n, sizeof line - 1)));
  if (!s->opts.scheddetail) return;
  for (auto& pp : s->allp) {
    m* mp = __atomic_load_n(&pp->mp, __ATOMIC_RELAXED);
    n = std::snprintf(line, sizeof line, "  P%u: status=%s schedtick=%llu syscalltick=%llu m=%d runqsize=%u\n", pp->id,
                      pstatus_name(pp->status.load(std::memory_order_relaxed)),
                      (unsigned long long)pp->schedtick.load(std::memory_order_relaxed),
                      (unsigned long long)pp->syscalltick.load(std::memory_order_relaxed), mp ? (int)mp->id : -1,
                      pp->q.size());
    if (n > 0) write_stderr(line, static_cast<unsigned long>(std::min<int>(n, sizeof line - 1)));
  }
  std::lock_guard<futex_mutex> l(s->lock);
  for (auto& mp : s->allm) {
    g* gp = __atomic_load_n(&mp->curg, __ATOMIC_RELAXED);
    n = std::snprintf(line, sizeof line, "  M%u: p=%d curg=%lld spinning=%s idle=%s lockedg=%lld\n", mp->id,
                      mp->pp ? (int)mp->pp->id : -1, gp ? (long long)gp->id : -1LL, mp->spinning ? "true" : "false",
                      mp->on_idle_list ? "true" : "false", mp->lockedg ? (long long)mp->lockedg->id : -1LL);
    if (n > 0) write_stderr(line, static_cast<unsigned long>(std::min<int>(n, sizeof line - 1)));
  }
}

}  // namespace weft::detail
