// SPDX-License-Identifier: Apache-2.0
// stack_cache.cpp — per-P caches of small stacks (stack_pool.hpp, stack_cache).
//
// A cache belongs to one P and is touched by the M holding it only, so it needs no lock: its
// lists and its in-use counts (in_use_delta) have one writer.  It attaches itself to a pool on
// first use (attach, from count_in_use), which links it into the pool's list of caches so
// stats() can sum their counts; a cache that dies first detaches and leaves its counts with
// the pool, and a pool that dies first tells its caches (~stack_pool).  A cache holds two
// ends of stack_min's class: free[0], the stacks freed here most recently and so likely still
// in the CPU's caches, for goroutines that start running; and `stale`, the slots spawns
// reserved whose first runs traded them for warm ones (trade_for_warm), for the next spawns.
// It refills from and drains to the global per-class pools (pool_impl.hpp) kBatch stacks at a
// time, and a P that goes away drains it whole (drain).
#include <algorithm>
#include <atomic>
#include <mutex>

#include "runtime/diag/fatal.hpp"
#include "runtime/stack/pool_impl.hpp"

namespace weft::detail {

void stack_pool::attach(stack_cache& cache) noexcept {
  if (cache.owner_ == this) return;
  if (cache.owner_) fatal("stack pool: a stack cache used with two pools");
  try {
    cache.stale.reserve(stack_cache::kMax);  // trade_for_warm never allocates
  } catch (...) {
    // No memory: the cache works without trading (trade_for_warm declines at capacity).
  }
  std::lock_guard lk(impl_->caches_mu);
  cache.owner_ = this;
  cache.next_ = impl_->caches;
  impl_->caches = &cache;
}

void stack_pool::detach(stack_cache& cache) noexcept {
  std::lock_guard lk(impl_->caches_mu);
  for (stack_cache** at = &impl_->caches; *at; at = &(*at)->next_) {
    if (*at != &cache) continue;
    *at = cache.next_;
    break;
  }
  // Its counts stay with the pool.
  for (std::uint32_t cls = 0; cls < stack_cache::kClasses && cls < impl_->nclasses; ++cls)
    impl_->in_use[cls].v.fetch_add(cache.in_use_delta[cls].load(std::memory_order_relaxed), std::memory_order_relaxed);
  cache.owner_ = nullptr;
}

stack_cache::~stack_cache() {
  if (owner_) owner_->detach(*this);
}

void stack_pool::spill_stale(stack_cache& cache) noexcept {
  impl_->give_back(0, cache.stale, std::min(cache.stale.size(), stack_cache::kBatch));
}

void stack_pool::drain(stack_cache& cache) noexcept {
  impl_->give_back(0, cache.stale, cache.stale.size());
  for (std::uint32_t cls = 0; cls < stack_cache::kClasses && cls < impl_->nclasses; ++cls)
    impl_->give_back(cls, cache.free[cls], cache.free[cls].size());
}

}  // namespace weft::detail
