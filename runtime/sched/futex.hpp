// SPDX-License-Identifier: Apache-2.0
// futex.hpp — the one primitive idle Ms and blocked plain threads sleep on.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/cpu.hpp"
#include "runtime/diag/fatal.hpp"
#include "weft/detail/duration.hpp"

namespace weft::detail {

// Both futex calls leave errno as they found it: they run inside parks and wakes, between a
// goroutine's own system calls and its reading of errno.

// Sleeps while *word == expected, at most until `deadline_ns` on CLOCK_MONOTONIC (0: no
// limit).  Returns on a wake, a changed word, a signal or the deadline: callers re-check.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t deadline_ns = 0) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  int op = FUTEX_WAIT_PRIVATE;
  if (deadline_ns > 0) {
    ts.tv_sec = deadline_ns / 1'000'000'000;
    ts.tv_nsec = deadline_ns % 1'000'000'000;
    tsp = &ts;
    op = FUTEX_WAIT_BITSET_PRIVATE;  // absolute CLOCK_MONOTONIC deadline
  }
  int saved = errno;
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, expected, tsp, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
  if (r == -1 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
    fatal("futex wait failed: errno %d (the kernel refused FUTEX_WAIT on a private word)", errno);
  errno = saved;
}

// Wakes up to n sleepers on word.
inline void futex_wake(std::atomic<std::uint32_t>* word, int n = 1) noexcept {
  int saved = errno;
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
  if (r == -1) fatal("futex wake failed: errno %d", errno);
  errno = saved;
}

inline std::int64_t monotonic_ns() noexcept {
  timespec ts;
  if (__builtin_expect(::clock_gettime(CLOCK_MONOTONIC, &ts) != 0, 0))
    fatal("clock_gettime(CLOCK_MONOTONIC) failed: errno %d (every deadline and timer depends on it)", errno);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The monotonic deadline ns nanoseconds from now (ns > 0), or 0 — "no deadline" to the callers
// — when that lies beyond what an int64 holds (a timeout of hours::max() means forever, not an
// overflow into the past).
inline std::int64_t deadline_after(std::int64_t ns) noexcept {
  const std::int64_t t = add_saturated(monotonic_ns(), ns);
  return t == INT64_MAX ? 0 : t;
}

// Sleeps this thread for about ns nanoseconds (at least; the kernel's timer slack, 50 µs by
// default, usually makes it longer — which is what Go's usleep(3) gets too).  An interrupted
// sleep just ends early.
inline void sleep_ns(std::int64_t ns) noexcept {
  int saved = errno;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  if (::nanosleep(&ts, nullptr) != 0 && errno != EINTR) fatal("nanosleep failed: errno %d", errno);
  errno = saved;
}

// A one-shot (re-armable) event for one sleeper: Go's `note`.
struct note {
  std::atomic<std::uint32_t> word{0};
  void clear() noexcept { word.store(0, std::memory_order_relaxed); }
  void wake() noexcept {
    word.store(1, std::memory_order_release);
    futex_wake(&word, 1);
  }
  // Returns true if woken, false on deadline.
  bool sleep(std::int64_t deadline_ns = 0) noexcept {
    while (word.load(std::memory_order_acquire) == 0) {
      if (deadline_ns > 0 && monotonic_ns() >= deadline_ns) return false;
      futex_wait(&word, 0, deadline_ns);
    }
    return true;
  }
};

// ---- the lock word ------------------------------------------------------------------------
// A lock on one futex word: spins briefly, then sleeps (Drepper, "Futexes Are Tricky", mutex
// #3: 0 free, 1 locked, 2 locked with sleepers).  Used by futex_mutex below and, on words inside
// user-visible objects, by runtime/sync.  Never held across a goroutine switch.
inline void word_lock(std::atomic<std::uint32_t>& w) noexcept {
  std::uint32_t c = 0;
  if (w.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
  for (int i = 0; i < 64; ++i) {
    arch::cpu_relax();
    c = 0;
    if (w.load(std::memory_order_relaxed) == 0 &&
        w.compare_exchange_weak(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
      return;
  }
  if (c != 2) c = w.exchange(2, std::memory_order_acquire);
  while (c != 0) {
    futex_wait(&w, 2);
    c = w.exchange(2, std::memory_order_acquire);
  }
}

inline void word_unlock(std::atomic<std::uint32_t>& w) noexcept {
  if (w.exchange(0, std::memory_order_release) == 2) futex_wake(&w, 1);
}

// A small lock for the scheduler's own structures: a futex-backed mutex on one word (word_lock above)
// as a BasicLockable.  It spins briefly before it sleeps, but it is not a spinlock.
class futex_mutex {
 public:
  void lock() noexcept { word_lock(state_); }
  void unlock() noexcept { word_unlock(state_); }
  bool try_lock() noexcept {
    std::uint32_t c = 0;
    return state_.compare_exchange_strong(c, 1, std::memory_order_acquire);
  }

 private:
  std::atomic<std::uint32_t> state_{0};
};

}  // namespace weft::detail
