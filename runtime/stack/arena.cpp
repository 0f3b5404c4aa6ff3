// SPDX-License-Identifier: Apache-2.0
// arena.cpp — arenas and the slots carved from them: carving, a slot's guards, growing and
// shrinking a stack in place (stack_pool.hpp draws a slot).
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
// Growing and shrinking in place move a stack's lo inside its slot, and the band with it: a
// store inside the open part, madvise or mprotect below it (grow, shrink).
//
// Valgrind (runtime/stack/valgrind.hpp).  Under valgrind the guard mode resolves to mprotect,
// whatever automatic or madvise asked (stack_pool's constructor: valgrind 3.19 dies at
// MADV_GUARD_INSTALL markers; with WEFT_DEBUG=1 the pool says so once), arenas stay within kValgrindArenaBytes (memcheck warns
// about every bigger mapping it marks), and every slot is registered with valgrind as a stack
// when it is first set up — all of it, since its stack grows down through it — and
// deregistered when its arena is unmapped.  A slot is a stack all its life, whoever runs on
// it, so reuse needs no new registration; a copy or a segment lands in another registered
// slot.  Native runs pay one untaken branch per carved slot.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include "runtime/stack/pool_impl.hpp"
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

// Slots per arena at most (the slot index is 32-bit; 2^30 - 1 keeps arena sizes as they were
// when the index shared its word with flags).
constexpr std::size_t kMaxArenaSlots = (std::size_t{1} << 30) - 1;

}  // namespace

stack_pool::impl::~impl() {
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

void stack_pool::impl::new_arena(std::uint32_t cls, class_pool& cp) {
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

stack stack_pool::impl::carve(std::uint32_t cls, std::size_t size, bool defer) {
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

void stack_pool::impl::set_up_unset(stack& s, std::size_t size) {
  s.set_lo(s.hi - size);
  try {
    set_up_carved(s, false);
  } catch (...) {
    s.set_lo(s.hi);
    throw;
  }
}

void stack_pool::impl::set_up_carved(stack& s, bool reset) {
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

void stack_pool::impl::note_carved(const stack& s) noexcept {
  if (unsigned* ids = arenas[s.arena].vg_ids) {  // under valgrind: the whole slot is a stack
    unsigned& id = ids[(s.slot_lo - arenas[s.arena].base) / arenas[s.arena].slot_bytes];
    if (id == 0) id = vg::register_stack(s.slot_lo, s.hi);
  }
  carved[s.cls].v.fetch_add(1, std::memory_order_relaxed);
}

void stack_pool::impl::set_up(const stack& s, bool reset) {
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

void stack_pool::impl::grow(stack& s, std::uintptr_t new_lo) {
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

void stack_pool::impl::shrink(stack& s, std::size_t new_size) {
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

std::size_t stack_pool::capacity(const stack& s) const noexcept { return impl_->capacity_of(s.cls); }

std::size_t stack_pool::room(const stack& s) const noexcept { return impl_->room_of(s.cls); }

bool stack_pool::grow_in_place(stack& s, std::size_t new_size, bool into_slack) {
  impl& im = *impl_;
  new_size = impl::round_up(new_size, im.page);
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

}  // namespace weft::detail
