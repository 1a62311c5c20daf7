/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build check: cvmm/devices/virtio.h compiles on its own (first and only
 * include) with the project's strict warnings; header-virtio-*.c do the
 * same for the transports and virtio-rng.
 */
#include <cvmm/devices/virtio.h>

static void ready(void *opaque, uint32_t revents)
{
	(void)opaque;
	(void)revents;
}

int header_virtio_pci(void);
int header_virtio_mmio(void);
int header_virtio_rng(void);

int main(void)
{
	struct virtio_poll_fd pfd = {.fd = -1, .events = 1, .ready = ready};
	struct virtio_device_ops ops = {0};
	struct virtio_device_info info = {.device_id = 4, .num_queues = 1};

	(void)ops;
	(void)info;
	if (header_virtio_pci() || header_virtio_mmio() || header_virtio_rng())
		return 1;
	return pfd.fd == -1 && VIRTIO_DEVICE_F_VERSION_1 == 32 ? 0 : 1;
}
