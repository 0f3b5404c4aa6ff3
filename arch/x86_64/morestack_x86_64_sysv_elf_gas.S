// SPDX-License-Identifier: Apache-2.0
/*
 * morestack_x86_64_sysv_elf_gas.S — what __morestack and __morestack_non_split do for weft
 * goroutines.
 *
 *  The ABI names (__morestack, __morestack_non_split, __morestack_allocate_stack_space,
 *  __morestack_large_model) live in morestack_entry_x86_64_sysv_elf_gas.S, which the link
 *  must put in the executable itself: each is one `jmp` to its weft_x86_64_* counterpart
 *  here, which may live in libweft.so (that file says why).  The registers and the stack are
 *  exactly as the prologue left them when the code below starts.  The stack-limit word it
 *  serves is %fs:0x70 (arch/cpu.hpp): the running goroutine's limit, ~0 when sysmon asks it
 *  to yield, 0 on threads that run no goroutine (there no check ever fires, and
 *  __morestack_non_split always finds room).
 *
 *  The caller (GCC's prologue; Clang's is the same shape):
 *
 *      f:    cmp   %fs:0x70, %rsp           or   lea -FRAME(%rsp), %r11 ; cmp %fs:0x70, %r11
 *            jb    1f
 *      body: ...
 *      1:    mov   $FRAME, %r10d            the frame f wants
 *            mov   $ARGS, %r11d             bytes of f's stack arguments
 *            call  __morestack              (gold: __morestack_non_split, see below)
 *   R:       ret
 *   R+1:     jmp   body                     (varargs: lea 24(%rbp), %r11 first)
 *
 *  In:  r10, r11 as above; rdi rsi rdx rcx r8 r9, xmm0-7 and rax (varargs vector count, or a
 *       static chain moved out of r10) hold f's arguments; f's entry sp is rsp + 8.
 *  Out: f's body runs from R+1 with every argument register as it was — except that values
 *       pointing into a stack that was copied meanwhile point into the copy — and r10/r11
 *       clobbered (the prologue's own scratch).
 *
 *  The C++ half (runtime/sched/morestack.cpp), called on the goroutine stack inside the
 *  headroom the limit keeps free (g.hpp kStackHeadroom):
 *      uintptr_t weft_morestack(morestack_frame*);   0: f fits now (the stack was grown in
 *          place, or copied — then this frame moved with it and %rsp points into the copy);
 *          else the top of a new segment to run f on (stack_strategy::segmented, or a pinned
 *          stack past its slot)
 *      void weft_morestack_release(morestack_frame*);  f returned on a segment: leave it
 *      void weft_morestack_unwind(morestack_frame*);   an exception leaves f on a segment
 *
 *  Two ways back to f:
 *   - same stack (the common case): restore the registers, pop this frame, and return to R+1
 *     with f's entry sp — f then runs as if it had never been stopped, and returns straight to
 *     its caller.  (The return address is bumped in place and `ret` used, so the return stack
 *     buffer stays balanced: one misprediction.)
 *   - a new segment (libgcc's generic-morestack model): copy f's stack arguments to the
 *     segment, call R+1 from here, and when f returns, go back to the old stack, release the
 *     segment, and return to R — whose `ret` returns to f's caller.  An exception thrown
 *     through f reaches the landing pad below, which leaves the segment and resumes unwinding.
 *
 *  Frame (grows down; offsets in morestack_x86_64.hpp, static_assert'ed from C++):
 *
 *        24(%rbp)   f's stack arguments (r11 bytes)   what GCC's varargs code reads
 *        16(%rbp)   f's return address                <- f's entry sp
 *         8(%rbp)   R: return address into f's prologue
 *         0(%rbp)   the caller's %rbp                 <- %rbp
 *        -8(%rbp)   address of the save area
 *                   (0 or 8 bytes of alignment padding)
 *      save area, 16-byte aligned (WEFT_MS_*):        <- %rsp at the C++ calls
 *        +264  %rbp - save area      +256  R (copy)      +248  f's entry sp
 *        +200  segment record (48 bytes, C++ detail::segment)
 *        +192  r11: bytes of stack arguments             +184  r10: bytes of frame wanted
 *        +128  rdi rsi rdx rcx r8 r9 rax                  +0  xmm0 ... xmm7 (16 bytes each)
 *
 *  The area is aligned by hand: f's caller may have called it with %rsp 8 mod 16, which
 *  GCC's -fipa-stack-alignment does for callees that need no alignment.
 *
 *  Saved here, on the goroutine stack so that copystack's conservative scan adjusts them: the
 *  argument registers above.  Callee-saved registers are the C++ code's to keep (a copy
 *  adjusts them where the switch saved them).  Not saved: xmm8-15 and the upper halves of
 *  ymm/zmm (caller-saved, never arguments), x87 registers (the C++ half uses no long double,
 *  so an st(0) return value survives), MXCSR and the x87 control word (never changed), the
 *  signal mask (libgcc blocks signals while it allocates; weft allocates on g0).
 *  Not supported: a CET shadow stack (the return address is rewritten).
 *
 *  __morestack_non_split: gold (and LLD) route split-stack functions that call code without
 *  checks here, having either added 0x4000 to the frame in the check or — for the short
 *  `cmp %fs:0x70, %rsp` form — replaced the check with `stc`, so this entry runs on every
 *  call of such a function.  It therefore checks itself for FRAME + 0x4000 bytes and goes
 *  straight to the body when they are there; only otherwise does it ask __morestack for them.
 */
#include "morestack_x86_64.hpp"
#include "weft/detail/tcb.hpp"

#if defined(__x86_64__) && defined(__ELF__)

	.text
	.globl	weft_x86_64_morestack
	.type	weft_x86_64_morestack, @function
	.p2align 4
weft_x86_64_morestack:
.Lmorestack_start:
	.cfi_startproc
	.cfi_personality 0x9b, DW.ref.__gcc_personality_v0
	.cfi_lsda 0x1b, .Lmorestack_lsda
	pushq	%rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	movq	%rsp, %rbp
	.cfi_def_cfa_register %rbp
	/* To the unwinder this frame returns straight to f's caller, skipping f, which has
	   done nothing yet but call here: f's call site of __morestack is in no call-site table,
	   and the C++ personality would call terminate() there (libgcc does the same).  The
	   return address is f's (at CFA+0 = 16(%rbp)); the caller's sp is CFA+8. */
	.cfi_offset %rip, 0
	.cfi_escape 0x15, 7, 0x7f		/* DW_CFA_val_offset_sf: %rsp = CFA + 8 */
	subq	$WEFT_MS_SIZE+8, %rsp
	andq	$-16, %rsp			/* f may have been called with %rsp 8 mod 16 */
	movq	%rsp, WEFT_MS_FP_AREA(%rbp)

	movq	%rdi, WEFT_MS_RDI(%rsp)
	movq	%rsi, WEFT_MS_RSI(%rsp)
	movq	%rdx, WEFT_MS_RDX(%rsp)
	movq	%rcx, WEFT_MS_RCX(%rsp)
	movq	%r8, WEFT_MS_R8(%rsp)
	movq	%r9, WEFT_MS_R9(%rsp)
	movq	%rax, WEFT_MS_RAX(%rsp)
	movq	%r10, WEFT_MS_FRAME(%rsp)
	movq	%r11, WEFT_MS_ARGS(%rsp)
	movdqa	%xmm0, WEFT_MS_XMM0+0*16(%rsp)
	movdqa	%xmm1, WEFT_MS_XMM0+1*16(%rsp)
	movdqa	%xmm2, WEFT_MS_XMM0+2*16(%rsp)
	movdqa	%xmm3, WEFT_MS_XMM0+3*16(%rsp)
	movdqa	%xmm4, WEFT_MS_XMM0+4*16(%rsp)
	movdqa	%xmm5, WEFT_MS_XMM0+5*16(%rsp)
	movdqa	%xmm6, WEFT_MS_XMM0+6*16(%rsp)
	movdqa	%xmm7, WEFT_MS_XMM0+7*16(%rsp)
	leaq	16(%rbp), %rax
	movq	%rax, WEFT_MS_ENTRY_SP(%rsp)
	movq	WEFT_MS_FP_RET(%rbp), %rax
	movq	%rax, WEFT_MS_RET(%rsp)
	movq	%rbp, %rax
	subq	%rsp, %rax
	movq	%rax, WEFT_MS_RBP_OFF(%rsp)

	movq	%rsp, %rdi
	call	weft_morestack@PLT
	/* If the stack was copied, %rsp is in the copy; find %rbp from it (the conservative
	   scan adjusted the saved %rbp too, but this needs no help). */
	movq	WEFT_MS_RBP_OFF(%rsp), %rbp
	addq	%rsp, %rbp
	testq	%rax, %rax
	jnz	.Lsegment

	movdqa	WEFT_MS_XMM0+0*16(%rsp), %xmm0
	movdqa	WEFT_MS_XMM0+1*16(%rsp), %xmm1
	movdqa	WEFT_MS_XMM0+2*16(%rsp), %xmm2
	movdqa	WEFT_MS_XMM0+3*16(%rsp), %xmm3
	movdqa	WEFT_MS_XMM0+4*16(%rsp), %xmm4
	movdqa	WEFT_MS_XMM0+5*16(%rsp), %xmm5
	movdqa	WEFT_MS_XMM0+6*16(%rsp), %xmm6
	movdqa	WEFT_MS_XMM0+7*16(%rsp), %xmm7
	movq	WEFT_MS_RDI(%rsp), %rdi
	movq	WEFT_MS_RSI(%rsp), %rsi
	movq	WEFT_MS_RDX(%rsp), %rdx
	movq	WEFT_MS_RCX(%rsp), %rcx
	movq	WEFT_MS_R8(%rsp), %r8
	movq	WEFT_MS_R9(%rsp), %r9
	movq	WEFT_MS_RAX(%rsp), %rax
	.cfi_remember_state
	movq	%rbp, %rsp
	popq	%rbp
	.cfi_def_cfa %rsp, 8
	.cfi_restore %rbp
	.cfi_restore %rip
	.cfi_restore %rsp
	/* %rsp points at R.  Return to R+1 — or, for GCC's varargs sequence there, do its work
	   (f's stack arguments start at its entry sp + 8) and return past it. */
.Lto_body:
	movq	(%rsp), %r10
	cmpl	$WEFT_MS_VARARGS_LEA, 1(%r10)
	je	1f
	incq	(%rsp)
	ret
1:	addq	$5, (%rsp)
	leaq	16(%rsp), %r11
	ret

	/* Run f on a new segment whose top is in %rax; the C++ half has made it the goroutine's
	   stack and set the limit.  The save area stays on the old stack (-8(%rbp) finds it). */
.Lsegment:
	.cfi_restore_state
	movq	WEFT_MS_ARGS(%rsp), %rcx
	leaq	15(%rcx), %rdx
	andq	$-16, %rdx
	subq	%rdx, %rax
	leaq	WEFT_MS_FP_STACK_ARGS(%rbp), %rsi
	movq	%rax, %rdi
	rep movsb
	movq	%rsp, %r11			/* the save area */
	movq	%rax, %rsp			/* on the segment */
	movdqa	WEFT_MS_XMM0+0*16(%r11), %xmm0
	movdqa	WEFT_MS_XMM0+1*16(%r11), %xmm1
	movdqa	WEFT_MS_XMM0+2*16(%r11), %xmm2
	movdqa	WEFT_MS_XMM0+3*16(%r11), %xmm3
	movdqa	WEFT_MS_XMM0+4*16(%r11), %xmm4
	movdqa	WEFT_MS_XMM0+5*16(%r11), %xmm5
	movdqa	WEFT_MS_XMM0+6*16(%r11), %xmm6
	movdqa	WEFT_MS_XMM0+7*16(%r11), %xmm7
	movq	WEFT_MS_RDI(%r11), %rdi
	movq	WEFT_MS_RSI(%r11), %rsi
	movq	WEFT_MS_RDX(%r11), %rdx
	movq	WEFT_MS_RCX(%r11), %rcx
	movq	WEFT_MS_R8(%r11), %r8
	movq	WEFT_MS_R9(%r11), %r9
	movq	WEFT_MS_RAX(%r11), %rax
	movq	WEFT_MS_FP_RET(%rbp), %r10
	incq	%r10
.Lcall_body_begin:
	call	*%r10
.Lcall_body_end:
	/* f returned (on the segment; %rbp is this frame again).  Go back to the old stack,
	   keep f's return registers in the save area, and leave the segment. */
	movq	WEFT_MS_FP_AREA(%rbp), %rsp
	movq	%rax, WEFT_MS_RAX(%rsp)
	movq	%rdx, WEFT_MS_RDX(%rsp)
	movdqa	%xmm0, WEFT_MS_XMM0+0*16(%rsp)
	movdqa	%xmm1, WEFT_MS_XMM0+1*16(%rsp)
	movq	%rsp, %rdi
	call	weft_morestack_release@PLT
	movq	WEFT_MS_RBP_OFF(%rsp), %rbp
	addq	%rsp, %rbp
	movq	WEFT_MS_RAX(%rsp), %rax
	movq	WEFT_MS_RDX(%rsp), %rdx
	movdqa	WEFT_MS_XMM0+0*16(%rsp), %xmm0
	movdqa	WEFT_MS_XMM0+1*16(%rsp), %xmm1
	.cfi_remember_state
	movq	%rbp, %rsp
	popq	%rbp
	.cfi_def_cfa %rsp, 8
	.cfi_restore %rbp
	.cfi_restore %rip
	.cfi_restore %rsp
	ret				/* to R, whose ret returns to f's caller */

	/* Landing pad: an exception is leaving f, which ran on a segment.  %rsp is on the segment
	   (where it was at the call), %rbp is this frame, %rax the exception.  The segment stays
	   mapped (the C++ half keeps it as the goroutine's spare) because the unwinder goes on
	   running on it until it lands in an older frame. */
.Lunwind_pad:
	.cfi_restore_state
	movq	WEFT_MS_FP_AREA(%rbp), %rdi
	movq	%rax, WEFT_MS_RAX(%rdi)
	call	weft_morestack_unwind@PLT
	movq	WEFT_MS_FP_AREA(%rbp), %rdi
	movq	WEFT_MS_RAX(%rdi), %rdi
	call	_Unwind_Resume@PLT
	ud2
	.cfi_endproc
	.size	weft_x86_64_morestack, . - weft_x86_64_morestack

	.globl	weft_x86_64_morestack_non_split
	.type	weft_x86_64_morestack_non_split, @function
	.p2align 4
weft_x86_64_morestack_non_split:
	.cfi_startproc
	pushq	%rax
	.cfi_adjust_cfa_offset 8
	leaq	16(%rsp), %rax			/* f's entry sp */
	subq	%r10, %rax
	jb	2f
	subq	$WEFT_MS_NON_SPLIT_ROOM, %rax
	jb	2f
	cmpq	%fs:WEFT_TCB_LIMIT_SLOT, %rax
	jb	2f
	/* Room enough for f and what it calls: straight to the body. */
	popq	%rax
	.cfi_adjust_cfa_offset -8
	jmp	.Lto_body
2:	.cfi_adjust_cfa_offset 8
	popq	%rax
	.cfi_adjust_cfa_offset -8
	addq	$WEFT_MS_NON_SPLIT_ROOM, %r10
	jmp	.Lmorestack_start
	.cfi_endproc
	.size	weft_x86_64_morestack_non_split, . - weft_x86_64_morestack_non_split

	/* void *__morestack_allocate_stack_space(size_t size): what a split-stack function
	   calls for alloca or a variable-length array that does not fit above the limit:

	       lea  -SIZE(%rsp), %rax ; cmp %fs:0x70, %rax ; jae 1f
	       call __morestack_allocate_stack_space    <- here; the block is %rax
	       ...
	   1:  mov  %rax, %rsp                          <- the path that fits: the block is the
	                                                   new stack bottom

	   libgcc returns heap memory (leaked on the initial stack).  Here the block comes from
	   the stack itself, as on the path that fits: weft_morestack_alloca makes room below
	   the caller (growing or copying the stack), and this function returns with the caller's
	   stack pointer lowered by SIZE (rounded to 16) and %rax = that stack pointer.  The
	   caller cannot tell the difference: after a dynamic allocation GCC addresses its frame
	   through %rbp, since %rsp differs between the two paths anyway.  The block is then part
	   of the used stack, so a later copy moves it and adjusts pointers into it. */
	.globl	weft_x86_64_allocate_stack_space
	.type	weft_x86_64_allocate_stack_space, @function
	.p2align 4
weft_x86_64_allocate_stack_space:
	.cfi_startproc
	pushq	%rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	movq	%rsp, %rbp
	.cfi_def_cfa_register %rbp
	addq	$15, %rdi
	andq	$-16, %rdi
	subq	$16, %rsp
	andq	$-16, %rsp			/* the caller may run 8 mod 16 (see __morestack) */
	movq	%rdi, (%rsp)			/* the rounded size */
	movq	%rbp, %rax
	subq	%rsp, %rax
	movq	%rax, 8(%rsp)			/* %rbp - %rsp */
	leaq	16(%rbp), %rsi			/* the caller's sp after the return */
	call	weft_morestack_alloca@PLT
	movq	8(%rsp), %rbp			/* the stack may have been copied: re-derive */
	addq	%rsp, %rbp
	movq	8(%rbp), %r11			/* return address */
	leaq	16(%rbp), %rax
	subq	(%rsp), %rax			/* the caller's sp, lowered by the block */
	movq	(%rbp), %rbp
	.cfi_def_cfa %rax, 0
	.cfi_register %rip, %r11
	.cfi_restore %rbp
	movq	%rax, %rsp
	.cfi_def_cfa %rsp, 0
	pushq	%r11				/* just below the block; ret pops it */
	.cfi_def_cfa %rsp, 8
	.cfi_offset %rip, -8
	ret
	.cfi_endproc
	.size	weft_x86_64_allocate_stack_space, . - weft_x86_64_allocate_stack_space

	/* The large code model's entry: r10 = args << 32 | frame. */
	.globl	weft_x86_64_morestack_large_model
	.type	weft_x86_64_morestack_large_model, @function
	.p2align 4
weft_x86_64_morestack_large_model:
	.cfi_startproc
	movq	%r10, %r11
	andl	$0xffffffff, %r10d
	shrq	$32, %r11
	jmp	.Lmorestack_start
	.cfi_endproc
	.size	weft_x86_64_morestack_large_model, . - weft_x86_64_morestack_large_model

	/* The call-site table for the landing pad (LSDA, read by __gcc_personality_v0). */
	.section .gcc_except_table, "a", @progbits
	.p2align 2
.Lmorestack_lsda:
	.byte	0xff				/* @LPStart: omitted (function start) */
	.byte	0xff				/* @TType: omitted (cleanup only) */
	.byte	0x1				/* call sites: uleb128 */
	.uleb128 .Lcall_sites_end - .Lcall_sites
.Lcall_sites:
	.uleb128 .Lcall_body_begin - .Lmorestack_start
	.uleb128 .Lcall_body_end - .Lcall_body_begin
	.uleb128 .Lunwind_pad - .Lmorestack_start
	.uleb128 0				/* action: cleanup */
.Lcall_sites_end:

	.hidden	DW.ref.__gcc_personality_v0
	.weak	DW.ref.__gcc_personality_v0
	.section .data.rel.local.DW.ref.__gcc_personality_v0, "awG", @progbits, DW.ref.__gcc_personality_v0, comdat
	.p2align 3
	.type	DW.ref.__gcc_personality_v0, @object
	.size	DW.ref.__gcc_personality_v0, 8
DW.ref.__gcc_personality_v0:
	.quad	__gcc_personality_v0

	/* No .note.GNU-split-stack here: no split-stack code calls this file directly (the entry
	   file jumps here through the GOT), and its own calls need no linker adjustment. */
#endif /* __x86_64__ && __ELF__ */

	.section .note.GNU-stack, "", @progbits
