// SPDX-License-Identifier: Apache-2.0
// weft/runtime.hpp — starting a runtime, and goroutines: go, spawn/task, yield, sleep.
//
// A runtime is one scheduler with its own Ps, Ms and stacks.  One runtime at a time runs in a
// process; go/spawn called from any thread (goroutine or not) use it.
//
//   weft::run(main_fn)   starts a runtime, runs main_fn as the first goroutine and returns
//                        its result as soon as main_fn returns — goroutines still running are
//                        abandoned, as when a Go program's main returns.
//   weft::runtime rt;    starts a runtime for the scope; its destructor waits until every
//                        goroutine has finished.
//
// Plain threads: all of it (go/spawn need a running runtime; join and sleeps block the thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/detail/goroutine.hpp"  // closures, task state: the machinery under go and spawn
#include "weft/errors.hpp"
#include "weft/export.hpp"
#include "weft/options.hpp"

namespace weft {

// The result of spawn: join() waits for the goroutine and returns its value, or rethrows the
// exception that escaped it.  As with std::thread, the function and the arguments moved into
// the goroutine are destroyed before join returns.
//
// A task destroyed (or assigned to) without join() detaches: the goroutine runs on, its result
// is dropped, and an exception that escaped it is reported on stderr ("weft: a task was
// destroyed without join() ..."), never lost silently.  Not std::thread's terminate: a task
// dropped on an error path (an exception unwinding past it) would end the program.  Not
// std::jthread's join: a destructor that parks can deadlock a scope on the very goroutine it
// was going to wake, and hides the wait.  Detaching is what weft::go and Go's goroutines do.
template <class T>
class task {
 public:
  task() noexcept = default;
  task(task&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~task() { reset(); }

  bool joinable() const noexcept { return st_ != nullptr; }

  // Waits for the goroutine (parks a goroutine, blocks a plain thread).  Throws
  // std::logic_error if the task was already joined or is empty.
  T join() {
    if (!st_) throw std::logic_error("weft::task::join: the task is empty or was already joined");
    detail::task_state<T>* st = std::exchange(st_, nullptr);
    st->done.wait();
    struct releaser {
      detail::task_state<T>* s;
      ~releaser() { s->release(); }
    } r{st};
    if (st->error) std::rethrow_exception(st->error);
    if constexpr (!std::is_void_v<T>) return std::move(*st->value);
  }

 private:
  template <class F, class... A>
  friend auto spawn(F&& f, A&&... args) -> task<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>>;
  explicit task(detail::task_state<T>* st) noexcept : st_(st) {}
  void reset() noexcept {
    if (!st_) return;
    detail::task_state<T>* st = std::exchange(st_, nullptr);
    st->dropped = true;
    st->release();
  }
  detail::task_state<T>* st_ = nullptr;
};

// Starts f(args...) on a new goroutine.  Arguments are moved or copied into it, as by
// std::thread.  An exception escaping f is a fatal error naming the goroutine and what().
template <class F, class... A>
[[gnu::always_inline]] inline void go(F&& f, A&&... args) {
  auto body = [f = std::forward<F>(f), ... args = std::forward<A>(args)]() mutable {
    std::invoke(std::move(f), std::move(args)...);
  };
  detail::start_body(std::move(body));
}

// Starts f(args...) on a new goroutine and returns a task to join it by.
template <class F, class... A>
[[gnu::always_inline]] inline auto spawn(F&& f, A&&... args)
    -> task<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>> {
  using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>;
  void* mem = detail::task_state<R>::allocate();
  auto* st = new (mem) detail::task_state<R>();
  // The joiner is woken only after the body is destroyed (after_exit): when join returns, what
  // f and args held has been released, and the spawner's stack is no longer pinned by them.
  auto body = [st, f = std::forward<F>(f), ... args = std::forward<A>(args)]() mutable -> detail::after_exit {
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(f), std::move(args)...);
      } else {
        st->value.emplace(std::invoke(std::move(f), std::move(args)...));
      }
    } catch (...) {
      st->error = std::current_exception();
    }
    return {&detail::task_state<R>::finish, st};
  };
  try {
    detail::start_body(std::move(body));
  } catch (...) {
    detail::task_state<R>::destroy(st);
    throw;
  }
  return task<R>(st);
}

// The running goroutine's id (1 for the first), or 0 on a thread that runs no goroutine.
WEFT_API std::uint64_t this_goroutine() noexcept;

// Lets other goroutines run.  On a plain thread: std::this_thread::yield().
WEFT_API void yield();

// Parks the goroutine (or blocks the thread) for at least d / until t.
WEFT_API void sleep_for(std::chrono::nanoseconds d);
WEFT_API void sleep_until(std::chrono::steady_clock::time_point t);

// Until t on any clock (system_clock, a steady_clock time point of another duration, a
// user's clock), as std::this_thread::sleep_until takes one: steady_clock time points are
// rounded up to the timers' nanoseconds; other clocks, which may be adjusted, are slept on in
// steps of their remaining time, re-read after each, until they reach t (the loop
// [thread.req.timing] describes, and libstdc++'s this_thread::sleep_until runs).
template <class Clock, class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& t) {
  static_assert(std::chrono::is_clock_v<Clock>, "weft::sleep_until needs a time point of a clock");
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    sleep_until(std::chrono::ceil<std::chrono::steady_clock::duration>(t));
  } else {
    for (auto now = Clock::now(); now < t; now = Clock::now())
      sleep_for(std::chrono::ceil<std::chrono::nanoseconds>(t - now));
  }
}

// Wires the calling goroutine to the OS thread it runs on until unlock_thread (Go's
// LockOSThread): it runs only there, and that thread runs nothing else.  Calls nest.
// Use it when code keeps thread_local state across parks.  No-op on a plain thread.
WEFT_API void lock_thread();
WEFT_API void unlock_thread();

// A runtime for the enclosing scope.  Starting a second one while one runs throws
// weft::error.  Throws config_error for bad options.
class WEFT_API runtime {
 public:
  explicit runtime(options opts = options::from_env());
  ~runtime();  // waits until every goroutine has finished, then stops the threads
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

 private:
  // For run() only: stop without waiting for the goroutines that are still alive.
  template <class F>
  friend int run(F&& main_fn, options opts);
  void abandon() noexcept;
  bool abandon_ = false;
};

namespace detail {
// Prints a configuration error the way a weft program reports it, and exits with status 2.
[[noreturn]] WEFT_API void exit_config_error(const config_error& e) noexcept;
// The same for a runtime that cannot start (no thread, no memory, no stack for main_fn):
// "weft: fatal error: the runtime cannot start: ...", status 2.
[[noreturn]] WEFT_API void exit_start_error(const std::exception& e) noexcept;
}  // namespace detail

// Runs main_fn as the first goroutine of a new runtime and returns when it returns: with its
// int result, or 0 — goroutines still alive then are abandoned, as when a Go program's main
// returns.  One that is still running 20 ms later (a loop without checks, a blocking call)
// keeps its thread, which is left running, and its memory stays mapped until the process ends.  Bad options
// (or WEFT_* variables) are printed and the process exits with status 2, and so does a
// runtime that cannot start (no threads, memory or stack left), with its reason.  An exception
// escaping main_fn is rethrown to the caller.
template <class F>
int run(F&& main_fn, options opts) {
  std::optional<runtime> rt;
  try {
    rt.emplace(std::move(opts));
  } catch (const config_error& e) {
    detail::exit_config_error(e);
  } catch (const resource_error& e) {
    detail::exit_start_error(e);
  } catch (const std::bad_alloc& e) {
    detail::exit_start_error(e);
  }
  struct abandon_on_exit {
    runtime& r;
    ~abandon_on_exit() { r.abandon(); }
  } guard{*rt};
  auto t = [&] {
    try {
      return spawn(std::forward<F>(main_fn));
    } catch (const resource_error& e) {
      detail::exit_start_error(e);
    } catch (const std::bad_alloc& e) {
      detail::exit_start_error(e);
    }
  }();
  if constexpr (std::is_void_v<decltype(t.join())>) {
    t.join();
    return 0;
  } else {
    return static_cast<int>(t.join());
  }
}

// The same, with options from the WEFT_* variables.
template <class F>
int run(F&& main_fn) {
  options opts;
  try {
    opts = options::from_env();
  } catch (const config_error& e) {
    detail::exit_config_error(e);
  }
  return run(std::forward<F>(main_fn), std::move(opts));
}

}  // namespace weft
