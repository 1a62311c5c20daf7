/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A generic vhost-user virtio device: the queues are served by a backend
 * process through libvhost's frontend; the device core keeps the
 * transport, features, status and configuration space.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cvmm/vhost/user-frontend.h>

#include "cvmm/devices/virtio-vhost-user.h"
#include "vhost-rings.h"

#define F_INDIRECT (1ull << VIRTIO_DEVICE_F_INDIRECT_DESC)
#define F_EVENT	   (1ull << VIRTIO_DEVICE_F_EVENT_IDX)
#define F_V1	   (1ull << VIRTIO_DEVICE_F_VERSION_1)
#define F_PROTO	   (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define F_DEVICE   ((1ull << 24) - 1)

struct vu_queue {
	struct virtio_vhost_user *vu;
	uint32_t index;
	int call;	/* the relay: the backend writes it, we interrupt */
	int call_bound; /* the call fd the backend has (direct or relay) */
	bool started;
};

struct virtio_vhost_user {
	struct virtio_device *dev;
	struct vhost_user_frontend *fe;
	uint64_t backend_features;
	uint32_t nq;
	uint32_t config_size;
	bool config_local; /* the VMM's (options.config): read-only */
	struct vu_queue *q;
	unsigned sock_id;
	bool sock_polled;
	bool running;
	atomic_bool broken;
	/* Written by the irq-fd watcher: re-point the backend's call fds
	 * (from the poll list, with the device lock: the frontend is not
	 * thread-safe). */
	int rebind;
	_Atomic uint64_t relayed_kicks, relayed_calls;
};

/* The backend is gone (called with the device lock held, or from
 * create before the device exists). */
static void vu_broken(struct virtio_vhost_user *vu)
{
	if (atomic_exchange(&vu->broken, true))
		return;
	vu->running = false;
	if (vu->dev) {
		if (vu->sock_polled) {
			virtio_device_remove_poll_fd(vu->dev, vu->sock_id);
			vu->sock_polled = false;
		}
		virtio_device_error(vu->dev);
	}
}

static void on_disconnect(struct vhost_user_frontend *fe, int err, void *opaque)
{
	(void)fe;
	(void)err;
	vu_broken(opaque);
}

static void sock_ready(void *opaque, uint32_t revents)
{
	struct virtio_vhost_user *vu = opaque;

	(void)revents;
	/* Between requests the backend never speaks: readable means gone. */
	vhost_user_frontend_check(vu->fe);
}

static void call_ready(void *opaque, uint32_t revents)
{
	struct vu_queue *q = opaque;

	(void)revents;
	if (vhost_relay_call(q->call, &q->vu->relayed_calls))
		virtio_device_queue_interrupt(q->vu->dev, q->index);
}

/* A queue's direct interrupt fd changed (transport locks held, maybe the
 * device lock): the poll list does the rest. */
static void irq_fd_changed(void *opaque, uint32_t queue, int fd)
{
	struct virtio_vhost_user *vu = opaque;

	(void)queue;
	(void)fd;
	eventfd_write(vu->rebind, 1);
}

/* Point every started queue's call at its current fd.  A call the
 * backend made to the old fd since the change may have gone nowhere (a
 * notifier the VMM replaced) or past a mask: the queue's interrupt is
 * raised once through the transport, which sends or keeps it pending. */
static void rebind_ready(void *opaque, uint32_t revents)
{
	struct virtio_vhost_user *vu = opaque;
	eventfd_t v;

	(void)revents;
	if (eventfd_read(vu->rebind, &v) != 0 || !vu->running ||
	    atomic_load(&vu->broken))
		return;
	for (uint32_t i = 0; i < vu->nq; i++) {
		struct vu_queue *q = &vu->q[i];
		int want = vhost_queue_call_fd(vu->dev, i, q->call);

		if (!q->started || want == q->call_bound)
			continue;
		if (vhost_user_frontend_set_vring_call(vu->fe, i, want) != 0)
			return; /* the backend is gone: broken */
		q->call_bound = want;
		virtio_device_queue_interrupt(vu->dev, i);
	}
}

static int vu_activate(void *opaque)
{
	struct virtio_vhost_user *vu = opaque;
	struct virtio_device *dev = vu->dev;
	uint64_t f = virtio_device_features(dev);
	int err;

	if (atomic_load(&vu->broken))
		return -ECONNRESET;
	if (vu->backend_features & F_PROTO)
		f |= F_PROTO;
	err = vhost_user_frontend_set_features(vu->fe, f);
	if (!err)
		err = vhost_user_frontend_set_mem_table(
			vu->fe, virtio_device_memory(dev));
	for (uint32_t i = 0; !err && i < vu->nq; i++) {
		struct virtq *vq = virtio_device_queue(dev, i);
		struct vu_queue *q = &vu->q[i];

		if (!virtq_ready(vq))
			continue;
		err = vhost_user_frontend_set_vring_num(vu->fe, i,
							virtq_size(vq));
		if (!err)
			err = vhost_user_frontend_set_vring_base(vu->fe, i, 0);
		if (!err)
			err = vhost_user_frontend_set_vring_addr(
				vu->fe, i, virtq_addr(vq, VIRTQ_AREA_DESC),
				virtq_addr(vq, VIRTQ_AREA_AVAIL),
				virtq_addr(vq, VIRTQ_AREA_USED));
		/* The call: the vector's irqfd when the transport has one;
		 * the kick: the queue's notifier (the VMM's ioeventfd),
		 * which the device stops polling. */
		if (!err) {
			q->call_bound = vhost_queue_call_fd(dev, i, q->call);
			err = vhost_user_frontend_set_vring_call(vu->fe, i,
								 q->call_bound);
		}
		if (!err)
			err = vhost_user_frontend_set_vring_kick(
				vu->fe, i, vhost_queue_kick_fd(dev, i));
		if (!err && (f & F_PROTO))
			err = vhost_user_frontend_set_vring_enable(vu->fe, i,
								   true);
		if (!err)
			err = virtio_device_queue_notifier_claim(dev, i, true);
		if (!err) {
			q->started = true;
			/* Buffers made available before DRIVER_OK. */
			virtio_device_queue_kick(dev, i);
		}
	}
	if (!err) {
		vu->running = true;
		/* A change between a SET_VRING_CALL and now. */
		eventfd_write(vu->rebind, 1);
	}
	return err;
}

static void vu_queue_notify(void *opaque, uint16_t queue)
{
	struct virtio_vhost_user *vu = opaque;

	/* A notify the VMM handled itself (no ioeventfd): the backend
	 * reads the notifier. */
	if (vu->running && queue < vu->nq && vu->q[queue].started) {
		atomic_fetch_add_explicit(&vu->relayed_kicks, 1,
					  memory_order_relaxed);
		virtio_device_queue_kick(vu->dev, queue);
	}
}

static void vu_stop(struct virtio_vhost_user *vu)
{
	for (uint32_t i = 0; i < vu->nq; i++) {
		unsigned int base;

		if (vu->q[i].started && !atomic_load(&vu->broken))
			vhost_user_frontend_get_vring_base(vu->fe, i, &base);
		if (vu->q[i].started)
			virtio_device_queue_notifier_claim(vu->dev, i, false);
		vu->q[i].started = false;
		vu->q[i].call_bound = -1;
	}
	vu->running = false;
}

static void vu_reset(void *opaque)
{
	vu_stop(opaque);
}

static void vu_config_write(void *opaque, uint32_t offset, const void *data,
			    unsigned len)
{
	struct virtio_vhost_user *vu = opaque;
	uint8_t *cfg = virtio_device_config_data(vu->dev);

	if (atomic_load(&vu->broken) || !cfg || vu->config_local)
		return;
	/* The backend has the last word on what is writable: forward, then
	 * keep what it answers. */
	if (vhost_user_frontend_set_config(vu->fe, offset, data, len) == 0 &&
	    vhost_user_frontend_get_config(vu->fe, offset, cfg + offset, len) <
		    0)
		memcpy(cfg + offset, data, len);
}

static void vu_destroy(void *opaque)
{
	struct virtio_vhost_user *vu = opaque;

	for (uint32_t i = 0; i < vu->nq; i++)
		if (vu->q[i].call >= 0)
			close(vu->q[i].call);
	if (vu->rebind >= 0)
		close(vu->rebind);
	vhost_user_frontend_destroy(vu->fe);
	free(vu->q);
	free(vu);
}

static const struct virtio_device_ops vu_ops = {
	.activate = vu_activate,
	.queue_notify = vu_queue_notify,
	.reset = vu_reset,
	.config_write = vu_config_write,
	.destroy = vu_destroy,
};

/* Everything before the device core exists: connect and ask. */
static int vu_connect(struct virtio_vhost_user *vu, const char *path,
		      const struct virtio_vhost_user_options *o,
		      uint8_t *config)
{
	struct vhost_user_frontend_config fc = {
		.reply_timeout_ms = o->reply_timeout_ms,
		.disconnected = on_disconnect,
		.opaque = vu,
	};
	uint64_t pf = 0, nq = 0;
	int err;

	err = vhost_user_frontend_connect(path, &fc, &vu->fe);
	if (err)
		return err;
	err = vhost_user_frontend_get_features(vu->fe, &vu->backend_features);
	if (err)
		return err;
	if (!(vu->backend_features & F_V1))
		return -ENOTSUP;
	if (vu->backend_features & F_PROTO) {
		err = vhost_user_frontend_get_protocol_features(vu->fe, &pf);
		if (!err)
			err = vhost_user_frontend_set_protocol_features(
				vu->fe,
				pf & ((1ull << VHOST_USER_PROTOCOL_F_MQ) |
				      (1ull
				       << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
				      (1ull << VHOST_USER_PROTOCOL_F_CONFIG)));
		if (err)
			return err;
	}
	err = vhost_user_frontend_set_owner(vu->fe);
	if (err)
		return err;
	vu->nq = o->num_queues;
	if (!vu->nq && (pf & (1ull << VHOST_USER_PROTOCOL_F_MQ))) {
		err = vhost_user_frontend_get_queue_num(vu->fe, &nq);
		if (err)
			return err;
		if (nq == 0 || nq > VIRTIO_DEVICE_MAX_QUEUES)
			return -EPROTO;
		vu->nq = (uint32_t)nq;
	}
	if (!vu->nq)
		vu->nq = 1;
	if (o->config_size && !o->config &&
	    (pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)))
		return vhost_user_frontend_get_config(vu->fe, 0, config,
						      o->config_size);
	return 0;
}

int virtio_vhost_user_create(const char *socket_path,
			     const struct virtio_vhost_user_options *opts,
			     struct virtio_vhost_user **out)
{
	struct virtio_vhost_user_options o = {0};
	struct virtio_device_info info = {0};
	struct virtio_vhost_user *vu;
	uint8_t config[VHOST_USER_MAX_CONFIG_SIZE] = {0};
	uint64_t mask;
	int err;

	if (!socket_path || !opts || !out)
		return -EINVAL;
	o = *opts;
	if (!o.device_id || o.device_id > 0xffff ||
	    (o.config && !o.config_size) ||
	    o.config_size > VHOST_USER_MAX_CONFIG_SIZE ||
	    o.num_queues > VIRTIO_DEVICE_MAX_QUEUES)
		return -EINVAL;
	vu = calloc(1, sizeof(*vu));
	if (!vu)
		return -ENOMEM;
	vu->rebind = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vu->rebind < 0) {
		free(vu);
		return -errno;
	}
	err = vu_connect(vu, socket_path, &o, config);
	if (err)
		goto fail;
	vu->config_size = o.config_size;
	if (o.config) {
		memcpy(config, o.config, o.config_size);
		vu->config_local = true;
	}
	vu->q = calloc(vu->nq, sizeof(*vu->q));
	if (!vu->q) {
		err = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < vu->nq; i++)
		vu->q[i].call = vu->q[i].call_bound = -1;
	for (uint32_t i = 0; i < vu->nq; i++) {
		vu->q[i].vu = vu;
		vu->q[i].index = i;
		vu->q[i].call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vu->q[i].call < 0) {
			err = -errno;
			goto fail;
		}
	}
	mask = o.features_mask ? o.features_mask : F_DEVICE;
	info.device_id = o.device_id;
	info.num_queues = vu->nq;
	info.queue_max_size = o.queue_max_size;
	info.features = vu->backend_features & mask & F_DEVICE;
	info.config_size = o.config_size;
	if (!(vu->backend_features & F_INDIRECT))
		info.flags |= VIRTIO_DEVICE_NO_INDIRECT;
	if (!(vu->backend_features & F_EVENT))
		info.flags |= VIRTIO_DEVICE_NO_EVENT_IDX;
	err = virtio_device_create(&info, &vu_ops, vu, &vu->dev);
	if (err)
		goto fail;
	/* From here the device owns @vu (ops.destroy). */
	if (o.config_size) {
		virtio_device_lock(vu->dev);
		virtio_device_config_set(vu->dev, 0, config, o.config_size,
					 false);
		virtio_device_unlock(vu->dev);
	}
	for (uint32_t i = 0; i < vu->nq; i++) {
		struct virtio_poll_fd p = {.fd = vu->q[i].call,
					   .events = POLLIN,
					   .ready = call_ready,
					   .opaque = &vu->q[i]};

		err = virtio_device_add_poll_fd(vu->dev, &p, NULL);
		if (err)
			goto fail_dev;
	}
	{
		struct virtio_poll_fd p = {.fd = vu->rebind,
					   .events = POLLIN,
					   .ready = rebind_ready,
					   .opaque = vu};

		err = virtio_device_add_poll_fd(vu->dev, &p, NULL);
		if (err)
			goto fail_dev;
		virtio_device_set_irq_fd_watcher(vu->dev, irq_fd_changed, vu);
	}
	{
		struct virtio_poll_fd p = {
			.fd = vhost_user_frontend_socket(vu->fe),
			.events = POLLIN,
			.ready = sock_ready,
			.opaque = vu};

		err = virtio_device_add_poll_fd(vu->dev, &p, &vu->sock_id);
		if (err)
			goto fail_dev;
		vu->sock_polled = true;
	}
	*out = vu;
	return 0;
fail_dev:
	virtio_device_destroy(vu->dev);
	return err;
fail:
	vu->dev = NULL;
	if (vu->q)
		for (uint32_t i = 0; i < vu->nq; i++)
			if (vu->q[i].call >= 0)
				close(vu->q[i].call);
	close(vu->rebind);
	vhost_user_frontend_destroy(vu->fe);
	free(vu->q);
	free(vu);
	return err;
}

void virtio_vhost_user_destroy(struct virtio_vhost_user *vu)
{
	if (vu)
		virtio_device_destroy(vu->dev);
}

struct virtio_device *virtio_vhost_user_device(struct virtio_vhost_user *vu)
{
	return vu ? vu->dev : NULL;
}

bool virtio_vhost_user_connected(const struct virtio_vhost_user *vu)
{
	return vu && !atomic_load((atomic_bool *)&vu->broken);
}

int virtio_vhost_user_fs_config(const char *tag, uint32_t num_request_queues,
				uint8_t *out)
{
	size_t n;
	uint32_t le;

	if (!tag || !out || num_request_queues == 0 ||
	    num_request_queues >= VIRTIO_DEVICE_MAX_QUEUES)
		return -EINVAL;
	n = strnlen(tag, VIRTIO_VHOST_USER_FS_TAG_MAX + 1);
	if (n == 0 || n > VIRTIO_VHOST_USER_FS_TAG_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (tag[i] < 0x21 || tag[i] > 0x7e)
			return -EINVAL;
	memset(out, 0, VIRTIO_VHOST_USER_FS_CONFIG_SIZE);
	memcpy(out, tag, n);
	le = htole32(num_request_queues);
	memcpy(out + VIRTIO_VHOST_USER_FS_TAG_MAX, &le, sizeof(le));
	return 0;
}

void virtio_vhost_user_relay_counts(struct virtio_vhost_user *vu,
				    uint64_t *kicks, uint64_t *calls)
{
	if (kicks)
		*kicks = vu ? atomic_load(&vu->relayed_kicks) : 0;
	if (calls)
		*calls = vu ? atomic_load(&vu->relayed_calls) : 0;
}
