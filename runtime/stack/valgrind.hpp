// SPDX-License-Identifier: Apache-2.0
// valgrind.hpp — what weft tells valgrind about its stacks (README, "Running under valgrind").
//
// Valgrind follows one stack per thread.  When the stack pointer moves by less than
// --max-stackframe (2 MiB), memcheck takes it for a frame being pushed or popped and marks the
// bytes between as fresh (undefined) or dead (no access); a bigger move it takes for a switch,
// with a warning ("client switching stacks?"), and leaves memory alone.  A goroutine switch is
// neither: two slots of copy's 320 KiB lie closer than 2 MiB, and an 8 MiB slot's stack may be
// anywhere inside it.  What valgrind offers instead is a list of registered stacks
// (coregrind/m_stacks.c, VG_(unknown_SP_update)): a move of the stack pointer into another
// registered stack is a switch, silently, and within one is a frame.  So weft registers:
//
//   every slot, once, over all of it [slot_lo, hi) — a stack grows down inside its slot and
//       may run into any of it, and a copy or a segment moves it into another slot, which is
//       registered too; it stays registered while the slot exists (a slot is only ever a
//       goroutine stack), and is deregistered when its arena is unmapped (arena.cpp);
//   every M's own stack, its g0, while the thread lives (runtime/sched/switch.cpp,
//       bind_thread); valgrind registers the main thread's stack itself.
//
// Boost.Context registers the stacks its allocators hand out the same way, when built with
// BOOST_USE_VALGRIND (boost/context/fixedsize_stack.hpp: VALGRIND_STACK_REGISTER in allocate,
// DEREGISTER in deallocate); Go does it in stackalloc and stackfree behind its `valgrind`
// build tag (runtime/valgrind.go).  weft decides at run time instead (RUNNING_ON_VALGRIND),
// so the same build runs natively at full speed and under valgrind without a flag.
//
// Under valgrind weft also guards stacks with mprotect: valgrind 3.19 does not know
// MADV_GUARD_INSTALL: it passes the call to the kernel, keeps taking the range for ordinary
// memory, and dies of a SIGSEGV of its own at a marker (seen: "VALGRIND INTERNAL ERROR ...
// signal 11 ... Faulting address" at a slot's guard).  And it keeps arenas to 128 MiB, below the
// 256 MiB at which memcheck warns about every mapping it marks.
//
// Everything here is a no-op when the build has no <valgrind/valgrind.h> and
// <valgrind/memcheck.h> (Debian's package `valgrind` installs them); such a build cannot see
// valgrind, so it must be run there with WEFT_GUARD=mprotect and expect memcheck's errors.
// The client requests cost a few instructions natively; the hot paths read a cached flag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif
#endif
#if !defined(WEFT_HAVE_VALGRIND)
#define WEFT_HAVE_VALGRIND 0
#endif

namespace weft::detail::vg {

// Whether this process runs under a valgrind tool that follows memory and stacks: memcheck,
// helgrind or drd, whose preloaded library valgrind names in LD_PRELOAD.  Callgrind and
// cachegrind count the native paths (mprotect guards and registrations would change the
// instruction counts BENCHMARKS.md compares), and they run them as they are.
inline bool detect_running() noexcept {
#if WEFT_HAVE_VALGRIND
  if (RUNNING_ON_VALGRIND == 0) return false;
  const char* pre = std::getenv("LD_PRELOAD");
  if (!pre) return true;  // cannot tell which tool: the careful choice
  return std::strstr(pre, "vgpreload_core") == nullptr || std::strstr(pre, "vgpreload_memcheck") != nullptr ||
         std::strstr(pre, "vgpreload_helgrind") != nullptr || std::strstr(pre, "vgpreload_drd") != nullptr;
#else
  return false;
#endif
}
// Decided once, as the library loads (before main; a runtime cannot start earlier): the hot
// paths (every spawn, every switch) read a plain flag, not a function-local static's guard.
inline const bool g_running = detect_running();
inline bool running() noexcept { return WEFT_HAVE_VALGRIND && g_running; }

// Registers [lo, hi) as a stack; returns valgrind's id for it (never 0: the main thread's
// stack has 0), or 0 when not under valgrind.
inline unsigned register_stack(std::uintptr_t lo, std::uintptr_t hi) noexcept {
#if WEFT_HAVE_VALGRIND
  // Valgrind's bounds are inclusive: hi itself is the next slot's first byte.
  if (running()) return VALGRIND_STACK_REGISTER(lo, hi - 1);
#endif
  (void)lo;
  (void)hi;
  return 0;
}

inline void deregister_stack(unsigned id) noexcept {
#if WEFT_HAVE_VALGRIND
  if (id != 0) VALGRIND_STACK_DEREGISTER(id);
#endif
  (void)id;
}

// Memcheck: [addr, addr + len) is addressable and holds nothing defined — what a stack is
// when a goroutine starts on it, whatever its previous user left marked there.
inline void make_undefined(std::uintptr_t addr, std::size_t len) noexcept {
#if WEFT_HAVE_VALGRIND
  if (running()) (void)VALGRIND_MAKE_MEM_UNDEFINED(addr, len);
#endif
  (void)addr;
  (void)len;
}

// Memcheck: the bytes are to count as defined (a conservative scan reads padding on purpose;
// what it finds there can only make it more careful, never wrong).
inline void make_defined(const void* addr, std::size_t len) noexcept {
#if WEFT_HAVE_VALGRIND
  if (running()) (void)VALGRIND_MAKE_MEM_DEFINED(addr, len);
#endif
  (void)addr;
  (void)len;
}

// Memcheck's definedness bits of [src, src + len) into vbits (len bytes); false if memcheck
// is not the tool (or the range is not addressable), and then nothing was read.
inline bool get_vbits(const void* src, unsigned char* vbits, std::size_t len) noexcept {
#if WEFT_HAVE_VALGRIND
  if (running()) return VALGRIND_GET_VBITS(src, vbits, len) == 1;
#endif
  (void)src;
  (void)vbits;
  (void)len;
  return false;
}

// Gives [dst, dst + len) the definedness bits `vbits` (from get_vbits).
inline void set_vbits(void* dst, const unsigned char* vbits, std::size_t len) noexcept {
#if WEFT_HAVE_VALGRIND
  if (running()) (void)VALGRIND_SET_VBITS(dst, vbits, len);
#endif
  (void)dst;
  (void)vbits;
  (void)len;
}

}  // namespace weft::detail::vg
