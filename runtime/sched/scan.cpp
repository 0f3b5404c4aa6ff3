// SPDX-License-Identifier: Apache-2.0
// scan.cpp — the scan phase.
//
// A goroutine under scan is marked `scanning` (from `waiting`), so ready() waits for the scan
// of it to finish before making it runnable (cas_status spins on that state), and nothing else
// touches its stack meanwhile.  Running and runnable goroutines are skipped: a runnable G is
// owned by its run queue, and taking it out would cost more than the memory it might give.
//
// Halving in place releases the lower half's pages (MADV_DONTNEED) and makes them inaccessible
// again; nothing moves, so even a pinned stack (or one that runtime wait records point into)
// can be halved this way.
//
// Then pooled stacks' memory goes back to the OS (stack_pool::release_idle).  A periodic scan
// releases only stacks unused for kReleaseAfterMs: releasing every 100 ms whatever sat idle for
// one interval and everything beyond 16 MiB per class made a million-goroutine tree run every
// second fault its ~100K stack pages in again each time (1.2-1.5 s of kernel time per tree,
// BENCHMARKS.md); weft::scan(), asked for explicitly, still releases at once.
#include "runtime/sched/scan.hpp"

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "runtime/sched/sched.hpp"
#include "runtime/sched/grow.hpp"

namespace weft::detail {

namespace {

// How long a pooled stack sits unused before a periodic scan gives its memory back.
constexpr std::uint64_t kReleaseAfterMs = 3000;

// Bytes in use on a parked goroutine's stack: from its saved context up to the top.
std::size_t used_bytes(const g* gp) noexcept { return gp->stk.hi - reinterpret_cast<std::uintptr_t>(gp->ctx); }

void shrink_one(sched* s, g* gp) noexcept {
  gstatus expected = gstatus::waiting;
  // A load first: the CAS would take every record's line exclusive, running ones' too.
  if (gp->status.load(std::memory_order_relaxed) != expected) return;
  if (!gp->status.compare_exchange_strong(expected, gstatus::scanning, std::memory_order_acq_rel)) return;
  tsan_acquire_status(gp);
  release_spare_segment(s, nullptr, gp);  // a parked goroutine runs on no spare segment
  adopt_unchecked_growth(s, gp, reinterpret_cast<std::uintptr_t>(gp->ctx));
  std::size_t size = gp->stk.size();
  std::size_t min = s->stacks.config().stack_min;
  std::size_t used = used_bytes(gp);
  // Go's rule (under a quarter used: halve), and the halved stack must still hold what is
  // used plus the headroom, or the goroutine's next check would grow it straight back.
  if (size / 2 >= min && used < size / 4 && used + kStackHeadroom <= size / 2) {
    shrink_stack(s, nullptr, gp, size / 2);
    ++gp->shrinks;
    s->st.stack_shrinks.fetch_add(1, std::memory_order_relaxed);
  } else if (gp->stk.open_lo() < gp->stk.lo) {
    // Pages below the stack that an earlier goroutine on it grew into (stack_pool.hpp): back
    // to the OS.  (If madvise refuses, they stay open, which is still correct.)
    try {
      s->stacks.shrink_in_place(gp->stk, gp->stk.size());
    } catch (...) {
    }
  }
  gp->status.store(gstatus::waiting, std::memory_order_release);
}

}  // namespace

void scan_phase(sched* s, scan_kind kind) noexcept {
  s->st.scans.fetch_add(1, std::memory_order_relaxed);
  // The list of every G only grows, at its head, and no record leaves it before the runtime
  // ends (gfree reuses records in place): so the head is read under the lock and the walk runs
  // without it, as Go's forEachG walks a snapshot of allgs.  Holding the lock for the walk (a
  // million records take 100-200 ms) stalled every spawn that needed a new record meanwhile.
  g* head;
  {
    std::lock_guard<futex_mutex> l(s->allg_lock);
    head = s->allg;
  }
  for (g* gp = head; gp; gp = gp->all_link) shrink_one(s, gp);
  if (kind == scan_kind::requested) {
    s->stacks.release_idle(1, true);
    return;
  }
  // Unused for kReleaseAfterMs, in whole scan intervals (at least one).
  const std::uint64_t interval = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(s->opts.scan_interval.count()));
  const std::uint64_t scans = (kReleaseAfterMs + interval - 1) / interval;
  s->stacks.release_idle(static_cast<std::uint32_t>(std::min<std::uint64_t>(scans, stack_pool::kIdleHistory)), false);
}

}  // namespace weft::detail
