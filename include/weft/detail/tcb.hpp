// SPDX-License-Identifier: Apache-2.0
// weft/detail/tcb.hpp — the one statement of where the stack limit lives on x86_64: the word
// at %fs:0x70 in the thread control block, which -fsplit-stack prologues compare the stack
// pointer with (glibc's tcbhead_t.__private_ss, sysdeps/x86_64/nptl/tls.h; GCC's
// TARGET_THREAD_SPLIT_STACK_OFFSET).  Read by the public ensure_stack (weft/stack.hpp), by the
// runtime (arch/cpu.hpp, which checks its own constant against this one with static_assert)
// and by the assembly (arch/x86_64/*.S include this file).  Preprocessor only, so that
// assembly can include it.
//
// Plain threads: a constant, safe anywhere.
#pragma once

#if !defined(__ASSEMBLER__)
#include "weft/export.hpp"  // C++20, or one line saying so
#endif

#define WEFT_TCB_LIMIT_SLOT 0x70
