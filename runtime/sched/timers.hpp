// SPDX-License-Identifier: Apache-2.0
// timers.hpp — one heap of timers per runtime.
//
// A timer is intrusive (it lives in the waiter that armed it) and fires once.  `fire` runs
// with the heap's lock held, so cancel() returning means the timer will not touch its owner
// again: a waiter may return (and its memory go away) right after cancelling.
// Rejected: per-P heaps as in Go; with at most a few Ps here, one lock costs less than the
// bookkeeping of moving timers between Ps when a P goes idle.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/sched/futex.hpp"

namespace weft::detail {

struct timer {
  std::int64_t when = 0;                 // CLOCK_MONOTONIC ns
  std::int32_t index = -1;               // position in the heap, -1 when not armed
  void (*fire)(timer*) noexcept = nullptr;
};

class timer_heap {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  // Arms t.  Returns true if it became the earliest timer (the caller wakes a sleeper).
  bool add(timer* t) noexcept;  // out of memory is a fatal error (it runs where nothing can throw)
  // Disarms t if armed.  Returns true if it was still armed.
  bool cancel(timer* t) noexcept;
  // Fires every timer due at `now`.  Returns how many fired.
  int run_due(std::int64_t now) noexcept;
  // When the earliest timer is due (kNever if none).  Lock-free.
  std::int64_t next_when() const noexcept { return next_.load(std::memory_order_acquire); }
  // How many are armed (for stats and traces).  Lock-free.
  std::size_t armed() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void remove_at(std::size_t i) noexcept;
  void publish() noexcept {
    next_.store(heap_.empty() ? kNever : heap_[0]->when, std::memory_order_release);
    count_.store(heap_.size(), std::memory_order_relaxed);
  }

  futex_mutex lock_;
  std::vector<timer*> heap_;
  std::atomic<std::int64_t> next_{kNever};
  std::atomic<std::size_t> count_{0};
};

}  // namespace weft::detail
