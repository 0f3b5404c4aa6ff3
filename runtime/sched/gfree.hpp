// SPDX-License-Identifier: Apache-2.0
// gfree.hpp — dead G records kept for the next spawn (Go's p.gFree and sched.gFree).
//
// Each P keeps a LIFO array of records, so a spawn reuses the record its P's last goroutine
// ended in, whose lines are still cached.  A full array moves its older half to the global
// store; an empty one takes a batch back from it.  Records are never freed while the runtime
// runs (the scheduler's prefetches rely on that; sched::~sched frees them through allg).
//
// Arrays of pointers, not lists linked through the records as Go's gList is: popping a linked
// list reads the record it pops to find the next one, and at procs 2, where goroutines often
// end on another P than the one that spawns, the global list held tens of thousands of cold
// records — one cache miss per spawn under the lock (BENCHMARKS.md, "Architecture (issue 17)").
//
// Nothing is lost when memory runs out: if the global array cannot grow, records go on an
// overflow list linked through g::sched_link (as global_queue.hpp does).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "runtime/sched/futex.hpp"
#include "runtime/sched/g.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

// The global store, under its own lock.
class gfree_global {
 public:
  gfree_global() = default;
  gfree_global(const gfree_global&) = delete;
  gfree_global& operator=(const gfree_global&) = delete;
  ~gfree_global() { heap_free(recs_); }

  // Moves `n` records in from `from`.
  void put(g* const* from, std::uint32_t n) noexcept {
    std::lock_guard<futex_mutex> l(lock_);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!overflow_ && (n_ < cap_ || grow())) {
        recs_[n_++] = from[i];
      } else {
        from[i]->sched_link = overflow_;
        overflow_ = from[i];
      }
    }
  }
  // Takes up to `max` of the last records put out into `to`, in the order they were put (the
  // last one at the end, where a LIFO user takes first); returns how many.
  std::uint32_t take(g** to, std::uint32_t max) noexcept {
    std::lock_guard<futex_mutex> l(lock_);
    std::uint32_t n = 0;
    for (; n < max && overflow_; ++n) {
      to[n] = overflow_;
      overflow_ = overflow_->sched_link;
    }
    const std::size_t k = std::min<std::size_t>(max - n, n_);
    n_ -= k;
    for (std::size_t i = 0; i < k; ++i) to[n++] = recs_[n_ + i];
    return n;
  }

 private:
  bool grow() noexcept {
    const std::size_t cap = cap_ ? 2 * cap_ : 256;
    g** recs;
    try {
      recs = static_cast<g**>(heap_alloc(cap * sizeof(g*)));  // (testing::fail_heap_alloc reaches it)
    } catch (...) {
      return false;
    }
    for (std::size_t i = 0; i < n_; ++i) recs[i] = recs_[i];
    heap_free(recs_);
    recs_ = recs;
    cap_ = cap;
    return true;
  }

  futex_mutex lock_;
  g** recs_ = nullptr;
  std::size_t n_ = 0, cap_ = 0;
  g* overflow_ = nullptr;  // only while the array could not grow: it is taken from first
};

// A P's own records (one owner: the M holding the P; no lock).
class gfree_local {
 public:
  static constexpr std::uint32_t kMax = 64;
  static constexpr std::uint32_t kBatch = kMax / 2;

  g* get(gfree_global& global) noexcept {
    if (n_ == 0) n_ = global.take(recs_, kBatch);
    return n_ ? recs_[--n_] : nullptr;
  }
  void put(gfree_global& global, g* gp) noexcept {
    if (n_ == kMax) {  // the older half to the global store
      global.put(recs_, kBatch);
      for (std::uint32_t i = kBatch; i < kMax; ++i) recs_[i - kBatch] = recs_[i];
      n_ -= kBatch;
    }
    recs_[n_++] = gp;
  }
  std::uint32_t size() const noexcept { return n_; }

 private:
  g* recs_[kMax];
  std::uint32_t n_ = 0;
};

}  // namespace weft::detail
