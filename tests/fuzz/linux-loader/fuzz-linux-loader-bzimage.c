/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the bzImage parser and loader.  The input is the whole
 * file.  Whatever it says, the loader must not read outside it, and on
 * success its result must be consistent: the kernel lies in guest RAM
 * below 4 GiB, the entry is start + 0x200, and the boot structures can be
 * built for it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"

#define RAM (32ull << 20)

static struct guest_memory *mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t r[][2] = {{0, RAM}};
	struct linux_loader_kernel k;
	struct linux_loader_config cfg = {0};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *copy;
	int err;

	if (!mem)
		mem = ti_mem(r, 1);
	if (!mem)
		abort();
	/* An exact-size heap copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	err = linux_loader_parse_bzimage(copy, size, NULL, &k);
	if (!err) {
		if (k.kind != LINUX_LOADER_BZIMAGE || k.end <= k.start ||
		    k.end > (1ull << 32) || k.entry != k.start + 0x200)
			abort();
	}
	/* Also at a relocated address, then for real into RAM. */
	cfg.load_addr = 0x400000;
	(void)linux_loader_parse_bzimage(copy, size, &cfg, &k);
	err = linux_loader_load(mem, copy, size, &cfg, &k);
	if (!err) {
		if (k.end > RAM)
			abort();
		(void)boot_params_setup(mem, &k, NULL);
		memset(&sregs, 0, sizeof(sregs));
		(void)boot_vcpu_setup_long_mode(mem, &k, BOOT_ZERO_PAGE_ADDR,
						NULL, &regs, &sregs);
	}
	free(copy);
	return 0;
}
