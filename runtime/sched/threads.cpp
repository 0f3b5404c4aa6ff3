// SPDX-License-Identifier: Apache-2.0
// threads.cpp — the Ms: OS threads that run goroutines while they hold a P (Go's runtime/proc.go
// newm, startm, stopm, wakep, handoffp).
//
// An M is made when work needs a thread and no idle M is left; it is never destroyed while the
// runtime runs (it sleeps on its own futex word, `park`, when idle).  The idle lists (Ps and
// Ms) are guarded by sched.lock.  Waking is economical: wakep starts one spinning M only if
// there is an idle P and nobody is spinning already, so a burst of readies wakes one M, which
// wakes the next once it finds work (schedule.cpp's essay has the protocol that makes this
// safe).  A failure to start a thread is said once and the runtime carries on with the Ms it
// has; only the first M, at start, is required (sched.cpp).
//
// current_m() reads the thread-local this file owns; see the comment at its definition for
// why it is never inlined.
#include "runtime/sched/threads.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/signals.hpp"
#include "runtime/sched/switch.hpp"

namespace weft::detail {
namespace {

thread_local m* tls_m = nullptr;

}  // namespace

// Never inlined: inlined, a compiler may compute the thread-local's address once per function
// (clang -O2 does), and after a switch that migrated the goroutine that address is the old
// thread's.  The asm keeps the call from being treated as pure and merged.
__attribute__((noinline)) m* current_m() noexcept {
  asm volatile("" ::: "memory");
  return tls_m;
}

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

// ---- idle lists (sched.lock held) -------------------------------------------------------
void pidle_put_locked(sched* s, p* pp) noexcept {
  pp->status.store(pstatus::idle, std::memory_order_release);
  __atomic_store_n(&pp->mp, nullptr, __ATOMIC_RELAXED);
  pp->idle_link = s->pidle;
  s->pidle = pp;
  s->npidle.fetch_add(1, std::memory_order_release);
}

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

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

// wakep's work (sched.hpp), once its loads found some.
void wakep_slow(sched* s) noexcept {
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

// Sleeps until handed a P (nextp) or stopped, or — as the timer sleeper — until the next timer
// is due or an earlier one is added.  Returns with or without a P; the caller looks again.
void stopm(sched* s, m* mp) noexcept {
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

}  // namespace weft::detail
