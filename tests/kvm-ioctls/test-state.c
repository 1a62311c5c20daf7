/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: vCPU state.  Every get/set pair round-trips, and a whole vCPU
 * (regs, sregs, fpu, xsave, xcrs, msrs, lapic, events, mp_state,
 * debugregs, cpuid) saved mid-run is restored into a fresh VM where the
 * guest continues where it was.  Also TSC kHz, KVM_TRANSLATE, kvmclock
 * control, NMI, SMI and nested state.
 */
#include <asm/kvm_para.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm-check.h"
#include "tvm.h"

#define MSR_STAR	   0xc0000081u
#define MSR_LSTAR	   0xc0000082u
#define MSR_CSTAR	   0xc0000083u
#define MSR_SYSCALL_MASK   0xc0000084u
#define MSR_KERNEL_GS_BASE 0xc0000102u

static const uint32_t saved_msrs[] = {MSR_STAR, MSR_LSTAR, MSR_CSTAR,
				      MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE};
#define NMSRS (sizeof(saved_msrs) / sizeof(saved_msrs[0]))

static void pre_irqchip(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_create_irqchip(t->vm), 0);
}

/* Give the vCPU KVM's supported CPUID (as a VMM would). */
static void set_cpuid(struct tvm *t)
{
	struct kvm_cpuid2 *c;

	ck_assert_int_eq(kvm_sys_get_supported_cpuid(t->sys, &c), 0);
	ck_assert_int_eq(kvm_vcpu_set_cpuid2(t->vcpu, c), 0);
	free(c);
}

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dregs;
	struct kvm_xcrs xcrs;
	struct kvm_msrs *msrs;
	struct kvm_cpuid2 *cpuid;
	void *xsave;
	size_t xsave_len;
};

static void save(struct kvm_vcpu_obj *v, struct vcpu_state *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(kvm_vcpu_get_cpuid2(v, &s->cpuid), 0);
	ck_assert_int_eq(kvm_vcpu_get_regs(v, &s->regs), 0);
	ck_assert_int_eq(kvm_vcpu_get_sregs(v, &s->sregs), 0);
	ck_assert_int_eq(kvm_vcpu_get_fpu(v, &s->fpu), 0);
	ck_assert_int_eq(kvm_vcpu_get_lapic(v, &s->lapic), 0);
	ck_assert_int_eq(kvm_vcpu_get_vcpu_events(v, &s->events), 0);
	ck_assert_int_eq(kvm_vcpu_get_mp_state(v, &s->mp), 0);
	ck_assert_int_eq(kvm_vcpu_get_debugregs(v, &s->dregs), 0);
	ck_assert_int_eq(kvm_vcpu_get_xcrs(v, &s->xcrs), 0);
	s->xsave_len = kvm_vcpu_xsave_size(v);
	ck_assert_uint_ge(s->xsave_len, sizeof(struct kvm_xsave));
	s->xsave = calloc(1, s->xsave_len);
	ck_assert_ptr_nonnull(s->xsave);
	ck_assert_int_eq(kvm_vcpu_get_xsave2(v, s->xsave, s->xsave_len - 1),
			 -ENOSPC);
	ck_assert_int_eq(kvm_vcpu_get_xsave2(v, s->xsave, s->xsave_len), 0);
	ck_assert_int_eq(kvm_msrs_new(NMSRS, &s->msrs), 0);
	for (i = 0; i < NMSRS; i++)
		s->msrs->entries[i].index = saved_msrs[i];
	ck_assert_int_eq(kvm_vcpu_get_msrs(v, s->msrs), (int)NMSRS);
}

static void restore(struct kvm_vcpu_obj *v, const struct vcpu_state *s)
{
	ck_assert_int_eq(kvm_vcpu_set_cpuid2(v, s->cpuid), 0);
	ck_assert_int_eq(kvm_vcpu_set_sregs(v, &s->sregs), 0);
	ck_assert_int_eq(kvm_vcpu_set_regs(v, &s->regs), 0);
	ck_assert_int_eq(kvm_vcpu_set_fpu(v, &s->fpu), 0);
	ck_assert_int_eq(kvm_vcpu_set_xsave(v, s->xsave, s->xsave_len), 0);
	ck_assert_int_eq(kvm_vcpu_set_xcrs(v, &s->xcrs), 0);
	ck_assert_int_eq(kvm_vcpu_set_msrs(v, s->msrs), (int)NMSRS);
	ck_assert_int_eq(kvm_vcpu_set_lapic(v, &s->lapic), 0);
	ck_assert_int_eq(kvm_vcpu_set_vcpu_events(v, &s->events), 0);
	ck_assert_int_eq(kvm_vcpu_set_mp_state(v, &s->mp), 0);
	ck_assert_int_eq(kvm_vcpu_set_debugregs(v, &s->dregs), 0);
}

static void free_state(struct vcpu_state *s)
{
	free(s->msrs);
	free(s->cpuid);
	free(s->xsave);
}

START_TEST(save_restore_into_fresh_vm)
{
	struct vcpu_state st;
	struct kvm_debugregs dr;
	struct kvm_fpu fpu;
	struct kvm_exit_info x;
	struct tvm a, b;
	uint64_t v, xmm0;
	uint32_t i;

	tvm_init(&a, TVM_RAM, pre_irqchip);
	set_cpuid(&a);
	tvm_load(&a, guest_user_start, guest_user_end);
	tvm_setup_long(&a, a.vcpu, true, false, true, UC_COUNT);
	ck_assert_int_eq(
		kvm_vcpu_set_msr(a.vcpu, MSR_LSTAR, 0xffffffff81234560ull), 0);
	ck_assert_int_eq(
		kvm_vcpu_set_msr(a.vcpu, MSR_KERNEL_GS_BASE, 0x5a5a000ull), 0);
	ck_assert_int_eq(kvm_vcpu_get_debugregs(a.vcpu, &dr), 0);
	dr.db[0] = 0x123450;
	ck_assert_int_eq(kvm_vcpu_set_debugregs(a.vcpu, &dr), 0);
	for (i = 1; i <= 10; i++)
		ck_assert_uint_eq(tvm_expect_out(&a, GP_DONE), i);
	/* The state is consistent only once the OUT is completed (KVM API
	 * doc, "completion of I/O"): kvm-amd advances RIP past it on
	 * re-entry, so a state saved now would re-execute it. */
	ck_assert_int_eq(kvm_vcpu_complete_io(a.vcpu, &x), 0);
	save(a.vcpu, &st);
	ck_assert_uint_eq(st.regs.rax, 10);
	memcpy(&xmm0, st.fpu.xmm[0], 8);
	ck_assert_uint_eq(xmm0, 10);

	/* A fresh VM with a copy of RAM and the saved vCPU. */
	tvm_init(&b, TVM_RAM, pre_irqchip);
	memcpy(b.mem, a.mem, TVM_RAM);
	tvm_fini(&a);
	restore(b.vcpu, &st);
	for (i = 11; i <= 20; i++)
		ck_assert_uint_eq(tvm_expect_out(&b, GP_DONE), i);
	ck_assert_int_eq(kvm_vcpu_get_fpu(b.vcpu, &fpu), 0);
	memcpy(&xmm0, fpu.xmm[0], 8);
	ck_assert_uint_eq(xmm0, 20);
	ck_assert_int_eq(kvm_vcpu_get_msr(b.vcpu, MSR_LSTAR, &v), 0);
	ck_assert_uint_eq(v, 0xffffffff81234560ull);
	ck_assert_int_eq(kvm_vcpu_get_msr(b.vcpu, MSR_KERNEL_GS_BASE, &v), 0);
	ck_assert_uint_eq(v, 0x5a5a000ull);
	ck_assert_int_eq(kvm_vcpu_get_debugregs(b.vcpu, &dr), 0);
	ck_assert_uint_eq(dr.db[0], 0x123450);
	free_state(&st);
	tvm_fini(&b);
}
END_TEST

/*
 * kvm_vcpu_complete_io(): after an OUT exit RIP ends up past the OUT
 * (whether KVM advanced it before the exit or on completion); after an IN
 * exit the data the VMM wrote is in RAX; the guest does not run (the next
 * exit is the instruction after); a pending kick survives it.
 */
START_TEST(complete_io_in_out_and_kick)
{
	struct kvm_exit_info x;
	struct kvm_regs regs;
	struct tvm t;
	uint32_t val = 0xcafef00d;

	tvm_init(&t, TVM_RAM, NULL);
	ck_assert_int_eq(kvm_vcpu_complete_io(NULL, &x), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_complete_io(t.vcpu, NULL), -EINVAL);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_COUNT);
	/* nothing pending yet: completes nothing, runs nothing */
	ck_assert_int_eq(kvm_vcpu_complete_io(t.vcpu, &x), 0);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	ck_assert_uint_eq(regs.rax, 0);
	ck_assert_uint_eq(kvm_vcpu_run_struct(t.vcpu)->immediate_exit, 0);

	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 1);
	ck_assert_int_eq(kvm_vcpu_complete_io(t.vcpu, &x), 0);
	ck_assert_uint_eq(kvm_vcpu_run_struct(t.vcpu)->immediate_exit, 0);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	ck_assert_uint_lt(regs.rip, t.mem_size - 1);
	/* "out %eax, $0x10" (e7 10) just behind RIP, the loop's jmp at it */
	ck_assert_uint_eq(t.mem[regs.rip - 2], 0xe7);
	ck_assert_uint_eq(t.mem[regs.rip - 1], 0x10);
	ck_assert_uint_eq(t.mem[regs.rip], 0xeb);
	ck_assert_uint_eq(regs.rax, 1); /* the guest did not run on */
	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 2);
	tvm_fini(&t);

	tvm_init(&t, TVM_RAM, NULL);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_IN);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
	ck_assert(x.io.in);
	ck_assert_uint_eq(x.io.port, GP_IN);
	ck_assert_uint_eq(x.io.len, 4);
	memcpy(x.io.data, &val, 4);
	/* A kick is pending across the completion and reported after it. */
	ck_assert_int_eq(kvm_vcpu_kick_bind(t.vcpu, SIGUSR1), 0);
	ck_assert_int_eq(kvm_vcpu_kick(t.vcpu), 0);
	ck_assert_int_eq(kvm_vcpu_complete_io(t.vcpu, &x), 0);
	ck_assert_uint_eq(kvm_vcpu_run_struct(t.vcpu)->immediate_exit, 1);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	ck_assert_uint_eq((uint32_t)regs.rax, val);
	ck_assert_uint_eq(t.mem[regs.rip - 2], 0xe5); /* in $0x11, %eax */
	ck_assert_uint_eq(t.mem[regs.rip - 1], GP_IN);
	tvm_run_once(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_INTR);
	ck_assert(x.kicked);
	ck_assert_uint_eq(kvm_vcpu_run_struct(t.vcpu)->immediate_exit, 0);
	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), val);
	tvm_fini(&t);
}
END_TEST

START_TEST(msrs_report_processed_count)
{
	struct kvm_msrs *m;
	struct tvm t;
	uint64_t v;

	tvm_init(&t, TVM_RAM, NULL);
	ck_assert_int_eq(kvm_msrs_new(3, &m), 0);
	m->entries[0].index = MSR_STAR;
	m->entries[0].data = 0x0023001000000000ull;
	m->entries[1].index = 0x4d565f01; /* no such MSR */
	m->entries[2].index = MSR_LSTAR;
	ck_assert_int_eq(kvm_vcpu_set_msrs(t.vcpu, m), 1);
	ck_assert_int_eq(kvm_vcpu_get_msrs(t.vcpu, m), 1);
	ck_assert_uint_eq(m->entries[0].data, 0x0023001000000000ull);
	ck_assert_int_eq(kvm_vcpu_get_msr(t.vcpu, 0x4d565f01, &v), -EIO);
	free(m);
	tvm_fini(&t);
}
END_TEST

START_TEST(xsave_legacy_and_xcrs)
{
	struct kvm_xsave *xs;
	struct kvm_xcrs x;
	struct tvm t;
	int r;

	tvm_init(&t, TVM_RAM, NULL);
	xs = calloc(1, sizeof(*xs));
	ck_assert_ptr_nonnull(xs);
	r = kvm_vcpu_get_xsave(t.vcpu, xs);
	if (kvm_vcpu_xsave_size(t.vcpu) > sizeof(*xs))
		ck_assert_int_eq(r, -EINVAL);
	else
		ck_assert_int_eq(r, 0);
	ck_assert_int_eq(kvm_vcpu_set_xsave(t.vcpu, xs, 16), -ENOSPC);
	/* The library's size is KVM_CAP_XSAVE2's (KVM reads and writes that
	 * many bytes), never less than the legacy 4 KiB. */
	r = kvm_vm_check_extension(t.vm, KVM_CAP_XSAVE2);
	ck_assert_uint_eq(kvm_vcpu_xsave_size(t.vcpu),
			  r > (int)sizeof(*xs) ? (size_t)r : sizeof(*xs));
	ck_assert_int_eq(kvm_vcpu_set_xsave(t.vcpu, xs,
					    kvm_vcpu_xsave_size(t.vcpu) - 1),
			 -ENOSPC);
	ck_assert_int_eq(kvm_vcpu_get_xcrs(t.vcpu, &x), 0);
	ck_assert_uint_ge(x.nr_xcrs, 1);
	ck_assert_uint_eq(x.xcrs[0].xcr, 0);
	ck_assert_uint_eq(x.xcrs[0].value & 1, 1); /* x87 always on */
	ck_assert_int_eq(kvm_vcpu_set_xcrs(t.vcpu, &x), 0);
	free(xs);
	tvm_fini(&t);
}
END_TEST

START_TEST(mp_state_events_nmi)
{
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct tvm t;

	tvm_init(&t, TVM_RAM, pre_irqchip);
	ck_assert_int_eq(kvm_vcpu_get_mp_state(t.vcpu, &mp), 0);
	ck_assert_uint_eq(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	mp.mp_state = KVM_MP_STATE_HALTED;
	ck_assert_int_eq(kvm_vcpu_set_mp_state(t.vcpu, &mp), 0);
	ck_assert_int_eq(kvm_vcpu_get_mp_state(t.vcpu, &mp), 0);
	ck_assert_uint_eq(mp.mp_state, KVM_MP_STATE_HALTED);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	ck_assert_int_eq(kvm_vcpu_set_mp_state(t.vcpu, &mp), 0);

	ck_assert_int_eq(kvm_vcpu_get_vcpu_events(t.vcpu, &ev), 0);
	ck_assert_uint_eq(ev.nmi.pending, 0);
	ck_assert_int_eq(kvm_vcpu_nmi(t.vcpu), 0);
	ck_assert_int_eq(kvm_vcpu_get_vcpu_events(t.vcpu, &ev), 0);
	ck_assert_uint_eq(ev.nmi.pending + ev.nmi.injected, 1);
	/* events round trip: clear the NMI again */
	ev.nmi.pending = 0;
	ev.nmi.injected = 0;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	ck_assert_int_eq(kvm_vcpu_set_vcpu_events(t.vcpu, &ev), 0);
	ck_assert_int_eq(kvm_vcpu_get_vcpu_events(t.vcpu, &ev), 0);
	ck_assert_uint_eq(ev.nmi.pending, 0);
	tvm_fini(&t);
}
END_TEST

START_TEST(smi_when_supported)
{
	struct kvm_vcpu_events ev;
	struct tvm t;

	tvm_init(&t, TVM_RAM, pre_irqchip);
	if (kvm_vm_check_extension(t.vm, KVM_CAP_X86_SMM) <= 0) {
		/* The ioctl still reaches KVM, which queues or refuses it. */
		int r = kvm_vcpu_smi(t.vcpu);

		ck_assert_msg(r == 0 || r == -EINVAL || r == -ENOTTY,
			      "KVM_SMI: %d", r);
		tvm_skip("smi_when_supported", "no KVM_CAP_X86_SMM");
		tvm_fini(&t);
		return;
	}
	ck_assert_int_eq(kvm_vcpu_smi(t.vcpu), 0);
	ck_assert_int_eq(kvm_vcpu_get_vcpu_events(t.vcpu, &ev), 0);
	ck_assert_uint_eq(ev.smi.pending, 1);
	tvm_fini(&t);
}
END_TEST

START_TEST(nested_state_when_supported)
{
	struct kvm_nested_state *ns;
	struct tvm t;

	tvm_init(&t, TVM_RAM, NULL);
	if (kvm_vm_check_extension(t.vm, KVM_CAP_NESTED_STATE) <= 0) {
		struct kvm_nested_state hdr = {.size = sizeof(hdr)};

		ck_assert_int_eq(kvm_vcpu_get_nested_state(t.vcpu, &ns),
				 -ENOTSUP);
		ck_assert_ptr_null(ns);
		/* KVM refuses nested state it has no support for. */
		ck_assert_int_eq(kvm_vcpu_set_nested_state(t.vcpu, &hdr),
				 -EINVAL);
		tvm_skip("nested_state_when_supported", "no "
							"KVM_CAP_NESTED_STATE");
		tvm_fini(&t);
		return;
	}
	set_cpuid(&t);
	ck_assert_int_eq(kvm_vcpu_get_nested_state(t.vcpu, &ns), 0);
	ck_assert_uint_ge(ns->size, sizeof(*ns));
	ck_assert_int_eq(kvm_vcpu_set_nested_state(t.vcpu, ns), 0);
	free(ns);
	tvm_fini(&t);
}
END_TEST

START_TEST(tsc_khz_translate_kvmclock)
{
	struct kvm_translation tr;
	struct kvm_enable_cap cap = {.cap = 0xfffffff};
	struct tvm t;
	int khz;

	tvm_init(&t, TVM_RAM, NULL);
	khz = kvm_vcpu_get_tsc_khz(t.vcpu);
	ck_assert_int_gt(khz, 0);
	ck_assert_int_eq(kvm_vcpu_set_tsc_khz(t.vcpu, (uint32_t)khz), 0);
	ck_assert_int_eq(kvm_vcpu_get_tsc_khz(t.vcpu), khz);
	ck_assert_int_eq(kvm_vcpu_set_tsc_khz(t.vcpu, 0), -EINVAL);

	/* Identity-mapped long mode: linear == physical. */
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_SPIN);
	memset(&tr, 0, sizeof(tr));
	tr.linear_address = 0x12345678;
	ck_assert_int_eq(kvm_vcpu_translate(t.vcpu, &tr), 0);
	ck_assert_uint_eq(tr.valid, 1);
	ck_assert_uint_eq(tr.physical_address, 0x12345678);
	ck_assert_uint_eq(tr.writeable, 1);
	memset(&tr, 0, sizeof(tr));
	tr.linear_address = 0x123400000000ull; /* not mapped */
	ck_assert_int_eq(kvm_vcpu_translate(t.vcpu, &tr), 0);
	ck_assert_uint_eq(tr.valid, 0);

	/* kvmclock control needs an active kvmclock. */
	ck_assert_int_eq(kvm_vcpu_kvmclock_ctrl(t.vcpu), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_set_msr(t.vcpu, MSR_KVM_SYSTEM_TIME_NEW,
					  0x50000 | 1),
			 0);
	ck_assert_int_eq(kvm_vcpu_kvmclock_ctrl(t.vcpu), 0);

	/* vCPU KVM_ENABLE_CAP passes the kernel's answer through. */
	ck_assert_int_eq(kvm_vcpu_enable_cap(t.vcpu, &cap), -EINVAL);
	tvm_fini(&t);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("kvm-state");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, save_restore_into_fresh_vm);
	tcase_add_test(tc, complete_io_in_out_and_kick);
	tcase_add_test(tc, msrs_report_processed_count);
	tcase_add_test(tc, xsave_legacy_and_xcrs);
	tcase_add_test(tc, mp_state_events_nmi);
	tcase_add_test(tc, smi_when_supported);
	tcase_add_test(tc, nested_state_when_supported);
	tcase_add_test(tc, tsc_khz_translate_kvmclock);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	tvm_skips_init();
	r = cvmm_check_run(state_suite(), true);
	if (tvm_skips())
		printf("%d capability test(s) skipped by name (see SKIP "
		       "lines)\n",
		       tvm_skips());
	return r;
}
