/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * OPTIONAL: load a real distribution kernel (bzImage) and build every boot
 * structure for it, as cvmm will.  The kernel is $CVMM_TEST_KERNEL, else
 * the first readable /boot/vmlinuz-*, else one the lab cached in this
 * build tree (tests/lab/cache/unpacked/<pkg>/boot/vmlinuz-*, found by
 * the argument meson passes).  Without any, the test prints why and exits
 * 77 (skipped): the generated images of the other tests are the ones that
 * always run.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cvmm/linux-loader/acpi.h>

#include "cvmm-check.h"
#include "images.h"

#define MiB (1ull << 20)

static char kernel_path[4096];
static uint8_t *kernel;
static size_t kernel_size;

static bool find_kernel(const char *lab_cache)
{
	const char *env = getenv("CVMM_TEST_KERNEL");
	char pattern[4096];
	glob_t g;
	bool found = false;

	if (env && *env) {
		snprintf(kernel_path, sizeof(kernel_path), "%s", env);
		return access(env, R_OK) == 0;
	}
	for (int i = 0; i < 2 && !found; i++) {
		if (i == 0)
			snprintf(pattern, sizeof(pattern), "/boot/vmlinuz-*");
		else if (lab_cache)
			snprintf(pattern, sizeof(pattern),
				 "%s/*/boot/vmlinuz-*", lab_cache);
		else
			break;
		if (glob(pattern, 0, NULL, &g))
			continue;
		for (size_t j = 0; j < g.gl_pathc && !found; j++) {
			if (access(g.gl_pathv[j], R_OK) == 0) {
				snprintf(kernel_path, sizeof(kernel_path), "%s",
					 g.gl_pathv[j]);
				found = true;
			}
		}
		globfree(&g);
	}
	return found;
}

static bool read_kernel(void)
{
	FILE *f = fopen(kernel_path, "rb");
	struct stat st;

	if (!f || fstat(fileno(f), &st) || st.st_size <= 0) {
		if (f)
			fclose(f);
		return false;
	}
	kernel_size = (size_t)st.st_size;
	kernel = malloc(kernel_size);
	if (!kernel || fread(kernel, 1, kernel_size, f) != kernel_size) {
		fclose(f);
		return false;
	}
	fclose(f);
	return true;
}

START_TEST(test_real_kernel_boots_structures)
{
	static const uint64_t r[][2] = {{0, 512 * MiB}};
	struct guest_memory *m = ti_mem(r, 1);
	struct linux_loader_kernel k;
	struct boot_range res[] = {
		{BOOT_LOW_RESERVED_START,
		 BOOT_LOW_RESERVED_END - BOOT_LOW_RESERVED_START}};
	struct boot_e820_entry e[BOOT_E820_MAX];
	struct acpi_tables_config acpi = {
		.num_cpus = 2, .pci = true, .com1 = true};
	struct boot_cmdline *cl;
	struct boot_params bp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	static uint8_t initrd[65536];
	guest_addr_t initrd_addr;
	uint64_t rsdp;
	size_t n;
	uint8_t first[64];

	ck_assert_ptr_nonnull(m);
	printf("kernel: %s (%zu bytes)\n", kernel_path, kernel_size);
	ck_assert_int_eq(linux_loader_load(m, kernel, kernel_size, NULL, &k),
			 0);
	printf("protocol %x.%02x, load %#llx..%#llx, entry %#llx, "
	       "cmdline_max %u, initrd_addr_max %#llx\n",
	       k.hdr.version >> 8, k.hdr.version & 0xff,
	       (unsigned long long)k.start, (unsigned long long)k.end,
	       (unsigned long long)k.entry, k.cmdline_max,
	       (unsigned long long)k.initrd_addr_max);
	ck_assert_int_eq(k.kind, LINUX_LOADER_BZIMAGE);
	ck_assert_uint_ge(k.hdr.version, 0x020c);
	ck_assert(k.hdr.xloadflags & XLF_KERNEL_64);
	/* the protected-mode kernel is in RAM as it is in the file */
	ck_assert_int_eq(guest_memory_read(m, k.start, first, sizeof(first)),
			 0);
	ck_assert_mem_eq(
		first, kernel + ((kernel[0x1f1] ? kernel[0x1f1] : 4) + 1) * 512,
		sizeof(first));

	ck_assert_int_eq(linux_loader_load_initrd(m, &k, NULL, 0, initrd,
						  sizeof(initrd), &initrd_addr),
			 0);
	ck_assert_int_eq(boot_cmdline_create(k.cmdline_max, &cl), 0);
	ck_assert_int_eq(boot_cmdline_add(cl, "console", "ttyS0"), 0);
	ck_assert_int_eq(boot_cmdline_add(cl, "panic", "-1"), 0);
	ck_assert_int_eq(boot_e820_build(m, res, 1, e, BOOT_E820_MAX, &n), 0);
	ck_assert_int_eq(acpi_tables_setup(m, &acpi, &rsdp, NULL), 0);
	{
		struct boot_config bc = {.cmdline = boot_cmdline_str(cl),
					 .initrd_addr = initrd_addr,
					 .initrd_size = sizeof(initrd),
					 .e820 = e,
					 .e820_entries = n,
					 .acpi_rsdp = rsdp};

		ck_assert_int_eq(boot_params_setup(m, &k, &bc), 0);
	}
	ck_assert_int_eq(
		guest_memory_read(m, BOOT_ZERO_PAGE_ADDR, &bp, sizeof(bp)), 0);
	ck_assert_uint_eq(bp.hdr.header, 0x53726448);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, initrd_addr);
	ck_assert_uint_eq(bp.hdr.type_of_loader, 0xff);
	memset(&sregs, 0, sizeof(sregs));
	ck_assert_int_eq(boot_vcpu_setup_long_mode(m, &k, BOOT_ZERO_PAGE_ADDR,
						   NULL, &regs, &sregs),
			 0);
	ck_assert_uint_eq(regs.rip, k.start + 0x200);
	boot_cmdline_destroy(cl);
	guest_memory_unref(m);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (!find_kernel(argc > 1 ? argv[1] : NULL)) {
		printf("SKIP: no readable kernel (set CVMM_TEST_KERNEL, or "
		       "have /boot/vmlinuz-* or a lab cache in the build "
		       "tree)\n");
		return CVMM_EXIT_SKIP;
	}
	if (!read_kernel()) {
		printf("cannot read %s: %s\n", kernel_path, strerror(errno));
		return 1;
	}
	s = suite_create("linux-loader-real-kernel-optional");
	tc = tcase_create("real");
	tcase_add_test(tc, test_real_kernel_boots_structures);
	suite_add_tcase(s, tc);
	return cvmm_check_run(s, false);
}
