// SPDX-License-Identifier: Apache-2.0
// mutex.cpp — Go's sync.Mutex: fast when uncontended, fair when someone starves.
//
// The state word:  bit 0 kLocked   held
//                  bit 1 kStarving starvation mode: unlock hands ownership to the queue head
//                  bit 2 kWaiters  the wait queue is non-empty
// Invariants: kWaiters ⇔ the queue is non-empty; kStarving ⇒ kLocked and kWaiters.  kWaiters
// and kStarving change only under the queue's lock; kLocked is taken by CAS, and only while
// neither kLocked nor kStarving is set.
//
// Normal mode.  lock() takes a free mutex by CAS, even if others are queued: the newcomer is
// already running on a CPU, which makes it much faster than waking a sleeper (barging).  A
// contender spins a little on a multicore machine, then queues at the back and blocks.
// unlock() releases, then pops the queue head and wakes it to compete again; one that loses
// the race queues again at the *front*, keeping its place by age.
//
// Starvation mode (Go 1.9).  A waiter that has waited more than 1 ms when it loses again sets
// kStarving as it re-queues.  From then on nobody barges or spins: newcomers queue at the
// back, and unlock() hands the lock straight to the queue head (kLocked stays set; the
// woken waiter simply owns it).  The mode ends when the head it hands to waited less than
// 1 ms, or is the last waiter — so latency is bounded without paying for fairness always.
//
// Unlike Go, which parks waiters on a semaphore keyed by the mutex address, the queue lives
// in the mutex (weft/sync.hpp's wait_list), guarded by its own lock word: no global table.
#include "arch/cpu.hpp"
#include "runtime/sync/waitq.hpp"

namespace weft::detail {

namespace {

constexpr std::uint32_t kLocked = 1, kStarving = 2, kWaiters = 4;
constexpr std::int64_t kStarveNs = 1'000'000;
constexpr int kSpinRounds = 4, kSpinPauses = 30;  // Go's active_spin / active_spin_cnt

// Spinning pays only if the holder runs elsewhere meanwhile: more than one CPU, and (on a
// goroutine) nothing else waiting to run on this P.
bool may_spin() noexcept {
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  if (!multicore) return false;
  m* mp = current_m();
  if (!mp || !mp->curg) return true;
  p* pp = mp->pp;
  return pp && pp->q.empty() && !pp->runnext.load(std::memory_order_relaxed);
}

}  // namespace

bool mutex_try_lock(mutex_state& s) noexcept {
  std::uint32_t v = s.word.load(std::memory_order_relaxed);
  while (!(v & (kLocked | kStarving)))
    if (s.word.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  return false;
}

void mutex_lock_slow(mutex_state& s) {
  std::int64_t since = 0;  // when this caller first queued
  bool starving = false;
  bool requeue = false;    // woken and lost: queue at the front
  int spins = 0;
  for (;;) {
    std::uint32_t v = s.word.load(std::memory_order_relaxed);
    if (!(v & (kLocked | kStarving))) {
      if (s.word.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
      continue;
    }
    if (!(v & kStarving) && !requeue && spins < kSpinRounds && may_spin()) {
      ++spins;
      for (int i = 0; i < kSpinPauses; ++i) arch::cpu_relax();
      continue;
    }
    word_lock(s.waiters.lock);
    v = s.word.load(std::memory_order_relaxed);
    bool queued = false;
    while (v & (kLocked | kStarving)) {
      std::uint32_t nv = v | kWaiters;
      if (starving && (v & kLocked)) nv |= kStarving;
      if (s.word.compare_exchange_weak(v, nv, std::memory_order_relaxed)) {
        queued = true;
        break;
      }
    }
    if (!queued) {  // released meanwhile: compete again
      word_unlock(s.waiters.lock);
      continue;
    }
    waiter w;
    wait_node n;
    n.w = &w;
    if (since == 0) since = monotonic_ns();
    n.since = since;
    if (requeue) wq_push_front(s.waiters.q, &n);
    else wq_push_back(s.waiters.q, &n);
    block(w, word_unlock_cb, &s.waiters.lock, "mutex lock");
    if (n.ok) {
      // Handed over in starvation mode: kLocked stayed set for us.  The acquire load pairs
      // with the releasing RMW the unlocker made on the word.
      (void)s.word.load(std::memory_order_acquire);
      return;
    }
    starving = starving || monotonic_ns() - since > kStarveNs;
    requeue = true;
    spins = 0;
  }
}

void mutex_unlock_slow(mutex_state& s) noexcept {
  wait_node* n = nullptr;
  {
    word_guard g(s.waiters.lock);
    std::uint32_t v = s.word.load(std::memory_order_relaxed);
    if (!(v & kLocked)) fatal("unlock of an unlocked weft::mutex");
    n = wq_pop_claimed(s.waiters.q);
    std::uint32_t clear = 0;
    if (wq_empty(s.waiters.q)) clear |= kWaiters | kStarving;
    if ((v & kStarving) && n) {
      // Hand over: kLocked stays set.  A head that waited briefly ends starvation mode.
      if (monotonic_ns() - n->since < kStarveNs) clear |= kStarving;
      n->ok = true;
      s.word.fetch_and(~clear, std::memory_order_acq_rel);
    } else {
      // Release, and wake the head (if any) to compete.
      s.word.fetch_and(~(clear | kLocked | kStarving), std::memory_order_release);
    }
  }
  if (n) wake_node(n);
}

}  // namespace weft::detail
