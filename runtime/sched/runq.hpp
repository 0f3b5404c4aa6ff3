// SPDX-License-Identifier: Apache-2.0
// runq.hpp — a P's local run queue: a bounded ring that its owner pushes to and anyone pops
// from (Go's runqput/runqget/runqsteal, runtime/proc.go).
//
// The owner is the only writer of `tail`; consumers (the owner, and thieves) claim slots by
// CAS on `head`.  A thief copies a batch out of the ring *before* its CAS commits, so a slot
// may be read by a thief whose CAS then fails; that is harmless because slots hold plain
// pointers and the owner never overwrites a slot between head and tail.
// Rejected: a mutex per queue (every push and pop would pay for the rare steal), and
// Chase-Lev deques (LIFO for the owner, which starves the oldest goroutines).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sched/g.hpp"

namespace weft::detail {

class runq {
 public:
  static constexpr std::uint32_t kSize = 256;

  // Owner only.  False if full (the caller moves half to the global queue).
  bool push(g* gp) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h >= kSize) return false;
    slots_[t % kSize].store(gp, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: takes up to n from the head into out (for moving half to the global queue).
  std::uint32_t grab_for_overflow(g** out, std::uint32_t n) noexcept { return grab(out, n, true); }

  // Anyone.
  g* pop() noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (t == h) return nullptr;
      g* gp = slots_[h % kSize].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) return gp;
    }
  }

  // Owner only, a hint: the G `ahead` places behind the head (0: the next to pop), or nullptr.
  // It may be stolen meanwhile; only prefetching reads it.
  g* peek(std::uint32_t ahead) const noexcept {
    std::uint32_t h = head_.load(std::memory_order_relaxed);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h <= ahead || t - h > kSize) return nullptr;
    return slots_[(h + ahead) % kSize].load(std::memory_order_relaxed);
  }

  // A thief: takes half (rounded up) of what is queued, into out (size >= kSize/2).
  std::uint32_t steal_half(g** out) noexcept { return grab(out, kSize / 2, false); }

  std::uint32_t size() const noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    return t - h;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  std::uint32_t grab(g** out, std::uint32_t max, bool exact) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      if (n > kSize) continue;  // read tail and head across an update: retry
      if (!exact) n = n - n / 2;
      if (n > max) n = max;
      if (n == 0) return 0;
      for (std::uint32_t i = 0; i < n; ++i) out[i] = slots_[(h + i) % kSize].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel)) return n;
    }
  }

  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<g*> slots_[kSize];
};

}  // namespace weft::detail
