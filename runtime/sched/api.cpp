// SPDX-License-Identifier: Apache-2.0
// api.cpp — the public functions of weft/runtime.hpp, on top of the scheduler.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "runtime/diag/fatal.hpp"
#include "runtime/sched/signals.hpp"
#include "runtime/diag/sigpipe.hpp"
#include "runtime/sched/pin.hpp"
#include "runtime/sched/poller.hpp"
#include "runtime/sched/sched.hpp"
#include "runtime/sched/switch.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/sched/quarantine.hpp"
#include "runtime/sched/scan.hpp"
#include "runtime/stack/valgrind.hpp"
#include "weft/detail/duration.hpp"
#include "weft/runtime.hpp"
#include "weft/stack.hpp"
#include "weft/stats.hpp"

#if defined(WEFT_ALLOCATOR_MIMALLOC)
#include <mimalloc.h>
#endif

namespace weft {
namespace detail {

// Set only by the test kit (runtime/testing/testing.cpp, fail_heap_alloc), which the release
// library does not contain: there it stays null, and heap_alloc pays one relaxed load and a
// branch that is never taken.  A hook rather than a link-time replacement of heap_alloc:
// replacing a symbol works for a static link only (a shared libweft binds its own calls), and
// two definitions of one function are an ODR violation a sanitizer build would report.
std::atomic<void (*)()> heap_alloc_hook{nullptr};

static inline void run_heap_alloc_hook() {
  if (void (*hook)() = heap_alloc_hook.load(std::memory_order_relaxed); __builtin_expect(hook != nullptr, 0)) hook();
}

void* heap_alloc(std::size_t bytes) {
  run_heap_alloc_hook();
#if defined(WEFT_ALLOCATOR_MIMALLOC)
  void* p = mi_malloc(bytes);
#else
  void* p = std::malloc(bytes);
#endif
  if (!p) throw std::bad_alloc();
  return p;
}

void* heap_alloc_aligned(std::size_t bytes, std::size_t align) {
  run_heap_alloc_hook();
#if defined(WEFT_ALLOCATOR_MIMALLOC)
  void* p = mi_malloc_aligned(bytes, align);
#else
  void* p = std::aligned_alloc(align, bytes);
#endif
  if (!p) throw std::bad_alloc();
  return p;
}

void heap_free(void* p) noexcept {
#if defined(WEFT_ALLOCATOR_MIMALLOC)
  mi_free(p);
#else
  std::free(p);
#endif
}

// Task blocks.  glibc's per-thread cache keeps 7 chunks of a size: a batch of spawns joined
// afterwards (hundreds of task states alive at once) went through malloc's slower bins, ~220
// instructions a spawn (callgrind, weft_instr_count spawn-batch).  A P's own list costs a
// load and a store each way.  Under AddressSanitizer and valgrind every block goes to the
// heap, so that a use after free is still caught.
void* task_block_alloc() {
#if !defined(WEFT_SANITIZE_ADDRESS)
  if (m* mp = current_m(); mp && mp->pp && !vg::running()) {
    task_blocks& tb = mp->pp->tblocks;
    if (void* b = tb.head) {
      run_heap_alloc_hook();  // (a test's injected failure reaches this path too)
      tb.head = *static_cast<void**>(b);
      --tb.n;
      return b;
    }
  }
#endif
  return heap_alloc(kTaskBlockBytes);
}

void task_block_free(void* b) noexcept {
#if !defined(WEFT_SANITIZE_ADDRESS)
  if (m* mp = current_m(); mp && mp->pp && !vg::running()) {
    task_blocks& tb = mp->pp->tblocks;
    if (tb.n < task_blocks::kCap) {
      *static_cast<void**>(b) = tb.head;
      tb.head = b;
      ++tb.n;
      return;
    }
  }
#endif
  heap_free(b);
}

void drain_task_blocks(task_blocks& tb) noexcept {
  while (void* b = tb.head) {
    tb.head = *static_cast<void**>(b);
    heap_free(b);
  }
  tb.n = 0;
}

namespace {

// Starts gp, reserved by reserve_goroutine, with closure c (in gp->body or on the heap).
std::uint64_t launch(sched* s, m* mp, g* gp, closure* c) noexcept {
  // Automatic pin (DESIGN §3): a closure holding an address in the spawning goroutine's stack
  // (go([&] { ... }), a pointer to a local) pins that stack until the child has run and its
  // closure — captures included, whose destructors may still write there — is destroyed
  // (goroutine_entry unpins).  Only the current stack counts: older segments of a segmented
  // stack never move.  The pin is recorded in the child's G (pin.hpp).
  g* pin = pin_parent_if_captured(mp ? mp->curg : nullptr, c);
  return launch_goroutine(s, mp, gp, c, pin);
}

sched* running_sched() {
  sched* s = current_sched();
  if (!s) throw error("weft: go/spawn called with no runtime running; create a weft::runtime or use weft::run");
  return s;
}

}  // namespace

std::uint64_t start_goroutine(closure* c) {
  sched* s;
  m* mp;
  g* gp;
  try {
    s = running_sched();
    mp = current_m();
    gp = reserve_goroutine(s, mp);
  } catch (...) {
    delete c;
    throw;
  }
  // The caller is go/spawn, inlined into the program: where the goroutine was made (dumps).
  gp->created_pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  return launch(s, mp, gp, c);
}

std::uint64_t start_goroutine_in_place(std::size_t size, std::size_t align, closure* (*construct)(void* mem, void* arg),
                                       void* arg) {
  if (size > kInlineClosureMax || align > 16) throw std::length_error("weft: start_goroutine_in_place: closure too big");
  sched* s = running_sched();
  m* mp = current_m();
  g* gp = reserve_goroutine(s, mp);
  gp->created_pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  closure* c;
  try {
    c = construct(gp->body, arg);
  } catch (...) {
    abandon_goroutine(s, current_m(), gp);
    throw;
  }
  c->in_place = true;
  // construct ran user code, which may have yielded (a split-stack prologue that saw sysmon's
  // request) and resumed on another thread: this thread's M from here on.
  return launch(s, current_m(), gp, c);
}

void exit_config_error(const config_error& e) noexcept {
  std::fprintf(stderr, "%s\n", e.what());
  std::fflush(stderr);
  std::_Exit(2);
}

void exit_start_error(const std::exception& e) noexcept {
  const char* what = e.what();
  if (std::strncmp(what, "weft: ", 6) == 0) what += 6;
  std::fprintf(stderr, "weft: fatal error: the runtime cannot start: %s\n", what);
  std::fflush(stderr);
  std::_Exit(2);
}

namespace {
std::atomic<bool> g_runtime_exists{false};
}

}  // namespace detail

using namespace detail;

runtime::runtime(options opts) {
  opts.validate();
  if (g_runtime_exists.exchange(true))
    throw error("weft: a runtime is already running in this process; only one weft::runtime may exist at a time");
  sched* s = nullptr;
  try {
    s = new sched(opts);
    install_process_signal_handlers();
    s->start();
  } catch (...) {
    delete s;
    g_runtime_exists.store(false);
    throw;
  }
  sigpipe_runtime_started();  // a write to a closed socket returns EPIPE (diag/sigpipe.cpp)
}

runtime::~runtime() {
  sched* s = current_sched();
  if (!s) return;
  if (!abandon_) s->wait_all_done();
  if (s->stop(abandon_)) {
    // Ms still run goroutines of this runtime (weft::run returned while one spun without
    // checks or sat in a blocking call): its records and stacks stay theirs until the process
    // ends.  Kept on a list, so that leak checkers see them reachable.
    static std::mutex left_lock;
    static sched* left_behind = nullptr;
    std::lock_guard<std::mutex> l(left_lock);
    s->left_behind_link = left_behind;
    left_behind = s;
  } else {
    delete s;
  }
  sigpipe_runtime_stopped();
  g_runtime_exists.store(false);
}

void runtime::abandon() noexcept { abandon_ = true; }

std::uint64_t this_goroutine() noexcept {
  g* gp = current_g();
  return gp ? gp->id : 0;
}

void yield() {
  m* mp = current_m();
  if (mp && mp->curg) gosched_on(mp);
  else std::this_thread::yield();
}

void sleep_until(std::chrono::steady_clock::time_point t) {
  // steady_clock is CLOCK_MONOTONIC in libstdc++, the clock our timers use.
  std::int64_t deadline = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (!current_g()) {
    std::this_thread::sleep_until(t);
    return;
  }
  if (deadline <= monotonic_ns()) {
    gosched();
    return;
  }
  waiter w;
  while (block(w, nullptr, nullptr, "sleep", deadline)) {
    // Nobody else holds this waiter, so only the timer can wake it; a true return would be a
    // bug, but sleeping again keeps the promise never to wake early.
    w.claimed.store(0);
  }
}

void sleep_for(std::chrono::nanoseconds d) {
  if (d.count() <= 0) {
    yield();
    return;
  }
  // Saturating: sleep_for(nanoseconds::max()) sleeps for good, rather than overflowing into
  // the past and returning at once.
  using clock = std::chrono::steady_clock;
  static_assert(std::is_same_v<clock::duration, std::chrono::nanoseconds>);
  const std::int64_t t = detail::add_saturated(clock::now().time_since_epoch().count(), d.count());
  sleep_until(clock::time_point(clock::duration(t)));
}

void lock_thread() {
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp) return;
  if (gp->lock_depth++ == 0) {
    gp->locked_m = mp;
    mp->lockedg = gp;
  }
}

void unlock_thread() {
  m* mp = current_m();
  g* gp = mp ? mp->curg : nullptr;
  if (!gp || gp->lock_depth == 0) return;
  if (--gp->lock_depth == 0) {
    gp->locked_m = nullptr;
    mp->lockedg = nullptr;
  }
}

stats get_stats() {
  stats out{};
  sched* s = current_sched();
  if (!s) return out;
  out.goroutines_live = live_goroutines(s);
  out.goroutines_created = made_goroutines(s);
  out.threads = s->st.threads.load();
  out.procs = s->allp.size();
  out.stack_grows = s->st.stack_grows.load();
  out.stack_shrinks = s->st.stack_shrinks.load();
  out.stack_copies = s->st.stack_copies.load();
  out.stack_bytes_copied = s->st.stack_bytes_copied.load();
  out.stack_bytes_reserved = s->stacks.stats().bytes_reserved;
  out.steals = s->st.steals.load();
  out.preemptions = s->st.preemptions.load();
  quarantine_counts(&out.stack_quarantined, &out.stack_bytes_quarantined);
  const sched_counts c = count_sched(s);
  out.goroutines_running = c.running;
  out.goroutines_runnable = c.runnable;
  out.goroutines_waiting = c.waiting;
  out.goroutines_blocking = c.blocking;
  out.runq_global = c.runq_global;
  out.runq_local = c.runq_local;
  out.stack_bytes_in_use = c.stack_bytes;
  out.stack_slots_pooled = s->stacks.stats().slots_pooled;
  out.threads_idle = c.ms_idle;
  out.threads_spinning = c.ms_spinning;
  out.threads_blocking = c.ms_blocking;
  out.netpoll_waiters = netpoll_waiters(s);
  out.netpoll_registrations = netpoll_registrations(s);
  out.timers = s->timers.armed();
  out.scans = s->st.scans.load(std::memory_order_relaxed);
  return out;
}

namespace detail {
void describe_current(char* buf, std::size_t n) noexcept {
  if (g* gp = current_g()) std::snprintf(buf, n, "goroutine %llu", (unsigned long long)gp->id);
  else std::snprintf(buf, n, "a thread that runs no goroutine");
}
}  // namespace detail

void scan() {
  if (sched* s = current_sched()) scan_phase(s, scan_kind::requested);
}

stack_info this_stack() {
  stack_info si{};
  g* gp = current_g();
  if (!gp) return si;
  if (arch::stack_pointer() < gp->stk.lo) {  // grown by a frame that jumped the band
    adopt_unchecked_growth(current_sched(), gp, arch::stack_pointer());
    publish_limit(gp);
  }
  si.lo = gp->stk.lo;
  si.hi = gp->stk.hi;
  si.size = gp->stk.size();
  si.used = gp->stk.hi - arch::stack_pointer();
  si.grows = gp->grows;
  si.shrinks = gp->shrinks;
  si.pinned = pinned(gp);
  return si;
}

}  // namespace weft
