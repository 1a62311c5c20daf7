/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build check: cvmm/devices/virtio-blk.h compiles on its own (first and
 * only include) with the project's strict warnings.
 */
#include <cvmm/devices/virtio-blk.h>

int main(void)
{
	struct virtio_blk_options o = {0};
	struct virtio_blk_backend_ops ops = {0};
	struct virtio_blk_io io = {0};

	(void)ops;
	return o.flags == 0 && io.op == VIRTIO_BLK_IO_READ &&
			       VIRTIO_BLK_BACKEND_IO_URING == 1
		       ? 0
		       : 1;
}
