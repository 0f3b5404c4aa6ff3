// SPDX-License-Identifier: Apache-2.0
/* clone_x86_64_sysv_elf_gas.S — raw clone and clone3 for weft::kmodel tasks (x86_64, SysV, ELF).
 *
 * Contract (C declarations, in runtime/kmodel/clone_arch.hpp):
 *
 *   long weft_kmodel_clone_x86_64(unsigned long flags,       rdi
 *                                 void* stack_top,           rsi  new rsp of the child
 *                                 int* parent_tid,           rdx  CLONE_PARENT_SETTID word
 *                                 int* child_tid,            rcx  CLONE_CHILD_CLEARTID word
 *                                 void (*entry)(void*),      r8
 *                                 void* arg);                r9
 *
 *   long weft_kmodel_clone3_x86_64(const struct clone_args* args,   rdi  (stack = lowest address,
 *                                  unsigned long size,              rsi   stack_size: the child
 *                                  void (*entry)(void*),            rdx   starts at stack+size)
 *                                  void* arg);                      rcx
 *
 * Both return, in the caller, the child's tid or -errno exactly as the kernel gave it (errno is
 * not touched: nothing here uses TLS).  No CLONE_SETTLS: the child keeps the caller's %fs.
 *
 * Why assembly: after the syscall the child is running on its new stack with rax = 0 and
 * every other register as the parent had it.  C code cannot be in that state — a libc
 * syscall() wrapper would `ret` through a return address that is not on the new stack.  So
 * entry and arg travel in callee-saved r12/r13 (the kernel copies them to the child), and the
 * child branches to weft_kmodel_task_start, which never returns:
 *
 *   child, new stack:       +-------------------+ <- stack_top (16-byte aligned by the caller)
 *                           | return address    |    pushed by `call *%r12`
 *                           | entry's frame ... |
 *
 *   rbp = 0 and the CFI marks rip undefined, so debuggers and unwinders stop here; then
 *   entry(arg); then SYS_exit(0) — the task, not the thread group.  The kernel then clears
 *   *child_tid and wakes its futex, which is how the parent joins.
 *
 * Saved in the caller: r12, r13 (pushed and popped around the syscall).  Not saved: rcx and
 * r11 (clobbered by `syscall`), r10, r8 and the other argument registers, as the ABI allows.
 * SIMD and x87 state, the signal mask and the shadow stack are not touched; the caller blocks
 * signals around the call so the child starts with all of them blocked.
 */
#if defined(__x86_64__) && defined(__ELF__)

#ifdef __CET__
#define WEFT_ENDBR endbr64
#else
#define WEFT_ENDBR
#endif

#define WEFT_NR_clone 56
#define WEFT_NR_exit 60
#define WEFT_NR_clone3 435

	.text

	.globl	weft_kmodel_clone_x86_64
	.hidden	weft_kmodel_clone_x86_64
	.type	weft_kmodel_clone_x86_64, @function
	.p2align 4
weft_kmodel_clone_x86_64:
	.cfi_startproc
	WEFT_ENDBR
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	movq	%r8, %r12		/* entry: survives into the child */
	movq	%r9, %r13		/* arg */
	movq	%rcx, %r10		/* the 4th syscall argument travels in r10 */
	xorl	%r8d, %r8d		/* tls: unused without CLONE_SETTLS */
	movl	$WEFT_NR_clone, %eax	/* clone(flags, newsp, parent_tid, child_tid, tls) */
	syscall
	testq	%rax, %rax
	jz	weft_kmodel_task_start
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	ret
	.cfi_endproc
	.size	weft_kmodel_clone_x86_64, .-weft_kmodel_clone_x86_64

	.globl	weft_kmodel_clone3_x86_64
	.hidden	weft_kmodel_clone3_x86_64
	.type	weft_kmodel_clone3_x86_64, @function
	.p2align 4
weft_kmodel_clone3_x86_64:
	.cfi_startproc
	WEFT_ENDBR
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	movq	%rdx, %r12		/* entry */
	movq	%rcx, %r13		/* arg */
	movl	$WEFT_NR_clone3, %eax	/* clone3(args, size) */
	syscall
	testq	%rax, %rax
	jz	weft_kmodel_task_start
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	ret
	.cfi_endproc
	.size	weft_kmodel_clone3_x86_64, .-weft_kmodel_clone3_x86_64

/* The child's first instructions: rsp = the new stack's top, r12 = entry, r13 = arg. */
	.type	weft_kmodel_task_start, @function
	.p2align 4
weft_kmodel_task_start:
	.cfi_startproc
	.cfi_undefined %rip
	xorl	%ebp, %ebp		/* end of the frame-pointer chain */
	andq	$-16, %rsp		/* the ABI's alignment at a call */
	movq	%r13, %rdi
	call	*%r12
	movl	$WEFT_NR_exit, %eax
	xorl	%edi, %edi
	syscall
	hlt				/* exit does not return */
	.cfi_endproc
	.size	weft_kmodel_task_start, .-weft_kmodel_task_start

#endif /* __x86_64__ && __ELF__ */

#if defined(__ELF__)
	.section .note.GNU-stack, "", %progbits
#endif
