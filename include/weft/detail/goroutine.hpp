// SPDX-License-Identifier: Apache-2.0
// weft/detail/goroutine.hpp — the machinery under weft/runtime.hpp's go, spawn and task: the
// type-erased closure a goroutine runs, starting one, the completion a join waits on, and a
// task's shared state.  Not for users: names may change with the runtime.
//
// Plain threads: as weft/runtime.hpp says (start_goroutine needs a running runtime; a
// completion's wait blocks the thread).
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

namespace weft {

namespace detail {

// Memory for runtime heap objects (closures, task states): mimalloc or malloc (WEFT_ALLOCATOR).
WEFT_API void* heap_alloc(std::size_t bytes);
WEFT_API void heap_free(void* p) noexcept;

// Blocks of kTaskBlockBytes for task states (spawn's shared result), from a per-P cache of
// blocks joins gave back, else the heap; freed into the cache of whichever P frees them, up
// to a cap, else to the heap.  A batch of spawns keeps hundreds alive at once, more than
// malloc's per-thread cache holds (runtime/sched/api.cpp).
inline constexpr std::size_t kTaskBlockBytes = 128;
WEFT_API void* task_block_alloc();
WEFT_API void task_block_free(void* p) noexcept;

template <class T>
inline constexpr bool fits_task_block = sizeof(T) <= kTaskBlockBytes && alignof(T) <= alignof(std::max_align_t);

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
// picks the stack a goroutine runs on only at its first run, runtime/sched/goroutine.cpp.)
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
      destroy(this);
    }
  }
  // Allocated as spawn does it: a task block when it fits one, else the heap.
  static void* allocate() {
    if constexpr (fits_task_block<task_state>) return task_block_alloc();
    else return heap_alloc(sizeof(task_state));
  }
  static void destroy(task_state* st) noexcept {
    st->~task_state();
    if constexpr (fits_task_block<task_state>) task_block_free(st);
    else heap_free(st);
  }
  // The goroutine's last act (an after_exit): wake the joiner, drop the goroutine's reference.
  static void finish(void* self) noexcept {
    auto* st = static_cast<task_state*>(self);
    st->done.signal();
    st->release();
  }
};

}  // namespace detail

}  // namespace weft
