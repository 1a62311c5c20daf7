/* Wraps a flat guest binary as read-only data in a test executable.
 * Built with -DGUEST_NAME=x -DGUEST_BIN="path". */
#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT3(a, b, c) a##b##c
#define SYM(n, s) CAT3(guest_, n, s)
	.section .rodata, "a"
	.balign 16
	.globl SYM(GUEST_NAME, _start)
	.globl SYM(GUEST_NAME, _end)
SYM(GUEST_NAME, _start):
	.incbin STR(GUEST_BIN)
SYM(GUEST_NAME, _end):
	.section .note.GNU-stack, "", @progbits
