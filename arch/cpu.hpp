// SPDX-License-Identifier: Apache-2.0
// arch/cpu.hpp — the few ISA/ABI facts the C++ runtime needs, behind one interface.
//
// The stack-limit slot.  Prologue checks emitted by -fsplit-stack on x86_64 compare the stack
// pointer with a word in the thread control block, %fs:0x70 (glibc's tcbhead_t.__private_ss,
// sysdeps/x86_64/nptl/tls.h; GCC's TARGET_THREAD_SPLIT_STACK_OFFSET).  weft keeps the running
// goroutine's limit there, 0 on threads that run no goroutine (so no check ever fires), and
// sysmon poisons it to ask a goroutine to yield.  Explicit checks (WEFT_STACK_CHECK) read the
// same word, so both kinds of check see the same limit and the same preemption request.
// Elsewhere (aarch64) there are no compiler checks, and the slot is an ordinary thread_local.
#pragma once

#include <cstdint>

#include <ucontext.h>

#include "weft/detail/tcb.hpp"

namespace weft::arch {

#if defined(__x86_64__)
inline constexpr unsigned kLimitSlotOffset = WEFT_TCB_LIMIT_SLOT;
// The public ensure_stack (weft/stack.hpp) and the assembly read the slot through the same
// macro; this ties the runtime's constant to it and to GCC's TARGET_THREAD_SPLIT_STACK_OFFSET.
static_assert(kLimitSlotOffset == 0x70, "the split-stack limit slot is %fs:0x70 on x86_64 (weft/detail/tcb.hpp)");

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

inline std::uintptr_t stack_pointer() noexcept {
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
}
inline void store_limit(std::uintptr_t v) noexcept {
  asm volatile("mov %0, %%fs:%c1" : : "r"(v), "i"(kLimitSlotOffset) : "memory");
}
inline std::uintptr_t load_limit() noexcept {
  std::uintptr_t v;
  asm volatile("mov %%fs:%c1, %0" : "=r"(v) : "i"(kLimitSlotOffset) : "memory");
  return v;
}
// The stack pointer of the code a signal interrupted (from the handler's third argument).
inline std::uintptr_t interrupted_sp(const void* uctx) noexcept {
  return static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RSP]);
}
// Reads one byte at `addr` for its side effect (a fault, if the page is not accessible), out
// of the sanitizers' sight.
inline void touch_byte(std::uintptr_t addr) noexcept {
  unsigned char v;
  asm volatile("movb (%1), %0" : "=q"(v) : "r"(addr) : "memory");
  (void)v;
}
// Where a saved goroutine context (arch/x86_64/switch_x86_64_sysv_elf_gas.S's frame, the same
// as Boost.Context's) keeps the frame pointer and the return address: the first frame of a
// parked goroutine's backtrace.
inline constexpr unsigned kContextFramePointer = 0x30;
inline constexpr unsigned kContextReturnAddress = 0x38;
// The slot's address in this thread, for another thread (sysmon) to poison.
inline std::uintptr_t* limit_slot_address() noexcept {
  std::uintptr_t tcb;
  asm volatile("mov %%fs:0, %0" : "=r"(tcb));  // tcbhead_t.tcb points to itself
  return reinterpret_cast<std::uintptr_t*>(tcb + kLimitSlotOffset);
}
#elif defined(__aarch64__)
inline void cpu_relax() noexcept { asm volatile("yield" ::: "memory"); }
inline std::uintptr_t stack_pointer() noexcept {
  std::uintptr_t sp;
  asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
}
// A thread_local there, to be defined by an arch/aarch64 file that does not exist yet: weft
// builds and runs on x86_64 only today (README, "Platforms").
std::uintptr_t* limit_slot_address() noexcept;
inline void store_limit(std::uintptr_t v) noexcept { __atomic_store_n(limit_slot_address(), v, __ATOMIC_RELAXED); }
inline std::uintptr_t load_limit() noexcept { return __atomic_load_n(limit_slot_address(), __ATOMIC_RELAXED); }
inline std::uintptr_t interrupted_sp(const void* uctx) noexcept {
  return static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(uctx)->uc_mcontext.sp);
}
inline void touch_byte(std::uintptr_t addr) noexcept {
  unsigned char v;
  asm volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
  (void)v;
}
#else
#error "weft supports x86_64 and aarch64"
#endif

}  // namespace weft::arch
