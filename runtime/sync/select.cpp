// SPDX-License-Identifier: Apache-2.0
// select.cpp — Go's select (runtime/select.go), over type-erased cases.
//
//   1. Poll order: the channel cases in a uniformly random permutation.  The first ready case
//      in it wins, so among the cases ready at once each is equally likely (a fixed order
//      would starve the later ones).
//   2. Lock order: the distinct channels sorted by address.  Every select locks its channels
//      in this order and a plain operation locks one channel, so no two parties can each hold
//      a lock the other waits for.
//   3. With every channel locked, pass 1 looks for a ready case in poll order and does it
//      (chan_core.hpp's moves).  None ready: on_default runs, or a non-positive on_timeout.
//   4. Pass 2 queues one node per channel case — all sharing one waiter, marked `shared` so
//      that a waker must claim the waiter first — and blocks with the earliest timeout as the
//      deadline.  Whoever claims the waiter (a send or receive on one of the channels, a
//      close, the timer) has done the case's move and set waiter::result to its index.
//   5. Woken: lock every channel again, unlink the nodes still queued (others' wakers skip
//      claimed nodes, but would otherwise find them), unlock, and report the case.
// The unlock in step 4 runs after the goroutine is parked, and releases the locks in reverse
// order: the woken select, re-locking in address order, waits for the lowest lock, which goes
// last, so the lock list on its stack is still intact while the waker's side reads it.
//
// Rejected: a separate "select done" flag per channel (Go's selectDone) — the waiter's claim
// already decides the one winner, for channel wakers and timers alike.
#include <cstdint>
#include <functional>
#include <memory>

#include "runtime/sched/fastrand.hpp"
#include "runtime/sync/chan_core.hpp"
#include "weft/errors.hpp"
#include "weft/runtime.hpp"
#include "weft/select.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t kInlineCases = 8;

thread_local std::uint64_t t_rand_state = 0;

// Seeded per thread (runtime/sched/fastrand.hpp).  Only called before the select can block (a
// goroutine that blocked may resume on another thread, whose thread_local the compiler might
// not reload).
std::uint32_t select_rand(std::uint32_t bound) noexcept {
  std::uint64_t s = t_rand_state;
  if (s == 0) s = (static_cast<std::uint64_t>(monotonic_ns()) ^ reinterpret_cast<std::uintptr_t>(&t_rand_state)) | 1;
  const std::uint32_t r = fastrand_n(s, bound);
  t_rand_state = s;
  return r;
}

struct lock_set {
  chan_core** cores;  // distinct, in address order
  std::size_t n;
};

void lock_all(const lock_set& l) noexcept {
  for (std::size_t i = 0; i < l.n; ++i) word_lock(l.cores[i]->lock);
}

// Releases in reverse order.  Reads each lock's address before releasing it and nothing after
// the last (lowest) one, so it may run as block()'s unlock: see the top of the file.
void unlock_all(const lock_set& l) noexcept {
  for (std::size_t i = l.n; i-- > 0;) word_unlock(l.cores[i]->lock);
}

// block()'s unlock: runs once the selecting goroutine is parked.
void unlock_all_cb(void* a) noexcept { unlock_all(*static_cast<lock_set*>(a)); }

// Small arrays on the stack for a few cases, on the heap beyond.
template <class T>
struct scratch {
  T inline_[kInlineCases];
  std::unique_ptr<T[]> heap_;
  T* p;
  explicit scratch(std::size_t n) : p(inline_) {
    if (n > kInlineCases) {
      heap_.reset(new T[n]);
      p = heap_.get();
    }
  }
  T& operator[](std::size_t i) noexcept { return p[i]; }
};

}  // namespace

std::size_t select_run(select_slot* slots, std::size_t n, bool* received) {
  *received = false;
  std::size_t timeout_idx = n, default_idx = n, nchan = 0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (slots[i].kind) {
      case select_kind::timeout:
        if (timeout_idx == n || slots[i].timeout_ns < slots[timeout_idx].timeout_ns) timeout_idx = i;
        break;
      case select_kind::fallback: default_idx = i; break;
      default:
        if (slots[i].c) ++nchan;
    }
  }
  std::int64_t timeout_ns = timeout_idx < n ? slots[timeout_idx].timeout_ns : 0;
  std::int64_t deadline = timeout_idx < n && timeout_ns > 0 ? deadline_after(timeout_ns) : 0;

  if (nchan == 0) {
    if (default_idx < n) return default_idx;
    if (timeout_idx == n)
      throw error("weft::select: every case is on a nil channel and there is no on_timeout or on_default, "
                  "so it would wait forever");
    if (deadline) sleep_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline)));
    return timeout_idx;
  }

  // 1. Poll order: a random permutation of the channel cases (Fisher–Yates, inside-out).
  scratch<std::uint32_t> poll(nchan);
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if ((slots[i].kind != select_kind::recv && slots[i].kind != select_kind::send) || !slots[i].c) continue;
    std::uint32_t j = select_rand(static_cast<std::uint32_t>(m + 1));
    poll[m] = poll[j];
    poll[j] = static_cast<std::uint32_t>(i);
    ++m;
  }
  // 2. Lock order: distinct channels by address (insertion sort: selects are small).
  scratch<chan_core*> cores(nchan);
  std::size_t ncores = 0;
  for (std::size_t k = 0; k < nchan; ++k) {
    chan_core* c = slots[poll[k]].c;
    std::size_t pos = ncores;
    bool dup = false;
    while (pos > 0 && std::less<chan_core*>()(c, cores[pos - 1])) --pos;
    if (pos > 0 && cores[pos - 1] == c) dup = true;
    if (dup) continue;
    for (std::size_t q = ncores; q > pos; --q) cores[q] = cores[q - 1];
    cores[pos] = c;
    ++ncores;
  }
  lock_set locks{&cores[0], ncores};

  // 3. Pass 1: a ready case, in poll order.
  lock_all(locks);
  for (std::size_t k = 0; k < nchan; ++k) {
    std::size_t i = poll[k];
    select_slot& s = slots[i];
    chan_core* c = s.c;
    wait_node* to_wake = nullptr;
    if (s.kind == select_kind::recv) {
      if (chan_recv_ready(c, s.elem, &to_wake)) {
        unlock_all(locks);
        if (to_wake) wake_node(to_wake);
        *received = true;
        return i;
      }
      if (c->closed) {
        unlock_all(locks);
        return i;
      }
    } else {
      if (c->closed) {
        unlock_all(locks);
        throw closed_channel();
      }
      if (chan_send_ready(c, s.elem, &to_wake)) {
        unlock_all(locks);
        if (to_wake) wake_node(to_wake);
        return i;
      }
    }
  }
  if (default_idx < n || (timeout_idx < n && timeout_ns <= 0)) {
    unlock_all(locks);
    return default_idx < n ? default_idx : timeout_idx;
  }

  // 4. Pass 2: queue on every channel, block.
  waiter w;
  scratch<wait_node> nodes(nchan);
  for (std::size_t k = 0; k < nchan; ++k) {
    std::size_t i = poll[k];
    wait_node& nd = nodes[k];
    nd.w = &w;
    nd.elem = slots[i].elem;
    nd.index = static_cast<std::uint32_t>(i);
    nd.shared = true;
    wq_push_back(slots[i].kind == select_kind::recv ? slots[i].c->recvq : slots[i].c->sendq, &nd);
  }
  bool woken = block(w, unlock_all_cb, &locks, "select", deadline);

  // 5. Unlink what is still queued.
  lock_all(locks);
  wait_node* won = nullptr;
  for (std::size_t k = 0; k < nchan; ++k) {
    wait_node& nd = nodes[k];
    select_slot& s = slots[nd.index];
    if (nd.queued) wq_remove(s.kind == select_kind::recv ? s.c->recvq : s.c->sendq, &nd);
    if (woken && nd.index == w.result) won = &nd;
  }
  unlock_all(locks);
  if (!woken) return timeout_idx;
  std::size_t i = won->index;
  if (slots[i].kind == select_kind::recv) {
    *received = won->ok;
  } else if (!won->ok) {
    throw closed_channel();  // woken by close
  }
  return i;
}

}  // namespace weft::detail
