// SPDX-License-Identifier: Apache-2.0
// stack_pool.hpp — where goroutine stacks come from and go back to.
//
// A stack lives in a *slot* carved from a large MAP_NORESERVE arena.  One slot, low to high:
//
//      slot_lo                                                                        hi
//      | guard |  slack  |   reserve (address space, untouched)   | band |    stack    |
//      |<guard>|<-slack->|<-------------------------------------->|<band>|<-- size -->|
//                        |<------------- capacity: what checks grow into ------------>|
//              |<---------------- room: what a fault may grow into ------------------>|
//                                                                        ^ lo
//
// [lo, hi) is the accessible stack.  What faults below it (guard_mode::madvise, the default
// on Linux 6.13+): the *guard* at the slot's bottom and a *band* of guard_bytes just below
// lo, which moves as the stack grows and shrinks.  Both are MADV_GUARD_INSTALL markers,
// which live in page tables; the reserve between them is left untouched, so it costs no page
// tables at all.  (guard_mode::mprotect keeps all of [slot_lo, lo) PROT_NONE, as markers over
// the whole slot would be; guard_mode::none guards nothing.)  A frame too big for the band
// without probes (-fstack-clash-protection) can jump it into the reserve: that is the
// goroutine's own address space, and the scan and this_stack() adopt such growth.
//
// Slots of 2 MiB or more (the in_place strategy's 8 MiB reserve) are *folded*: the slot is
// the reserve itself, guard included, and arenas start 1 MiB off 2 MiB alignment, so a slot's
// guard shares its page-table page with the top page of the slot below.  A parked goroutine's
// top page, its band and its upper neighbour's guard then sit in one page-table page: about
// 4 KiB of page tables per goroutine whatever the reserve (16 KiB with markers over the whole
// 8 MiB slot).  Arenas are MADV_NOHUGEPAGE (with THP "always" one touched byte would commit
// 2 MiB).  Smaller slots (copy's 256 KiB) are guard + slack + capacity, a power of two.
//
// A stack grows *in place* by moving lo down inside its slot (the band moves below the new
// lo; nothing moves, the kernel commits pages on touch), up to its capacity.  *Slack*
// (stack_config::slack) is room below the capacity that only a fault grows into: with copy
// and segmented a check moves the stack before the slot is full, so a frame that overshoots
// its check (GCC inlines a recursive function into itself: one frame, several checks' worth)
// lands in memory that still grows in place.  Past the capacity the growth code
// (sched/grow.cpp) copies, links a segment, or — in_place — stops with a fatal error.
// Shrinking in place gives the pages back and moves the band up again.
//
// Capacity classes: unfolded, class k holds max(size, reserve) << k, a power of two; folded,
// class k's slot is reserve << k.  With the default reserve every small stack shares one
// class; classes above it hold stacks that outgrew it (Go's large stacks; copy only).
//
// Reuse (Go's stackcache / stackpool, runtime/stack.go): each P keeps a small cache per class
// for the small classes, refilled from and drained to a global pool per class in batches; the
// global pools are lock-protected.  A freed stack keeps its current accessible size and its
// resident pages, so a goroutine that reuses it grows without faults; the scan phase
// (release_idle) gives pooled memory back to the OS beyond a watermark.
//
// Mapping budget: with mprotect guards every slot costs about two VMAs, and the process dies
// hard (mmap/mprotect ENOMEM) at vm.max_map_count.  The pool counts what it adds and refuses,
// with a resource_error that names max_map_count and the ways out, before crossing it.
//
// Thread safety: alloc/free with a local_cache* must be called by the cache's owner (the M
// holding that P); with nullptr they use the global pool under its lock.  grow_in_place and
// shrink_in_place touch only the given stack's slot and need no lock; find_slot reads only
// what is published and may run in a signal handler.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "runtime/stack/stack_config.hpp"
#include "weft/options.hpp"

namespace weft::detail {

// One goroutine stack.  A plain value: the pool does not keep pointers to it.
//
// [lo, hi) is the stack its goroutine has (what checks measure); [open_lo(), hi) is what is
// accessible, with the band below it.  The two differ after a goroutine that grew the stack
// ends: the next one starts at stack_min (lo moves up, with no system call) while the pages
// below stay accessible and resident, so growing into them again is a store, not an madvise
// and page faults.  The scan phase and release_idle give them back.
struct stack {
  std::uintptr_t slot_lo = 0;  // lowest address of the slot (start of the permanent guard)
  std::uintptr_t lo = 0;       // lowest address of the stack
  std::uintptr_t hi = 0;       // one past the highest address: the initial stack pointer
  std::uint16_t cls = 0;       // slot class index (capacity = class_capacity(cls))
  std::uint16_t arena = 0;     // the pool's index of the arena holding the slot (pool-internal)
  std::uint32_t open_4k = 0;   // (hi - open_lo()) / 4096

  std::size_t size() const noexcept { return hi - lo; }
  bool empty() const noexcept { return hi == 0; }
  // Reserved for a spawn but not set up yet (nothing accessible, no guard): stack_pool::alloc_min
  // hands these out, and the goroutine's first run calls stack_pool::set_up_unset.
  bool unset() const noexcept { return lo == hi && hi != 0; }
  std::uintptr_t open_lo() const noexcept { return hi - (std::uintptr_t{open_4k} << 12); }
  std::size_t open_size() const noexcept { return std::size_t{open_4k} << 12; }
  // lo and open_lo() both at `new_lo` (page-aligned).
  void set_lo(std::uintptr_t new_lo) noexcept {
    lo = new_lo;
    open_4k = static_cast<std::uint32_t>((hi - new_lo) >> 12);
  }
};
static_assert(sizeof(stack) == 32, "g's first cache line holds a stack record");

// stack_config, what the pool is configured from: stack_config.hpp.

class stack_pool;

// Per-P cache of small-class stacks (owned by one P; no lock).
struct stack_cache {
  static constexpr std::size_t kClasses = 4;    // the smallest capacity classes get a cache
  static constexpr std::size_t kBatch = 16;     // refill / drain batch
  static constexpr std::size_t kMax = 64;       // drain down to kMax - kBatch above this
  std::vector<stack> free[kClasses];     // last freed on top: its lines are the likeliest cached
  // Stacks of stack_min's class that spawns reserved and whose goroutines, at their first run,
  // traded them for the top of free[0] (stack_pool::trade_for_warm).  Nothing has touched them
  // since they were last freed, so they are the cold end of the cache: a spawn, which only
  // reserves its stack, takes from here first.  At most kMax; empty unless goroutines start.
  std::vector<stack> stale;
  // Stacks of each class the owner allocated minus those it freed through this cache: one
  // writer, no shared line per spawn and exit; as wrapped arithmetic, since a stack may end on
  // another P than the one that made it.  stack_pool::stats() sums them over its caches.
  std::atomic<std::uint64_t> in_use_delta[kClasses] = {};

  stack_cache() = default;
  stack_cache(const stack_cache&) = delete;
  stack_cache& operator=(const stack_cache&) = delete;
  ~stack_cache();  // leaves the pool it was used with (which keeps its counts)

 private:
  friend class stack_pool;
  stack_pool* owner_ = nullptr;        // set on first use with a pool
  stack_cache* next_ = nullptr;        // the owner's list of its caches
};

struct stack_pool_stats {
  std::uint64_t bytes_reserved = 0;    // address space of all arenas
  std::uint64_t slots_in_use = 0;
  std::uint64_t slots_pooled = 0;      // in per-P caches and the global pool
  std::uint64_t bytes_released = 0;    // given back to the OS by release_idle, total
  std::uint64_t mappings = 0;          // VMAs the pool estimates it has added
  std::vector<std::uint64_t> in_use_per_class;
  std::uint64_t slots_carved = 0;      // slots ever set up (in use + pooled)
  std::uint64_t map_limit = 0;         // vm.max_map_count (or the testing budget); 0: unknown
};

class stack_pool {
 public:
  // Resolves guard_mode::automatic by probing MADV_GUARD_INSTALL once; under valgrind,
  // automatic and madvise resolve to mprotect (runtime/stack/valgrind.hpp).  Reads
  // /proc/sys/vm/max_map_count for the mapping budget.  Throws config_error for a config it
  // cannot honour: one that breaks a rule of stack_config.hpp (check_stack_config), or
  // guard_mode::madvise on a kernel without MADV_GUARD_INSTALL.
  explicit stack_pool(const stack_config& cfg);
  ~stack_pool();  // unmaps every arena; stacks still in use become invalid
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  // A stack with size() >= size (size: a power of two in [stack_min, stack_max]; others are
  // rounded up).  A pooled stack keeps the size it had, so size() may exceed the request.
  // Throws resource_error when memory, address space or the mapping budget runs out; nothing
  // is lost and the pool stays usable.  Throws std::length_error if size > stack_max.
  stack alloc(std::size_t size, stack_cache* cache = nullptr);
  // Returns a stack to the cache/pool.  Its pages stay resident until release_idle.  A cache
  // keeps only stacks of at most 4 * stack_min accessible bytes; larger ones go to the global
  // pool.  A double free is a fatal error.
  void free(const stack& s, stack_cache* cache = nullptr) noexcept;
  // Moves every stack in `cache` back to the global pool (a P going away).
  void drain(stack_cache& cache) noexcept;

  // The fast paths of the two calls above for what a spawn and an exit do most: a stack of
  // stack_min from `cache` (its stale end: a spawn only reserves the stack, and the warm end
  // is kept for first runs, trade_for_warm), and a small stack back onto it.  Each is a handful of
  // instructions inline (alloc and free out of line cost ~90 each: together about a tenth of
  // a skynet goroutine's instructions under callgrind).  take_cached returns an empty stack, and put_cached false,
  // when the cache cannot serve without the pool — empty or full, a cache not yet used with
  // this pool, a stack too big to cache — or when WEFT_DEBUG's checks are on; the caller
  // then makes the full call, which does everything (refill, drain, checks).  The fast free
  // trusts the runtime's own record of the stack; the full one checks it came from this pool.
  stack take_cached(stack_cache& cache) noexcept {
    std::vector<stack>& v = cache.stale;  // stack_min's class is always 0 (class_of)
    if (fast_off_ || cache.owner_ != this || v.empty() || (v.back().size() < cfg_.stack_min && !v.back().unset())) return {};
    stack s = v.back();
    v.pop_back();
    bump(cache.in_use_delta[0], 1);
    return s;
  }
  bool put_cached(const stack& s, stack_cache& cache) noexcept {
    if (fast_off_ || cache.owner_ != this || s.cls >= stack_cache::kClasses || s.open_size() > cache_stack_bytes_) return false;
    std::vector<stack>& v = cache.free[s.cls];
    if (v.size() >= stack_cache::kMax || v.size() == v.capacity()) return false;  // full: drain; or would allocate
    v.push_back(s);
    bump(cache.in_use_delta[s.cls], ~std::uint64_t{0});
    return true;
  }
  // A spawn's stack and an exit's free, as the runtime makes them: the fast path, else the
  // full call, which for a spawn looks in the stale end, then the global pool, and only then
  // the warm end.  (`cache` may be nullptr: a thread that is not an M.)
  stack alloc_min(stack_cache* cache) {
    if (cache)
      if (stack s = take_cached(*cache); !s.empty()) return s;
    return alloc_impl(cfg_.stack_min, cache, true);
  }
  // An unset stack (alloc_min's) made ready to run on: stack_min accessible, guards in place.
  // Nothing to do for a stack that is set up.  Throws resource_error if madvise/mprotect
  // fails; the slot is then kept aside (reset before reuse) and `s` must be dropped.
  void set_up_unset(stack& s);
  void free_own(const stack& s, stack_cache* cache) noexcept {
    if (!cache || !put_cached(s, *cache)) free(s, cache);
  }

  // A goroutine's first run, on the P that owns `cache`: its stack `s`, reserved at its spawn
  // and untouched since, is likely cold by now (a tree of goroutines queues tens of thousands
  // between a spawn and its run), while the stack most recently freed here is likely still
  // in the CPU's caches.  Swaps the two: `s` becomes that warm stack, the reserved one goes
  // to cache.stale (a full one first gives its oldest kBatch to the global pool).  The in-use
  // counts do not change (one stack out, one in).  False, with `s` unchanged, when there is no
  // warm stack, `s` is not of stack_min's class or is bigger than a cache keeps (a grown stack
  // from the global pool: run on, it goes back there when freed), or WEFT_DEBUG's checks are
  // on (whose per-slot flags would have to swap too).
  bool trade_for_warm(stack& s, stack_cache& cache) noexcept {
    std::vector<stack>& warm = cache.free[0];
    if (fast_off_ || cache.owner_ != this || s.cls != 0 || s.size() > cache_stack_bytes_ || warm.empty()) return false;
    if (cache.stale.size() >= stack_cache::kMax || cache.stale.size() == cache.stale.capacity()) {
      spill_stale(cache);
      if (cache.stale.size() == cache.stale.capacity()) return false;  // no memory to hold more
    }
    cache.stale.push_back(s);
    s = warm.back();
    warm.pop_back();
    return true;
  }

  // Largest size a check grows this stack to without leaving its slot.
  std::size_t capacity(const stack& s) const noexcept;
  // Largest size a fault grows it to: the capacity and the slack below it.
  std::size_t room(const stack& s) const noexcept;
  // Makes the stack new_size bytes: [hi - new_size, lo) accessible (nothing to do where it
  // is open already).  False if new_size > capacity(s) (room(s) with into_slack).  Throws
  // resource_error if madvise/mprotect fails; the stack is unchanged then.
  bool grow_in_place(stack& s, std::size_t new_size, bool into_slack = false);

  // The slot holding `addr`, if a stack arena of this pool does: [*slot_lo, *slot_lo +
  // slot bytes), its guard ending at *guard_top.  Reads only published arena records: safe
  // in a signal handler.
  bool find_slot(std::uintptr_t addr, std::uintptr_t* slot_lo, std::uintptr_t* slot_hi,
                 std::uintptr_t* guard_top) const noexcept;
  // Makes the stack new_size bytes (at least stack_min), giving the pages below it back to the
  // OS and making them inaccessible again — those of its open part too.
  void shrink_in_place(stack& s, std::size_t new_size);
  // A stack handed to a new goroutine: its size becomes stack_min; its open part keeps its
  // pages (no system call).
  void restart(stack& s) const noexcept {
    if (s.size() > cfg_.stack_min) s.lo = s.hi - cfg_.stack_min;
  }

  // The scan phase: returns pooled stacks' memory to the OS (global pool only): per class, the
  // stacks that sat unused through the last `idle_scans` calls (clamped to 1..kIdleHistory),
  // and with `cap` also the oldest beyond pool_keep_bytes.  weft::scan() asks for 1 and the
  // cap; sysmon's periodic scan for about three seconds' worth of scans and no cap (the scan
  // phase, runtime/sched/scan.cpp, says why).  Makes syscalls per released stack: call it
  // without locks held.
  static constexpr std::uint32_t kIdleHistory = 64;
  void release_idle(std::uint32_t idle_scans = 1, bool cap = true) noexcept;

  const stack_config& config() const noexcept { return cfg_; }
  std::size_t class_capacity(std::uint32_t cls) const noexcept;
  stack_pool_stats stats() const;

  // Tests only: pretend vm.max_map_count is `limit` (0 restores the real value).  Defined in
  // the test kit, weft_testing (runtime/testing/stack_pool_budget.cpp), not in libweft.
  void set_map_budget_for_testing(std::size_t limit) noexcept;

 private:
  friend struct stack_cache;
  struct impl;
  stack alloc_impl(std::size_t size, stack_cache* cache, bool for_spawn);
  void attach(stack_cache& cache) noexcept;  // on a cache's first use
  void spill_stale(stack_cache& cache) noexcept;  // the oldest kBatch of cache.stale to the pool
  void detach(stack_cache& cache) noexcept;  // from ~stack_cache
  // Counts a stack of class cls handed out (+1) or back (-1, as wrapped arithmetic).
  void count_in_use(stack_cache* cache, std::uint32_t cls, std::uint64_t delta) noexcept;
  // One writer (the cache's owner): a plain add, no locked instruction.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t delta) noexcept {
    c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  stack_config cfg_;
  impl* impl_;
  std::atomic<std::size_t>* test_limit_ = nullptr;  // the impl's testing budget (0: none)
  bool fast_off_ = false;              // cfg_.check_frees: every alloc and free takes the full path
  std::size_t cache_stack_bytes_ = 0;  // largest accessible size a per-P cache keeps (4 * stack_min)
};

}  // namespace weft::detail
