// SPDX-License-Identifier: Apache-2.0
// stack_pool.cpp — the stack allocator of stack_pool.hpp: building a pool, and the way a stack
// comes and goes — a per-P cache, the global per-class pools, a freshly carved slot.  The
// other files of the pool, and what each holds, are listed in pool_impl.hpp.
//
// Reuse mirrors Go's runtime/stack.go: stackcache (per-P, small orders, refilled/drained by
// half) → stack_cache::free for the kClasses smallest classes, refilled with kBatch from the
// global pool and drained down to kMax - kBatch; stackpool (global, per order, under a lock)
// → class_pool::hot, one mutex per class; stackLarge (global lists by log2 size) → the same
// per-class pools for the classes above the cache.  Unlike Go, a pooled stack keeps its
// accessible size and resident pages (the header explains why); a per-P cache only keeps
// stacks of at most 4 * stack_min accessible bytes, so a P's cache holds bounded memory, and
// bigger ones go to the global pool where release_idle can trim them.
//
// Spawn and exit go through the fast paths inline in stack_pool.hpp (take_cached, put_cached,
// trade_for_warm); alloc_impl and free below are what those fall back on.
#include "runtime/stack/stack_pool.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/diag/fatal.hpp"
#include "runtime/stack/pool_impl.hpp"
#include "runtime/stack/stack_config.hpp"
#include "runtime/stack/stackvm.hpp"
#include "runtime/stack/valgrind.hpp"
#include "weft/errors.hpp"

namespace weft::detail {
namespace {

// Under valgrind with WEFT_DEBUG (stack_config::check_frees is set from it), once per process:
// what the pool does there instead of what `asked` for.
void say_guard_under_valgrind(guard_mode asked) noexcept {
  static std::atomic<bool> said{false};
  if (said.exchange(true, std::memory_order_relaxed)) return;
  std::fprintf(stderr,
               "weft: running under valgrind: guard pages by mprotect, not MADV_GUARD_INSTALL (WEFT_GUARD=%s), which "
               "valgrind does not know; goroutine stacks are registered with valgrind\n",
               stackvm::mode_name(asked));
}

}  // namespace

stack_pool::stack_pool(const stack_config& cfg) : cfg_(cfg), impl_(nullptr) {
  const std::size_t page = stackvm::page_size();
  check_stack_config(cfg_, page);  // its rules: stack_config.hpp
  cfg_.stack_min = std::max(cfg_.stack_min, page);  // a page is the smallest thing a guard protects
  cfg_.guard_bytes = impl::round_up(cfg_.guard_bytes, page);

  if ((cfg_.guard == guard_mode::automatic || cfg_.guard == guard_mode::madvise) && !vg::running()) {
    int err = 0;
    const bool works = stackvm::guard_install_works(&err);
    if (cfg_.guard == guard_mode::madvise && !works) {
      throw config_error(std::string("weft: WEFT_GUARD=madvise (guard_mode::madvise) needs madvise(MADV_GUARD_INSTALL), "
                                     "which this kernel refuses (") +
                         std::strerror(err) +
                         "; Linux 6.13 and later have it); use WEFT_GUARD=automatic (falls back to "
                         "mprotect), WEFT_GUARD=mprotect (two mappings per stack, bounded by "
                         "vm.max_map_count) or WEFT_GUARD=none (no guard pages)");
    }
    cfg_.guard = works ? guard_mode::madvise : guard_mode::mprotect;
  }
  if (vg::running() && (cfg_.guard == guard_mode::automatic || cfg_.guard == guard_mode::madvise)) {
    if (cfg_.check_frees) say_guard_under_valgrind(cfg_.guard);
    cfg_.guard = guard_mode::mprotect;
  }

  cfg_.slack = impl::round_up(cfg_.slack, page);
  auto im = std::make_unique<impl>(cfg_);
  im->folded = cfg_.reserve >= kPageTableSpan;
  if (im->folded) {
    // The reserve holds the guard, the slack and two stack_min (check_stack_config).  Enough
    // classes to reach stack_max, or the reserve itself.
    im->nclasses = 1;
    while (im->nclasses < 40 && im->capacity_of(im->nclasses - 1) < cfg_.stack_max) ++im->nclasses;
  } else {
    im->min_shift = static_cast<unsigned>(std::bit_width(std::max(cfg_.stack_min, cfg_.reserve)) - 1);
    const unsigned max_shift = static_cast<unsigned>(std::bit_width(std::max(cfg_.stack_max, cfg_.reserve)) - 1);
    im->nclasses = max_shift - im->min_shift + 1;
  }
  im->cache_stack_bytes = 4 * cfg_.stack_min;
  cache_stack_bytes_ = im->cache_stack_bytes;
  fast_off_ = cfg_.check_frees;
  im->classes.reset(new impl::class_pool[im->nclasses]);
  im->in_use.reset(new impl::counter[im->nclasses]);
  im->carved.reset(new impl::counter[im->nclasses]);
  im->system_limit = stackvm::max_map_count();
  im->others.store(stackvm::count_mappings(), std::memory_order_relaxed);
  impl_ = im.release();
  test_limit_ = &impl_->test_limit;  // set_map_budget_for_testing (runtime/testing/stack_pool_budget.cpp)
}

stack_pool::~stack_pool() {
  {
    std::lock_guard lk(impl_->caches_mu);
    for (stack_cache* c = impl_->caches; c; c = c->next_) c->owner_ = nullptr;  // they outlive the pool
  }
  delete impl_;
}

stack stack_pool::alloc(std::size_t size, stack_cache* cache) { return alloc_impl(size, cache, false); }

stack stack_pool::alloc_impl(std::size_t size, stack_cache* cache, bool for_spawn) {
  impl& im = *impl_;
  if (size > cfg_.stack_max) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "weft: a stack of %zu bytes was requested, above stack_max = %zu (WEFT_STACK_MAX)",
                  size, cfg_.stack_max);
    throw std::length_error(buf);
  }
  size = std::bit_ceil(std::max(size, cfg_.stack_min));
  const std::uint32_t cls = im.class_of(size);
  stack s;
  bool found = false;
  if (cache && cls < stack_cache::kClasses) {
    std::vector<stack>* from = &cache->free[cls];
    if (for_spawn && cls == 0) {  // the stale end, refilled from the pool, before the warm end
      // (Not when the pool is empty: one spawn at a time, joined, would lock it every time.)
      if (cache->stale.empty() && im.classes[0].pooled_hint.load(std::memory_order_relaxed) != 0)
        im.refill(0, cache->stale);
      if (!cache->stale.empty()) from = &cache->stale;
    }
    std::vector<stack>& v = *from;
    if (v.empty()) im.refill(cls, v);
    if (!v.empty()) {
      s = v.back();
      v.pop_back();
      found = true;
    }
  } else {
    found = im.take_pooled(cls, s);
  }
  if (!found) {
    // A spawn reserves its slot but sets it up only at the first run (set_up_unset): its
    // first run may trade it for a warm stack anyway (trade_for_warm), and a burst of a
    // million spawns before any runs then makes no system call and no page table per slot.
    s = im.carve(cls, size, for_spawn);
  } else if (s.size() < size) {
    if (s.unset()) {
      if (!for_spawn) im.set_up_unset(s, size);  // (on failure the slot went to `raw`)
    } else {
      try {
        grow_in_place(s, size);
      } catch (...) {
        im.give_back(s);
        throw;
      }
    }
  }
  if (cfg_.check_frees) im.in_use_of(s).store(true, std::memory_order_relaxed);
  count_in_use(cache, cls, 1);
  return s;
}

void stack_pool::set_up_unset(stack& s) {
  if (s.unset()) impl_->set_up_unset(s, cfg_.stack_min);
}

void stack_pool::free(const stack& s, stack_cache* cache) noexcept {
  if (s.empty()) return;
  impl& im = *impl_;
  if (s.arena >= im.narenas.load(std::memory_order_acquire) || s.cls >= im.nclasses ||
      s.slot_lo < im.arenas[s.arena].base || s.slot_lo >= im.arenas[s.arena].base + im.arenas[s.arena].bytes)
    fatal("stack pool: free of a stack [%#zx, %#zx) that this pool never gave out", static_cast<std::size_t>(s.lo),
          static_cast<std::size_t>(s.hi));
  if (cfg_.check_frees) {
    std::atomic<bool>& used = im.in_use_of(s);
    if (!used.load(std::memory_order_relaxed))
      fatal("stack pool: stack [%#zx, %#zx) freed twice", static_cast<std::size_t>(s.lo), static_cast<std::size_t>(s.hi));
    used.store(false, std::memory_order_relaxed);
  }
  count_in_use(cache, s.cls, ~std::uint64_t{0});

  if (cache && s.cls < stack_cache::kClasses && s.open_size() <= im.cache_stack_bytes) {
    std::vector<stack>& v = cache->free[s.cls];
    try {
      v.push_back(s);
    } catch (...) {
      im.give_back(s);
      return;
    }
    if (v.size() > stack_cache::kMax) im.give_back(s.cls, v, v.size() - (stack_cache::kMax - stack_cache::kBatch));
    return;
  }
  im.give_back(s);
}

std::size_t stack_pool::class_capacity(std::uint32_t cls) const noexcept { return impl_->capacity_of(cls); }

stack_pool_stats stack_pool::stats() const {
  const impl& im = *impl_;
  stack_pool_stats st;
  st.bytes_reserved = im.bytes_reserved.load(std::memory_order_relaxed);
  st.bytes_released = im.bytes_released.load(std::memory_order_relaxed);
  st.mappings = im.maps.load(std::memory_order_relaxed);
  st.map_limit = im.limit();
  st.in_use_per_class.resize(im.nclasses);
  std::lock_guard lk(im.caches_mu);
  for (std::uint32_t cls = 0; cls < im.nclasses; ++cls) {
    // Relaxed loads race with alloc/free: a snapshot, clamped so it never goes negative.
    std::uint64_t used = im.in_use[cls].v.load(std::memory_order_relaxed);
    if (cls < stack_cache::kClasses)
      for (const stack_cache* c = im.caches; c; c = c->next_) used += c->in_use_delta[cls].load(std::memory_order_relaxed);
    if (static_cast<std::int64_t>(used) < 0) used = 0;
    const std::uint64_t carved = im.carved[cls].v.load(std::memory_order_relaxed);
    st.in_use_per_class[cls] = used;
    st.slots_in_use += used;
    st.slots_pooled += carved > used ? carved - used : 0;
    st.slots_carved += carved;
  }
  return st;
}

}  // namespace weft::detail
