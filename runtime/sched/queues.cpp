// SPDX-License-Identifier: Apache-2.0
// queues.cpp — the out-of-line halves of the run-queue operations (queues.hpp).
#include "runtime/sched/queues.hpp"

#include <mutex>

namespace weft::detail {

// The ring is full: move half of it and gp to the global queue (Go's runqputslow).  Out of
// line: its batch buffer would otherwise make every caller's frame big.
__attribute__((noinline, cold)) void runq_put_slow(sched* s, p* pp, g* gp) noexcept {
  g* batch[runq::kSize / 2 + 1];
  std::uint32_t n = pp->q.grab_for_overflow(batch, runq::kSize / 2);
  batch[n++] = gp;
  std::lock_guard<futex_mutex> l(s->lock);
  for (std::uint32_t i = 0; i < n; ++i) s->gq.push(batch[i]);
}

__attribute__((noinline)) void put_global(sched* s, g* gp) noexcept {
  std::lock_guard<futex_mutex> l(s->lock);
  s->gq.push(gp);
}

void runq_put(sched* s, p* pp, g* gp, bool next) noexcept { runq_put_inline(s, pp, gp, next); }

void put_runnable(sched* s, p* pp, g* gp, bool next) noexcept { put_runnable_inline(s, pp, gp, next); }

}  // namespace weft::detail
