/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A program outside c-vmm that uses its installed or subproject libraries. */
#include <cvmm/vm-memory.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	struct guest_region_params p = {
		.gpa = 0x1000,
		.size = 0x10000,
		.backing = GUEST_REGION_ANON_PRIVATE,
	};
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	char buf[6] = {0};
	int err;

	err = guest_region_create(&p, &r);
	if (!err)
		err = guest_memory_create(&r, 1, &m);
	if (!err)
		err = guest_memory_write(m, 0x2000, "c-vmm", 6);
	if (!err)
		err = guest_memory_read(m, 0x2000, buf, 6);
	guest_memory_unref(m);
	guest_region_unref(r);
	if (err || strcmp(buf, "c-vmm") != 0) {
		fprintf(stderr,
			"consumer: guest memory round trip failed (%d)\n", err);
		return 1;
	}
	printf("consumer: ok\n");
	return 0;
}
