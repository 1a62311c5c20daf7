/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm --disk vhost_user=SOCKET: a virtio-blk disk whose queues a
 * vhost-user backend serves (qemu-storage-daemon --export
 * type=vhost-user-blk, c-vmm's examples/vhost-user-blk), through
 * libdevices' generic vhost-user device.  Guest RAM is memfd-backed
 * (cvmm.c), so it can be handed to the backend.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvmm.h"

#ifdef CVMM_HAVE_VHOST
#include <linux/virtio_ids.h>

#include <cvmm/devices/virtio-vhost-user.h>

int cvmm_vhost_user_disk(const struct cvmm_disk *d, struct virtio_device **dev)
{
	/* The virtio 1.2 virtio-blk config space (capacity .. unused1), 60
	 * bytes: newer uapi headers append the zoned fields (72 bytes),
	 * which backends built on older ones (QEMU 7.2's
	 * qemu-storage-daemon) refuse to read. */
	struct virtio_vhost_user_options o = {
		.device_id = VIRTIO_ID_BLOCK,
		.config_size = 60,
	};
	struct virtio_vhost_user *vu = NULL;
	int r = virtio_vhost_user_create(d->vhost_user, &o, &vu);

	if (r < 0) {
		fprintf(stderr, "cvmm: --disk vhost_user=%s: %s\n",
			d->vhost_user, strerror(-r));
		return r;
	}
	/* The device owns @vu: virtio_device_destroy() frees both. */
	*dev = virtio_vhost_user_device(vu);
	return 0;
}
#else
int cvmm_vhost_user_disk(const struct cvmm_disk *d, struct virtio_device **dev)
{
	(void)dev;
	fprintf(stderr,
		"cvmm: --disk vhost_user=%s: cvmm was built without "
		"libvhost\n",
		d->vhost_user);
	return -ENOTSUP;
}
#endif
