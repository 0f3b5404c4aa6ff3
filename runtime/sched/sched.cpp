// SPDX-License-Identifier: Apache-2.0
// sched.cpp — the scheduler: Go's G/M/P model (runtime/proc.go) for C++.
//
// Gs are goroutines, Ms are OS threads, Ps are the right to run Gs; there are `procs` Ps, so
// at most `procs` goroutines run at once, and an M needs a P to run one.  Each P has a ring of
// runnable Gs plus a `runnext` slot (a G just readied by the running one runs next: a channel
// hand-off costs one switch); a global queue takes overflow and Gs readied by plain threads.
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
// timer thread (an extra wake-up and hand-off per sleep); spinning idle Ms (burns a CPU).
#include "runtime/sched/sched.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "runtime/sched/signals.hpp"
#include "runtime/sched/fastrand.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/deadlock.hpp"
#include "runtime/sched/dump.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/quarantine.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

// Shared with runtime/io (sched.hpp); sched.lock held.
p* pidle_get_locked(sched* s) noexcept {
  p* pp = s->pidle;
  if (!pp) return nullptr;
  s->pidle = pp->idle_link;
  pp->idle_link = nullptr;
  s->npidle.fetch_sub(1, std::memory_order_release);
  return pp;
}

void acquirep(m* mp, p* pp) noexcept {
  mp->pp = pp;
  __atomic_store_n(&pp->mp, mp, __ATOMIC_RELEASE);  // sysmon reads it
  pp->status.store(pstatus::running, std::memory_order_release);
}

namespace {

thread_local m* tls_m = nullptr;
std::atomic<sched*> g_current{nullptr};

constexpr std::uint32_t kGlobalCheckEvery = 61;  // Go's schedtick%61 fairness check

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

// ---- idle lists (sched.lock held) -------------------------------------------------------
void pidle_put_locked(sched* s, p* pp) noexcept {
  pp->status.store(pstatus::idle, std::memory_order_release);
  __atomic_store_n(&pp->mp, nullptr, __ATOMIC_RELAXED);
  pp->idle_link = s->pidle;
  s->pidle = pp;
  s->npidle.fetch_add(1, std::memory_order_release);
}

void midle_put_locked(sched* s, m* mp) noexcept {
  mp->idle_link = s->midle;
  mp->on_idle_list = true;
  s->midle = mp;
}

m* midle_get_locked(sched* s) noexcept {
  m* mp = s->midle;
  if (mp) {
    s->midle = mp->idle_link;
    mp->idle_link = nullptr;
    mp->on_idle_list = false;
  }
  return mp;
}

bool midle_remove_locked(sched* s, m* mp) noexcept {
  for (m** pm = &s->midle; *pm; pm = &(*pm)->idle_link) {
    if (*pm == mp) {
      *pm = mp->idle_link;
      mp->idle_link = nullptr;
      mp->on_idle_list = false;
      return true;
    }
  }
  return false;
}

void m_main(m* mp) noexcept;

// Why a thread could not be made, by evidence: pthread_create says EAGAIN both when the task
// limits are reached and when its stack cannot be mapped, so a stack-sized mapping is tried.
void thread_failure_reason(int err, char* out, std::size_t n) noexcept {
  pthread_attr_t attr;
  std::size_t stack_bytes = std::size_t{8} << 20;
  if (pthread_attr_init(&attr) == 0) {
    if (pthread_getattr_default_np(&attr) == 0) {
      std::size_t sz = 0;
      if (pthread_attr_getstacksize(&attr, &sz) == 0 && sz) stack_bytes = sz;
    }
    pthread_attr_destroy(&attr);
  }
  void* probe = ::mmap(nullptr, stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  const bool mapped = probe != MAP_FAILED;
  if (mapped && ::munmap(probe, stack_bytes) != 0) fatal("munmap of a %zu-byte probe failed: %s", stack_bytes, std::strerror(errno));
  if (err == ENOMEM || !mapped) {
    rlimit as{};
    char lim[64] = "unlimited";
    if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
      std::snprintf(lim, sizeof lim, "%llu KiB", (unsigned long long)(as.rlim_cur / 1024));
    std::snprintf(out, n,
                  "the process's address space or memory is exhausted (a thread needs %zu bytes of stack; RLIMIT_AS "
                  "is %s): raise `ulimit -v`, or lower the threads' stack size (ulimit -s)",
                  stack_bytes, lim);
    return;
  }
  std::snprintf(out, n,
                "the process is at its limit of threads: raise RLIMIT_NPROC (ulimit -u) or kernel.threads-max, or end "
                "other threads first");
}

// Starts an M for pp.  On failure (no thread could be made) the M's record is dropped again
// — a runtime refused threads on every wake-up must not pile up records — and *err says why.
bool try_newm(sched* s, p* pp, bool spinning, std::system_error* err) noexcept {
  std::unique_ptr<m> owned;
  m* mp;
  try {
    owned = std::make_unique<m>();
    mp = owned.get();
    mp->s = s;
    mp->nextp = pp;
    mp->spinning = spinning;
    std::lock_guard<futex_mutex> l(s->lock);
    mp->id = s->allm.empty() ? 0 : s->allm.back()->id + 1;  // records come and go: not size()
    s->allm.push_back(std::move(owned));
    ++s->mstarting;  // stop() waits for it: the record is in allm before its thread exists
  } catch (const std::bad_alloc&) {  // no memory for the record: as if no thread could be made
    *err = std::system_error(std::make_error_code(std::errc::not_enough_memory), "no memory for an M's record");
    return false;
  }
  try {
    std::thread t(m_main, mp);
    std::lock_guard<futex_mutex> l(s->lock);  // stop() reads mp->thread under the lock
    mp->thread = std::move(t);
    --s->mstarting;
    s->st.threads.fetch_add(1, std::memory_order_relaxed);
    return true;
  } catch (const std::exception& e) {  // std::system_error (EAGAIN), or std::bad_alloc
    const auto* se = dynamic_cast<const std::system_error*>(&e);
    *err = se ? *se : std::system_error(std::make_error_code(std::errc::not_enough_memory), e.what());
    std::lock_guard<futex_mutex> l(s->lock);
    --s->mstarting;
    auto it = std::find_if(s->allm.begin(), s->allm.end(), [mp](const std::unique_ptr<m>& x) { return x.get() == mp; });
    s->allm.erase(it);  // never ran: nobody else holds it
    return false;
  }
}

// Starts an M for pp (which the caller took from the idle list).
void newm(sched* s, p* pp, bool spinning) noexcept {
  std::system_error e{std::error_code()};
  if (try_newm(s, pp, spinning, &e)) return;
  // The runtime carries on with the Ms it has (issue: thread creation failure); say so once.
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    char why[256];
    thread_failure_reason(e.code().value(), why, sizeof why);
    char buf[640];
    int n = std::snprintf(buf, sizeof buf,
                          "weft: cannot start another thread (%s); continuing with the threads already running (%s)\n",
                          e.what(), why);
    n = std::min(n, static_cast<int>(sizeof buf) - 1);
    write_stderr(buf, static_cast<unsigned long>(n));
  }
  if (spinning) s->nmspinning.fetch_sub(1, std::memory_order_release);
  std::lock_guard<futex_mutex> l(s->lock);
  pidle_put_locked(s, pp);
}

// A wired goroutine and a P for it, handed to its M (nextp before nextg: see struct m).
void hand_wired(m* owner, p* pp, g* gp) noexcept {
  owner->nextp = pp;
  owner->nextg = gp;
}

// The same, to another M, which is woken to run them.
void wake_wired(m* owner, p* pp, g* gp) noexcept {
  hand_wired(owner, pp, gp);
  owner->park.wake();
}

// Gives pp (or an idle P) to an idle or new M.  Go's startm.
void startm(sched* s, p* pp, bool spinning) noexcept {
  m* mp;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    if (!pp) {
      pp = pidle_get_locked(s);
      if (!pp) {
        if (spinning) s->nmspinning.fetch_sub(1, std::memory_order_release);
        return;
      }
    }
    mp = midle_get_locked(s);
  }
  if (!mp) {
    newm(s, pp, spinning);
    return;
  }
  mp->spinning = spinning;
  mp->nextp = pp;
  mp->park.wake();
}

}  // namespace

// Wakes an M to look for work if there is an idle P and nobody is looking.  Go's wakep.
void wakep(sched* s) noexcept {
  if (s->sysmon_sleeping.load(std::memory_order_relaxed)) sysmon_wake(s);
  if (s->npidle.load(std::memory_order_acquire) == 0) return;
  // A load first: while an M spins, every ready() would otherwise take the line exclusive.
  if (s->nmspinning.load(std::memory_order_relaxed) != 0) return;
  std::uint32_t z = 0;
  if (!s->nmspinning.compare_exchange_strong(z, 1, std::memory_order_acq_rel)) return;
  m* self = current_m();
  p* mine = self && self->s == s ? self->pp : nullptr;
  if (mine) mine->waking.store(true, std::memory_order_release);
  startm(s, nullptr, true);
  if (mine) mine->waking.store(false, std::memory_order_release);
}

// Hands a P that its M is giving up (blocking call, wired goroutine) to an M if there is work
// for it; otherwise puts it on the idle list.  Go's handoffp.
void handoffp(sched* s, p* pp) noexcept {
  if (!pp->q.empty() || pp->runnext.load(std::memory_order_acquire) || s->gq.size_acquire() > 0 ||
      s->timers.next_when() != timer_heap::kNever) {
    startm(s, pp, false);
    return;
  }
  if (s->nmspinning.load(std::memory_order_acquire) == 0 && s->npidle.load(std::memory_order_acquire) == 0) {
    // Someone must keep looking: the last P must not fall asleep while work may arrive.
    std::uint32_t z = 0;
    if (s->nmspinning.compare_exchange_strong(z, 1)) {
      startm(s, pp, true);
      return;
    }
  }
  std::lock_guard<futex_mutex> l(s->lock);
  pidle_put_locked(s, pp);
}

const char* status_name(gstatus st) noexcept {
  switch (st) {
    case gstatus::idle: return "idle";
    case gstatus::runnable: return "runnable";
    case gstatus::running: return "running";
    case gstatus::waiting: return "waiting";
    case gstatus::syscall: return "blocking call";
    case gstatus::dead: return "dead";
    case gstatus::scanning: return "being scanned";
  }
  return "?";
}

void bad_status(g* gp, gstatus from, gstatus to, gstatus cur) noexcept {
  fatal("goroutine %llu: bad status change %s -> %s (it is %s)", (unsigned long long)gp->id, status_name(from),
        status_name(to), status_name(cur));
}

// Appended to every fatal error: every live goroutine (dump.cpp), on stderr.
static void dump_goroutines_on_fatal() noexcept { dump_goroutines_to(2, dump_context::dying); }

// Never inlined: inlined, a compiler may compute the thread-local's address once per function
// (clang -O2 does), and after a switch that migrated the goroutine that address is the old
// thread's.  The asm keeps the call from being treated as pure and merged.
__attribute__((noinline)) m* current_m() noexcept {
  asm volatile("" ::: "memory");
  return tls_m;
}

sched* current_sched() noexcept { return g_current.load(std::memory_order_acquire); }

// The ring is full: move half of it and gp to the global queue (Go's runqputslow).  Out of
// line: its batch buffer would otherwise make every caller's frame big.
__attribute__((noinline, cold)) static void runq_put_slow(sched* s, p* pp, g* gp) noexcept {
  g* batch[runq::kSize / 2 + 1];
  std::uint32_t n = pp->q.grab_for_overflow(batch, runq::kSize / 2);
  batch[n++] = gp;
  std::lock_guard<futex_mutex> l(s->lock);
  for (std::uint32_t i = 0; i < n; ++i) s->gq.push(batch[i]);
}

// Puts a runnable G on pp: in runnext (kicking the previous one to the ring) or at the tail.
static inline __attribute__((always_inline)) void runq_put_inline(sched* s, p* pp, g* gp, bool next) noexcept {
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
static inline __attribute__((always_inline)) void prefetch_queued(p* pp) noexcept {
#if !defined(WEFT_SANITIZE_THREAD)  // reads ctx unsynchronised, which TSan would report
  if (g* next = pp->q.peek(0)) __builtin_prefetch(next->ctx ? static_cast<const void*>(next->ctx) : next->body);
#endif
  if (g* after = pp->q.peek(1)) {
    __builtin_prefetch(after);
    __builtin_prefetch(reinterpret_cast<const char*>(after) + 64);
  }
}

static inline __attribute__((always_inline)) g* take_runnext(p* pp) noexcept {
  if (!pp->runnext.load(std::memory_order_relaxed)) return nullptr;
  return pp->runnext.exchange(nullptr, std::memory_order_acq_rel);
}

static inline __attribute__((always_inline)) g* runq_get_inline(p* pp) noexcept {
  if (g* gp = take_runnext(pp)) return gp;
  return pp->q.pop();
}

void runq_put(sched* s, p* pp, g* gp, bool next) noexcept { runq_put_inline(s, pp, gp, next); }
// Parking, exiting and g0 take the next G here, fetching ahead (yield's direct switch does
// not: its round trip between two goroutines has nothing queued behind, and pays 8% for it).
g* runq_get(p* pp) noexcept {
  if (g* gp = take_runnext(pp)) return gp;
  g* gp = pp->q.pop();
  if (gp) prefetch_queued(pp);
  return gp;
}

void put_runnable(sched* s, p* pp, g* gp, bool next) noexcept {
  if (pp) {
    runq_put_inline(s, pp, gp, next);
    return;
  }
  std::lock_guard<futex_mutex> l(s->lock);
  s->gq.push(gp);
}

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
  for (std::uint32_t i = 1; i < n; ++i) runq_put(s, pp, batch[i], false);
  return batch[0];
}

// The M stops spinning; if it was the last spinner and found work, another must start, since
// more work may be queued behind what it found (Go's resetspinning).
static void reset_spinning(sched* s, m* mp) noexcept {
  if (!mp->spinning) return;
  mp->spinning = false;
  if (s->nmspinning.fetch_sub(1, std::memory_order_acq_rel) == 1) wakep(s);
}

// Sleeps until handed a P (nextp) or stopped, or — as the timer sleeper — until the next timer
// is due or an earlier one is added.  Returns with or without a P; the caller looks again.
static void stopm(sched* s, m* mp) noexcept {
  std::int64_t deadline = 0;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    if (s->stopping.load(std::memory_order_acquire)) return;
    mp->park.clear();
    midle_put_locked(s, mp);
    std::int64_t next = s->timers.next_when();
    if (next != timer_heap::kNever && !s->timer_sleeper) {
      s->timer_sleeper = mp;
      s->timer_sleeper_deadline = next;
      deadline = next;
    }
  }
  mp->park.sleep(deadline);
  s->coarse_now.store(monotonic_ns(), std::memory_order_relaxed);
  bool on_list;
  {
    std::lock_guard<futex_mutex> l(s->lock);
    if (s->timer_sleeper == mp) s->timer_sleeper = nullptr;
    on_list = midle_remove_locked(s, mp);
  }
  if (on_list) return;  // a deadline, a timer wake, or stop(): nobody is handing us a P
  // startm took us off the idle list: the P follows (nextp is set before the wake).
  while (!mp->nextp && !s->stopping.load(std::memory_order_acquire)) {
    mp->park.clear();
    if (mp->nextp || s->stopping.load(std::memory_order_acquire)) break;
    mp->park.sleep();
  }
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

// A G a yield put on a run queue is published before its switch is done: its status says
// `running` until the assembly has saved its context (switch.hpp, switch_direct).  Whoever
// takes it from a queue waits out that window (a few dozen instructions on the other CPU).
// (If that CPU was preempted inside the window, spinning would only burn ours: yield it.)
static inline void wait_switched_out(g* gp) noexcept {
  for (unsigned spins = 0; __builtin_expect(gp->status.load(std::memory_order_acquire) == gstatus::running, 0);) {
    if (++spins < 1024) arch::cpu_relax();
    else ::sched_yield();
  }
}

// Takes gp, just taken from a run queue, to run on pp: once a yield's save is done, runnable →
// running, counted as one schedule of pp.
static inline __attribute__((always_inline)) void claim_g(p* pp, g* gp) noexcept {
  wait_switched_out(gp);
  set_status(gp, gstatus::runnable, gstatus::running);
  bump(pp->schedtick);
}

// Whether a goroutine leaving mp may switch straight to the next G of its P: not when the M
// is wired, on the periodic tick when g0 looks at the global queue, or when stopping.
static inline __attribute__((always_inline)) bool may_switch_direct(m* mp, p* pp, sched* s) noexcept {
  return pp && !mp->lockedg && pp->schedtick.load(std::memory_order_relaxed) % kGlobalCheckEvery != 0 &&
         !s->stopping.load(std::memory_order_relaxed);
}

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

static void schedule(sched* s, m* mp) noexcept {
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

namespace {

void m_main(m* mp) noexcept {
  tls_m = mp;
  bind_thread(mp);
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &mp->g0_stack_lo, &mp->g0_stack_size);
    pthread_attr_destroy(&attr);
  }
  install_thread_signal_stack(mp);
  schedule(mp->s, mp);
  remove_thread_signal_stack(mp);
  tls_m = nullptr;
  mp->exited.store(true, std::memory_order_release);
}

}  // namespace

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
  for (auto& pp : allp) stacks.drain(pp->scache);
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

// ---- goroutine counts -------------------------------------------------------------------
// Each P's `made` and `ended` have one writer, the M holding the P, which bumps them with a
// plain store (no locked instruction, no shared line); a P-less go() (a plain thread) uses the
// shared *_without_p words.  Live = made - ended, read in this order: every ended first, then
// every made.  A goroutine counted as ended was made before it ended (and its made store is
// visible to whoever saw the ended one: release stores, acquire loads), so made >= ended; and
// a sum of 0 means no goroutine was alive — one made after its P's `made` was read had a
// parent that was alive when the ended counts were read, so the sum could not have been 0.
// (Go likewise batches: runtime/proc.go's goidcache; its gcount() sums per-P free lists.)
namespace {

constexpr std::uint64_t kGoidBatch = 16;  // Go's _GoidCacheBatch

std::uint64_t new_goid(sched* s, p* pp) noexcept {
  if (!pp) return s->next_goid.fetch_add(1, std::memory_order_relaxed);
  if (pp->goid_next == pp->goid_end) {
    pp->goid_next = s->next_goid.fetch_add(kGoidBatch, std::memory_order_relaxed);
    pp->goid_end = pp->goid_next + kGoidBatch;
  }
  return pp->goid_next++;
}

void count_made(sched* s, p* pp) noexcept {
  if (pp) pp->made.store(pp->made.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  else s->made_without_p.fetch_add(1, std::memory_order_release);
}

// A goroutine has ended: counted, and if stop is waiting for the last one and this was it,
// the waiter is woken.  The count's store and the flag's load are sequentially consistent,
// pairing with wait_all_done's (one of the two sees the other).
void count_ended(sched* s, p* pp) noexcept {
  if (pp) pp->ended.store(pp->ended.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
  else s->ended_without_p.fetch_add(1, std::memory_order_seq_cst);
  if (s->waiting_all_done.load(std::memory_order_seq_cst) && live_goroutines(s) == 0) s->all_done.wake();
}

}  // namespace

std::uint64_t made_goroutines(sched* s) noexcept {
  std::uint64_t n = s->made_without_p.load(std::memory_order_seq_cst);
  for (auto& pp : s->allp) n += pp->made.load(std::memory_order_seq_cst);
  return n;
}

std::uint64_t live_goroutines(sched* s) noexcept {
  std::uint64_t ended = s->ended_without_p.load(std::memory_order_seq_cst);
  for (auto& pp : s->allp) ended += pp->ended.load(std::memory_order_seq_cst);
  return made_goroutines(s) - ended;
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

// ---- goroutine creation and exit ---------------------------------------------------------

// Dead G records (gfree.hpp): the P's own, else the global store.
static g* gfree_get(sched* s, p* pp) noexcept {
  if (pp) return pp->gfree.get(s->gfree);
  g* gp = nullptr;
  s->gfree.take(&gp, 1);
  return gp;
}

static void gfree_put(sched* s, p* pp, g* gp) noexcept {
  if (pp) pp->gfree.put(s->gfree, gp);
  else s->gfree.put(&gp, 1);
}

// A goroutine's stack is reserved at its spawn, so running out of stacks is the spawner's
// error (DESIGN §5), but a never-used slot is set up (guards, page tables) only at the first
// run, and nothing is written there until then: the closure is built in
// its record (or on the heap), and start_context makes the initial context only then — on
// the stack the running P freed last, if it has one to trade.  A tree of a million goroutines
// queues ~94,000 between a spawn and its run; a stack reserved at the spawn has long left the
// CPU's caches by then, while the one the previous goroutine just exited on has not.
// Trading cut skynet's time by 21-27% (BENCHMARKS.md).  Rejected: taking the stack only at
// the first run, which measured the same but leaves a spawn unable to report that stacks ran
// out (a first run could only die of it).
g* reserve_goroutine(sched* s, m* mp) {
  p* pp = mp ? mp->pp : nullptr;
  stack_cache* cache = pp ? &pp->scache : nullptr;
  const stack stk = s->stacks.alloc_min(cache);
  g* gp = gfree_get(s, pp);
  if (!gp) {
    void* mem;
    try {
      mem = heap_alloc_aligned(sizeof(g), alignof(g));
    } catch (...) {  // out of memory for the record: give back the stack, then report it
      s->stacks.free(stk, cache);
      throw;
    }
    gp = new (mem) g();
    fiber_created(gp);
    std::lock_guard<futex_mutex> l(s->allg_lock);
    gp->all_link = s->allg;
    s->allg = gp;
  }
  gp->stk = stk;
  return gp;
}

void abandon_goroutine(sched* s, m* mp, g* gp) noexcept {
  p* pp = mp ? mp->pp : nullptr;
  s->stacks.free(gp->stk, pp ? &pp->scache : nullptr);
  gp->stk = {};
  gp->status.store(gstatus::dead, std::memory_order_relaxed);  // (dumps skip dead records)
  gfree_put(s, pp, gp);
}

std::uint64_t launch_goroutine(sched* s, m* mp, g* gp, closure* c, g* pin) noexcept {
  p* pp = mp ? mp->pp : nullptr;
  // The record is clean (gdead_post): what differs per goroutine is written, in lines 0-1
  // (and pinned_parent_id, further on, only for a pinned parent).  pins and preempt are reset
  // here, not at exit: a child that outlives its parent may still unpin it, and sysmon may
  // still ask a goroutine that just exited to yield.
  gp->ctx = nullptr;  // not started: start_context makes it
  gp->pins.store(0, std::memory_order_relaxed);
  gp->fn = c;
  gp->pinned_parent = pin;
  if (pin) gp->pinned_parent_id = pin->id;
  gp->id = new_goid(s, pp);
  gp->preempt.store(false, std::memory_order_relaxed);
  gp->status.store(gstatus::runnable, std::memory_order_release);
  count_made(s, pp);
  std::uint64_t id = gp->id;
  put_runnable(s, pp, gp, true);
  wakep(s);
  return id;
}

// A first run on a slot that was only reserved (stack_pool::alloc_min): its guards go in now.
// Nobody can be told of a failure here (the spawn returned long ago): a named fatal error.
__attribute__((noinline)) static void set_up_first_stack(m* mp, g* gp) noexcept {
  try {
    mp->s->stacks.set_up_unset(gp->stk);
  } catch (const std::exception& e) {
    fatal("goroutine %llu cannot start: setting up its stack failed: %s", (unsigned long long)gp->id, e.what());
  }
}

void start_context(m* mp, g* gp) noexcept {
  if (p* pp = mp->pp) mp->s->stacks.trade_for_warm(gp->stk, pp->scache);
  if (__builtin_expect(gp->stk.unset(), 0)) set_up_first_stack(mp, gp);
  stack_reused(gp->stk.lo, gp->stk.hi);  // (AddressSanitizer: nothing left poisoned)
  gp->ctx = boost::context::detail::make_fcontext(reinterpret_cast<void*>(gp->stk.hi), gp->stk.size(), goroutine_entry);
}

// Post-switch action for a dead G: its stack and record go back for reuse.
// The record is left clean, as a new one is, while its lines are still cached: the next
// spawn then writes only what differs per goroutine (launch_goroutine).  (wait_reason is not
// reset: every park sets it, and only a parked G's is read.)
static void gdead_post(m* mp, g* gp, void*) noexcept {
  sched* s = mp->s;
  p* pp = mp->pp;
  stack_reused(gp->stk.open_lo(), gp->stk.hi);  // leave no poison behind for the next user (what it used)
  // The next goroutine starts at stack_min, like every goroutine; the pages this one grew
  // into stay open (stack_pool.hpp: a stack's open part), and a stack with more of them than
  // a P's cache keeps goes to the global pool, where the scan phase gives them back.
  s->stacks.restart(gp->stk);
  s->stacks.free_own(gp->stk, pp ? &pp->scache : nullptr);
  gp->stk = {};
  // No goroutine has this id any more: a child still holding it as its pinned parent's
  // (goroutine_entry) must not unpin whoever gets the record next.
  __atomic_store_n(&gp->id, 0, __ATOMIC_RELAXED);
  gp->grows = gp->shrinks = 0;
  gp->tls = thread_state{};
  gp->lock_depth = 0;  // (locked_m: goexit)
#if defined(WEFT_SANITIZE_ADDRESS)
  gp->asan_fake_stack = nullptr;
#endif
  gfree_put(s, pp, gp);
  count_ended(s, pp);
}

// Where a goroutine leaves: picks the next G (or g0) and never returns.
[[noreturn]] static void goexit(m* mp, g* gp) noexcept {
  if (gp->locked_m) {
    // A G that ends wired keeps nothing: its M goes back to ordinary work.
    mp->lockedg = nullptr;
    gp->locked_m = nullptr;
  }
  // A spare split-stack segment, old stacks under ASan (stack/grow.hpp); most Gs have neither.
#if defined(WEFT_SANITIZE_ADDRESS)
  if (gp->spare || gp->asan_moved_from) release_kept_stacks(mp->s, mp, gp);
#else
  if (gp->spare) release_kept_stacks(mp->s, mp, gp);
#endif
  gp->status.store(gstatus::dead, std::memory_order_release);
  switch_away(mp, gdead_post, nullptr);
  fatal("goroutine %llu resumed after it exited", (unsigned long long)gp->id);
}

void goroutine_entry(boost::context::detail::transfer_t) noexcept {
  // Not t.data: for a fresh context Boost 1.74's trampoline (make_x86_64_sysv_elf_gas.S) does
  // not pass on what the ontop function returned, so the argument is stale.
  m* mp = current_m();
  g* gp = mp->curg;
  // gp->fn stays set while the closure lives: a stack copy adjusts an in-place closure's
  // words (move_stack) while it does.
  closure* c = gp->fn;
  after_exit then;
  try {
    then = c->run();
  } catch (const std::exception& e) {
    fatal("goroutine %llu: uncaught exception: %s", (unsigned long long)gp->id, e.what());
  } catch (...) {
    fatal("goroutine %llu: uncaught exception of a type not derived from std::exception", (unsigned long long)gp->id);
  }
  destroy_closure(c);
  gp->fn = nullptr;
  if (g* parent = std::exchange(gp->pinned_parent, nullptr)) {
    // (A parent that exited first left its children dangling references: a bug the id check
    // keeps from unpinning whoever reuses its record.)
    if (__atomic_load_n(&parent->id, __ATOMIC_RELAXED) == gp->pinned_parent_id)
      parent->pins.fetch_sub(1, std::memory_order_release);
  }
  // Its moved-from stacks go back before its joiner is woken, so that weft::stats counts none
  // of them once join returns (grow_test.cpp's AGoroutineKeepsAtMostSixteenMovedFromRanges...:
  // given back in gdead_post, on 2 Ps they were still counted now and then).  Nothing from
  // here on checks the stack, so nothing moves it again.  (The count sits in a line of the
  // record that exits otherwise leave alone: only copy with quarantine on reads it.)
  if (m* now = current_m(); __builtin_expect(*now->s->opts.quarantine, 0) && gp->quarantined != 0)
    quarantine_release(now->s, now, gp);  // (the closure may have parked: maybe another M)
  // Last, a spawn's completion: its joiner may count on the captures being gone and on its
  // stack being free to move (grow_test.cpp's AJoinerWakesOnlyAfterTheClosureIsGone).
  if (then.fn) then.fn(then.arg);
  // The closure may have parked: this goroutine may now be on another M.
  mp = current_m();
  goexit(mp, gp);
}

// ---- leaving a goroutine: yield, park, exit --------------------------------------------

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
  put_runnable(mp->s, mp->pp, gp, false);
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
    else put_runnable(mp->s, mp->pp, gp, true);
  }
}

void park(park_commit commit, void* arg, const char* reason) noexcept {
  m* mp = current_m();
  g* gp = mp->curg;
  gp->wait_reason = reason;
  gp->wait_since = mp->s->coarse_now.load(std::memory_order_relaxed);
  park_req r{commit, arg};
  if (mp->lockedg) switch_to(mp, nullptr, park_post, &r);
  else switch_away(mp, park_post, &r);
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
  put_runnable(s, mp && mp->s == s ? mp->pp : nullptr, gp, true);
  wakep(s);
}

}  // namespace weft::detail
