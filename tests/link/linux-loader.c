/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Links liblinux-loader (and libvm-memory, which it uses) and calls its
 * API: a command line, an MP table and ACPI tables in a small guest. */
#include <cvmm/linux-loader.h>
#include <cvmm/linux-loader/acpi.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
	struct guest_region_params p = {
		.gpa = 0,
		.size = 0x100000,
		.backing = GUEST_REGION_ANON_PRIVATE,
	};
	struct acpi_tables_config acpi = {.num_cpus = 2, .pci = true};
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	struct boot_cmdline *c = NULL;
	uint64_t rsdp = 0;
	char sig[8] = {0};
	int err;

	err = guest_region_create(&p, &r);
	if (!err)
		err = guest_memory_create(&r, 1, &m);
	if (!err)
		err = boot_cmdline_create(64, &c);
	if (!err)
		err = boot_cmdline_add(c, "console", "ttyS0");
	if (!err && strcmp(boot_cmdline_str(c), "console=ttyS0"))
		err = -1;
	if (!err)
		err = boot_mptable_setup(m, NULL, NULL);
	if (!err)
		err = acpi_tables_setup(m, &acpi, &rsdp, NULL);
	if (!err)
		err = guest_memory_read(m, rsdp, sig, 8);
	if (!err && memcmp(sig, "RSD PTR ", 8))
		err = -1;
	boot_cmdline_destroy(c);
	guest_memory_unref(m);
	guest_region_unref(r);
	if (err) {
		fprintf(stderr, "linux-loader link test failed: %d\n", err);
		return 1;
	}
	return 0;
}
