// SPDX-License-Identifier: Apache-2.0
// arch/x86_64/morestack_x86_64.hpp — the frame __morestack builds, shared by the assembly
// (morestack_x86_64_sysv_elf_gas.S, which includes this file for the WEFT_MS_* offsets) and
// the C++ that reads it (runtime/sched/morestack.cpp, which checks every offset against the
// struct below with static_assert).  Change one side and the build stops.
#pragma once

// The register save area, at a 16-byte-aligned address below __morestack's frame pointer (the
// prologue's caller may have called with the stack 8 mod 16: GCC's -fipa-stack-alignment
// drops the alignment for calls to functions that do not need it).  Byte offsets:
#define WEFT_MS_XMM0 0       /* xmm0..xmm7, 16 bytes each: vector argument registers */
#define WEFT_MS_RDI 128      /* integer argument registers ... */
#define WEFT_MS_RSI 136
#define WEFT_MS_RDX 144
#define WEFT_MS_RCX 152
#define WEFT_MS_R8 160
#define WEFT_MS_R9 168
#define WEFT_MS_RAX 176      /* varargs vector count, or a static chain moved out of r10 */
#define WEFT_MS_FRAME 184    /* r10 on entry: the frame the function wants */
#define WEFT_MS_ARGS 192     /* r11 on entry: bytes of stack arguments */
#define WEFT_MS_SEG 200      /* a stack-segment record (runtime/sched/grow.hpp, detail::segment) */
#define WEFT_MS_SEG_BYTES 48
#define WEFT_MS_ENTRY_SP 248 /* the function's entry sp (%rbp + 16): its return address is there */
#define WEFT_MS_RET 256      /* return address into the prologue (its `ret`), a copy of 8(%rbp) */
#define WEFT_MS_RBP_OFF 264  /* %rbp - (this area): how to find the frame pointer again */
#define WEFT_MS_SIZE 272

// Slots addressed from __morestack's frame pointer (%rbp, after push %rbp; mov %rsp, %rbp).
#define WEFT_MS_FP_AREA (-8)    /* the save area's address */
#define WEFT_MS_FP_RET 8        /* return address into the prologue */
#define WEFT_MS_FP_STACK_ARGS 24 /* the function's stack arguments (libgcc's layout: GCC's varargs code reads 24(%rbp)) */

// The room a function without checks gets when split-stack code calls it.  The linker adds
// its split-stack-adjust-size to the caller's check, or routes the caller through
// __morestack_non_split, which must look for the same room: weft::split_stack links with
// --split-stack-adjust-size=16384 to match (gold's default is 1 MiB, LLD's 16 KiB; with
// gold's default every such call still works, but takes the __morestack_non_split path).
#define WEFT_MS_NON_SPLIT_ROOM 0x4000

// `lea 24(%rbp), %r11` (4c 8d 5d 18, read as a little-endian dword): the first instruction
// GCC puts after `call __morestack; ret` in a function that calls va_start.  It expects %rbp to
// be __morestack's frame (libgcc's layout, kept here: 24(%rbp) = the stack arguments).
#define WEFT_MS_VARARGS_LEA 0x185d8d4c

#if !defined(__ASSEMBLER__)
#include <cstddef>
#include <cstdint>

namespace weft::arch {

struct morestack_frame {
  std::uint64_t xmm[8][2];
  std::uint64_t rdi, rsi, rdx, rcx, r8, r9, rax;
  std::uint64_t frame_bytes;
  std::uint64_t args_bytes;
  alignas(8) unsigned char seg[WEFT_MS_SEG_BYTES];
  std::uint64_t entry_sp_;
  std::uint64_t ret_prologue;
  std::uint64_t rbp_offset;

  // The stack pointer the function had on entry (pointing at its return address).
  std::uintptr_t entry_sp() const noexcept { return entry_sp_; }
};

static_assert(offsetof(morestack_frame, xmm) == WEFT_MS_XMM0);
static_assert(offsetof(morestack_frame, rdi) == WEFT_MS_RDI);
static_assert(offsetof(morestack_frame, rsi) == WEFT_MS_RSI);
static_assert(offsetof(morestack_frame, rdx) == WEFT_MS_RDX);
static_assert(offsetof(morestack_frame, rcx) == WEFT_MS_RCX);
static_assert(offsetof(morestack_frame, r8) == WEFT_MS_R8);
static_assert(offsetof(morestack_frame, r9) == WEFT_MS_R9);
static_assert(offsetof(morestack_frame, rax) == WEFT_MS_RAX);
static_assert(offsetof(morestack_frame, frame_bytes) == WEFT_MS_FRAME);
static_assert(offsetof(morestack_frame, args_bytes) == WEFT_MS_ARGS);
static_assert(offsetof(morestack_frame, seg) == WEFT_MS_SEG);
static_assert(offsetof(morestack_frame, entry_sp_) == WEFT_MS_ENTRY_SP);
static_assert(offsetof(morestack_frame, ret_prologue) == WEFT_MS_RET);
static_assert(offsetof(morestack_frame, rbp_offset) == WEFT_MS_RBP_OFF);
static_assert(sizeof(morestack_frame) == WEFT_MS_SIZE && WEFT_MS_SIZE % 16 == 0);
static_assert(WEFT_MS_VARARGS_LEA == (0x4c | 0x8d << 8 | 0x5d << 16 | 0x18 << 24));

}  // namespace weft::arch
#endif
