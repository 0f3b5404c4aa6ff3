// SPDX-License-Identifier: Apache-2.0
// pool_impl.hpp — stack_pool's insides (stack_pool::impl), shared by the files of runtime/stack
// that implement stack_pool.hpp; nothing outside this folder includes it.
//
// The pool is a file per concept:
//
//   stack_config.cpp  the rules a configuration obeys (stack_config.hpp)
//   stack_pool.cpp    the facade: construction, alloc and free through a per-P cache, the
//                     global per-class pools and carving; stats
//   stack_cache.cpp   per-P caches: attaching one to a pool, draining it, its in-use counts
//   arena.cpp         arenas and the slots carved from them: guards, growing and shrinking in place
//   map_budget.cpp    the mapping budget (vm.max_map_count)
//   release.cpp       giving pooled memory back to the OS (release_idle)
//
// What is here is what more than one of them needs.  What a spawn or an exit reaches — the
// per-class pools' take_pooled, refill and give_back, count_in_use, the class arithmetic — is
// defined here, inline, as it was when the pool was one file, so alloc and free
// (stack_pool.cpp) and spill_stale (stack_cache.cpp) make no call for it.  carve and
// set_up_unset are out of line on purpose (noinline): the fast paths stay small.
//
// Locks.  One mutex per class guards its pools and its carving cursor; the syscalls of carving
// and releasing run outside it.  A lock-free (Treiber) stack was rejected: it needs an ABA tag
// or hazard scheme for batch refill/drain, and the lock is taken once per kBatch stacks on the
// cached path, so it is not the bottleneck (see bench/stack_bench.cpp).  arena_mu serializes
// arena creation (rare); free() validates a stack against the arenas through an append-only
// array published with a release store of its length, so it takes no lock for that.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/stack/stack_pool.hpp"
#include "runtime/stack/stackvm.hpp"

namespace weft::detail {

struct stack_pool::impl {
  static constexpr std::uint32_t kMaxArenas = 4096;  // 64 GiB each at most: more than 47-bit space holds
  static constexpr std::uint32_t kNoArena = ~std::uint32_t{0};

  static std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

  // Room for n more elements, growing geometrically: reserve(size() + n) alone allocates exactly
  // that much, so a list that grows n at a time would be copied whole on every call (the pool's
  // hot list under a per-P cache's drains: that was a tenth of skynet's time).
  static void reserve_more(std::vector<stack>& v, std::size_t n) {
    if (v.capacity() - v.size() < n) v.reserve(std::max(v.size() + n, 2 * v.capacity()));
  }

  struct arena {
    std::uintptr_t base = 0;
    std::size_t bytes = 0;
    std::size_t slot_bytes = 0;
    std::uint32_t cls = 0;
    std::uint32_t slots = 0;
    std::atomic<bool>* in_use = nullptr;  // per slot: handed out by alloc, not yet freed
    unsigned* vg_ids = nullptr;           // under valgrind: per slot, its stack id (0: none yet)
  };

  struct alignas(64) class_pool {
    std::mutex mu;
    std::vector<stack> hot;   // resident pages kept; LIFO (back is the most recently freed)
    std::vector<stack> cold;  // released: stack_min accessible, nothing resident
    std::vector<stack> raw;   // slots whose setup failed; reset before reuse
    std::size_t hot_bytes = 0;   // accessible bytes of `hot`
    std::size_t low_water = 0;   // min hot.size() since the previous release_idle
    // low_water of the last kIdleHistory scans, newest at [(scans - 1) % kIdleHistory]: the
    // bottom min(...) of `hot` over the last k of them sat unused for k whole intervals.
    std::array<std::size_t, stack_pool::kIdleHistory> low_water_seen{};
    std::uint64_t scans = 0;
    std::uint32_t arena = kNoArena;  // newest arena of this class
    std::uint32_t next_slot = 0;     // its first never-carved slot
    std::uint32_t arenas_made = 0;
    // hot.size() + cold.size() as of the last change, readable without the lock: a spawn whose
    // stale end is empty looks here before it locks for a refill (alloc_impl).
    std::atomic<std::size_t> pooled_hint{0};
    void note_pooled() noexcept { pooled_hint.store(hot.size() + cold.size(), std::memory_order_relaxed); }
  };

  struct alignas(64) counter {
    std::atomic<std::uint64_t> v{0};
  };

  stack_config& cfg;
  guard_mode mode;
  std::size_t page;
  unsigned min_shift = 0;   // log2 of the smallest capacity (unfolded classes)
  bool folded = false;      // slots are reserve << cls bytes, guard included (the header)
  std::uint32_t nclasses = 0;
  std::size_t cache_stack_bytes = 0;  // largest accessible size a per-P cache keeps

  std::unique_ptr<class_pool[]> classes;
  std::unique_ptr<counter[]> in_use;
  std::unique_ptr<counter[]> carved;

  std::mutex arena_mu;
  std::unique_ptr<arena[]> arenas{new arena[kMaxArenas]};
  std::atomic<std::uint32_t> narenas{0};
  std::atomic<std::uint64_t> bytes_reserved{0};
  std::atomic<std::uint64_t> bytes_released{0};

  // Mapping budget.
  std::atomic<std::size_t> maps{0};        // VMAs this pool estimates it added
  std::atomic<std::size_t> others{0};      // the rest of the process's VMAs, last counted
  std::size_t system_limit = 0;            // vm.max_map_count; 0: unknown (no check)
  std::atomic<std::size_t> test_limit{0};
  std::mutex budget_mu;
  std::size_t recounted_at = ~std::size_t{0};  // `maps` when /proc/self/maps was last counted

  explicit impl(stack_config& c) : cfg(c), mode(c.guard), page(stackvm::page_size()) {}
  ~impl();  // unmaps every arena (arena.cpp)

  std::size_t slot_bytes_of(std::uint32_t cls) const noexcept {
    return folded ? cfg.reserve << cls : cfg.guard_bytes + cfg.slack + (std::size_t{1} << (min_shift + cls));
  }
  std::size_t room_of(std::uint32_t cls) const noexcept { return slot_bytes_of(cls) - cfg.guard_bytes; }
  std::size_t capacity_of(std::uint32_t cls) const noexcept { return room_of(cls) - cfg.slack; }

  std::uint32_t class_of(std::size_t size) const noexcept {
    if (folded) {
      std::uint32_t cls = 0;
      while (cls + 1 < nclasses && capacity_of(cls) < size) ++cls;
      return cls;
    }
    const std::size_t cap = std::max(size, cfg.reserve);
    const unsigned shift = static_cast<unsigned>(std::bit_width(cap) - 1);
    return shift <= min_shift ? 0 : shift - min_shift;
  }

  // The caches that have been used with this pool (stack_cache::in_use_delta), under caches_mu.
  mutable std::mutex caches_mu;
  stack_cache* caches = nullptr;

  std::atomic<bool>& in_use_of(const stack& s) const noexcept {
    const arena& a = arenas[s.arena];
    return a.in_use[(s.slot_lo - a.base) / a.slot_bytes];
  }

  // ---- mapping budget (map_budget.cpp) ----------------------------------------------------

  std::size_t limit() const noexcept {
    const std::size_t t = test_limit.load(std::memory_order_relaxed);
    return t ? t : system_limit;
  }

  void reserve_maps(std::size_t n);
  void release_maps(std::size_t n) noexcept { maps.fetch_sub(n, std::memory_order_relaxed); }
  [[noreturn]] void throw_budget(std::size_t total, std::size_t ours, std::size_t lim, std::size_t margin) const;

  // ---- arenas, carving and a slot's guards (arena.cpp) ------------------------------------

  // Called with cp.mu held.
  void new_arena(std::uint32_t cls, class_pool& cp);
  // A fresh slot of class cls with [hi - size, hi) accessible and the rest guarded.  With
  // `defer`, a never-used slot comes back *unset* instead (lo == hi: nothing accessible, no
  // guard yet, no system call); its first user sets it up (set_up_unset).
  __attribute__((noinline)) stack carve(std::uint32_t cls, std::size_t size, bool defer = false);
  // An unset stack (carve with defer) made usable: [hi - size, hi) accessible, guards in place.
  // On failure it is left unset and the slot goes to `raw`, as a failed carve's does — the
  // caller must not use or free it.
  __attribute__((noinline)) void set_up_unset(stack& s, std::size_t size);
  void set_up_carved(stack& s, bool reset);
  void note_carved(const stack& s) noexcept;
  void set_up(const stack& s, bool reset);

  // The bottom of the band that lies below a stack whose lowest address is `lo`.
  std::uintptr_t band_lo(const stack& s, std::uintptr_t lo) const noexcept {
    const std::uintptr_t guard_top = s.slot_lo + cfg.guard_bytes;
    return lo - guard_top > cfg.guard_bytes ? lo - cfg.guard_bytes : guard_top;
  }
  // Moves lo down to new_lo: inside the open part, a store; below it, madvise: the new band
  // goes in first (markers over what is below the stack's sp zap nothing live), then every
  // marker above it comes out — the whole range, not just the old band, so a marker a failed
  // shrink left behind cannot make a fault that growth never clears.  If a step fails, the
  // stack stays as it was.
  void grow(stack& s, std::uintptr_t new_lo);
  // Makes the stack new_size bytes and closes everything below it, its open part too.
  void shrink(stack& s, std::size_t new_size);

  // ---- the per-class pools ------------------------------------------------------------------

  bool take_pooled(std::uint32_t cls, stack& s) {
    class_pool& cp = classes[cls];
    std::lock_guard lk(cp.mu);
    if (!cp.hot.empty()) {
      s = cp.hot.back();
      cp.hot.pop_back();
      cp.hot_bytes -= s.open_size();
      cp.low_water = std::min(cp.low_water, cp.hot.size());
      cp.note_pooled();
      return true;
    }
    if (!cp.cold.empty()) {
      s = cp.cold.back();
      cp.cold.pop_back();
      cp.note_pooled();
      return true;
    }
    return false;
  }

  void refill(std::uint32_t cls, std::vector<stack>& out) {
    class_pool& cp = classes[cls];
    out.reserve(stack_cache::kMax + 1);
    std::lock_guard lk(cp.mu);
    std::size_t want = stack_cache::kBatch;
    const std::size_t from_hot = std::min(want, cp.hot.size());
    for (std::size_t i = cp.hot.size() - from_hot; i < cp.hot.size(); ++i) {
      cp.hot_bytes -= cp.hot[i].open_size();
      out.push_back(cp.hot[i]);
    }
    cp.hot.resize(cp.hot.size() - from_hot);
    cp.low_water = std::min(cp.low_water, cp.hot.size());
    want -= from_hot;
    const std::size_t from_cold = std::min(want, cp.cold.size());
    out.insert(out.end(), cp.cold.end() - static_cast<std::ptrdiff_t>(from_cold), cp.cold.end());
    cp.cold.resize(cp.cold.size() - from_cold);
    cp.note_pooled();
  }

  // Moves the oldest (front) `n` of `v` to the global pool; noexcept: on no memory the
  // stacks stay where they are.
  void give_back(std::uint32_t cls, std::vector<stack>& v, std::size_t n) noexcept {
    class_pool& cp = classes[cls];
    std::lock_guard lk(cp.mu);
    try {
      reserve_more(cp.hot, n);
    } catch (...) {
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      cp.hot_bytes += v[i].open_size();
      cp.hot.push_back(v[i]);
    }
    cp.note_pooled();
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
  }

  void give_back(const stack& s) noexcept {
    class_pool& cp = classes[s.cls];
    std::lock_guard lk(cp.mu);
    try {
      cp.hot.push_back(s);
      cp.hot_bytes += s.open_size();
      cp.note_pooled();
    } catch (...) {
      // No memory to remember it: the slot stays mapped but is not reused.
    }
  }

  // ---- giving memory back (release.cpp) -----------------------------------------------------

  void release_class(std::uint32_t cls, std::uint32_t idle_scans, bool cap) noexcept;
};

// On the cache's own counter when there is one (a plain store: its P is the only writer).
inline void stack_pool::count_in_use(stack_cache* cache, std::uint32_t cls, std::uint64_t delta) noexcept {
  if (cache && cls < stack_cache::kClasses) {
    if (__builtin_expect(cache->owner_ != this, 0)) attach(*cache);
    bump(cache->in_use_delta[cls], delta);
    return;
  }
  impl_->in_use[cls].v.fetch_add(delta, std::memory_order_relaxed);
}

}  // namespace weft::detail
