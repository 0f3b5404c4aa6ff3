// SPDX-License-Identifier: Apache-2.0
// deadlock.hpp — noticing a program in which no goroutine can ever run again (deadlock.cpp).
#pragma once

#include <cstdint>

namespace weft::detail {

struct sched;
struct waiter;

// A plain thread blocked inside weft with no deadline (block(), completion::wait), on the
// scheduler's list while it sleeps, so that the deadlock check can account for it.  A waker
// claims the waiter (waiter::claimed) before it wakes the thread: from then on the thread
// counts as running.  With no runtime it does nothing.
struct plain_wait {
  explicit plain_wait(const waiter* w) noexcept;
  ~plain_wait();
  plain_wait(const plain_wait&) = delete;
  plain_wait& operator=(const plain_wait&) = delete;

  sched* s;
  const waiter* w;
  plain_wait* next = nullptr;
  plain_wait* prev = nullptr;
};

// The runtime ends: plain threads still blocked are told it is gone (their records forget
// it), so that they do not touch the destroyed scheduler when they wake.
void forget_plain_waits(sched* s) noexcept;

// sysmon's check, made when every P is idle.  Returns false if something can still run or
// wake a goroutine.  Returns true while a deadlock is suspected (seen once: look again soon);
// a second look at the same state reports it as a fatal error and does not return.
bool check_deadlock(sched* s) noexcept;

}  // namespace weft::detail
