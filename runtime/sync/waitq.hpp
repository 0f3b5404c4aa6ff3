// SPDX-License-Identifier: Apache-2.0
// waitq.hpp — wait queues for channels, select, wait_group, mutex and condition_variable.
//
// A blocked goroutine (or thread) is a `waiter` (runtime/sched/sched.hpp) plus one
// `wait_node` per queue it sits in — Go's sudog.  A plain channel operation, a mutex or a
// condition wait has one node; a select has one per channel case, all sharing one waiter.
// Nodes and the waiter live on the blocked goroutine's stack: block() pins that stack while
// it sleeps, and the runtime's own code (built without split-stack prologues) cannot move the
// stack between registering a node and blocking, so the queues may point at them.
//
// The protocol, for every queue here:
//   1. The blocker registers its node(s) under the queue's lock and calls
//      block(waiter, unlock, ...): the lock is released only once it is committed to sleep.
//   2. A waker takes the lock, pops a node and claims its waiter (waiter::try_claim).  A node
//      whose waiter is already claimed (a select woken through another case, a wait whose
//      timer fired) is dropped and the next one tried.  The winner hands over what it must
//      (a value, "ok", the case index), releases the lock, and only then wakes the waiter —
//      nothing can wake it meanwhile, since it is claimed — so a woken goroutine never
//      contends on the lock its waker still holds.
//   3. A blocker woken by its timer, or a select woken through one case, takes the lock(s)
//      again and unlinks whichever of its nodes are still queued (`queued` says, under lock).
// Nothing touches a node or its waiter after waking it: from then on the owner may return.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/futex.hpp"
#include "runtime/sched/sched.hpp"
#include "weft/sync.hpp"

namespace weft::detail {

struct wait_node {
  waiter* w = nullptr;
  wait_node* next = nullptr;
  wait_node* prev = nullptr;
  void* elem = nullptr;          // channels: the value to send from / the room to receive into
  std::int64_t since = 0;        // mutex: when this waiter first queued
  std::uint32_t index = 0;       // select: the case; written to w->result by the waker
  bool queued = false;           // linked in a queue (read and written under its lock)
  bool shared = false;           // its waiter has other nodes or a timer: claim before use
  bool ok = false;               // set by the waker: done (false: closed / not handed over)
};

// ---- the lock word ------------------------------------------------------------------------
// word_lock / word_unlock (runtime/sched/futex.hpp): the scheduler's futex_mutex, on a word that
// lives in a user-visible object.

// block()'s unlock callback for a lone lock word.
inline void word_unlock_cb(void* w) noexcept { word_unlock(*static_cast<std::atomic<std::uint32_t>*>(w)); }

struct word_guard {
  std::atomic<std::uint32_t>& w;
  explicit word_guard(std::atomic<std::uint32_t>& word) noexcept : w(word) { word_lock(w); }
  ~word_guard() { word_unlock(w); }
  word_guard(const word_guard&) = delete;
  word_guard& operator=(const word_guard&) = delete;
};

// ---- the queue (its lock held) ------------------------------------------------------------

inline bool wq_empty(const wait_queue& q) noexcept { return q.head == nullptr; }

inline void wq_push_back(wait_queue& q, wait_node* n) noexcept {
  n->next = nullptr;
  n->prev = q.tail;
  if (q.tail) q.tail->next = n;
  else q.head = n;
  q.tail = n;
  n->queued = true;
}

inline void wq_push_front(wait_queue& q, wait_node* n) noexcept {
  n->prev = nullptr;
  n->next = q.head;
  if (q.head) q.head->prev = n;
  else q.tail = n;
  q.head = n;
  n->queued = true;
}

inline void wq_remove(wait_queue& q, wait_node* n) noexcept {
  if (!n->queued) return;
  if (n->prev) n->prev->next = n->next;
  else q.head = n->next;
  if (n->next) n->next->prev = n->prev;
  else q.tail = n->prev;
  n->next = n->prev = nullptr;
  n->queued = false;
}

// Pops the first node whose waiter the caller wins; drops nodes someone else already claimed.
// The caller then owns the node until it wakes the waiter.
inline wait_node* wq_pop_claimed(wait_queue& q) noexcept {
  while (wait_node* n = q.head) {
    wq_remove(q, n);
    if (!n->shared || n->w->try_claim()) return n;
  }
  return nullptr;
}

// Wakes a node's waiter after the queue's lock is released.  Reads nothing from the node
// afterwards.
inline void wake_node(wait_node* n) noexcept {
  waiter* w = n->w;
  w->wake();
}

// Wakes every node of a chain linked through `next` — built under the lock in whatever order
// the caller wants them woken, woken after it is released.  Reads each node's link before
// waking it: the node may vanish once its owner runs.
inline void wake_chain(wait_node* n) noexcept {
  while (n) {
    wait_node* next = n->next;
    wake_node(n);
    n = next;
  }
}

}  // namespace weft::detail
