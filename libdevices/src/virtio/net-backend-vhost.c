/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net's vhost-net backend: the tap backend for the header size,
 * offloads and queue attach, /dev/vhost-net for the receive and transmit
 * rings (see cvmm/devices/virtio-vhost-kernel.h).
 */
#include <errno.h>
#include <stdlib.h>

#include <linux/virtio_net.h>

#include <cvmm/devices/virtio-vhost-kernel.h>

#include "vhost-rings.h"

#define F(bit) (1ull << (bit))

struct vnet_be {
	const struct virtio_net_backend_ops *tap_ops;
	void *tap;
	struct vhost_kernel *vk;
	uint64_t kernel;     /* VHOST_GET_FEATURES */
	uint64_t negotiated; /* set_offloads: FEATURES_OK, 0 after reset */
	bool attached[2];    /* VHOST_NET_SET_BACKEND made per ring */
	struct vhost_rings rings;
};

static int vnet_open_pair(void *be, uint32_t pair)
{
	struct vnet_be *v = be;

	return v->tap_ops->open_queue_pair
		       ? v->tap_ops->open_queue_pair(v->tap, pair)
		       : 0;
}

static void vnet_close_pair(void *be, uint32_t pair)
{
	struct vnet_be *v = be;

	if (v->tap_ops->close_queue_pair)
		v->tap_ops->close_queue_pair(v->tap, pair);
}

/* The device never polls the tap: the kernel reads it. */
static int vnet_rx_fd(void *be, uint32_t pair)
{
	(void)be;
	(void)pair;
	return -1;
}

static uint64_t vnet_offloads(void *be)
{
	struct vnet_be *v = be;

	return v->tap_ops->offloads ? v->tap_ops->offloads(v->tap) : 0;
}

static int vnet_set_hdr(void *be, uint32_t size)
{
	struct vnet_be *v = be;

	return v->tap_ops->set_vnet_hdr_size(v->tap, size);
}

static int vnet_set_offloads(void *be, uint64_t features)
{
	struct vnet_be *v = be;

	v->negotiated = features;
	return v->tap_ops->set_offloads
		       ? v->tap_ops->set_offloads(v->tap, features)
		       : 0;
}

static uint64_t vnet_ring_features(void *be)
{
	struct vnet_be *v = be;

	return v->kernel;
}

static void detach(struct vnet_be *v)
{
	for (unsigned i = 0; i < 2; i++)
		if (v->attached[i]) {
			vhost_kernel_net_set_backend(v->vk, i, -1);
			v->attached[i] = false;
		}
}

static int vnet_rings_start(void *be, uint32_t pair, struct virtio_device *dev)
{
	struct vnet_be *v = be;
	/* Only the bits the kernel knows: it refuses others. */
	uint64_t acked =
		v->negotiated & v->kernel &
		(VHOST_RINGS_TRANSPORT_BITS | F(VIRTIO_NET_F_MRG_RXBUF));
	int tap_fd, err;

	if (pair != 0)
		return -EINVAL;
	tap_fd = v->tap_ops->rx_fd(v->tap, 0);
	if (tap_fd < 0)
		return -EBADF;
	err = vhost_rings_start(&v->rings, v->vk, dev, acked);
	for (unsigned i = 0; !err && i < 2; i++) {
		err = vhost_kernel_net_set_backend(v->vk, i, tap_fd);
		if (!err)
			v->attached[i] = true;
	}
	if (err) {
		detach(v);
		vhost_rings_stop(&v->rings, v->vk);
		return err;
	}
	/* Buffers the driver posted before DRIVER_OK. */
	vhost_rings_kick_all(&v->rings);
	return 0;
}

static void vnet_rings_stop(void *be, uint32_t pair)
{
	struct vnet_be *v = be;

	(void)pair;
	detach(v);
	vhost_rings_stop(&v->rings, v->vk);
}

static void vnet_rings_notify(void *be, uint32_t pair, uint32_t queue)
{
	struct vnet_be *v = be;

	(void)pair;
	vhost_rings_notify(&v->rings, queue);
}

static void vnet_destroy(void *be)
{
	struct vnet_be *v = be;

	vhost_rings_fini(&v->rings);
	vhost_kernel_destroy(v->vk);
	if (v->tap_ops->destroy)
		v->tap_ops->destroy(v->tap);
	free(v);
}

static const struct virtio_net_backend_ops vnet_ops = {
	.open_queue_pair = vnet_open_pair,
	.close_queue_pair = vnet_close_pair,
	.rx_fd = vnet_rx_fd,
	.offloads = vnet_offloads,
	.set_vnet_hdr_size = vnet_set_hdr,
	.set_offloads = vnet_set_offloads,
	.destroy = vnet_destroy,
	.ring_features = vnet_ring_features,
	.rings_start = vnet_rings_start,
	.rings_stop = vnet_rings_stop,
	.rings_notify = vnet_rings_notify,
};

int virtio_net_backend_vhost_create(
	const struct virtio_vhost_kernel_params *p,
	const struct virtio_net_backend_ops *tap_ops, void *tap,
	const struct virtio_net_backend_ops **out_ops, void **out_be)
{
	static const uint32_t queues[2] = {0, 1}; /* receiveq1, transmitq1 */
	struct vnet_be *v;
	int err;

	if (!tap_ops || !tap_ops->rx_fd || !out_ops || !out_be)
		return -EINVAL;
	/* The kernel moves frames with their virtio-net header. */
	if (!tap_ops->set_vnet_hdr_size)
		return -ENOTSUP;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->tap_ops = tap_ops;
	v->tap = tap;
	err = vhost_rings_init(&v->rings, 2, queues);
	if (err) {
		free(v);
		return err;
	}
	err = vhost_kernel_open(p && p->path ? p->path : "/dev/vhost-net",
				p ? p->kernel : NULL, &v->vk);
	if (!err)
		err = vhost_kernel_set_owner(v->vk);
	if (!err)
		err = vhost_kernel_get_features(v->vk, &v->kernel);
	if (!err && !(v->kernel & F(VIRTIO_DEVICE_F_VERSION_1)))
		err = -ENOTSUP;
	if (!err)
		err = tap_ops->set_vnet_hdr_size(
			      tap, sizeof(struct virtio_net_hdr_v1)) < 0
			      ? -ENOTSUP
			      : 0;
	if (err) {
		vhost_kernel_destroy(v->vk);
		vhost_rings_fini(&v->rings);
		free(v);
		return err;
	}
	*out_ops = &vnet_ops;
	*out_be = v;
	return 0;
}
