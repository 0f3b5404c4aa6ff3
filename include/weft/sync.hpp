// SPDX-License-Identifier: Apache-2.0
// weft/sync.hpp — wait_group, mutex and condition_variable that park goroutines.
//
// Each blocks a goroutine by parking it (its M runs other goroutines meanwhile) and a plain
// thread by putting the thread to sleep, so goroutines and threads can share them.  Go's
// semantics (sync.WaitGroup, sync.Mutex, sync.Cond), with C++'s names:
//   wait_group           add(n) / done() / wait(); a counter driven below zero throws
//                        std::logic_error and leaves the counter as it was.
//   mutex                Lockable (std::lock_guard, std::unique_lock, std::scoped_lock).
//                        Normally a newcomer may take the lock ahead of woken waiters (it is
//                        already running: fast); a waiter that has waited more than 1 ms
//                        switches the mutex to starvation mode, in which unlock hands
//                        ownership straight to the oldest waiter (Go's sync.Mutex).
//                        Unlocking a mutex that is not locked is a fatal error.
//   condition_variable   works with std::unique_lock<weft::mutex>; wait_for / wait_until
//                        return std::cv_status and never time out early.
// None of them can be copied or moved.  One constructed on a goroutine's stack pins that
// stack while it lives (weft/detail/pin.hpp).
//
// Plain threads: all of it; a wait blocks the thread, so threads and goroutines can share these.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <type_traits>

#include "weft/detail/duration.hpp"
#include "weft/detail/pin.hpp"
#include "weft/export.hpp"

namespace weft {

class mutex;

namespace detail {

struct wait_node;  // runtime/sync/waitq.hpp

// A FIFO of blocked goroutines and threads.  Runtime-owned: users never touch it.
struct wait_queue {
  wait_node* head = nullptr;
  wait_node* tail = nullptr;
};

// A wait queue with the lock that guards it.
struct wait_list {
  std::atomic<std::uint32_t> lock{0};
  wait_queue q;
};

struct wait_group_state {
  std::atomic<std::int64_t> count{0};
  wait_list waiters;
};

struct mutex_state {
  std::atomic<std::uint32_t> word{0};  // locked / starving / has-waiters bits (mutex.cpp)
  wait_list waiters;
};

WEFT_API void wait_group_add(wait_group_state& s, std::int64_t n);
WEFT_API void wait_group_wait(wait_group_state& s);
WEFT_API void mutex_lock_slow(mutex_state& s);
WEFT_API void mutex_unlock_slow(mutex_state& s) noexcept;
WEFT_API bool mutex_try_lock(mutex_state& s) noexcept;
// Releases m, waits on `waiters` until notified or until deadline_ns (CLOCK_MONOTONIC, 0:
// none), re-takes m.  Returns false on timeout.
WEFT_API bool cond_wait(wait_list& waiters, mutex& m, std::int64_t deadline_ns);
WEFT_API void cond_notify(wait_list& waiters, bool all) noexcept;
WEFT_API std::int64_t monotonic_now_ns() noexcept;

}  // namespace detail

// Waits for a collection of goroutines (or threads) to finish (Go's sync.WaitGroup).
class wait_group {
 public:
  wait_group() noexcept { detail::pin_if_on_stack(this); }
  ~wait_group() { detail::unpin_if_on_stack(this); }
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Adds n (may be negative) to the counter; at zero, every waiter wakes.  Throws
  // std::logic_error if the counter would drop below zero (the counter is left unchanged).
  void add(int n = 1) { detail::wait_group_add(st_, n); }
  void done() { detail::wait_group_add(st_, -1); }
  // Waits until the counter is zero.
  void wait() {
    if (st_.count.load(std::memory_order_acquire) == 0) return;
    detail::wait_group_wait(st_);
  }

 private:
  detail::wait_group_state st_;
};

// A mutual-exclusion lock for goroutines and threads (Go's sync.Mutex).  Not recursive.
class mutex {
 public:
  mutex() noexcept { detail::pin_if_on_stack(this); }
  ~mutex() { detail::unpin_if_on_stack(this); }
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock() {
    std::uint32_t free = 0;
    if (!st_.word.compare_exchange_strong(free, 1, std::memory_order_acquire, std::memory_order_relaxed))
      detail::mutex_lock_slow(st_);
  }
  bool try_lock() noexcept { return detail::mutex_try_lock(st_); }
  void unlock() noexcept {
    std::uint32_t held = 1;
    if (!st_.word.compare_exchange_strong(held, 0, std::memory_order_release, std::memory_order_relaxed))
      detail::mutex_unlock_slow(st_);
  }

 private:
  detail::mutex_state st_;
};

// A condition variable for weft::mutex (Go's sync.Cond, with std::condition_variable's
// interface).  Wakeups may be spurious: wait with a predicate, or re-check.
class condition_variable {
 public:
  condition_variable() noexcept { detail::pin_if_on_stack(this); }
  ~condition_variable() { detail::unpin_if_on_stack(this); }
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  void notify_one() noexcept { detail::cond_notify(waiters_, false); }
  void notify_all() noexcept { detail::cond_notify(waiters_, true); }

  void wait(std::unique_lock<mutex>& lk) { detail::cond_wait(waiters_, *checked(lk), 0); }
  template <class Pred>
  void wait(std::unique_lock<mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }

  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<mutex>& lk, const std::chrono::time_point<Clock, Duration>& t) {
    std::int64_t deadline = to_deadline(t);
    bool woken = detail::cond_wait(waiters_, *checked(lk), deadline);
    if (woken) return std::cv_status::no_timeout;
    // The runtime's deadline is CLOCK_MONOTONIC; for another clock, report a timeout only
    // once that clock has reached t too.
    return Clock::now() < t ? std::cv_status::no_timeout : std::cv_status::timeout;
  }
  template <class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<mutex>& lk, const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    while (!pred())
      if (wait_until(lk, t) == std::cv_status::timeout) return pred();
    return true;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex>& lk, const std::chrono::duration<Rep, Period>& d) {
    return wait_until(lk, std::chrono::steady_clock::now() + ceil_ns(d));
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<mutex>& lk, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return wait_until(lk, std::chrono::steady_clock::now() + ceil_ns(d), std::move(pred));
  }

 private:
  static mutex* checked(std::unique_lock<mutex>& lk) {
    if (!lk.owns_lock())
      throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                              "weft::condition_variable::wait: the unique_lock does not hold its mutex");
    return lk.mutex();
  }
  template <class Rep, class Period>
  static std::chrono::nanoseconds ceil_ns(const std::chrono::duration<Rep, Period>& d) {
    // Capped at ~126 years, so that steady_clock::now() + the result cannot overflow.
    return std::chrono::nanoseconds(detail::ceil_ns_capped(d, 4'000'000'000'000'000'000));
  }
  // CLOCK_MONOTONIC nanoseconds for t (steady_clock is CLOCK_MONOTONIC in libstdc++/libc++);
  // at least 1, since 0 means "no deadline".
  template <class Clock, class Duration>
  static std::int64_t to_deadline(const std::chrono::time_point<Clock, Duration>& t) {
    using namespace std::chrono;
    std::int64_t ns;
    if constexpr (std::is_same_v<Clock, steady_clock>) {
      ns = ceil<nanoseconds>(t.time_since_epoch()).count();
    } else {
      ns = detail::monotonic_now_ns() + ceil<nanoseconds>(t - Clock::now()).count();
    }
    return ns < 1 ? 1 : ns;
  }
  detail::wait_list waiters_;
};

}  // namespace weft
