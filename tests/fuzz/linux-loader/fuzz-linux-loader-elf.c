/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the ELF vmlinux parser (program headers, PT_NOTE walk
 * for the PVH entry) and loader.  On success the entry must lie inside the
 * loaded range and the PVH start info must be buildable.
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
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *copy;
	int err;

	if (!mem)
		mem = ti_mem(r, 1);
	if (!mem)
		abort();
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	err = linux_loader_parse_elf(copy, size, &k);
	if (!err && (k.kind != LINUX_LOADER_ELF_PVH || k.entry < k.start ||
		     k.entry >= k.end || k.entry >= (1ull << 32)))
		abort();
	err = linux_loader_load(mem, copy, size, NULL, &k);
	if (!err) {
		if (k.end > RAM)
			abort();
		(void)boot_pvh_setup(mem, &k, NULL);
		memset(&sregs, 0, sizeof(sregs));
		(void)boot_vcpu_setup_pvh(mem, &k, BOOT_PVH_START_INFO_ADDR,
					  NULL, &regs, &sregs);
	}
	free(copy);
	return 0;
}
