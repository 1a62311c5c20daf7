/*
 * 64-bit guest that starts at ring 3 with IOPL 3 (set up by the test), so
 * its loops run natively even where ring 0 is emulated.  Command in %rdi
 * (enum user_cmd in guests.h).  The interrupt handler (ring 0) counts into
 * the data page at 0x20000 and EOIs the local APIC; the exception handler
 * reports on port 0xee.
 */
	.code64
	.section .text.head, "ax"
	.globl _start
_start:
	.quad	entry
	.quad	irq
	.quad	exception

	.text
entry:
	cmp	$1, %rdi
	je	ioevent
	cmp	$2, %rdi
	je	dirty
	cmp	$3, %rdi
	je	irqwait
	cmp	$4, %rdi
	je	count
	cmp	$5, %rdi
	je	coalesced
	cmp	$6, %rdi
	je	bench
	cmp	$7, %rdi
	je	breakpoint
	cmp	$8, %rdi
	je	input
spin:
	jmp	spin

ioevent:
	mov	$0x20, %dx
	mov	$0x11, %al
	out	%al, %dx		/* 1 byte */
	mov	$0x2222, %ax
	out	%ax, %dx		/* 2 bytes */
	mov	$0x44444444, %eax
	out	%eax, %dx		/* 4 bytes */
	mov	$0xd0000000, %ebx
	movb	$0x11, (%rbx)		/* MMIO 1 */
	movw	$0x2222, (%rbx)		/* MMIO 2 */
	movl	$0x44444444, (%rbx)	/* MMIO 4 */
	movabs	$0x8888888888888888, %rax
	mov	%rax, (%rbx)		/* MMIO 8 */
	xor	%eax, %eax
	out	%al, $0x10
	jmp	ioevent

dirty:	/* rsi base, rdx stride in bytes, rcx count */
	mov	%rsi, %rbx
1:	test	%rcx, %rcx
	jz	2f
	movb	$1, (%rbx)
	add	%rdx, %rbx
	dec	%rcx
	jmp	1b
2:	xor	%eax, %eax
	out	%al, $0x10
	jmp	spin

irqwait:
	xor	%ebx, %ebx		/* last count reported */
1:	movabs	$3000000000, %rcx	/* bounded wait: a few seconds */
2:	cmp	0x20000, %rbx
	jne	3f
	dec	%rcx
	jnz	2b
	mov	$0xffffffff, %eax	/* timed out */
	out	%eax, $0x10
	jmp	1b
3:	mov	0x20000, %rbx
	mov	%ebx, %eax
	out	%eax, $0x10
	jmp	1b

count:
	mov	$1, %eax
	movq	%rax, %xmm1
	xor	%eax, %eax
	pxor	%xmm0, %xmm0
1:	inc	%rax
	paddq	%xmm1, %xmm0
	out	%eax, $0x10
	jmp	1b

coalesced:
	mov	$0xd0001000, %ebx
	movl	$0xaabbccdd, (%rbx)
	movw	$0x1234, 8(%rbx)
	movb	$0x56, 16(%rbx)
	mov	$0x30, %dx
	mov	$0x77, %al
	out	%al, %dx
	mov	$0x99, %al
	out	%al, %dx
	xor	%eax, %eax
	out	%al, $0x10
	jmp	spin

bench:
	out	%al, $0x10
	jmp	bench

input:
	in	$0x11, %eax
	out	%eax, $0x10
	jmp	spin

breakpoint:
	int3
	mov	$0x33, %al
	out	%al, $0x10
	jmp	spin

	/* ring 0, kept tiny: count, EOI, return */
irq:
	push	%rax
	lock incq 0x20000
	mov	$0xfee000b0, %eax
	movl	$0, (%rax)
	pop	%rax
	iretq

exception:
	mov	$0xee, %dx
	out	%al, %dx
	hlt
	jmp	exception
	.section .note.GNU-stack, "", @progbits
