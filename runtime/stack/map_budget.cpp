// SPDX-License-Identifier: Apache-2.0
// map_budget.cpp — the pool's share of vm.max_map_count.
//
// Mapping budget (stack_pool.hpp says why there is one).  impl::maps counts the VMAs this pool
// adds (1 per arena, 2 per slot in mprotect mode).  Before adding, the estimate plus the other
// mappings of the process is compared with vm.max_map_count minus a margin (1% + 256) for the
// rest of the process; when it would cross, /proc/self/maps is counted once to correct the
// estimate, and if it still crosses, resource_error says so and how to get out.
//
// Tests stand in a smaller limit with stack_pool::set_map_budget_for_testing, which the test
// kit defines (runtime/testing/stack_pool_budget.cpp): impl::limit() prefers it.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <system_error>

#include "runtime/stack/pool_impl.hpp"
#include "runtime/stack/stackvm.hpp"
#include "weft/errors.hpp"

namespace weft::detail {

void stack_pool::impl::reserve_maps(std::size_t n) {
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

void stack_pool::impl::throw_budget(std::size_t total, std::size_t ours, std::size_t lim, std::size_t margin) const {
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

}  // namespace weft::detail
