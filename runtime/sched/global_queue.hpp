// SPDX-License-Identifier: Apache-2.0
// global_queue.hpp — the scheduler's global run queue (Go's sched.runq), under sched.lock.
//
// A ring of G pointers that doubles when full, rather than a list linked through the Gs.
// Moving a batch into a P's ring (find_runnable) then reads only this array; walking links
// read every queued G record, one dependent load after another — with a hundred thousand
// goroutines queued each of those is a cache miss nothing overlaps (a tenth of skynet's time,
// perf, BENCHMARKS.md).  Go links its global queue through the Gs (runtime/proc.go, gQueue);
// weft pays an array instead: 8 bytes per queued G, grown under the lock (rarely: doubling).
//
// Nothing is lost when memory runs out: if the ring cannot grow, Gs queue on an overflow list
// linked through g::sched_link, and while that list is non-empty every push goes there too,
// so the order stays first-in first-out (everything in the ring is older than the list).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/g.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

class global_queue {
 public:
  global_queue() = default;
  global_queue(const global_queue&) = delete;
  global_queue& operator=(const global_queue&) = delete;
  ~global_queue() { heap_free(ring_); }

  // How many are queued.  May be read without the lock, as a hint.
  std::uint32_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::uint32_t size_acquire() const noexcept { return size_.load(std::memory_order_acquire); }

  // The rest under sched.lock.
  void push(g* gp) noexcept {
    if (!over_head_ && (count_ < cap_ || grow())) {
      ring_[(head_ + count_) & (cap_ - 1)] = gp;
      ++count_;
    } else {
      gp->sched_link = nullptr;
      if (over_tail_) over_tail_->sched_link = gp;
      else over_head_ = gp;
      over_tail_ = gp;
    }
    size_.fetch_add(1, std::memory_order_relaxed);
  }

  g* pop() noexcept {
    g* gp;
    if (count_ != 0) {
      gp = ring_[head_];
      head_ = (head_ + 1) & (cap_ - 1);
      --count_;
    } else if (over_head_) {
      gp = over_head_;
      over_head_ = gp->sched_link;
      if (!over_head_) over_tail_ = nullptr;
      gp->sched_link = nullptr;
    } else {
      return nullptr;
    }
    size_.fetch_sub(1, std::memory_order_relaxed);
    return gp;
  }

 private:
  static constexpr std::size_t kFirstCapacity = 256;

  bool grow() noexcept {
    const std::size_t cap = cap_ ? 2 * cap_ : kFirstCapacity;
    g** ring;
    try {
      ring = static_cast<g**>(heap_alloc(cap * sizeof(g*)));  // (testing::fail_heap_alloc reaches it)
    } catch (...) {
      return false;
    }
    for (std::size_t i = 0; i < count_; ++i) ring[i] = ring_[(head_ + i) & (cap_ - 1)];
    heap_free(ring_);
    ring_ = ring;
    cap_ = cap;
    head_ = 0;
    return true;
  }

  g** ring_ = nullptr;
  std::size_t cap_ = 0;    // 0 or a power of two
  std::size_t head_ = 0;   // index of the oldest in the ring
  std::size_t count_ = 0;  // how many in the ring
  g* over_head_ = nullptr;  // overflow list: only when the ring could not grow
  g* over_tail_ = nullptr;
  std::atomic<std::uint32_t> size_{0};  // ring and overflow list together
};

}  // namespace weft::detail
