// SPDX-License-Identifier: Apache-2.0
// stack_pool.cpp — the stack allocator of stack_pool.hpp.
//
// Arenas.  Every slot class has its own chain of arenas, and a class's slots are carved from
// its newest arena with a bump index (so slot = arena base + index * slot_bytes, and a stack
// finds its slot's in-use flag by one division).  Arena sizes grow geometrically per class:
// the first holds 64 MiB worth of slots (at least one), each next one twice as many, capped at
// 64 GiB (at least one slot).  With the default config (256 KiB reserve + 64 KiB guard = 320
// KiB slots) a million stacks fit in 14 arenas (64 MiB .. 64 GiB, then 64 GiB each), so the
// process's mapping count stays in the dozens when guards are madvise markers.  If a big mmap
// fails (ulimit -v, overcommit_memory=2) the arena is halved down to one slot before giving up.
// Address space is never returned before the pool dies; memory is (release_idle).
//
// Carving a slot sets up its guards once: madvise mode maps arenas RW and installs markers
// over the guard and the band below lo (one or two syscalls; the reserve between stays
// untouched); mprotect mode maps arenas PROT_NONE and opens [lo, hi) RW (two more VMAs per
// slot); none maps RW and does nothing.  Folded classes (slots of 2 MiB or more, the header)
// map each arena 2 MiB larger and trim it to start 1 MiB off 2 MiB alignment.  A slot whose setup failed goes to a per-class `raw`
// list and is reset to the arena's baseline before its next use, so a failure loses nothing.
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
// release_idle is Go's "free stack spans during GC" turned into a watermark: per class, the
// hot list is LIFO, and its low-water mark at each scan counts the stacks nobody touched for
// that whole interval; the last kIdleHistory marks are kept, so the minimum of the last k of
// them counts the stacks unused for k intervals.  Those (k = 1 for weft::scan(), about 3 s
// worth for sysmon's periodic scans — the pacing Go's scavenger has too: a burst that recurs
// keeps its stacks resident), plus, for weft::scan(), whatever exceeds pool_keep_bytes of
// accessible memory, are shrunk to stack_min (guard re-installed, which zaps pages) and their
// top page(s) MADV_DONTNEED'ed, then parked on the `cold` list.  MADV_FREE was measured and rejected: on
// this machine (no memory pressure) RSS does not drop at all after MADV_FREE, so neither the
// runtime's stats nor a user's `ps` would see the release; DONTNEED drops it at once.
//
// Locks.  One mutex per class guards its pools and its carving cursor; the syscalls of carving
// and releasing run outside it.  A lock-free (Treiber) stack was rejected: it needs an ABA tag
// or hazard scheme for batch refill/drain, and the lock is taken once per kBatch stacks on the
// cached path, so it is not the bottleneck (see bench/stack_bench.cpp).  arena_mu_ serializes
// arena creation (rare); free() validates a stack against the arenas through an append-only
// array published with a release store of its length, so it takes no lock for that.
//
// Valgrind (runtime/stack/valgrind.hpp).  Under valgrind the guard mode resolves to mprotect,
// whatever automatic or madvise asked (valgrind 3.19 dies at MADV_GUARD_INSTALL markers; with
// WEFT_DEBUG=1 the pool says so once), arenas stay within kValgrindArenaBytes (memcheck warns
// about every bigger mapping it marks), and every slot is registered with valgrind as a stack
// when it is first set up — all of it, since its stack grows down through it — and
// deregistered when its arena is unmapped.  A slot is a stack all its life, whoever runs on
// it, so reuse needs no new registration; a copy or a segment lands in another registered
// slot.  Native runs pay one untaken branch per carved slot.
//
// Mapping budget.  mappings_ counts the VMAs this pool adds (1 per arena, 2 per slot in
// mprotect mode).  Before adding, the estimate plus the other mappings of the process is
// compared with vm.max_map_count minus a margin (1% + 256) for the rest of the process; when it
// would cross, /proc/self/maps is counted once to correct the estimate, and if it still
// crosses, resource_error says so and how to get out.
#include "runtime/stack/stack_pool.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "runtime/diag/fatal.hpp"
#include "runtime/stack/stackvm.hpp"
#include "runtime/stack/valgrind.hpp"
#include "weft/errors.hpp"

namespace weft::detail {
namespace {

constexpr std::size_t kFirstArenaBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxArenaBytes = std::size_t{64} << 30;
// Under valgrind: memcheck prints "Warning: set address range perms: large range" for every
// mapping over 256 MiB it marks (an arena, and its alignment slack).
constexpr std::size_t kValgrindArenaBytes = std::size_t{128} << 20;
constexpr std::uint32_t kMaxArenas = 4096;  // 64 GiB each at most: more than 47-bit space holds
constexpr std::uint32_t kNoArena = ~std::uint32_t{0};

// The span one page-table page maps on x86_64 and aarch64 (4 KiB pages): 512 entries.
constexpr std::size_t kPageTableSpan = std::size_t{2} << 20;

// Slots per arena at most (the slot index is 32-bit; 2^30 - 1 keeps arena sizes as they were
// when the index shared its word with flags).
constexpr std::size_t kMaxArenaSlots = (std::size_t{1} << 30) - 1;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Room for n more elements, growing geometrically: reserve(size() + n) alone allocates exactly
// that much, so a list that grows n at a time would be copied whole on every call (the pool's
// hot list under a per-P cache's drains: that was a tenth of skynet's time).
void reserve_more(std::vector<stack>& v, std::size_t n) {
  if (v.capacity() - v.size() < n) v.reserve(std::max(v.size() + n, 2 * v.capacity()));
}

[[noreturn]] void bad_config(const char* field, const char* var, std::size_t value, const char* allowed) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "weft: stack pool: %s (%s) = %zu is not allowed; %s", field, var, value, allowed);
  throw config_error(buf);
}

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

struct stack_pool::impl {
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

  ~impl() {
    const std::uint32_t n = narenas.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (unsigned* ids = arenas[i].vg_ids) {
        for (std::uint32_t k = 0; k < arenas[i].slots; ++k) vg::deregister_stack(ids[k]);
        delete[] ids;
      }
      stackvm::unmap(reinterpret_cast<void*>(arenas[i].base), arenas[i].bytes);
      delete[] arenas[i].in_use;
    }
  }

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

  // ---- mapping budget -------------------------------------------------------------------

  std::size_t limit() const noexcept {
    const std::size_t t = test_limit.load(std::memory_order_relaxed);
    return t ? t : system_limit;
  }

  void reserve_maps(std::size_t n) {
    const std::size_t lim = limit();
    if (lim == 0) {
      maps.fetch_add(n, std::memory_order_relaxed);
      return;
    }
    const std::size_t margin = std::min(lim / 100 + 256, lim / 2);
    const std::size_t budget = lim - margin;
    bool recounted = false;
    for (;;) {
      std::size_t cur = maps.load(std::memory_order_relaxed);
      const std::size_t total = others.load(std::memory_order_relaxed) + cur;
      if (total + n <= budget) {
        if (maps.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) return;
        continue;
      }
      if (!recounted) {
        // The estimate may be stale (merged VMAs, other parts of the process unmapped
        // things): count once before refusing.  Not again until `maps` changes, so a caller
        // retrying against a full budget does not re-read a 65K-line file each time.
        recounted = true;
        std::lock_guard lk(budget_mu);
        if (recounted_at != cur) {
          recounted_at = cur;
          if (std::size_t real = stackvm::count_mappings())
            others.store(real > cur ? real - cur : 0, std::memory_order_relaxed);
        }
        continue;
      }
      throw_budget(total, cur, lim, margin);
    }
  }

  void release_maps(std::size_t n) noexcept { maps.fetch_sub(n, std::memory_order_relaxed); }

  [[noreturn]] void throw_budget(std::size_t total, std::size_t ours, std::size_t lim, std::size_t margin) const {
    char testing[128] = "";
    if (test_limit.load(std::memory_order_relaxed))
      std::snprintf(testing, sizeof testing, " (a testing budget standing in for the real %zu)", system_limit);
    char buf[1536];
    std::snprintf(
        buf, sizeof buf,
        "weft: cannot set up another goroutine stack: the process has about %zu memory mappings "
        "(VMAs), %zu of them weft's stacks, and vm.max_map_count is %zu%s; weft stops %zu short "
        "of it to leave room for the rest of the process. With WEFT_GUARD=%s every stack costs "
        "about %s. Ways out: (1) raise the limit: sysctl -w vm.max_map_count=%zu (as root); "
        "(2) run on a kernel with MADV_GUARD_INSTALL (Linux 6.13+) with WEFT_GUARD=madvise or "
        "WEFT_GUARD=automatic, where guard pages split no mapping; (3) WEFT_GUARD=none (no guard "
        "pages: a stack overflow corrupts memory instead of faulting)",
        total, ours, lim, testing, margin, stackvm::mode_name(mode),
        mode == guard_mode::mprotect ? "two mappings (its accessible range and the guard below it)"
                                     : "no mapping of its own; arenas cost one each",
        std::max<std::size_t>(262144, lim * 4));
    throw resource_error(std::make_error_code(std::errc::not_enough_memory), buf);
  }

  // ---- arenas and carving ---------------------------------------------------------------

  // Called with cp.mu held.
  void new_arena(std::uint32_t cls, class_pool& cp) {
    const std::size_t slot_bytes = slot_bytes_of(cls);
    const std::size_t max_bytes = vg::running() ? kValgrindArenaBytes : kMaxArenaBytes;
    const std::size_t max_slots = std::max<std::size_t>(1, std::min<std::size_t>(max_bytes / slot_bytes, kMaxArenaSlots));
    std::size_t slots = std::max<std::size_t>(1, std::min(kFirstArenaBytes, max_bytes) / slot_bytes);
    for (std::uint32_t i = 0; i < cp.arenas_made && slots < max_slots; ++i) slots *= 2;
    slots = std::min(slots, max_slots);

    if (narenas.load(std::memory_order_relaxed) >= kMaxArenas)
      throw resource_error(std::make_error_code(std::errc::not_enough_memory),
                           "weft: stack pool: all " + std::to_string(kMaxArenas) +
                               " stack arenas are in use; lower WEFT_STACK_RESERVE or WEFT_STACK_MAX");
    reserve_maps(1);
    void* p = nullptr;
    int err = 0;
    const std::size_t align_extra = folded ? kPageTableSpan : 0;
    for (;;) {
      p = stackvm::map_arena(slots * slot_bytes + align_extra, mode != guard_mode::mprotect, &err);
      if (p || err != ENOMEM || slots == 1) break;
      slots /= 2;  // a smaller arena may still fit (ulimit -v, overcommit_memory=2)
    }
    if (!p) {
      release_maps(1);
      stackvm::throw_call_failed(
          "mmap of a stack arena", 0, slots * slot_bytes, err,
          "the process ran out of address space or commit: lower WEFT_STACK_RESERVE or "
          "WEFT_STACK_MAX (slots are guard + max(size, reserve) bytes), raise `ulimit -v`, or "
          "check vm.overcommit_memory (2 ignores MAP_NORESERVE and charges every writable "
          "reserve in full, as it charges a pthread's stack)");
    }
    try {
      // Folded: start 1 MiB off 2 MiB alignment, so that every slot's guard shares a
      // page-table page with the top of the slot below (the header); give back the rest.
      // (If that fails, trim_arena has unmapped the whole mapping.)
      if (folded) p = stackvm::trim_arena(std::exchange(p, nullptr), slots * slot_bytes, kPageTableSpan, kPageTableSpan / 2);
      stackvm::no_huge_pages(reinterpret_cast<std::uintptr_t>(p), slots * slot_bytes);
    } catch (...) {
      if (p) stackvm::unmap(p, slots * slot_bytes);
      release_maps(1);
      throw;
    }
    auto* flags = new (std::nothrow) std::atomic<bool>[slots]();
    unsigned* vg_ids = flags && vg::running() ? new (std::nothrow) unsigned[slots]() : nullptr;
    if (!flags || (vg::running() && !vg_ids)) {
      delete[] flags;
      stackvm::unmap(p, slots * slot_bytes);
      release_maps(1);
      throw resource_error(std::make_error_code(std::errc::not_enough_memory),
                           "weft: stack pool: no memory for the slot table of a new stack arena");
    }
    std::lock_guard lk(arena_mu);
    const std::uint32_t idx = narenas.load(std::memory_order_relaxed);
    if (idx >= kMaxArenas) {  // a race with another class since the check above
      delete[] flags;
      delete[] vg_ids;
      stackvm::unmap(p, slots * slot_bytes);
      release_maps(1);
      throw resource_error(std::make_error_code(std::errc::not_enough_memory),
                           "weft: stack pool: out of stack arenas; lower WEFT_STACK_RESERVE or WEFT_STACK_MAX");
    }
    arenas[idx] = arena{reinterpret_cast<std::uintptr_t>(p), slots * slot_bytes, slot_bytes, cls,
                        static_cast<std::uint32_t>(slots), flags, vg_ids};
    narenas.store(idx + 1, std::memory_order_release);
    bytes_reserved.fetch_add(slots * slot_bytes, std::memory_order_relaxed);
    cp.arena = idx;
    cp.next_slot = 0;
    ++cp.arenas_made;
  }

  // A fresh slot of class cls with [hi - size, hi) accessible and the rest guarded.  With
  // `defer`, a never-used slot comes back *unset* instead (lo == hi: nothing accessible, no
  // guard yet, no system call); its first user sets it up (set_up_unset).
  __attribute__((noinline)) stack carve(std::uint32_t cls, std::size_t size, bool defer = false) {
    class_pool& cp = classes[cls];
    stack s;
    bool reset = false;
    {
      std::lock_guard lk(cp.mu);
      if (!cp.raw.empty()) {
        s = cp.raw.back();
        cp.raw.pop_back();
        reset = true;
      } else {
        if (cp.arena == kNoArena || cp.next_slot == arenas[cp.arena].slots) new_arena(cls, cp);
        const arena& a = arenas[cp.arena];
        s.slot_lo = a.base + std::size_t{cp.next_slot} * a.slot_bytes;
        s.arena = static_cast<std::uint16_t>(cp.arena);
        s.cls = static_cast<std::uint16_t>(cls);
        ++cp.next_slot;
      }
    }
    s.hi = s.slot_lo + slot_bytes_of(cls);
    if (defer && !reset) {
      s.set_lo(s.hi);
      note_carved(s);
      return s;
    }
    s.set_lo(s.hi - size);
    set_up_carved(s, reset);
    note_carved(s);
    return s;
  }

  // An unset stack (carve with defer) made usable: [hi - size, hi) accessible, guards in place.
  // On failure it is left unset and the slot goes to `raw`, as a failed carve's does — the
  // caller must not use or free it.
  __attribute__((noinline)) void set_up_unset(stack& s, std::size_t size) {
    s.set_lo(s.hi - size);
    try {
      set_up_carved(s, false);
    } catch (...) {
      s.set_lo(s.hi);
      throw;
    }
  }

  void set_up_carved(stack& s, bool reset) {
    const std::uint32_t cls = s.cls;
    class_pool& cp = classes[cls];
    const std::size_t new_maps = mode == guard_mode::mprotect ? 2 : 0;
    try {
      reserve_maps(new_maps);
      try {
        set_up(s, reset);
      } catch (...) {
        release_maps(new_maps);
        throw;
      }
    } catch (...) {
      try {
        std::lock_guard lk(cp.mu);
        cp.raw.push_back(stack{s.slot_lo, 0, 0, static_cast<std::uint16_t>(cls), s.arena, 0});
      } catch (...) {
        // No memory to remember it: the slot stays mapped but unused.
      }
      throw;
    }
  }

  void note_carved(const stack& s) noexcept {
    if (unsigned* ids = arenas[s.arena].vg_ids) {  // under valgrind: the whole slot is a stack
      unsigned& id = ids[(s.slot_lo - arenas[s.arena].base) / arenas[s.arena].slot_bytes];
      if (id == 0) id = vg::register_stack(s.slot_lo, s.hi);
    }
    carved[s.cls].v.fetch_add(1, std::memory_order_relaxed);
  }

  void set_up(const stack& s, bool reset) {
    const std::size_t slot_bytes = s.hi - s.slot_lo;
    switch (mode) {
      case guard_mode::madvise: {
        // An earlier attempt may have left markers anywhere in the slot.
        if (reset) stackvm::open_range(mode, s.slot_lo, slot_bytes);
        const std::uintptr_t guard_top = s.slot_lo + cfg.guard_bytes, band = band_lo(s, s.lo);
        if (band <= guard_top) {
          stackvm::close_range(mode, s.slot_lo, s.lo - s.slot_lo);
        } else {
          stackvm::close_range(mode, s.slot_lo, cfg.guard_bytes);
          stackvm::close_range(mode, band, s.lo - band);
        }
        return;
      }
      case guard_mode::mprotect:
        if (reset) stackvm::close_range(mode, s.slot_lo, slot_bytes);
        stackvm::open_range(mode, s.lo, s.size());
        return;
      case guard_mode::none:
      case guard_mode::automatic:
        return;
    }
  }

  // ---- pools ----------------------------------------------------------------------------

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

  void release_class(std::uint32_t cls, std::uint32_t idle_scans, bool cap) noexcept {
    class_pool& cp = classes[cls];
    std::vector<stack> victims;
    try {
      victims.reserve(stack_cache::kMax);
      std::lock_guard lk(cp.mu);
      // Close this interval: the bottom low_water stacks sat unused since the previous scan.
      cp.low_water_seen[cp.scans++ % stack_pool::kIdleHistory] = std::min(cp.low_water, cp.hot.size());
      // Those unused for the last idle_scans intervals go (fewer scans than that so far: none).
      std::size_t n = 0;
      if (cp.scans >= idle_scans) {
        n = cp.hot.size();
        for (std::uint64_t k = 0; k < idle_scans; ++k)
          n = std::min(n, cp.low_water_seen[(cp.scans - 1 - k) % stack_pool::kIdleHistory]);
      }
      std::size_t idle_bytes = 0;
      for (std::size_t i = 0; i < n; ++i) idle_bytes += cp.hot[i].open_size();
      std::size_t keep_bytes = cp.hot_bytes - idle_bytes;
      // With the cap, beyond them the oldest too, until what stays is within pool_keep_bytes.
      if (cap)
        while (n < cp.hot.size() && keep_bytes > cfg.pool_keep_bytes) keep_bytes -= cp.hot[n++].open_size();
      reserve_more(cp.cold, n);  // so the insert below cannot fail
      victims.insert(victims.end(), cp.hot.begin(), cp.hot.begin() + static_cast<std::ptrdiff_t>(n));
      cp.hot.erase(cp.hot.begin(), cp.hot.begin() + static_cast<std::ptrdiff_t>(n));
      cp.hot_bytes = keep_bytes;
      cp.low_water = cp.hot.size();
      // The released were the bottom n: every interval's idle count loses them.
      for (std::size_t& w : cp.low_water_seen) w = w > n ? w - n : 0;
    } catch (...) {
      return;
    }
    if (victims.empty()) return;
    std::size_t done = 0;
    std::uint64_t released = 0;
    for (; done < victims.size(); ++done) {
      stack& s = victims[done];
      const std::size_t before = s.open_size();
      try {
        shrink(s, cfg.stack_min);
        stackvm::discard(s.lo, s.size());
      } catch (...) {
        break;  // leave this and the rest resident; the next scan tries again
      }
      released += before;
    }
    bytes_released.fetch_add(released, std::memory_order_relaxed);
    std::lock_guard lk(cp.mu);
    cp.cold.insert(cp.cold.end(), victims.begin(), victims.begin() + static_cast<std::ptrdiff_t>(done));
    for (std::size_t i = done; i < victims.size(); ++i) {
      try {
        cp.hot.push_back(victims[i]);
        cp.hot_bytes += victims[i].open_size();
      } catch (...) {
      }
    }
    cp.note_pooled();
  }

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
  void grow(stack& s, std::uintptr_t new_lo) {
    const std::uintptr_t open = s.open_lo();
    if (new_lo >= open) {
      s.lo = new_lo;
      return;
    }
    if (mode == guard_mode::madvise) {
      const std::uintptr_t band = band_lo(s, new_lo);
      stackvm::close_range(mode, band, new_lo - band);
    }
    stackvm::open_range(mode, new_lo, open - new_lo);
    s.set_lo(new_lo);
  }

  // Makes the stack new_size bytes and closes everything below it, its open part too.
  void shrink(stack& s, std::size_t new_size) {
    new_size = std::max(round_up(new_size, page), cfg.stack_min);
    const std::uintptr_t open = s.open_lo();
    if (new_size >= s.open_size()) return;
    const std::uintptr_t new_lo = s.hi - new_size;
    if (mode != guard_mode::madvise) {
      stackvm::close_range(mode, open, new_lo - open);
      s.set_lo(new_lo);
      return;
    }
    // The new band (its markers zap the pages under them), the pages between the old bottom
    // and the new band back to the OS, and the old band's markers out of the reserve.
    const std::uintptr_t band = band_lo(s, new_lo), old_band = band_lo(s, open);
    stackvm::close_range(mode, band, new_lo - band);
    if (band > open) stackvm::discard(open, band - open);
    const std::uintptr_t old_band_end = std::min(open, band);
    if (old_band_end > old_band) stackvm::open_range(mode, old_band, old_band_end - old_band);
    s.set_lo(new_lo);
  }
};

// ---- stack_pool ---------------------------------------------------------------------------

stack_pool::stack_pool(const stack_config& cfg) : cfg_(cfg), impl_(nullptr) {
  const std::size_t page = stackvm::page_size();
  if (cfg_.stack_min == 0 || !std::has_single_bit(cfg_.stack_min))
    bad_config("stack_min", "WEFT_STACK_MIN", cfg_.stack_min, "use a power of two such as 8K");
  cfg_.stack_min = std::max(cfg_.stack_min, page);  // a page is the smallest thing a guard protects
  if (!std::has_single_bit(cfg_.stack_max) || cfg_.stack_max < cfg_.stack_min)
    bad_config("stack_max", "WEFT_STACK_MAX", cfg_.stack_max, "use a power of two no smaller than stack_min");
  if (cfg_.stack_max > (std::size_t{1} << 40))
    bad_config("stack_max", "WEFT_STACK_MAX", cfg_.stack_max, "the largest supported is 1T");
  if (cfg_.reserve != 0 && !std::has_single_bit(cfg_.reserve))
    bad_config("stack_reserve", "WEFT_STACK_RESERVE", cfg_.reserve, "use 0 or a power of two");
  if (cfg_.reserve > (std::size_t{1} << 40))
    bad_config("stack_reserve", "WEFT_STACK_RESERVE", cfg_.reserve, "the largest supported is 1T");
  cfg_.guard_bytes = round_up(cfg_.guard_bytes, page);

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

  cfg_.slack = round_up(cfg_.slack, page);
  auto im = std::make_unique<impl>(cfg_);
  im->folded = cfg_.reserve >= kPageTableSpan;
  if (im->folded) {
    if (cfg_.reserve < cfg_.guard_bytes + cfg_.slack + 2 * cfg_.stack_min)
      bad_config("stack_reserve", "WEFT_STACK_RESERVE", cfg_.reserve, "use at least the guard, the slack and two stack_min");
    // Enough classes to reach stack_max, or the reserve itself.
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

// On the cache's own counter when there is one (a plain store: its P is the only writer).
inline void stack_pool::count_in_use(stack_cache* cache, std::uint32_t cls, std::uint64_t delta) noexcept {
  if (cache && cls < stack_cache::kClasses) {
    if (__builtin_expect(cache->owner_ != this, 0)) attach(*cache);
    bump(cache->in_use_delta[cls], delta);
    return;
  }
  impl_->in_use[cls].v.fetch_add(delta, std::memory_order_relaxed);
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

void stack_pool::spill_stale(stack_cache& cache) noexcept {
  impl_->give_back(0, cache.stale, std::min(cache.stale.size(), stack_cache::kBatch));
}

void stack_pool::drain(stack_cache& cache) noexcept {
  impl_->give_back(0, cache.stale, cache.stale.size());
  for (std::uint32_t cls = 0; cls < stack_cache::kClasses && cls < impl_->nclasses; ++cls)
    impl_->give_back(cls, cache.free[cls], cache.free[cls].size());
}

std::size_t stack_pool::capacity(const stack& s) const noexcept { return impl_->capacity_of(s.cls); }

std::size_t stack_pool::room(const stack& s) const noexcept { return impl_->room_of(s.cls); }

bool stack_pool::grow_in_place(stack& s, std::size_t new_size, bool into_slack) {
  impl& im = *impl_;
  new_size = round_up(new_size, im.page);
  if (new_size <= s.size()) return true;
  if (new_size > (into_slack ? room(s) : capacity(s))) return false;
  im.grow(s, s.hi - new_size);
  return true;
}

bool stack_pool::find_slot(std::uintptr_t addr, std::uintptr_t* slot_lo, std::uintptr_t* slot_hi,
                           std::uintptr_t* guard_top) const noexcept {
  const impl& im = *impl_;
  const std::uint32_t n = im.narenas.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    const impl::arena& a = im.arenas[i];
    if (addr < a.base || addr - a.base >= a.bytes) continue;
    *slot_lo = a.base + (addr - a.base) / a.slot_bytes * a.slot_bytes;
    *slot_hi = *slot_lo + a.slot_bytes;
    *guard_top = *slot_lo + cfg_.guard_bytes;
    return true;
  }
  return false;
}

void stack_pool::shrink_in_place(stack& s, std::size_t new_size) { impl_->shrink(s, new_size); }

void stack_pool::release_idle(std::uint32_t idle_scans, bool cap) noexcept {
  if (idle_scans < 1) idle_scans = 1;
  if (idle_scans > kIdleHistory) idle_scans = kIdleHistory;
  for (std::uint32_t cls = 0; cls < impl_->nclasses; ++cls) impl_->release_class(cls, idle_scans, cap);
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
