/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "layout.h"

#include <string.h>

static void put64(uint8_t *mem, uint64_t gpa, uint64_t v)
{
	memcpy(mem + gpa, &v, 8);
}

static uint64_t get64(const uint8_t *mem, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, mem + gpa, 8);
	return v;
}

void guest_idt_gate(uint8_t *mem, unsigned vec, uint64_t handler)
{
	uint64_t lo, hi;

	/* 64-bit interrupt gate, DPL 3 (so int3 from ring 3 works), P. */
	lo = (handler & 0xffff) | ((uint64_t)GL_SEL_CODE0 << 16) |
	     (0xeeull << 40) | (((handler >> 16) & 0xffff) << 48);
	hi = handler >> 32;
	put64(mem, GL_IDT + vec * 16, lo);
	put64(mem, GL_IDT + vec * 16 + 8, hi);
}

static void seg64(struct kvm_segment *s, uint16_t sel, bool code, int dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->present = 1;
	s->s = 1;
	s->dpl = (uint8_t)dpl;
	s->g = 1;
	if (code) {
		s->type = 11;
		s->l = 1;
	} else {
		s->type = 3;
		s->db = 1;
	}
}

void guest_layout_long(uint8_t *mem, bool ring3, bool irq_on, bool with_idt,
		       uint64_t cmd, struct kvm_sregs *sregs,
		       struct kvm_regs *regs)
{
	uint64_t entry, irq, exc;
	unsigned i;

	/* Identity map of 4 GiB with 2 MiB pages, user-accessible. */
	put64(mem, GL_PML4, GL_PDPT | 7);
	for (i = 0; i < 4; i++)
		put64(mem, GL_PDPT + i * 8, (GL_PD + i * 0x1000u) | 7);
	for (i = 0; i < 2048; i++)
		put64(mem, GL_PD + i * 8, ((uint64_t)i << 21) | 0x87);
	/* GDT: null, code0, data0, data3, code3, TSS (16 bytes) */
	put64(mem, GL_GDT + 0x00, 0);
	put64(mem, GL_GDT + 0x08, 0x00af9a000000ffffull);
	put64(mem, GL_GDT + 0x10, 0x00cf92000000ffffull);
	put64(mem, GL_GDT + 0x18, 0x00cff2000000ffffull);
	put64(mem, GL_GDT + 0x20, 0x00affa000000ffffull);
	put64(mem, GL_GDT + 0x28,
	      0x0000890000000000ull | GL_TSS_LIMIT |
		      ((uint64_t)(GL_TSS & 0xffffff) << 16));
	put64(mem, GL_GDT + 0x30, 0);
	/*
	 * TSS: rsp0 and an I/O permission bitmap allowing every port.  IOPL 3
	 * alone should let ring 3 do port I/O, but PVM ignores the guest's
	 * IOPL at ring 3 and only honours the TSS bitmap; with both, ring-3
	 * port I/O works on either kind of KVM.
	 */
	memset(mem + GL_TSS, 0, GL_TSS_LIMIT + 1);
	put64(mem, GL_TSS + 4, GL_STACK0);
	mem[GL_TSS + 0x66] = 0x68;
	mem[GL_TSS + GL_TSS_LIMIT] = 0xff; /* bitmap terminator */
	/* IDT from the image header */
	entry = get64(mem, GUEST_BASE);
	irq = get64(mem, GUEST_BASE + 8);
	exc = get64(mem, GUEST_BASE + 16);
	memset(mem + GL_IDT, 0, 4096);
	for (i = 0; i < 256 && with_idt; i++) {
		uint64_t h = i < 32 ? exc : irq;

		if (h)
			guest_idt_gate(mem, i, h);
	}

	seg64(&sregs->cs, ring3 ? GL_SEL_CODE3 : GL_SEL_CODE0, true,
	      ring3 ? 3 : 0);
	seg64(&sregs->ss, ring3 ? GL_SEL_DATA3 : GL_SEL_DATA0, false,
	      ring3 ? 3 : 0);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss;
	memset(&sregs->tr, 0, sizeof(sregs->tr));
	sregs->tr.selector = GL_SEL_TSS;
	sregs->tr.base = GL_TSS;
	sregs->tr.limit = GL_TSS_LIMIT;
	sregs->tr.type = 11;
	sregs->tr.present = 1;
	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->ldt.type = 2;
	sregs->ldt.present = 1;
	sregs->ldt.limit = 0xffff;
	sregs->gdt.base = GL_GDT;
	sregs->gdt.limit = 0x37;
	sregs->idt.base = GL_IDT;
	sregs->idt.limit = with_idt ? 0xfff : 0;
	sregs->cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sregs->cr3 = GL_PML4;
	sregs->cr4 = 0x620;  /* OSXMMEXCPT OSFXSR PAE */
	sregs->efer = 0x500; /* LMA LME */

	memset(regs, 0, sizeof(*regs));
	regs->rip = entry;
	regs->rsp = ring3 ? GL_STACK3 : GL_STACK0;
	regs->rflags = 2 | (ring3 ? 0x3000 : 0) | (irq_on ? 0x200 : 0);
	regs->rdi = cmd;
}
