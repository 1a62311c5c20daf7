/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CPU and memory layout for the 64-bit test guests (lm64, user): identity
 * page tables for 4 GiB, a GDT with ring-0 and ring-3 segments, a TSS with
 * rsp0 and an all-ports I/O bitmap, and an IDT built from the image header.
 * No test framework here: used by the kvm tests and the benchmark alike.
 */
#ifndef CVMM_TESTS_GUEST_LAYOUT_H
#define CVMM_TESTS_GUEST_LAYOUT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guests.h"

#define GL_PML4	     0x1000u
#define GL_PDPT	     0x2000u
#define GL_PD	     0x3000u /* 4 pages: 2 MiB pages identity-mapping 4 GiB */
#define GL_GDT	     0x7000u
#define GL_IDT	     0x8000u
#define GL_TSS	     0x9000u /* 104 bytes + 8 KiB I/O bitmap + 1 */
#define GL_TSS_LIMIT (0x68u + 8192u)
#define GL_STACK0    0x30000u /* ring-0 stack top (TSS.rsp0) */
#define GL_STACK3    0x40000u /* ring-3 stack top */
#define GL_MIN_RAM   0x80000u

#define GL_SEL_CODE0 0x08
#define GL_SEL_DATA0 0x10
#define GL_SEL_DATA3 0x1b
#define GL_SEL_CODE3 0x23
#define GL_SEL_TSS   0x28

/*
 * Write the tables into guest RAM (mem, at least GL_MIN_RAM bytes, with the
 * image already at GUEST_BASE) and fill sregs (starting from the vCPU's
 * current ones) and regs for entering the image at ring 0 or ring 3 with
 * IOPL 3, IF = irq_on and rdi = cmd.  with_idt false leaves the IDT empty.
 */
void guest_layout_long(uint8_t *mem, bool ring3, bool irq_on, bool with_idt,
		       uint64_t cmd, struct kvm_sregs *sregs,
		       struct kvm_regs *regs);

/* Write a 64-bit interrupt gate (DPL 3, ring-0 code segment) for vector vec
 * (< 256) at GL_IDT in mem.  guest_layout_long() uses it for the header's
 * handlers; a test may add one after it (the IDT must be on: with_idt). */
void guest_idt_gate(uint8_t *mem, unsigned vec, uint64_t handler);

#endif
