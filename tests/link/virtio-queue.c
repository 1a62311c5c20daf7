/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Link test: libvirtio-queue (with libvm-memory) pops a chain that the
 * mock driver from libvirtio-queue-driver made available. */
#include <stddef.h>

#include <cvmm/virtio-queue-driver.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

int main(void)
{
	struct guest_region_params p = {.gpa = 0, .size = 0x10000};
	struct virtq_driver_buf b = {0x8000, 16, VRING_DESC_F_WRITE};
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	struct virtq_driver *d = NULL;
	struct virtq *q = NULL;
	struct virtq_buf bufs[4];
	struct virtq_chain c = VIRTQ_CHAIN_INIT(bufs);
	guest_addr_t da, aa, ua;
	int ok = 0;

	if (guest_region_create(&p, &r) || guest_memory_create(&r, 1, &m) ||
	    virtq_create(64, &q) || virtq_set_memory(q, m))
		goto out;
	virtq_driver_layout(64, 0x1000, &da, &aa, &ua);
	if (virtq_driver_create(m, 64, 0, da, aa, ua, &d) ||
	    virtq_driver_configure(d, q) || virtq_driver_add(d, &b, 1, NULL))
		goto out;
	if (virtq_pop(q, &c) != 1 || c.write_len != 16 ||
	    virtq_chain_write(&c, "hello", 5) != 5 || virtq_complete(q, &c))
		goto out;
	ok = virtq_driver_used_idx(d) == 1 && !virtq_is_broken(q);
out:
	virtq_driver_destroy(d);
	virtq_destroy(q);
	guest_memory_unref(m);
	guest_region_unref(r);
	return ok ? 0 : 1;
}
