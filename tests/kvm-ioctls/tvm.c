/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "tvm.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Shared with Check's forked test processes, so main() can report. */
static int *nskips;

void tvm_skips_init(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	nskips = p == MAP_FAILED ? NULL : p;
}

void tvm_skip(const char *name, const char *why)
{
	printf("SKIP %s: %s\n", name, why);
	fflush(stdout);
	if (nskips)
		__atomic_add_fetch(nskips, 1, __ATOMIC_SEQ_CST);
}

int tvm_skips(void)
{
	return nskips ? *nskips : 0;
}

void tvm_init(struct tvm *t, size_t mem_size, void (*pre_vcpu)(struct tvm *t))
{
	int r;

	memset(t, 0, sizeof(*t));
	r = kvm_sys_create(&t->sys);
	ck_assert_int_eq(r, 0);
	r = kvm_vm_create(t->sys, 0, &t->vm);
	ck_assert_int_eq(r, 0);
	/* Intel needs these below 4 GiB and outside RAM; harmless on AMD. */
	ck_assert_int_eq(kvm_vm_set_tss_addr(t->vm, 0xfffbd000), 0);
	ck_assert_int_eq(kvm_vm_set_identity_map_addr(t->vm, 0xfffbc000), 0);
	t->mem_size = mem_size;
	t->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(t->mem, MAP_FAILED);
	r = kvm_vm_set_user_memory_region(t->vm, 0, 0, 0, mem_size, t->mem);
	ck_assert_int_eq(r, 0);
	if (pre_vcpu)
		pre_vcpu(t);
	r = kvm_vcpu_create(t->vm, 0, &t->vcpu);
	ck_assert_int_eq(r, 0);
}

void tvm_fini(struct tvm *t)
{
	kvm_vcpu_destroy(t->vcpu);
	kvm_vm_destroy(t->vm);
	kvm_sys_destroy(t->sys);
	if (t->mem)
		munmap(t->mem, t->mem_size);
	memset(t, 0, sizeof(*t));
}

void tvm_load(struct tvm *t, const unsigned char *start,
	      const unsigned char *end)
{
	size_t n = (size_t)(end - start);

	ck_assert_uint_le(GUEST_BASE + n, t->mem_size);
	memcpy(t->mem + GUEST_BASE, start, n);
}

static void seg_real(struct kvm_segment *s, uint16_t sel)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->limit = 0xffff;
	s->present = 1;
	s->s = 1;
	s->type = 3; /* data: read/write, accessed */
}

void tvm_setup_real(struct tvm *t)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint16_t sel = GUEST_BASE >> 4;

	ck_assert_int_eq(kvm_vcpu_get_sregs(t->vcpu, &sregs), 0);
	seg_real(&sregs.cs, sel);
	sregs.cs.type = 11; /* code: execute/read, accessed */
	seg_real(&sregs.ds, sel);
	seg_real(&sregs.es, sel);
	seg_real(&sregs.ss, sel);
	sregs.cr0 &= ~1ull;
	ck_assert_int_eq(kvm_vcpu_set_sregs(t->vcpu, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rsp = 0xfff0;
	regs.rflags = 2;
	ck_assert_int_eq(kvm_vcpu_set_regs(t->vcpu, &regs), 0);
}

static void put64(struct tvm *t, uint64_t gpa, uint64_t v)
{
	memcpy(t->mem + gpa, &v, 8);
}

static uint64_t get64(const struct tvm *t, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, t->mem + gpa, 8);
	return v;
}

static void idt_gate(struct tvm *t, unsigned vec, uint64_t handler)
{
	uint8_t *g = t->mem + TVM_IDT + vec * 16;
	uint64_t lo, hi;

	/* 64-bit interrupt gate, DPL 3 (so int3 from ring 3 works), P. */
	lo = (handler & 0xffff) | ((uint64_t)SEL_CODE0 << 16) |
	     (0xeeull << 40) | (((handler >> 16) & 0xffff) << 48);
	hi = handler >> 32;
	memcpy(g, &lo, 8);
	memcpy(g + 8, &hi, 8);
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

void tvm_setup_long(struct tvm *t, struct kvm_vcpu_obj *vcpu, bool ring3,
		    bool irq_on, bool with_idt, uint64_t cmd)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t entry, irq, exc;
	unsigned i;

	/* Identity map of 4 GiB with 2 MiB pages, user-accessible. */
	put64(t, TVM_PML4, TVM_PDPT | 7);
	for (i = 0; i < 4; i++)
		put64(t, TVM_PDPT + i * 8, (TVM_PD + i * 0x1000u) | 7);
	for (i = 0; i < 2048; i++)
		put64(t, TVM_PD + i * 8, ((uint64_t)i << 21) | 0x87);
	/* GDT */
	put64(t, TVM_GDT + 0x00, 0);
	put64(t, TVM_GDT + 0x08, 0x00af9a000000ffffull);
	put64(t, TVM_GDT + 0x10, 0x00cf92000000ffffull);
	put64(t, TVM_GDT + 0x18, 0x00cff2000000ffffull);
	put64(t, TVM_GDT + 0x20, 0x00affa000000ffffull);
	put64(t, TVM_GDT + 0x28,
	      0x0000890000000000ull | TVM_TSS_LIMIT |
		      ((uint64_t)(TVM_TSS & 0xffffff) << 16));
	put64(t, TVM_GDT + 0x30, 0);
	/*
	 * TSS: rsp0 and an I/O permission bitmap allowing every port.  IOPL 3
	 * alone should let ring 3 do port I/O, but PVM ignores the guest's
	 * IOPL at ring 3 and only honours the TSS bitmap; with both, ring-3
	 * port I/O works on either kind of KVM.
	 */
	memset(t->mem + TVM_TSS, 0, TVM_TSS_LIMIT + 1);
	put64(t, TVM_TSS + 4, TVM_STACK0);
	t->mem[TVM_TSS + 0x66] = 0x68;
	t->mem[TVM_TSS + TVM_TSS_LIMIT] = 0xff; /* bitmap terminator */
	/* IDT from the image header */
	entry = get64(t, GUEST_BASE);
	irq = get64(t, GUEST_BASE + 8);
	exc = get64(t, GUEST_BASE + 16);
	memset(t->mem + TVM_IDT, 0, 4096);
	for (i = 0; i < 256 && with_idt; i++) {
		uint64_t h = i < 32 ? exc : irq;

		if (h)
			idt_gate(t, i, h);
	}

	ck_assert_int_eq(kvm_vcpu_get_sregs(vcpu, &sregs), 0);
	seg64(&sregs.cs, ring3 ? SEL_CODE3 : SEL_CODE0, true, ring3 ? 3 : 0);
	seg64(&sregs.ss, ring3 ? SEL_DATA3 : SEL_DATA0, false, ring3 ? 3 : 0);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = SEL_TSS;
	sregs.tr.base = TVM_TSS;
	sregs.tr.limit = TVM_TSS_LIMIT;
	sregs.tr.type = 11;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.type = 2;
	sregs.ldt.present = 1;
	sregs.ldt.limit = 0xffff;
	sregs.gdt.base = TVM_GDT;
	sregs.gdt.limit = 0x37;
	sregs.idt.base = TVM_IDT;
	sregs.idt.limit = with_idt ? 0xfff : 0;
	sregs.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sregs.cr3 = TVM_PML4;
	sregs.cr4 = 0x620;  /* OSXMMEXCPT OSFXSR PAE */
	sregs.efer = 0x500; /* LMA LME */
	ck_assert_int_eq(kvm_vcpu_set_sregs(vcpu, &sregs), 0);

	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rsp = ring3 ? TVM_STACK3 : TVM_STACK0;
	regs.rflags = 2 | (ring3 ? 0x3000 : 0) | (irq_on ? 0x200 : 0);
	regs.rdi = cmd;
	ck_assert_int_eq(kvm_vcpu_set_regs(vcpu, &regs), 0);
}

void tvm_run(struct tvm *t, struct kvm_exit_info *x)
{
	int i, r;

	for (i = 0; i < 1000; i++) {
		r = kvm_vcpu_run(t->vcpu, x);
		ck_assert_msg(r == 0, "kvm_vcpu_run: %d", r);
		if (x->reason != KVM_EXIT_INTR)
			return;
	}
	ck_abort_msg("too many EINTR exits");
}

uint32_t tvm_expect_out(struct tvm *t, uint16_t port)
{
	struct kvm_exit_info x;
	uint32_t v = 0;

	tvm_run(t, &x);
	ck_assert_msg(x.reason == KVM_EXIT_IO, "exit %s (%u), wanted IO",
		      kvm_exit_reason_name(x.reason), x.reason);
	ck_assert(!x.io.in);
	ck_assert_uint_eq(x.io.port, port);
	ck_assert_uint_eq(x.io.count, 1);
	memcpy(&v, x.io.data, x.io.size);
	return v;
}

uint64_t tvm_irq_count(const struct tvm *t)
{
	return get64(t, GDATA);
}
