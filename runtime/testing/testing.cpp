// SPDX-License-Identifier: Apache-2.0
// testing.cpp — FOR TESTS ONLY: see testing.hpp.
#include "runtime/testing/testing.hpp"

#include <mutex>
#include <new>

#include "runtime/sched/sched.hpp"

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
    std::lock_guard<futex_mutex> l(s->lock);
    out->m_records = s->allm.size();
  }
  std::lock_guard<futex_mutex> l(s->allg_lock);
  out->g_waiting = 0;
  for (g* gp = s->allg; gp; gp = gp->all_link)
    if (gp->status.load(std::memory_order_acquire) == gstatus::waiting) ++out->g_waiting;
  return true;
}

namespace {

// k > 0: the k-th heap_alloc from now throws.
std::atomic<unsigned> heap_alloc_countdown{0};

void count_down_heap_alloc() {
  unsigned n = heap_alloc_countdown.load(std::memory_order_relaxed);
  while (n != 0 && !heap_alloc_countdown.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
  }
  if (n == 1) throw std::bad_alloc();
}

}  // namespace

// The runtime's heap_alloc_hook (runtime/sched/api.cpp) stays set once a test asked for a
// failure: cheap, and no race with an allocation that is loading it.
void fail_heap_alloc(unsigned nth) {
  heap_alloc_countdown.store(nth, std::memory_order_relaxed);
  if (nth) heap_alloc_hook.store(&count_down_heap_alloc, std::memory_order_relaxed);
}

}  // namespace weft::detail::testing
