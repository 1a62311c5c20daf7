/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Tiny flat guests built from the .S files in tests/guest/ (see meson.build there).
 * Each is linked at GUEST_BASE; guest_<name>_start/_end bound the image.
 *
 * Long-mode guests (lm64, user) start with a header of three quadwords:
 * the entry point, the handler for vectors 32..255 and the handler for
 * exceptions (0 = none).  tests/kvm-ioctls/tvm.c builds the page tables,
 * GDT, IDT and TSS around them.
 */
#ifndef CVMM_TESTS_GUESTS_H
#define CVMM_TESTS_GUESTS_H

#define GUEST_BASE 0x10000u

#define GUEST_DECL(n)                                   \
	extern const unsigned char guest_##n##_start[]; \
	extern const unsigned char guest_##n##_end[];

GUEST_DECL(rm16)
GUEST_DECL(lm64)
GUEST_DECL(user)

/* Ports and addresses the guests use (keep in sync with the .S files). */
#define GP_DONE		0x10 /* "step finished", value in al/eax */
#define GP_IN		0x11
#define GP_ECHO		0x12
#define GP_OUTS		0x13
#define GP_INS		0x14
#define GP_INS_ECHO	0x15
#define GP_MMIO_ECHO	0x16
#define GP_EXC		0xee /* exception handler reports here */
#define GP_IOEVENT	0x20
#define GP_COALESCED	0x30
#define GMMIO_BASE	0xd0000000u /* unmapped: MMIO exits */
#define GMMIO_COALESCED 0xd0001000u
#define GDATA		0x20000u /* data page: counters (interrupt count at +0) */

/* Commands of the ring-3 "user" guest (passed in rdi). */
enum user_cmd {
	UC_SPIN = 0, /* jmp . forever */
	UC_IOEVENT =
		1,    /* PIO 1/2/4 to GP_IOEVENT, MMIO 1/2/4/8 to GMMIO_BASE */
	UC_DIRTY = 2, /* write rsi + i * rdx for i < rcx, then out GP_DONE */
	UC_IRQWAIT = 3, /* report each change of the interrupt count (from 0) */
	UC_COUNT = 4,	/* rax++, xmm0 += 1 per step; out rax, GP_DONE */
	UC_COALESCED = 5, /* 3 MMIO writes + 2 PIO writes, then GP_DONE */
	UC_BENCH = 6,	  /* out GP_DONE forever */
	UC_INT3 = 7,	  /* int3, then out GP_DONE */
	UC_IN = 8,	  /* in eax from GP_IN; out eax, GP_DONE */
};

/* Commands of the ring-0 "lm64" guest (rdi).  Its header has a fourth
 * quadword, not used by the layout: a #BP handler that reports vector 3 on
 * GP_EXC, which a test may install in IDT slot 3 (guest_idt_gate()). */
enum lm64_cmd {
	LC_BASIC = 0, /* PIO, MMIO write/read, rep outsb, hlt */
	LC_MSR = 1,   /* rdmsr rsi -> out eax,GP_DONE; out edx,GP_IN; wrmsr */
	LC_HYPERCALL = 2, /* vmcall(rax=rsi, rbx=rdx, rcx=1), out eax,GP_DONE */
	LC_UD2 = 3,	  /* ud2 (triple fault without an IDT) */
	LC_INT3 = 4,	  /* int3; out 0x33, GP_DONE; hlt */
};

#endif
