// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the sync tests: runtime options per `procs`, a live-instance counter, and
// white-box counts of blocked parties (read under the object's own lock), so that a test can
// wait until a goroutine is really blocked instead of sleeping and hoping.
#pragma once

#include <atomic>
#include <cstddef>

#include <gtest/gtest.h>

#include "runtime/sync/chan_core.hpp"
#include "runtime/sync/waitq.hpp"
#include "weft/weft.hpp"

namespace synctest {

inline weft::options opts_with(unsigned procs) {
  weft::options o;
  o.procs = procs;
  return o;
}

class Procs : public ::testing::TestWithParam<unsigned> {
 protected:
  weft::options opts() const { return opts_with(GetParam()); }
};

// Counts live instances, to show that values are destroyed exactly once.
struct counted {
  static inline std::atomic<long> live{0};
  int v = 0;
  explicit counted(int x = 0) noexcept : v(x) { live.fetch_add(1); }
  counted(const counted& o) noexcept : v(o.v) { live.fetch_add(1); }
  counted(counted&& o) noexcept : v(o.v) { live.fetch_add(1); }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) = default;
  ~counted() { live.fetch_sub(1); }
};

inline std::size_t queue_length(const weft::detail::wait_queue& q) {
  std::size_t n = 0;
  for (auto* p = q.head; p; p = p->next) ++n;
  return n;
}

template <class T>
std::size_t blocked_receivers(const weft::chan<T>& c) {
  auto* core = c.native_handle();
  weft::detail::word_guard g(core->lock);
  return queue_length(core->recvq);
}

template <class T>
std::size_t blocked_senders(const weft::chan<T>& c) {
  auto* core = c.native_handle();
  weft::detail::word_guard g(core->lock);
  return queue_length(core->sendq);
}

inline std::size_t blocked_on(weft::detail::wait_list& wl) {
  weft::detail::word_guard g(wl.lock);
  return queue_length(wl.q);
}

// Yields (goroutine) or yields the thread until pred() holds.
template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) weft::yield();
}

}  // namespace synctest
