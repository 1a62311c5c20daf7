/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Links libvm-allocator alone and calls its API. */
#include <cvmm/vm-allocator.h>

#include <stdio.h>

int main(void)
{
	struct address_allocator *a = NULL;
	struct id_allocator *ids = NULL;
	uint64_t addr = 0;
	uint32_t id = 0;
	int err;

	err = address_allocator_create(0xd0000000, 0xdfffffff, &a);
	if (!err)
		err = address_allocator_allocate(
			a, 0x1000, 0x1000, ADDRESS_ALLOC_FIRST_FIT, &addr);
	if (!err && addr != 0xd0000000)
		err = -1;
	if (!err)
		err = address_allocator_free(a, addr, 0x1000);
	if (!err)
		err = id_allocator_create(5, 23, &ids);
	if (!err)
		err = id_allocator_allocate(ids, &id);
	if (!err && id != 5)
		err = -1;
	if (!err)
		err = id_allocator_free(ids, id);
	address_allocator_destroy(a);
	id_allocator_destroy(ids);
	if (err) {
		fprintf(stderr, "link-vm-allocator: failed (%d)\n", err);
		return 1;
	}
	return 0;
}
