/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock on /dev/vhost-vsock: the kernel serves the receive and
 * transmit rings (host programs use AF_VSOCK), the device keeps the
 * configuration space and the event queue.  See
 * cvmm/devices/virtio-vhost-kernel.h.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>

#include <linux/virtio_ids.h>

#include <cvmm/devices/virtio-vhost-kernel.h>

#include "vhost-rings.h"

#define F(bit)	      (1ull << (bit))
#define F_SEQPACKET   F(1) /* VIRTIO_VSOCK_F_SEQPACKET */
#define VSOCK_DEVBITS F_SEQPACKET
enum {
	Q_RX,
	Q_TX,
	Q_EVENT,
	NQ
};

struct virtio_vhost_vsock {
	struct virtio_device *vdev;
	struct vhost_kernel *vk;
	uint64_t kernel; /* VHOST_GET_FEATURES */
	bool running;
	struct vhost_rings rings;
};

static void vv_stop(struct virtio_vhost_vsock *v)
{
	if (v->running)
		vhost_kernel_vsock_set_running(v->vk, false);
	v->running = false;
	vhost_rings_stop(&v->rings, v->vk);
}

static int vv_activate(void *opaque)
{
	struct virtio_vhost_vsock *v = opaque;
	uint64_t acked = virtio_device_features(v->vdev) & v->kernel &
			 (VHOST_RINGS_TRANSPORT_BITS | VSOCK_DEVBITS);
	int err = vhost_rings_start(&v->rings, v->vk, v->vdev, acked);

	if (!err) {
		err = vhost_kernel_vsock_set_running(v->vk, true);
		if (err)
			vhost_rings_stop(&v->rings, v->vk);
	}
	if (err)
		return err;
	v->running = true;
	vhost_rings_kick_all(&v->rings);
	return 0;
}

static void vv_queue_notify(void *opaque, uint16_t queue)
{
	struct virtio_vhost_vsock *v = opaque;

	/* The event queue: its buffers wait for events the device never
	 * sends (transport resets come with migration). */
	vhost_rings_notify(&v->rings, queue);
}

static void vv_reset(void *opaque)
{
	vv_stop(opaque);
}

static void vv_destroy(void *opaque)
{
	struct virtio_vhost_vsock *v = opaque;

	vhost_rings_fini(&v->rings);
	vhost_kernel_destroy(v->vk);
	free(v);
}

static const struct virtio_device_ops vv_ops = {
	.activate = vv_activate,
	.queue_notify = vv_queue_notify,
	.reset = vv_reset,
	.destroy = vv_destroy,
};

int virtio_vhost_vsock_create(const struct virtio_vhost_vsock_params *p,
			      struct virtio_vhost_vsock **out)
{
	static const uint32_t queues[2] = {Q_RX, Q_TX};
	const struct virtio_vhost_kernel_params *kp;
	struct virtio_device_info info = {0};
	struct virtio_vhost_vsock *v;
	uint64_t cid;
	uint32_t qmax;
	int err;

	if (!p || !out || p->guest_cid < 3 || p->guest_cid > 0xfffffffeull)
		return -EINVAL;
	qmax = p->queue_max_size ? p->queue_max_size : 256;
	if (qmax > VIRTQ_MAX_SIZE || (qmax & (qmax - 1)))
		return -EINVAL;
	kp = p->kernel;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = vhost_rings_init(&v->rings, 2, queues);
	if (err) {
		free(v);
		return err;
	}
	err = vhost_kernel_open(kp && kp->path ? kp->path : "/dev/vhost-vsock",
				kp ? kp->kernel : NULL, &v->vk);
	if (!err)
		err = vhost_kernel_set_owner(v->vk);
	if (!err)
		err = vhost_kernel_get_features(v->vk, &v->kernel);
	if (!err && !(v->kernel & F(VIRTIO_DEVICE_F_VERSION_1)))
		err = -ENOTSUP;
	if (!err)
		err = vhost_kernel_vsock_set_guest_cid(v->vk, p->guest_cid);
	if (!err) {
		info.device_id = VIRTIO_ID_VSOCK;
		info.num_queues = NQ;
		info.queue_max_size = qmax;
		info.features = vhost_rings_offer(VSOCK_DEVBITS, v->kernel,
						  VSOCK_DEVBITS);
		info.config_size = 8;
		if (!(v->kernel & F(VIRTIO_DEVICE_F_INDIRECT_DESC)))
			info.flags |= VIRTIO_DEVICE_NO_INDIRECT;
		if (!(v->kernel & F(VIRTIO_DEVICE_F_EVENT_IDX)))
			info.flags |= VIRTIO_DEVICE_NO_EVENT_IDX;
		err = virtio_device_create(&info, &vv_ops, v, &v->vdev);
	}
	if (err) {
		vhost_kernel_destroy(v->vk);
		vhost_rings_fini(&v->rings);
		free(v);
		return err;
	}
	/* From here the device owns @v (vv_destroy). */
	cid = htole64(p->guest_cid);
	virtio_device_lock(v->vdev);
	virtio_device_config_set(v->vdev, 0, &cid, sizeof(cid), false);
	virtio_device_unlock(v->vdev);
	*out = v;
	return 0;
}

void virtio_vhost_vsock_destroy(struct virtio_vhost_vsock *v)
{
	if (v)
		virtio_device_destroy(v->vdev);
}

struct virtio_device *virtio_vhost_vsock_device(struct virtio_vhost_vsock *v)
{
	return v ? v->vdev : NULL;
}

void virtio_vhost_vsock_relay_counts(struct virtio_vhost_vsock *v,
				     uint64_t *kicks, uint64_t *calls)
{
	if (kicks)
		*kicks = 0;
	if (calls)
		*calls = 0;
	if (v)
		vhost_rings_relay_counts(&v->rings, kicks, calls);
}
