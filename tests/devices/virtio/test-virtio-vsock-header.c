/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build check: cvmm/devices/virtio-vsock.h compiles on its own (first and
 * only include) with the project's strict warnings, and its defaults are
 * the documented ones.
 */
#include <cvmm/devices/virtio-vsock.h>

int main(void)
{
	struct virtio_vsock_params p = {0};
	struct virtio_vsock_stats st = {0};

	(void)st;
	return p.guest_cid == 0 && VIRTIO_VSOCK_HOST_CID == 2u &&
			       VIRTIO_VSOCK_GUEST_CID_DEFAULT == 3u &&
			       VIRTIO_VSOCK_CONN_BUF_DEFAULT == 262144u
		       ? 0
		       : 1;
}
