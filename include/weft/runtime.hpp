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

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/errors.hpp"
#include "weft/export.hpp"
#include "weft/options.hpp"

namespace weft {

namespace detail {

// Memory for runtime heap objects (closures, task states): mimalloc or malloc (WEFT_ALLOCATOR).
WEFT_API void* heap_alloc(std::size_t bytes);
WEFT_API void heap_free(void* p) noexcept;

// What run() hands back for the runtime to call once the closure is destroyed and the pins it
// held on the spawner's stack are released: spawn's completion (so a joiner wakes only after
// the goroutine's captures are gone, as std::thread::join does), or nothing.
struct after_exit {
  void (*fn)(void*) noexcept = nullptr;
  void* arg = nullptr;
};

// A goroutine's body, type-erased, owned by its goroutine.  A small one is built inside the
// goroutine's own record (in_place): no heap allocation, and it sits beside the fields the
// scheduler reads when the goroutine first runs.  A big one (or an over-aligned one) lives on
// the heap.  (Not on the goroutine's stack, where Go copies a new goroutine's arguments: weft
// picks the stack a goroutine runs on only at its first run, runtime/sched/sched.cpp.)
struct WEFT_API closure {
  bool in_place = false;  // set by the runtime: destroyed, not deleted
  virtual ~closure() = default;
  virtual after_exit run() = 0;
  // The closure's address range, for pin detection: a closure holding pointers into the
  // spawning goroutine's stack pins that stack until the child ends.
  virtual std::pair<const void*, std::size_t> bytes() const noexcept = 0;
  static void* operator new(std::size_t n) { return heap_alloc(n); }
  static void operator delete(void* p) noexcept { heap_free(p); }
};

template <class Fn>
struct closure_of final : closure {
  Fn fn;
  explicit closure_of(Fn&& f) : fn(std::move(f)) {}
  after_exit run() override {
    if constexpr (std::is_same_v<decltype(fn()), after_exit>) {
      return fn();
    } else {
      fn();
      return {};
    }
  }
  std::pair<const void*, std::size_t> bytes() const noexcept override { return {&fn, sizeof(Fn)}; }
};

// Ends a closure the runtime owns: destroyed where it was built in place, deleted otherwise.
inline void destroy_closure(closure* c) noexcept {
  if (c->in_place) c->~closure();
  else delete c;
}

// Starts a goroutine running c (the runtime owns c from here).  detached: an exception
// escaping it is a fatal error.  Throws resource_error if no stack can be had (c is freed).
WEFT_API std::uint64_t start_goroutine(closure* c);

// The same for a closure of `size` (<= kInlineClosureMax) bytes built inside the goroutine's
// record by construct(mem, arg), which may throw (then nothing was started, and what was taken
// for it went back).
WEFT_API std::uint64_t start_goroutine_in_place(std::size_t size, std::size_t align,
                                                closure* (*construct)(void* mem, void* arg), void* arg);

// Closures up to this size (and alignment 16) are built in the goroutine's record: a closure
// object's vtable pointer and flag take 16 bytes, so this leaves 96 for what it captures.
inline constexpr std::size_t kInlineClosureMax = 112;

// Starts a goroutine running body() (moved from).
// Always inlined, as go and spawn are: the runtime records the return address of its
// start_goroutine call as where the goroutine was made (dumps), which must be the program's
// own code at every optimisation level.
template <class Body>
[[gnu::always_inline]] inline std::uint64_t start_body(Body&& body) {
  using B = std::decay_t<Body>;
  using C = closure_of<B>;
  if constexpr (sizeof(C) <= kInlineClosureMax && alignof(C) <= 16) {
    return start_goroutine_in_place(
        sizeof(C), alignof(C),
        [](void* mem, void* b) -> closure* { return ::new (mem) C(std::move(*static_cast<B*>(b))); }, &body);
  } else {
    return start_goroutine(new C(std::move(body)));
  }
}

// The completion half of a task: who waits for it, and how to wake them.  Implemented in
// runtime/sched (it parks a goroutine, or blocks a plain thread).
class WEFT_API completion {
 public:
  completion() noexcept = default;
  completion(const completion&) = delete;
  // Marks done and wakes the joiner, if any.
  void signal() noexcept;
  // Blocks the caller (goroutine or thread) until signal() has been called.
  void wait() noexcept;
  bool done() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }

 private:
  static constexpr std::uintptr_t kDone = 1;
  // 0: running, no waiter; kDone; else a pointer to the waiter record.
  std::atomic<std::uintptr_t> state_{0};
};

// A task destroyed without join() dropped the exception that escaped its goroutine: say so on
// stderr, so that it is never lost silently.
inline void report_dropped_exception(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "weft: a task was destroyed without join(); the exception that escaped its goroutine "
                         "is dropped: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "weft: a task was destroyed without join(); the exception that escaped its goroutine "
                         "(not a std::exception) is dropped\n");
  }
}

template <class T>
struct task_state {
  completion done;
  std::atomic<int> refs{2};  // the task handle and the goroutine
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
  std::exception_ptr error;
  // Set by a handle destroyed unjoined, before it drops its reference: whoever drops the last
  // one (the handle, or the goroutine as it ends) reports an exception nobody will rethrow.
  bool dropped = false;
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (dropped && error) report_dropped_exception(error);
      this->~task_state();
      heap_free(this);
    }
  }
  // The goroutine's last act (an after_exit): wake the joiner, drop the goroutine's reference.
  static void finish(void* self) noexcept {
    auto* st = static_cast<task_state*>(self);
    st->done.signal();
    st->release();
  }
};

}  // namespace detail

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
  void* mem = detail::heap_alloc(sizeof(detail::task_state<R>));
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
    st->~task_state();
    detail::heap_free(st);
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

  // Used by run(): stop without waiting for the goroutines that are still alive.
  void abandon() noexcept;

 private:
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
