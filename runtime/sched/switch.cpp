// SPDX-License-Identifier: Apache-2.0
#include "runtime/sched/switch.hpp"

#include <atomic>
#include <cerrno>

#include <cxxabi.h>
#include <pthread.h>

#include "arch/cpu.hpp"
#include "runtime/sched/grow.hpp"
#include "runtime/stack/valgrind.hpp"

#if defined(WEFT_SANITIZE_ADDRESS)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT_SANITIZE_THREAD)
#include <sanitizer/tsan_interface.h>
#endif

#if WEFT_DIRECT_SWITCH
// arch/x86_64/switch_x86_64_sysv_elf_gas.S: saves into *save_ctx, then stores new_status.
extern "C" void weft_switch_x86_64(boost::context::detail::fcontext_t* save_ctx, std::uint32_t* status, std::uint32_t new_status,
                                   boost::context::detail::fcontext_t to_ctx) noexcept;
#endif

namespace weft::detail {
namespace {

// libstdc++'s per-thread exception state (libsupc++/unwind-cxx.h, struct __cxa_eh_globals).
struct eh_globals_layout {
  void* caught;
  unsigned int uncaught;
};

using boost::context::detail::ontop_fcontext;
using boost::context::detail::transfer_t;

struct switch_req {
  m* mp;
  g* from;  // null: g0
  g* to;    // null: g0
  post_action post;
  void* arg;
};

inline void save_tls(m* mp, thread_state& ts) noexcept {
  ts.err = *mp->errno_ptr;
  auto* eh = static_cast<eh_globals_layout*>(mp->eh_globals);
  ts.eh_caught = eh->caught;
  ts.eh_uncaught = eh->uncaught;
}

inline void restore_tls(m* mp, const thread_state& ts) noexcept {
  auto* eh = static_cast<eh_globals_layout*>(mp->eh_globals);
  eh->caught = ts.eh_caught;
  eh->uncaught = ts.eh_uncaught;
  *mp->errno_ptr = ts.err;
}

// save_tls into `out`, then restore_tls from `in`, with the thread's two pointers read once
// (through the separate calls the compiler reloads them, as the stores might alias the m).
inline void exchange_tls(m* mp, thread_state& out, const thread_state& in) noexcept {
  int* const err = mp->errno_ptr;
  auto* const eh = static_cast<eh_globals_layout*>(mp->eh_globals);
  out.err = *err;
  out.eh_caught = eh->caught;
  out.eh_uncaught = eh->uncaught;
  eh->caught = in.eh_caught;
  eh->uncaught = in.eh_uncaught;
  *err = in.err;
}

// Makes `to` the context this thread runs: its errno and exception state, and its stack limit
// (or the preemption poison).
inline void enter_g(m* mp, g* to) noexcept {
  restore_tls(mp, to->tls);
  publish_limit(to);
}

transfer_t on_switch(transfer_t t) noexcept {
  auto* r = static_cast<switch_req*>(t.data);
  m* mp = r->mp;
  g* from = r->from;
  g* to = r->to;
  post_action post = r->post;
  void* arg = r->arg;
#if defined(WEFT_SANITIZE_ADDRESS)
  __sanitizer_finish_switch_fiber(to ? to->asan_fake_stack : mp->asan_fake_stack, nullptr, nullptr);
#endif
  if (from) from->ctx = t.fctx;
  else mp->g0ctx = t.fctx;
  // From here on `r` (on the source's stack) must not be read: post may publish the source.
  if (post) post(mp, from, arg);
  if (to) {
    enter_g(mp, to);
  } else {
    restore_tls(mp, mp->g0_tls);
    arch::store_limit(0);
  }
  return {nullptr, mp};
}

// How far below sp a switch touches its leaving stack first (WEFT_PREFAULT_HEADROOM below).
// Under valgrind, 128: memcheck reports a read of anything lower than the red zone the ABI
// keeps below sp (128 bytes on x86_64) as an invalid read, and the switch's own footprint, 64
// bytes, still lies above it.  Set by bind_thread, before the thread's first switch.
std::atomic<std::uintptr_t> g_switch_touch{256};

// Under valgrind: the M's own stack (g0) is registered as a stack while the thread lives, so a
// switch between it and a goroutine is one for valgrind too (runtime/stack/valgrind.hpp).
struct g0_registration {
  unsigned id = 0;
  ~g0_registration() { vg::deregister_stack(id); }
};
thread_local g0_registration t_g0_registration;

void register_g0_stack() noexcept {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;  // unregistered: valgrind only warns
  void* lo = nullptr;
  std::size_t size = 0;
  const bool ok = pthread_attr_getstack(&attr, &lo, &size) == 0;
  pthread_attr_destroy(&attr);
  if (!ok || t_g0_registration.id != 0) return;
  const auto at = reinterpret_cast<std::uintptr_t>(lo);
  t_g0_registration.id = vg::register_stack(at, at + size);
}

}  // namespace

void bind_thread(m* mp) noexcept {
  mp->errno_ptr = &errno;
  mp->eh_globals = abi::__cxa_get_globals();
  mp->limit_slot = arch::limit_slot_address();
  arch::store_limit(0);
#if defined(WEFT_SANITIZE_THREAD)
  mp->tsan_fiber = __tsan_get_current_fiber();
#endif
  if (vg::running()) {
    g_switch_touch.store(128, std::memory_order_relaxed);
    register_g0_stack();
  }
}

void stack_reused([[maybe_unused]] std::uintptr_t lo, [[maybe_unused]] std::uintptr_t hi) noexcept {
#if defined(WEFT_SANITIZE_ADDRESS)
  __asan_unpoison_memory_region(reinterpret_cast<void*>(lo), hi - lo);
#endif
}

void fiber_created([[maybe_unused]] g* gp) noexcept {
#if defined(WEFT_SANITIZE_THREAD)
  if (!gp->tsan_fiber) gp->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void fiber_destroyed([[maybe_unused]] g* gp) noexcept {
#if defined(WEFT_SANITIZE_THREAD)
  if (gp->tsan_fiber) __tsan_destroy_fiber(gp->tsan_fiber);
  gp->tsan_fiber = nullptr;
#endif
}

#if defined(WEFT_SANITIZE_ADDRESS) || defined(WEFT_SANITIZE_THREAD)
// The sanitizers' hooks in a switch (and TSan's instrumentation of every access, whose trace
// buffer switch has a frame of several KiB) run on the leaving goroutine's stack, some of them
// after curg already names the target — and code without checks grows only through faults,
// which sched/signals.cpp classifies by curg.  So, while curg still names the leaving
// goroutine, touch the headroom below sp: a fault in the reserve then grows the right stack,
// in place.  Never below the top of the guard: where the slot has no room (stack_reserve 0)
// the touch stays inside the stack, and the check that is about to run decides.  The loads
// are assembly, so the sanitizers do not instrument them.
__attribute__((noinline)) static void prefault_headroom(m* mp, g* from) noexcept {
  const std::uintptr_t floor = from->stk.slot_lo + mp->s->stacks.config().guard_bytes;
  const std::uintptr_t sp = arch::stack_pointer();
  const std::uintptr_t low = sp > floor + kStackHeadroom ? sp - kStackHeadroom : floor;
  for (std::uintptr_t a = (sp & ~std::uintptr_t{4095}) - 4096; a >= low; a -= 4096) arch::touch_byte(a);
}
#define WEFT_PREFAULT_HEADROOM(from)       \
  do {                                     \
    if (from) prefault_headroom(mp, from); \
  } while (0)
#else
// Without sanitizers a switch pushes at most a few words on the leaving stack after curg has
// changed (the call into the jump, and the context it saves: 72 bytes with Boost.Context's
// ontop_fcontext).  One touch below them, while curg still names the leaving goroutine, makes
// a fault there grow the right stack (sched/signals.cpp): it is the lowest byte, and growth in
// place covers everything above it.  256 bytes below sp natively, 128 under valgrind
// (g_switch_touch).
#define WEFT_PREFAULT_HEADROOM(from)                                                                       \
  do {                                                                                                     \
    if (from) arch::touch_byte(arch::stack_pointer() - g_switch_touch.load(std::memory_order_relaxed));  \
  } while (0)
#endif

static inline __attribute__((always_inline)) void switch_to_started(m* mp, g* to, post_action post, void* arg) noexcept {
  g* from = mp->curg;
  WEFT_PREFAULT_HEADROOM(from);
  save_tls(mp, from ? from->tls : mp->g0_tls);
  switch_req r{mp, from, to, post, arg};
#if defined(WEFT_SANITIZE_ADDRESS)
  // A dead goroutine passes no fake-stack slot: ASan may then free its fake frames.
  bool dying = from && from->status.load(std::memory_order_relaxed) == gstatus::dead;
  void** save = from ? (dying ? nullptr : &from->asan_fake_stack) : &mp->asan_fake_stack;
  if (to) __sanitizer_start_switch_fiber(save, reinterpret_cast<void*>(to->stk.slot_lo), to->stk.hi - to->stk.slot_lo);
  else __sanitizer_start_switch_fiber(save, mp->g0_stack_lo, mp->g0_stack_size);
#endif
#if defined(WEFT_SANITIZE_THREAD)
  __tsan_switch_to_fiber(to ? to->tsan_fiber : mp->tsan_fiber, 0);
#endif
  // curg names `to` only now: until the jump, this code (and the sanitizers' switch hooks,
  // whose frames are large) runs on from's stack, and a fault there must be classified as
  // from's — in-place growth through the reserve (sched/signals.cpp) looks at curg.
  __atomic_store_n(&mp->curg, to, __ATOMIC_RELEASE);  // sysmon reads it
  ontop_fcontext(to ? to->ctx : mp->g0ctx, &r, on_switch);
}

// A first run: its context is made first (apart, as switch_direct_to_new below).
__attribute__((noinline)) static void switch_to_new(m* mp, g* to, post_action post, void* arg) noexcept {
  start_context(mp, to);
  switch_to_started(mp, to, post, arg);
}

void switch_to(m* mp, g* to, post_action post, void* arg) noexcept {
  if (to && !to->ctx) return switch_to_new(mp, to, post, arg);
  switch_to_started(mp, to, post, arg);
}

#if WEFT_DIRECT_SWITCH
static inline __attribute__((always_inline)) void switch_direct_to_started(m* mp, g* from, g* to, gstatus after) noexcept {
  WEFT_PREFAULT_HEADROOM(from);
  // The work on_switch would do on the far side, done here before the jump: `from` needs no
  // post action beyond its status, which the assembly stores once the context is saved.
  exchange_tls(mp, from->tls, to->tls);
  publish_limit(to);
#if defined(WEFT_SANITIZE_THREAD)
  __tsan_release(&from->status);  // the assembly's store of it is unseen (g.hpp, tsan_acquire_status)
  __tsan_switch_to_fiber(to->tsan_fiber, 0);  // on from's stack, before curg names `to`
#endif
  __atomic_store_n(&mp->curg, to, __ATOMIC_RELEASE);  // sysmon reads it
  static_assert(sizeof(std::atomic<gstatus>) == sizeof(std::uint32_t) && std::atomic<gstatus>::is_always_lock_free);
  weft_switch_x86_64(&from->ctx, reinterpret_cast<std::uint32_t*>(&from->status),
                     static_cast<std::uint32_t>(after), to->ctx);
}

// A first run: its context is made first.  Apart, and entered by a tail call, so that the
// common case saves no more registers than it did before first runs existed (a call on its
// path cost every yield instructions: BENCHMARKS.md, "Architecture (issue 17)").
__attribute__((noinline)) static void switch_direct_to_new(m* mp, g* from, g* to, gstatus after) noexcept {
  start_context(mp, to);
  switch_direct_to_started(mp, from, to, after);
}

// Two entry points, each with its status a constant: a parameter cost every yield a register.
void switch_direct(m* mp, g* from, g* to) noexcept {
  if (__builtin_expect(!to->ctx, 0)) return switch_direct_to_new(mp, from, to, gstatus::runnable);
  switch_direct_to_started(mp, from, to, gstatus::runnable);
}

void switch_direct_parked(m* mp, g* from, g* to) noexcept {
  if (__builtin_expect(!to->ctx, 0)) return switch_direct_to_new(mp, from, to, gstatus::waiting);
  switch_direct_to_started(mp, from, to, gstatus::waiting);
}
#endif

}  // namespace weft::detail
