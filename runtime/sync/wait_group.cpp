// SPDX-License-Identifier: Apache-2.0
// wait_group.cpp — Go's sync.WaitGroup.
//
// The counter changes under the queue's lock, so a waiter that saw it non-zero and queued
// (under the same lock) is always found by the add() that brings it to zero.  wait()'s fast
// path reads the counter without the lock: zero means nobody needs waking.
#include <stdexcept>

#include "runtime/sync/waitq.hpp"

namespace weft::detail {

void wait_group_add(wait_group_state& s, std::int64_t n) {
  wait_node* wake_list = nullptr;
  {
    word_guard g(s.waiters.lock);
    std::int64_t v = s.count.load(std::memory_order_relaxed) + n;
    if (v < 0)
      throw std::logic_error("weft::wait_group: negative counter (done() called more times than add() counted)");
    s.count.store(v, std::memory_order_release);
    if (v != 0) return;
    while (wait_node* w = wq_pop_claimed(s.waiters.q)) {
      w->next = wake_list;
      wake_list = w;
    }
  }
  wake_chain(wake_list);
}

void wait_group_wait(wait_group_state& s) {
  word_lock(s.waiters.lock);
  if (s.count.load(std::memory_order_acquire) == 0) {
    word_unlock(s.waiters.lock);
    return;
  }
  waiter w;
  wait_node n;
  n.w = &w;
  wq_push_back(s.waiters.q, &n);
  block(w, word_unlock_cb, &s.waiters.lock, "wait_group wait");
}

}  // namespace weft::detail
