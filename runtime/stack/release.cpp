// SPDX-License-Identifier: Apache-2.0
// release.cpp — release_idle: pooled stacks' memory given back to the OS at the scan phase.
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
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "runtime/stack/pool_impl.hpp"
#include "runtime/stack/stackvm.hpp"

namespace weft::detail {

void stack_pool::impl::release_class(std::uint32_t cls, std::uint32_t idle_scans, bool cap) noexcept {
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

void stack_pool::release_idle(std::uint32_t idle_scans, bool cap) noexcept {
  if (idle_scans < 1) idle_scans = 1;
  if (idle_scans > kIdleHistory) idle_scans = kIdleHistory;
  for (std::uint32_t cls = 0; cls < impl_->nclasses; ++cls) impl_->release_class(cls, idle_scans, cap);
}

}  // namespace weft::detail
