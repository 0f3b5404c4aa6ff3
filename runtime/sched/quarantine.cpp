// SPDX-License-Identifier: Apache-2.0
// quarantine.cpp — moved-from stacks kept inaccessible, so a stale pointer faults at once.
//
// When copystack moves a stack and quarantine is on, the old stack is not freed: its
// accessible range is closed again (a guard marker or PROT_NONE: reserved address space, no
// memory) and a record says who moved where.  A later access through a pointer the copy
// could not adjust faults, and the SIGSEGV handler (sched/signals.cpp) finds the record and
// names the goroutine, both ranges and the object's new address, following later moves of
// the same stack.
//
// The records are a ring of the last kQuarantineRecords moves, process-wide because the
// signal handler must read them (one runtime runs at a time; quarantine_reset empties the
// ring when one starts).  A goroutine keeps at most kQuarantinePerGoroutine of them (its
// oldest goes back first), and gives them all back when it exits; a stale pointer into the
// old stacks of a goroutine that has ended is no longer caught.  Writers (copystack on any g0, the scanner) take a small lock; the
// handler reads without one: an entry is published by a release store of its `valid` word
// after its fields, and withdrawn (valid = 0) before its stack goes back to the pool.
// With WEFT_GUARD=none nothing can be made inaccessible: the old stacks are still kept out of
// circulation (a stale write cannot land in another goroutine's frames), but nothing faults.
#include "runtime/sched/quarantine.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/stack/stackvm.hpp"

namespace weft::detail {
namespace {

struct record {
  std::atomic<std::uintptr_t> valid{0};
  std::atomic<std::uintptr_t> goid{0};
  std::atomic<std::uintptr_t> old_lo{0}, old_hi{0}, new_lo{0}, new_hi{0};
  stack old;             // writers only (under the lock)
  g* owner = nullptr;    // writers only: whose move this was (it releases its records at exit)
  std::uint64_t seq = 0; // writers only: the order of moves, to find a goroutine's oldest
};

struct ring {
  futex_mutex lock;
  unsigned next = 0;
  std::uint64_t seq = 0;
  record recs[kQuarantineRecords];
};

ring g_ring;
std::atomic<std::uint64_t> g_ranges{0}, g_bytes{0};

const record* find(std::uintptr_t addr) noexcept {
  for (const record& r : g_ring.recs) {
    if (!r.valid.load(std::memory_order_acquire)) continue;
    if (addr >= r.old_lo.load(std::memory_order_relaxed) && addr < r.old_hi.load(std::memory_order_relaxed)) return &r;
  }
  return nullptr;
}

// Under the lock: withdraws r (its range stays closed); the caller gives the stack back.
stack withdraw(record& r) noexcept {
  r.valid.store(0, std::memory_order_release);
  stack old = r.old;
  if (r.owner) --r.owner->quarantined;
  r.owner = nullptr;
  r.old = {};
  g_ranges.fetch_sub(1, std::memory_order_relaxed);
  g_bytes.fetch_sub(old.open_size(), std::memory_order_relaxed);
  return old;
}

// Outside the lock: the pool expects [lo, hi) open.  If reopening fails, the slot stays out of
// circulation (address space only) rather than handing out a closed stack.
void give_back(sched* s, m* mp, const stack& old) noexcept {
  if (old.empty()) return;
  try {
    stackvm::open_range(s->stacks.config().guard, old.open_lo(), old.open_size());
    s->stacks.free(old, cache_of(mp));
  } catch (...) {
  }
}

}  // namespace

bool quarantine_moved(sched* s, m* mp, g* gp, const stack& old, const stack& fresh) noexcept {
  const guard_mode mode = s->stacks.config().guard;
  try {
    stackvm::close_range(mode, old.open_lo(), old.open_size());
  } catch (...) {
    return false;  // the range stays open: free it normally, uncaught
  }
  stack evicted[2]{};
  {
    std::lock_guard<futex_mutex> l(g_ring.lock);
    // The goroutine's own bound first: its oldest move goes.
    if (gp->quarantined >= kQuarantinePerGoroutine) {
      record* oldest = nullptr;
      for (record& r : g_ring.recs)
        if (r.owner == gp && (!oldest || r.seq < oldest->seq)) oldest = &r;
      if (oldest) evicted[0] = withdraw(*oldest);
    }
    record& r = g_ring.recs[g_ring.next];
    g_ring.next = (g_ring.next + 1) % kQuarantineRecords;
    if (r.valid.load(std::memory_order_relaxed)) evicted[1] = withdraw(r);  // the process's oldest
    r.old = old;
    r.owner = gp;
    r.seq = ++g_ring.seq;
    ++gp->quarantined;
    r.goid.store(gp->id, std::memory_order_relaxed);
    r.old_lo.store(old.open_lo(), std::memory_order_relaxed);
    r.old_hi.store(old.hi, std::memory_order_relaxed);
    r.new_lo.store(fresh.lo, std::memory_order_relaxed);
    r.new_hi.store(fresh.hi, std::memory_order_relaxed);
    r.valid.store(1, std::memory_order_release);
    g_ranges.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(old.open_size(), std::memory_order_relaxed);
  }
  for (const stack& e : evicted) give_back(s, mp, e);
  return true;
}

void quarantine_release(sched* s, m* mp, g* gp) noexcept {
  while (gp->quarantined) {
    stack batch[kQuarantinePerGoroutine]{};
    unsigned n = 0;
    {
      std::lock_guard<futex_mutex> l(g_ring.lock);
      for (record& r : g_ring.recs)
        if (r.owner == gp && n < kQuarantinePerGoroutine) batch[n++] = withdraw(r);
      if (n == 0) gp->quarantined = 0;  // (cannot happen: the count follows the records)
    }
    for (unsigned i = 0; i < n; ++i) give_back(s, mp, batch[i]);
  }
}

void quarantine_counts(std::uint64_t* ranges, std::uint64_t* bytes) noexcept {
  *ranges = g_ranges.load(std::memory_order_relaxed);
  *bytes = g_bytes.load(std::memory_order_relaxed);
}

void quarantine_check_fault(std::uintptr_t addr) noexcept {
  const record* r = find(addr);
  if (!r) return;
  const std::uintptr_t old_lo = r->old_lo.load(std::memory_order_relaxed);
  const std::uintptr_t old_hi = r->old_hi.load(std::memory_order_relaxed);
  const std::uintptr_t new_lo = r->new_lo.load(std::memory_order_relaxed);
  const std::uintptr_t new_hi = r->new_hi.load(std::memory_order_relaxed);
  const std::uint64_t owner = r->goid.load(std::memory_order_relaxed);
  // Where the object lives now: the same distance from the top, followed through later moves.
  std::uintptr_t now = addr - old_hi + new_hi;
  for (unsigned hops = 0; hops < kQuarantineRecords; ++hops) {
    const record* later = find(now);
    if (!later) break;
    now = now - later->old_hi.load(std::memory_order_relaxed) + later->new_hi.load(std::memory_order_relaxed);
  }
  char who[64];
  describe_current(who, sizeof who);
  fatal("%s touched %#lx, a stale address in the old stack of goroutine %llu (quarantine): that stack moved "
        "from [%#lx, %#lx) to [%#lx, %#lx), and the object that was at %#lx now lives at %#lx.\n"
        "  Something the copy could not see kept a pointer into the stack (a heap object, another thread or "
        "goroutine, a local std::map/set/list/unordered_map, a go([&]...) closure): keep the stack still with "
        "weft::stack_pin while such a pointer lives, or raise WEFT_STACK_RESERVE so the stack grows in place",
        who, (unsigned long)addr, (unsigned long long)owner, (unsigned long)old_lo, (unsigned long)old_hi,
        (unsigned long)new_lo, (unsigned long)new_hi, (unsigned long)addr, (unsigned long)now);
}

void quarantine_reset() noexcept {
  std::lock_guard<futex_mutex> l(g_ring.lock);
  for (record& r : g_ring.recs) {
    r.valid.store(0, std::memory_order_release);
    r.old = {};
    r.owner = nullptr;
  }
  g_ring.next = 0;
  g_ranges.store(0, std::memory_order_relaxed);
  g_bytes.store(0, std::memory_order_relaxed);
}

}  // namespace weft::detail
