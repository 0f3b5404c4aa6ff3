// SPDX-License-Identifier: Apache-2.0
#include "runtime/sched/timers.hpp"

#include <mutex>
#include <new>

#include "runtime/diag/fatal.hpp"

namespace weft::detail {

bool timer_heap::add(timer* t) noexcept {
  std::lock_guard<futex_mutex> l(lock_);
  t->index = static_cast<std::int32_t>(heap_.size());
  try {
    heap_.push_back(t);
  } catch (const std::bad_alloc&) {  // it is armed after its goroutine parked: nobody to throw to
    fatal("out of memory: no room to arm a timer (%zu are armed); raise `ulimit -v` or free memory", heap_.size());
  }
  sift_up(heap_.size() - 1);
  bool earliest = heap_[0] == t;
  publish();
  return earliest;
}

bool timer_heap::cancel(timer* t) noexcept {
  std::lock_guard<futex_mutex> l(lock_);
  if (t->index < 0) return false;
  remove_at(static_cast<std::size_t>(t->index));
  publish();
  return true;
}

int timer_heap::run_due(std::int64_t now) noexcept {
  if (next_when() > now) return 0;
  std::lock_guard<futex_mutex> l(lock_);
  int n = 0;
  while (!heap_.empty() && heap_[0]->when <= now) {
    timer* t = heap_[0];
    remove_at(0);
    t->fire(t);  // under the lock: see the header
    ++n;
  }
  publish();
  return n;
}

void timer_heap::sift_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= heap_[i]->when) break;
    std::swap(heap_[parent], heap_[i]);
    heap_[parent]->index = static_cast<std::int32_t>(parent);
    heap_[i]->index = static_cast<std::int32_t>(i);
    i = parent;
  }
}

void timer_heap::sift_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_.size() && heap_[l]->when < heap_[m]->when) m = l;
    if (r < heap_.size() && heap_[r]->when < heap_[m]->when) m = r;
    if (m == i) return;
    std::swap(heap_[m], heap_[i]);
    heap_[m]->index = static_cast<std::int32_t>(m);
    heap_[i]->index = static_cast<std::int32_t>(i);
    i = m;
  }
}

void timer_heap::remove_at(std::size_t i) noexcept {
  heap_[i]->index = -1;
  std::size_t last = heap_.size() - 1;
  if (i != last) {
    heap_[i] = heap_[last];
    heap_[i]->index = static_cast<std::int32_t>(i);
  }
  heap_.pop_back();
  if (i < heap_.size()) {
    sift_down(i);
    sift_up(i);
  }
}

}  // namespace weft::detail
