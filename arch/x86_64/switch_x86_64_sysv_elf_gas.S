// SPDX-License-Identifier: Apache-2.0
/* switch_x86_64_sysv_elf_gas.S — the direct goroutine-to-goroutine switch (x86_64, SysV, ELF).
 *
 * Contract (C declaration in runtime/sched/switch.cpp):
 *
 *   void weft_switch_x86_64(void** save_ctx,            rdi  where the leaving side's context goes
 *                           std::uint32_t* status,      rsi  the leaving goroutine's status word
 *                           std::uint32_t new_status,   edx  stored there once the context is saved
 *                           void* to_ctx);              rcx  the context to resume
 *
 * It saves the caller's callee-saved state on the caller's stack, stores the stack pointer in
 * *save_ctx, then stores new_status in *status — in that order, with plain x86 stores, which
 * the other CPUs see in program order (TSO): whoever reads the new status with an acquire load
 * also sees the saved context.  That store is the publication: a goroutine that is already on
 * a run queue with status `running` may be taken by a stealing M, which waits until the status
 * says `runnable` before resuming it (runtime/sched/sched.cpp, wait_switched_out).  Then it
 * resumes to_ctx.  Nothing after the status store touches the leaving stack.
 *
 * The context frame is exactly Boost.Context's (boost/context, asm/jump_x86_64_sysv_elf_gas.S
 * of 1.74, which this mirrors so that either side can resume what the other saved):
 *
 *     ctx + 0x00  MXCSR (4 bytes), x87 control word (2 bytes)
 *     ctx + 0x08  r12     ctx + 0x10  r13     ctx + 0x18  r14
 *     ctx + 0x20  r15     ctx + 0x28  rbx     ctx + 0x30  rbp
 *     ctx + 0x38  return address
 *
 * A context saved by jump_fcontext / ontop_fcontext resumes here as if its jump had returned;
 * one saved here resumes there as if this call had returned.  Like jump_fcontext, the resumed
 * side gets rax = rdi = the context just saved and rdx = 0 (no transfer data): a fresh
 * make_fcontext context (whose return address is Boost's trampoline) starts its function with
 * transfer_t{saved ctx, nullptr}.  weft's goroutine entry reads neither.
 *
 * Clobbers: the caller-saved registers, as any call may.  Not touched: the shadow stack (CET
 * is off in weft's builds, as in Debian's Boost 1.74), the signal mask, %fs.
 *
 * CFI: both frames — the one built on the leaving stack and the one popped from the resumed
 * stack — have the same layout, so one set of rules describes the frame on whichever stack rsp
 * points at: CFA = rsp + 0x40 while a frame is on the stack, the callee-saved registers at the
 * offsets above.  A debugger stopped inside sees a sane caller on either side.
 */
#if defined(__x86_64__) && defined(__ELF__)

	.text
	.globl	weft_switch_x86_64
	.hidden	weft_switch_x86_64
	.type	weft_switch_x86_64, @function
	.align	16
weft_switch_x86_64:
	.cfi_startproc
	leaq	-0x38(%rsp), %rsp
	.cfi_adjust_cfa_offset 0x38
	stmxcsr	(%rsp)
	fnstcw	0x4(%rsp)
	movq	%r12, 0x8(%rsp)
	.cfi_rel_offset r12, 0x8
	movq	%r13, 0x10(%rsp)
	.cfi_rel_offset r13, 0x10
	movq	%r14, 0x18(%rsp)
	.cfi_rel_offset r14, 0x18
	movq	%r15, 0x20(%rsp)
	.cfi_rel_offset r15, 0x20
	movq	%rbx, 0x28(%rsp)
	.cfi_rel_offset rbx, 0x28
	movq	%rbp, 0x30(%rsp)
	.cfi_rel_offset rbp, 0x30

	movq	%rsp, %rax		/* the saved context */
	movq	%rsp, (%rdi)		/* 1. publish the context ... */
	movl	%edx, (%rsi)		/* 2. ... then the status (TSO keeps the order) */

	movq	%rcx, %rsp		/* the resumed stack: the same frame layout, the same CFI */
	movq	0x38(%rsp), %r8
	ldmxcsr	(%rsp)
	fldcw	0x4(%rsp)
	movq	0x8(%rsp), %r12
	movq	0x10(%rsp), %r13
	movq	0x18(%rsp), %r14
	movq	0x20(%rsp), %r15
	movq	0x28(%rsp), %rbx
	movq	0x30(%rsp), %rbp
	leaq	0x40(%rsp), %rsp	/* pops the frame and the return address */
	.cfi_adjust_cfa_offset -0x40
	.cfi_register 16, r8		/* the return address column: in r8 until the jump */
	.cfi_restore r12
	.cfi_restore r13
	.cfi_restore r14
	.cfi_restore r15
	.cfi_restore rbx
	.cfi_restore rbp
	xorl	%edx, %edx		/* transfer_t.data = nullptr */
	movq	%rax, %rdi		/* transfer_t.fctx for a fresh context's function */
	jmp	*%r8
	.cfi_endproc
	.size	weft_switch_x86_64, .-weft_switch_x86_64

#endif /* __x86_64__ && __ELF__ */

	.section .note.GNU-stack, "", @progbits
