/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: the boot state liblinux-loader builds is accepted by KVM and
 * runs.  A generated bzImage whose 64-bit entry (load address + 0x200)
 * holds a few instructions reads the zero page through RSI and CPUID leaf
 * 0x40000000 and reports both with OUT; an ELF image with a PVH note does
 * the same in 32-bit protected mode through EBX.  Also: the CPUID table
 * from KVM_GET_SUPPORTED_CPUID normalised and set, the boot MSRs set, the
 * LAPIC LINT0/LINT1 setup round-tripped.  Exits 77 without /dev/kvm.
 */
#include <errno.h>
#include <stdio.h>

#include "cvmm-check.h"
#include "cvmm/kvm-ioctls.h"
#include "images.h"

#define MiB	 (1ull << 20)
#define RAM	 (64 * MiB)
#define OUT_PORT 0x10

/* 64-bit: mov eax,[rsi+0x202]; mov dx,0x10; out dx,eax;
 *         mov eax,0x40000000; cpuid; mov eax,ebx; mov dx,0x10;
 *         out dx,eax; hlt */
static const uint8_t code64[] = {0x8b, 0x86, 0x02, 0x02, 0x00, 0x00, 0x66,
				 0xba, 0x10, 0x00, 0xef, 0xb8, 0x00, 0x00,
				 0x00, 0x40, 0x0f, 0xa2, 0x89, 0xd8, 0x66,
				 0xba, 0x10, 0x00, 0xef, 0xf4};
/* 32-bit: mov eax,[ebx]; mov dx,0x10; out dx,eax; hlt */
static const uint8_t code32[] = {0x8b, 0x03, 0x66, 0xba,
				 0x10, 0x00, 0xef, 0xf4};

struct vm {
	struct kvm_sys *sys;
	struct kvm_vm_obj *vm;
	struct kvm_vcpu_obj *vcpu;
	struct guest_memory *mem;
};

static void vm_init(struct vm *v, bool irqchip)
{
	static const uint64_t r[][2] = {{0, RAM}};
	struct guest_region *reg;

	memset(v, 0, sizeof(*v));
	v->mem = ti_mem(r, 1);
	ck_assert_ptr_nonnull(v->mem);
	reg = guest_memory_region_at(v->mem, 0);
	ck_assert_int_eq(kvm_sys_create(&v->sys), 0);
	ck_assert_int_eq(kvm_vm_create(v->sys, 0, &v->vm), 0);
	ck_assert_int_eq(kvm_vm_set_tss_addr(v->vm, 0xfffbd000), 0);
	ck_assert_int_eq(
		kvm_vm_set_user_memory_region(v->vm, 0, 0, 0, RAM,
					      guest_region_host_addr(reg)),
		0);
	if (irqchip)
		ck_assert_int_eq(kvm_vm_create_irqchip(v->vm), 0);
	ck_assert_int_eq(kvm_vcpu_create(v->vm, 0, &v->vcpu), 0);
}

static void vm_fini(struct vm *v)
{
	kvm_vcpu_destroy(v->vcpu);
	kvm_vm_destroy(v->vm);
	kvm_sys_destroy(v->sys);
	guest_memory_unref(v->mem);
}

/* Runs to the next exit, which must be a 4-byte OUT to OUT_PORT; returns
 * its value. */
static uint32_t next_out(struct vm *v)
{
	struct kvm_exit_info x;
	uint32_t val;
	int err;

	for (int i = 0; i < 100; i++) {
		err = kvm_vcpu_run(v->vcpu, &x);
		if (err == -EINTR || (!err && x.reason == KVM_EXIT_INTR))
			continue;
		ck_assert_int_eq(err, 0);
		ck_assert_msg(x.reason == KVM_EXIT_IO,
			      "exit reason %u, not I/O", x.reason);
		ck_assert_uint_eq(x.io.port, OUT_PORT);
		ck_assert_uint_eq(x.io.size, 4);
		ck_assert(!x.io.in);
		memcpy(&val, x.io.data, 4);
		return val;
	}
	ck_abort_msg("no exit");
	return 0;
}

START_TEST(test_kvm_bzimage_long_mode_entry)
{
	static uint8_t img[TI_BZ_SIZE];
	struct vm v;
	struct linux_loader_kernel k;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_cpuid2 *cpuid, *set;
	struct kvm_msrs *msrs;
	size_t n;
	int got;

	vm_init(&v, false);
	ti_make_bzimage(img);
	memcpy(img + TI_SETUP_SIZE + 0x200, code64, sizeof(code64));
	ck_assert_int_eq(linux_loader_load(v.mem, img, sizeof(img), NULL, &k),
			 0);
	ck_assert_int_eq(boot_params_setup(v.mem, &k, NULL), 0);

	ck_assert_int_eq(kvm_sys_get_supported_cpuid(v.sys, &cpuid), 0);
	ck_assert_int_eq(kvm_cpuid2_new(cpuid->nent + 2, &set), 0);
	memcpy(set->entries, cpuid->entries,
	       cpuid->nent * sizeof(cpuid->entries[0]));
	ck_assert_int_eq(
		boot_cpuid_normalize(set->entries, cpuid->nent, cpuid->nent + 2,
				     &(struct boot_cpuid_config){0, 1}, &n),
		0);
	set->nent = (uint32_t)n;
	ck_assert_int_eq(kvm_vcpu_set_cpuid2(v.vcpu, set), 0);
	free(cpuid);
	free(set);

	ck_assert_int_eq(kvm_msrs_new(BOOT_MSRS_COUNT, &msrs), 0);
	ck_assert_int_eq(boot_msrs_fill(msrs->entries, BOOT_MSRS_COUNT),
			 BOOT_MSRS_COUNT);
	got = kvm_vcpu_set_msrs(v.vcpu, msrs);
	ck_assert_msg(got == BOOT_MSRS_COUNT, "KVM took %d MSRs, failed at %#x",
		      got,
		      got >= 0 && got < BOOT_MSRS_COUNT
			      ? msrs->entries[got].index
			      : 0);
	free(msrs);

	ck_assert_int_eq(kvm_vcpu_get_sregs(v.vcpu, &sregs), 0);
	ck_assert_int_eq(boot_vcpu_setup_long_mode(v.mem, &k,
						   BOOT_ZERO_PAGE_ADDR, NULL,
						   &regs, &sregs),
			 0);
	ck_assert_int_eq(kvm_vcpu_set_sregs(v.vcpu, &sregs), 0);
	ck_assert_int_eq(kvm_vcpu_set_regs(v.vcpu, &regs), 0);

	ck_assert_uint_eq(next_out(&v), 0x53726448); /* "HdrS" via RSI */
	ck_assert_uint_eq(next_out(&v), 0x4b4d564b); /* "KVMK" */
	ck_assert_int_eq(kvm_vcpu_get_sregs(v.vcpu, &sregs), 0);
	ck_assert_uint_eq(sregs.efer & 0x400, 0x400); /* long mode active */
	vm_fini(&v);
}
END_TEST

START_TEST(test_kvm_pvh_entry)
{
	static uint8_t img[TI_ELF_SIZE];
	struct vm v;
	struct linux_loader_kernel k;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	vm_init(&v, false);
	ti_make_elf(img);
	memcpy(img + TI_ELF_SEG0_OFF + (TI_ELF_ENTRY - TI_ELF_PADDR0), code32,
	       sizeof(code32));
	ck_assert_int_eq(linux_loader_load(v.mem, img, sizeof(img), NULL, &k),
			 0);
	ck_assert_int_eq(boot_pvh_setup(v.mem, &k, NULL), 0);
	ck_assert_int_eq(kvm_vcpu_get_sregs(v.vcpu, &sregs), 0);
	ck_assert_int_eq(boot_vcpu_setup_pvh(v.mem, &k,
					     BOOT_PVH_START_INFO_ADDR, NULL,
					     &regs, &sregs),
			 0);
	ck_assert_int_eq(kvm_vcpu_set_sregs(v.vcpu, &sregs), 0);
	ck_assert_int_eq(kvm_vcpu_set_regs(v.vcpu, &regs), 0);
	ck_assert_uint_eq(next_out(&v), BOOT_PVH_START_MAGIC);
	vm_fini(&v);
}
END_TEST

START_TEST(test_kvm_lapic_lint)
{
	struct vm v;
	struct kvm_lapic_state s;
	uint32_t lint0, lint1;

	vm_init(&v, true);
	ck_assert_int_eq(kvm_vcpu_get_lapic(v.vcpu, &s), 0);
	ck_assert_int_eq(boot_lapic_setup_lint(&s), 0);
	ck_assert_int_eq(kvm_vcpu_set_lapic(v.vcpu, &s), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(kvm_vcpu_get_lapic(v.vcpu, &s), 0);
	memcpy(&lint0, s.regs + 0x350, 4);
	memcpy(&lint1, s.regs + 0x360, 4);
	ck_assert_uint_eq(lint0 & 0x700, 0x700);
	ck_assert_uint_eq(lint1 & 0x700, 0x400);
	vm_fini(&v);
}
END_TEST

static Suite *kvm_suite(void)
{
	Suite *s = suite_create("linux-loader-kvm");
	TCase *tc = tcase_create("kvm");

	tcase_add_test(tc, test_kvm_bzimage_long_mode_entry);
	tcase_add_test(tc, test_kvm_pvh_entry);
	tcase_add_test(tc, test_kvm_lapic_lint);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(kvm_suite(), true);
}
