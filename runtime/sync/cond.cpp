// SPDX-License-Identifier: Apache-2.0
// cond.cpp — condition_variable for weft::mutex (Go's sync.Cond, std::condition_variable's
// interface, plus timed waits).
//
// wait() queues its node under the variable's lock *before* releasing the mutex, and that
// lock is released only once the waiter is committed to sleep (block()'s unlock), so a
// notify made after the waiter released the mutex always finds it: no lost wakeups.  The
// mutex is released while the variable's lock is held; nothing takes the two the other way.
//
// A timed wait's timer and a notify race through the waiter's claim: a notify_one that loses
// (the waiter timed out) goes on to the next waiter, so a notification is never spent on a
// waiter that already returned "timeout" (Go's ticket-based notifyList cannot promise that,
// having no timed waits).
#include "runtime/sync/waitq.hpp"

namespace weft::detail {

std::int64_t monotonic_now_ns() noexcept { return monotonic_ns(); }

bool cond_wait(wait_list& wl, mutex& m, std::int64_t deadline_ns) {
  if (deadline_ns != 0 && deadline_ns <= monotonic_ns()) {
    // Already due: no sleep, but still a point where others may take the mutex.
    m.unlock();
    m.lock();
    return false;
  }
  waiter w;
  wait_node n;
  n.w = &w;
  n.shared = deadline_ns != 0;  // a timer may claim it too
  word_lock(wl.lock);
  wq_push_back(wl.q, &n);
  m.unlock();
  bool woken = block(w, word_unlock_cb, &wl.lock, "condition wait", deadline_ns);
  if (!woken) {
    word_guard g(wl.lock);
    wq_remove(wl.q, &n);  // unless a notify already unlinked (and skipped) it
  }
  m.lock();
  return woken;
}

void cond_notify(wait_list& wl, bool all) noexcept {
  wait_node* wake_list = nullptr;
  wait_node** tail = &wake_list;
  {
    word_guard g(wl.lock);
    while (wait_node* n = wq_pop_claimed(wl.q)) {
      n->next = nullptr;
      *tail = n;
      tail = &n->next;
      if (!all) break;
    }
  }
  wake_chain(wake_list);
}

}  // namespace weft::detail
