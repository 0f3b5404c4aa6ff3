// SPDX-License-Identifier: Apache-2.0
// deadlock.cpp — "all goroutines are asleep": a program that can never run again.
//
// Go reports it from checkdead (runtime/proc.go) when the last M goes idle with goroutines
// still alive and nothing — a timer, the network poller, a thread in a system call — left to
// wake one.  weft has something Go has not: plain threads that call into it.  A thread
// running the program's own code may send on a channel at any moment, and weft cannot see
// what it will do.  So weft reports a deadlock only when it can account for every thread of
// the process:
//
//   - at least one goroutine is alive, and every P is idle, every run queue empty, no M is
//     starting, and every M sleeps on the idle list (or, wired by lock_thread, waits for its
//     parked goroutine) — none runs a goroutine or sits in a blocking call;
//   - no timer is armed (a sleep, a select or wait with a timeout) and no goroutine waits in
//     the netpoller (a descriptor may still become ready);
//   - every other thread is a plain thread blocked inside weft without a deadline whose
//     waiter no waker has claimed (the plain_wait list), or the thread in ~runtime waiting
//     for the goroutines to end;
//   - and the process has exactly that many threads (/proc/self/stat): the Ms, sysmon and
//     those blocked threads.  One more — a thread running user code, a
//     logger, a sanitizer's helper — could still wake a goroutine, and nothing is reported.
//
// sysmon makes the check when it finds every P idle.  The state must be seen twice, 10 ms
// apart, unchanged: the goroutines scheduled and made (every P's schedtick, every made count)
// and the list of blocked threads (its generation).  A wake in flight changes one of them.
//
// Rejected: checking from the M that goes idle last, as Go does — that M cannot see plain
// threads, and a plain thread that blocks later (the main thread reaching ~runtime) would
// never be looked at.  Counting blocked threads with a counter the sleeper decrements on
// waking: a thread woken but not yet scheduled by the OS would still count as blocked.
#include "runtime/sched/deadlock.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <unistd.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/sched.hpp"

namespace weft::detail {

namespace {
// One lock for every scheduler's list: a record may outlive its scheduler (a plain thread
// blocked on a channel while the runtime is destroyed), and its destructor must be able to
// find out under a lock that still exists.
futex_mutex plain_wait_lock;
}  // namespace

plain_wait::plain_wait(const waiter* wt) noexcept : s(current_sched()), w(wt) {
  if (!s) return;
  std::lock_guard<futex_mutex> l(plain_wait_lock);
  next = s->plain_waits;
  if (next) next->prev = this;
  s->plain_waits = this;
  ++s->plain_gen;
  // A sleeping sysmon looks again: this may be the last thread to block.  Under the lock: once
  // it is released the runtime may end (~sched takes it in forget_plain_waits, then frees s),
  // and this thread may not run again until then (ThreadSanitizer saw the race in
  // Exits.APlainThreadBlockedAcrossTheRuntimesEndWakesCleanly).  sysmon_wake takes no lock.
  sysmon_wake(s);
}

plain_wait::~plain_wait() {
  std::lock_guard<futex_mutex> l(plain_wait_lock);
  if (!s) return;  // never registered, or its scheduler is gone (forget_plain_waits)
  if (prev) prev->next = next;
  else s->plain_waits = next;
  if (next) next->prev = prev;
  ++s->plain_gen;
}

void forget_plain_waits(sched* s) noexcept {
  std::lock_guard<futex_mutex> l(plain_wait_lock);
  for (plain_wait* pw = s->plain_waits; pw; pw = pw->next) pw->s = nullptr;
  s->plain_waits = nullptr;
}

namespace {

// The number of threads in this process (field 20 of /proc/self/stat), or -1 if it cannot
// be read: then nothing can be accounted for, and no deadlock is reported.
long process_threads() noexcept {
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n;
  do n = ::read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Field 2, the command, may hold spaces and parentheses: fields 3 on follow the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  ++p;
  for (int field = 3; field < 20; ++field) {
    p = std::strchr(p + 1, ' ');
    if (!p) return -1;
  }
  char* end = nullptr;
  long v = std::strtol(p + 1, &end, 10);
  return end == p + 1 ? -1 : v;
}

// 0 if something can still run or wake a goroutine; else a summary of the quiet state, to be
// compared with the next look.  An M's pp, lockedg and nextg are written by that M without
// the lock; a stale read is what the second look, 10 ms later, is for — so ThreadSanitizer
// does not watch this reader.
__attribute__((no_sanitize("thread"))) std::uint64_t quiet_state(sched* s) noexcept {
  if (live_goroutines(s) == 0) return 0;
  if (s->timers.next_when() != timer_heap::kNever) return 0;
  if (netpoll_has_waiters(s)) return 0;
  std::uint64_t state = 0;
  long known = 1;  // sysmon
  {
    std::lock_guard<futex_mutex> l(s->lock);
    if (s->mstarting != 0 || s->stopping.load(std::memory_order_acquire)) return 0;
    if (s->npidle.load(std::memory_order_acquire) != s->allp.size() || s->gq.size() != 0) return 0;
    for (auto& pp : s->allp) {
      if (!pp->q.empty() || pp->runnext.load(std::memory_order_acquire)) return 0;
      state = state * 31 + pp->schedtick.load(std::memory_order_relaxed);
    }
    for (auto& mp : s->allm) {
      const bool wired_waiting = mp->lockedg && !__atomic_load_n(&mp->curg, __ATOMIC_ACQUIRE) && !mp->pp &&
                                 !mp->nextg.load(std::memory_order_acquire);
      if (!mp->on_idle_list && !wired_waiting) return 0;
    }
    known += static_cast<long>(s->allm.size());
  }
  state = state * 31 + made_goroutines(s);
  {
    std::lock_guard<futex_mutex> l(plain_wait_lock);
    for (plain_wait* pw = s->plain_waits; pw; pw = pw->next)
      if (pw->w->claimed.load(std::memory_order_acquire) == 0) ++known;
    state = state * 31 + s->plain_gen;
  }
  if (s->waiting_all_done.load(std::memory_order_seq_cst)) ++known;  // the thread in ~runtime
  if (process_threads() != known) return 0;
  return state | 1;
}

}  // namespace

bool check_deadlock(sched* s) noexcept {
  const std::uint64_t state = quiet_state(s);
  if (state == 0 || state != s->deadlock_seen) {
    s->deadlock_seen = state;
    return state != 0;
  }
  fatal("all goroutines are asleep - deadlock!\n"
        "  Every goroutine waits (below, with what it waits for), no timer or descriptor can wake one, and every "
        "other thread of the process is blocked inside weft.  Look for a channel nobody sends on or closes, a "
        "mutex never unlocked, or a task joined by the goroutine it waits for");
}

}  // namespace weft::detail
