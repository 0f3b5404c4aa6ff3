// SPDX-License-Identifier: Apache-2.0
/*
 * morestack_entry_x86_64_sysv_elf_gas.S — the split-stack ABI names, which the linker needs
 * in the executable (or shared object) that holds the split-stack code.
 *
 *  Contract: every name below is what GCC's -fsplit-stack code, libgcc or the linker asks
 *  for.  The four that do real work are one `jmp *weft_x86_64_<name>@GOTPCREL(%rip)` each:
 *  no register, flag or stack slot changes, so the code in morestack_x86_64_sysv_elf_gas.S
 *  sees the prologue's registers and stack exactly (its comment has the protocol).  The
 *  jump goes through the GOT, not a PLT: the GOT entry is filled when the program loads,
 *  while a lazily bound PLT entry would go through the dynamic linker's resolver the first
 *  time, which clobbers %r10 and %r11 (the frame and argument sizes).
 *
 *  Why a file of its own.  gold and LLD rewrite a prologue's `call __morestack` into a call of
 *  __morestack_non_split when the function calls code without checks.  They resolve that
 *  new target as a symbol of the output itself: when it lived in libweft.so, gold stopped
 *  with "internal error in relocate" and LLD with "R_X86_64_PLT32 out of range ...
 *  __morestack_non_split".  So these names never live in libweft.so: a static libweft.a
 *  holds this object as a member of its own, and a shared weft installs it as the small
 *  static archive libweft_morestack.a, which weft::weft, weft.pc and weft_dep link.
 *
 *  Why __wrap_pthread_create.  With -fsplit-stack on the link line GCC's driver adds
 *  --wrap=pthread_create, so every reference to pthread_create in the program's own objects
 *  (weft's among them) asks for __wrap_pthread_create.  libgcc's version lives in
 *  generic-morestack-thread.o, which pulls generic-morestack.o, whose second
 *  __morestack_allocate_stack_space the link rejected ("multiple definition").  Defined here,
 *  the link never needs either libgcc object.  It goes straight to the real pthread_create:
 *  libgcc's version sets each new thread's limit word for libgcc's own stacks, but weft wants
 *  none there (a thread that runs no goroutine keeps its limit word at 0, or __morestack
 *  finds it runs no goroutine and simply runs the body).  __real_pthread_create is weak:
 *  without --wrap nothing calls this function and the name resolves to 0.
 *
 *  The remaining libgcc names (__stack_split_initialize, __morestack_get_guard, ...) are
 *  defined too, so that no reference can pull libgcc's morestack.o and its second
 *  __morestack into the link.
 */
#include "weft/detail/tcb.hpp"

#if defined(__x86_64__) && defined(__ELF__)

	.text

#define WEFT_ENTRY(abi, impl)					\
	.globl	abi;						\
	.type	abi, @function;					\
	.p2align 4;						\
abi:								\
	.cfi_startproc;						\
	jmp	*impl@GOTPCREL(%rip);				\
	.cfi_endproc;						\
	.size	abi, . - abi

	WEFT_ENTRY(__morestack, weft_x86_64_morestack)
	WEFT_ENTRY(__morestack_non_split, weft_x86_64_morestack_non_split)
	WEFT_ENTRY(__morestack_allocate_stack_space, weft_x86_64_allocate_stack_space)
	WEFT_ENTRY(__morestack_large_model, weft_x86_64_morestack_large_model)

	/* int __wrap_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *),
	   void *): pthread_create itself (see above). */
	.weak	__real_pthread_create
	WEFT_ENTRY(__wrap_pthread_create, __real_pthread_create)

	/* void __stack_split_initialize(void): libgcc sets every new thread's limit word to
	   its sp - 16000; weft keeps 0 on threads that run no goroutine, so: nothing. */
	.globl	__stack_split_initialize
	.type	__stack_split_initialize, @function
	.p2align 4
__stack_split_initialize:
	.cfi_startproc
	ret
	.cfi_endproc
	.size	__stack_split_initialize, . - __stack_split_initialize

	/* void *__morestack_get_guard(void): the limit word. */
	.globl	__morestack_get_guard
	.type	__morestack_get_guard, @function
	.p2align 4
__morestack_get_guard:
	.cfi_startproc
	movq	%fs:WEFT_TCB_LIMIT_SLOT, %rax
	ret
	.cfi_endproc
	.size	__morestack_get_guard, . - __morestack_get_guard

	/* void __morestack_set_guard(void *): sets the limit word. */
	.globl	__morestack_set_guard
	.type	__morestack_set_guard, @function
	.p2align 4
__morestack_set_guard:
	.cfi_startproc
	movq	%rdi, %fs:WEFT_TCB_LIMIT_SLOT
	ret
	.cfi_endproc
	.size	__morestack_set_guard, . - __morestack_set_guard

	/* void *__morestack_make_guard(void *stack, size_t size): the limit for a stack of
	   `size` bytes below `stack`, with libgcc's 1536-byte backoff. */
	.globl	__morestack_make_guard
	.type	__morestack_make_guard, @function
	.p2align 4
__morestack_make_guard:
	.cfi_startproc
	movq	%rdi, %rax
	subq	%rsi, %rax
	addq	$1536, %rax
	ret
	.cfi_endproc
	.size	__morestack_make_guard, . - __morestack_make_guard

	/* For gold and LLD this object counts as split-stack code, so split-stack functions that
	   call __morestack (or __morestack_allocate_stack_space) are not taken for callers of code
	   without checks — which would route every one of them through __morestack_non_split —
	   and, as it also has functions without prologues, the linker does not try to adjust
	   theirs (libgcc's morestack.o is marked the same way). */
	.section .note.GNU-split-stack, "", @progbits
	.section .note.GNU-no-split-stack, "", @progbits
#endif /* __x86_64__ && __ELF__ */

	.section .note.GNU-stack, "", @progbits
