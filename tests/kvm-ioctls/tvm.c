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

void tvm_setup_long(struct tvm *t, struct kvm_vcpu_obj *vcpu, bool ring3,
		    bool irq_on, bool with_idt, uint64_t cmd)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	ck_assert_uint_ge(t->mem_size, GL_MIN_RAM);
	ck_assert_int_eq(kvm_vcpu_get_sregs(vcpu, &sregs), 0);
	guest_layout_long(t->mem, ring3, irq_on, with_idt, cmd, &sregs, &regs);
	ck_assert_int_eq(kvm_vcpu_set_sregs(vcpu, &sregs), 0);
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

uint32_t tvm_io_value(const struct kvm_exit_info *x)
{
	uint32_t v = 0;

	memcpy(&v, x->io.data, x->io.size <= 4 ? x->io.size : 4);
	return v;
}

uint64_t tvm_irq_count(const struct tvm *t)
{
	uint64_t v;

	memcpy(&v, t->mem + GDATA, 8);
	return v;
}
