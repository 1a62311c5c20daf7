/*
 * Real-mode guest, loaded at 0x10000 and run with CS = DS = ES = 0x1000,
 * IP = 0.  Only relative jumps and label differences: no absolute address.
 */
	.code16
	.section .text.head, "ax"
	.globl _start
_start:
	mov	$0x42, %al
	out	%al, $0x10		/* PIO out: 0x42 */
	in	$0x11, %al		/* PIO in: the test answers */
	out	%al, $0x12		/* echo it back */
	/* rep outsb: the 5-byte string to port 0x13 */
	mov	$(msg - _start), %si
	mov	$5, %cx
	mov	$0x13, %dx
	cld
	rep outsb
	/* rep insb: 4 bytes from port 0x14 into buf ... */
	mov	$(buf - _start), %di
	mov	$4, %cx
	mov	$0x14, %dx
	rep insb
	/* ... and back out on port 0x15 */
	mov	$(buf - _start), %si
	mov	$4, %cx
	mov	$0x15, %dx
	rep outsb
	/* MMIO: byte write then word read at 0xA0000 (unmapped) */
	mov	$0xa000, %ax
	mov	%ax, %es
	movb	$0x5a, %es:0
	movw	%es:2, %ax
	mov	$0x16, %dx
	out	%ax, %dx
	hlt
	jmp	_start
msg:
	.ascii	"hello"
buf:
	.long	0
	.section .note.GNU-stack, "", @progbits
