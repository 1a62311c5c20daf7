/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Link test: libvm-memory on its own, static and shared. */
#include <string.h>

#include "cvmm/vm-memory.h"

int main(void)
{
	struct guest_region_params p;
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	uint32_t v = 0;
	char buf[6] = {0};

	memset(&p, 0, sizeof(p));
	p.gpa = 0x100000;
	p.size = 0x10000;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	if (guest_region_create(&p, &r))
		return 1;
	if (guest_memory_create(&r, 1, &m))
		return 2;
	guest_region_unref(r);
	if (guest_memory_write(m, 0x100010, "hello", 6) ||
	    guest_memory_read(m, 0x100010, buf, 6) || strcmp(buf, "hello"))
		return 3;
	if (guest_memory_write_u32(m, 0x100100, 0xc0ffee) ||
	    guest_memory_read_u32(m, 0x100100, &v) || v != 0xc0ffee)
		return 4;
	if (guest_memory_read_u32(m, 0x200000, &v) != -14 /* EFAULT */)
		return 5;
	guest_memory_unref(m);
	return 0;
}
