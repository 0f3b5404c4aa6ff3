// SPDX-License-Identifier: Apache-2.0
// testing.cpp — FOR TESTS ONLY: see testing.hpp.
#include "runtime/diag/testing.hpp"

#include <mutex>

#include "runtime/sched/sched.hpp"

namespace weft::detail {
extern std::atomic<unsigned> heap_alloc_countdown;  // runtime/sched/api.cpp
}  // namespace weft::detail

namespace weft::detail::testing {

bool snapshot(runtime_snapshot* out) {
  sched* s = current_sched();
  if (!s) return false;
  const stack_pool_stats st = s->stacks.stats();
  out->slots_in_use = st.slots_in_use;
  out->slots_pooled = st.slots_pooled;
  out->slots_carved = st.slots_carved;
  out->bytes_reserved = st.bytes_reserved;
  {
    std::lock_guard<spinlock> l(s->lock);
    out->m_records = s->allm.size();
  }
  std::lock_guard<spinlock> l(s->allg_lock);
  out->g_waiting = 0;
  for (g* gp = s->allg; gp; gp = gp->all_link)
    if (gp->status.load(std::memory_order_acquire) == gstatus::waiting) ++out->g_waiting;
  return true;
}

void fail_heap_alloc(unsigned nth) { heap_alloc_countdown.store(nth, std::memory_order_relaxed); }

}  // namespace weft::detail::testing
