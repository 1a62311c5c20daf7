/*
 * 64-bit ring-0 guest (paging, GDT, IDT, TSS set up by the test).
 * Ring-0 code is emulated on some KVM implementations, so every path is a
 * handful of instructions.  Command in %rdi (enum lm64_cmd in guests.h).
 */
	.code64
	.section .text.head, "ax"
	.globl _start
_start:
	.quad	entry		/* header: entry */
	.quad	0		/* no interrupt handler */
	.quad	0		/* no exception handler: faults triple-fault */
	.quad	bp_handler	/* not in the IDT unless a test installs it */

	.text
entry:
	cmp	$1, %rdi
	je	msr
	cmp	$2, %rdi
	je	hypercall
	cmp	$3, %rdi
	je	undefined
	cmp	$4, %rdi
	je	breakpoint
basic:
	mov	$0x64, %al
	out	%al, $0x10
	movabs	$0x1122334455667788, %rax
	mov	%rax, 0xd0000000	/* MMIO write, 8 bytes */
	mov	0xd0000008, %eax	/* MMIO read, 4 bytes */
	out	%eax, $0x11
	lea	msg(%rip), %rsi
	mov	$4, %ecx
	mov	$0x12, %dx
	rep outsb
	hlt
	jmp	basic
msr:
	mov	%esi, %ecx
	rdmsr
	out	%eax, $0x10
	mov	%edx, %eax
	out	%eax, $0x11
	mov	$0xdead, %eax
	mov	$0xbeef, %edx
	wrmsr
	hlt
	jmp	msr
hypercall:
	mov	%rsi, %rax
	mov	%rdx, %rbx
	mov	$1, %ecx
	xor	%edx, %edx
	vmcall
	out	%eax, $0x10
	hlt
	jmp	hypercall
undefined:
	ud2
breakpoint:
	int3
	mov	$0x33, %al
	out	%al, $0x10
	hlt
	jmp	breakpoint
bp_handler:			/* vector 3 reached the guest's IDT */
	mov	$3, %al
	out	%al, $0xee
	hlt
	jmp	bp_handler
	.section .rodata
msg:
	.ascii	"long"
	.section .note.GNU-stack, "", @progbits
