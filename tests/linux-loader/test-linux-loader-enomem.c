/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * -ENOMEM paths of liblinux-loader by fault injection (the common
 * injector, tests/common/fault-inject.h):
 * every function that allocates fails cleanly with -ENOMEM at each
 * allocation it makes, leaks nothing (run under ASan or valgrind), and
 * succeeds once allocations do.
 */
#include <errno.h>

#include <cvmm/linux-loader/acpi.h>

#include "cvmm-check.h"
#include "fault-inject.h"
#include "images.h"

/* Calls op with 0, 1, 2 ... allocations allowed until it succeeds; every
 * failure before must be -ENOMEM caused by an injected fault. */
#define ENOMEM_LOOP(call)                                    \
	do {                                                 \
		long n_;                                     \
		int err_;                                    \
		for (n_ = 0; n_ < 100; n_++) {               \
			fault_arm(n_);                       \
			err_ = (call);                       \
			fault_disarm();                      \
			if (err_ >= 0)                       \
				break;                       \
			ck_assert_int_eq(err_, -ENOMEM);     \
			ck_assert_int_gt(fault_injected, 0); \
		}                                            \
		ck_assert_int_ge(err_, 0);                   \
		ck_assert_int_gt(n_, 0);                     \
	} while (0)

START_TEST(test_enomem_everywhere)
{
	static const uint64_t r[][2] = {{0, 64ull << 20}};
	static uint8_t img[TI_BZ_SIZE], elf[TI_ELF_SIZE];
	struct guest_memory *m = ti_mem(r, 1);
	struct linux_loader_kernel k, pvh;
	struct boot_cmdline *c = NULL;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct boot_pci_irq irq = {1, 0, 16, 0};
	struct boot_mptable_config mp = {
		.num_cpus = 2, .pci_irqs = &irq, .n_pci_irqs = 1};
	struct acpi_tables_config acpi = {.num_cpus = 8,
					  .pci = true,
					  .com1 = true,
					  .pci_irqs = &irq,
					  .n_pci_irqs = 1,
					  .io_size = 0x100,
					  .mmio32_base = 0xc0000000,
					  .mmio32_size = 0x1000};

	ck_assert_ptr_nonnull(m);
	ti_make_bzimage(img);
	ti_make_elf(elf);
	ck_assert_int_eq(linux_loader_load(m, img, sizeof(img), NULL, &k), 0);
	memset(&sregs, 0, sizeof(sregs));

	ENOMEM_LOOP(boot_cmdline_create(100, &c));
	boot_cmdline_destroy(c);
	ENOMEM_LOOP(boot_params_setup(m, &k, NULL));
	ENOMEM_LOOP(boot_mptable_setup(m, &mp, NULL));
	ENOMEM_LOOP(boot_vcpu_setup_long_mode(m, &k, BOOT_ZERO_PAGE_ADDR, NULL,
					      &regs, &sregs));
	ENOMEM_LOOP(acpi_tables_setup(m, &acpi, NULL, NULL));
	ck_assert_int_eq(linux_loader_load(m, elf, sizeof(elf), NULL, &pvh), 0);
	ENOMEM_LOOP(boot_pvh_setup(m, &pvh, NULL));
	guest_memory_unref(m);
}
END_TEST

static Suite *enomem_suite(void)
{
	Suite *s = suite_create("linux-loader-enomem");
	TCase *tc = tcase_create("enomem");

	tcase_add_test(tc, test_enomem_everywhere);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(enomem_suite(), false);
}
