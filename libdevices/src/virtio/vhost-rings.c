/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Queues of a virtio device handed to the kernel's vhost: see
 * vhost-rings.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vhost-rings.h"

uint64_t vhost_rings_offer(uint64_t offered, uint64_t kernel,
			   uint64_t device_bits)
{
	uint64_t served = VHOST_RINGS_TRANSPORT_BITS | device_bits;

	return offered & ~(served & ~kernel);
}

int vhost_rings_init(struct vhost_rings *rs, uint32_t n, const uint32_t *queues)
{
	memset(rs, 0, sizeof(*rs));
	if (n == 0 || n > VHOST_RINGS_MAX)
		return -EINVAL;
	rs->n = n;
	pthread_mutex_init(&rs->call_lock, NULL);
	rs->lock_inited = true;
	for (uint32_t i = 0; i < n; i++) {
		rs->r[i].set = rs;
		rs->r[i].queue = queues[i];
		rs->r[i].kick = rs->r[i].call = rs->r[i].err = -1;
		rs->r[i].call_bound = -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vhost_ring *r = &rs->r[i];

		r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->call < 0 || r->err < 0) {
			int e = -errno;

			vhost_rings_fini(rs);
			return e;
		}
	}
	return 0;
}

void vhost_rings_fini(struct vhost_rings *rs)
{
	if (rs->dev)
		virtio_device_set_irq_fd_watcher(rs->dev, NULL, NULL);
	for (uint32_t i = 0; i < rs->n; i++) {
		struct vhost_ring *r = &rs->r[i];

		if (r->call >= 0)
			close(r->call);
		if (r->err >= 0)
			close(r->err);
		r->kick = r->call = r->err = -1;
	}
	rs->n = 0;
	if (rs->lock_inited)
		pthread_mutex_destroy(&rs->call_lock);
	rs->lock_inited = false;
}

int vhost_queue_kick_fd(struct virtio_device *dev, uint32_t queue)
{
	return event_notifier_fd(virtio_device_queue_notifier(dev, queue));
}

int vhost_queue_call_fd(struct virtio_device *dev, uint32_t queue, int relay)
{
	int fd = virtio_device_queue_irq_fd(dev, queue);

	return fd >= 0 ? fd : relay;
}

bool vhost_relay_call(int fd, _Atomic uint64_t *count)
{
	eventfd_t v;

	if (eventfd_read(fd, &v) != 0)
		return false;
	atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
	return true;
}

/* The kernel used the ring: the queue's interrupt (the kernel already
 * applied the driver's suppression: EVENT_IDX or NO_INTERRUPT). */
static void call_ready(void *opaque, uint32_t revents)
{
	struct vhost_ring *r = opaque;

	(void)revents;
	if (vhost_relay_call(r->call, &r->set->relayed_calls))
		virtio_device_queue_interrupt(r->set->dev, r->queue);
}

/* The kernel found the ring unusable (a bad descriptor, an address
 * outside the table): the device needs a reset. */
static void err_ready(void *opaque, uint32_t revents)
{
	struct vhost_ring *r = opaque;
	eventfd_t v;

	(void)revents;
	if (eventfd_read(r->err, &v) == 0)
		virtio_device_error(r->set->dev);
}

/* The call fd ring @r's kernel side should signal: the queue's direct
 * interrupt fd when the transport offers one, else the relay (call). */
static int wanted_call(const struct vhost_ring *r)
{
	return vhost_queue_call_fd(r->set->dev, r->queue, r->call);
}

/* Point a started ring's call at wanted_call() (call_lock held).  When
 * the kernel refuses the direct fd the relay is tried. */
static void rebind_call(struct vhost_ring *r, unsigned int index)
{
	int want = wanted_call(r);

	if (!r->started || want == r->call_bound)
		return;
	if (vhost_kernel_set_vring_call(r->set->vk, index, want) == 0) {
		r->call_bound = want;
	} else if (want != r->call &&
		   vhost_kernel_set_vring_call(r->set->vk, index, r->call) ==
			   0) {
		r->call_bound = r->call;
	}
}

/* The transport's direct interrupt fd of @queue changed (see
 * virtio_device_set_irq_fd_watcher(): transport locks held, maybe the
 * device lock). */
static void irq_fd_changed(void *opaque, uint32_t queue, int fd)
{
	struct vhost_rings *rs = opaque;

	(void)fd; /* re-read under the lock: the latest value wins */
	pthread_mutex_lock(&rs->call_lock);
	for (uint32_t i = 0; i < rs->n; i++)
		if (rs->r[i].queue == queue)
			rebind_call(&rs->r[i], i);
	pthread_mutex_unlock(&rs->call_lock);
}

static int attach(struct vhost_rings *rs, struct virtio_device *dev)
{
	if (rs->dev == dev)
		return 0;
	if (rs->dev)
		return -EINVAL;
	for (uint32_t i = 0; i < rs->n; i++) {
		struct virtio_poll_fd c = {.fd = rs->r[i].call,
					   .events = POLLIN,
					   .ready = call_ready,
					   .opaque = &rs->r[i]};
		struct virtio_poll_fd e = {.fd = rs->r[i].err,
					   .events = POLLIN,
					   .ready = err_ready,
					   .opaque = &rs->r[i]};
		int err = virtio_device_add_poll_fd(dev, &c, NULL);

		if (!err)
			err = virtio_device_add_poll_fd(dev, &e, NULL);
		if (err)
			return err; /* those added stay: harmless until
				     * destroy, and rs->dev stays NULL */
	}
	rs->dev = dev;
	virtio_device_set_irq_fd_watcher(dev, irq_fd_changed, rs);
	return 0;
}

static int ring_start(struct vhost_ring *r, struct vhost_kernel *vk,
		      unsigned int index)
{
	struct virtq *q = virtio_device_queue(r->set->dev, r->queue);
	struct virtq_state *st;
	unsigned int base;
	int err;

	if (!q || !virtq_ready(q))
		return -EINVAL;
	/* The kick is the queue's own notifier: the VMM's ioeventfd
	 * signals it and the kernel reads it (claimed below). */
	r->kick = vhost_queue_kick_fd(r->set->dev, r->queue);
	if (r->kick < 0)
		return -EINVAL;
	st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	virtq_save(q, st);
	base = st->next_avail;
	free(st);
	err = vhost_kernel_set_vring_num(vk, index, virtq_size(q));
	if (!err)
		err = vhost_kernel_set_vring_base(vk, index, base);
	if (!err)
		err = vhost_kernel_set_vring_addr(
			vk, index, virtq_addr(q, VIRTQ_AREA_DESC),
			virtq_addr(q, VIRTQ_AREA_AVAIL),
			virtq_addr(q, VIRTQ_AREA_USED));
	if (!err) {
		r->call_bound = wanted_call(r);
		err = vhost_kernel_set_vring_call(vk, index, r->call_bound);
	}
	if (!err)
		err = vhost_kernel_set_vring_err(vk, index, r->err);
	if (!err)
		err = vhost_kernel_set_vring_kick(vk, index, r->kick);
	if (!err)
		err = virtio_device_queue_notifier_claim(r->set->dev, r->queue,
							 true);
	if (err) {
		vhost_kernel_set_vring_kick(vk, index, -1);
		return err;
	}
	/* From here the watcher re-points the call; a change since the
	 * SET_VRING_CALL above is caught up now. */
	pthread_mutex_lock(&r->set->call_lock);
	r->started = true;
	rebind_call(r, index);
	pthread_mutex_unlock(&r->set->call_lock);
	return 0;
}

int vhost_rings_start(struct vhost_rings *rs, struct vhost_kernel *vk,
		      struct virtio_device *dev, uint64_t acked)
{
	int err = attach(rs, dev);

	rs->vk = vk;
	if (!err)
		err = vhost_kernel_set_features(vk, acked);
	if (!err)
		err = vhost_kernel_set_mem_table(vk, virtio_device_memory(dev));
	for (uint32_t i = 0; !err && i < rs->n; i++)
		err = ring_start(&rs->r[i], vk, i);
	if (err)
		vhost_rings_stop(rs, vk);
	return err;
}

void vhost_rings_kick_all(struct vhost_rings *rs)
{
	for (uint32_t i = 0; i < rs->n; i++)
		if (rs->r[i].started)
			eventfd_write(rs->r[i].kick, 1);
}

void vhost_rings_relay_counts(struct vhost_rings *rs, uint64_t *kicks,
			      uint64_t *calls)
{
	if (kicks)
		*kicks = atomic_load_explicit(&rs->relayed_kicks,
					      memory_order_relaxed);
	if (calls)
		*calls = atomic_load_explicit(&rs->relayed_calls,
					      memory_order_relaxed);
}

bool vhost_rings_notify(struct vhost_rings *rs, uint32_t queue)
{
	for (uint32_t i = 0; i < rs->n; i++) {
		if (rs->r[i].queue != queue)
			continue;
		if (rs->r[i].started) {
			/* A notify the VMM handled itself (no ioeventfd). */
			atomic_fetch_add_explicit(&rs->relayed_kicks, 1,
						  memory_order_relaxed);
			eventfd_write(rs->r[i].kick, 1);
		}
		return true;
	}
	return false;
}

/* Load the kernel's index into the queue: everything before @base was
 * used (the kernel completes what it took before GET_VRING_BASE
 * returns). */
static void ring_take_back(struct vhost_ring *r, unsigned int base)
{
	struct virtq *q = virtio_device_queue(r->set->dev, r->queue);
	struct virtq_state *st = malloc(sizeof(*st));

	if (!q || !st) {
		free(st);
		return;
	}
	virtq_save(q, st);
	if (st->ready) {
		st->next_avail = st->next_used = (uint16_t)base;
		st->signalled_used = (uint16_t)base;
		st->signalled_valid = 0;
		st->in_flight = 0;
		memset(st->in_flight_heads, 0, sizeof(st->in_flight_heads));
		/* A ring the kernel left inconsistent: the queue keeps its
		 * state (a reset follows anyway on the error path). */
		if (virtq_restore(q, st) < 0)
			virtio_device_error(r->set->dev);
	}
	free(st);
}

void vhost_rings_stop(struct vhost_rings *rs, struct vhost_kernel *vk)
{
	for (uint32_t i = 0; i < rs->n; i++) {
		struct vhost_ring *r = &rs->r[i];
		unsigned int base;

		if (!r->started)
			continue;
		pthread_mutex_lock(&rs->call_lock);
		r->started = false;
		pthread_mutex_unlock(&rs->call_lock);
		/* Stops the ring in the kernel; its index comes back. */
		if (vhost_kernel_get_vring_base(vk, i, &base) == 0) {
			r->base = base;
			ring_take_back(r, base);
		} else {
			virtio_device_error(rs->dev);
		}
		vhost_kernel_set_vring_kick(vk, i, -1);
		/* The device polls the notifier again; a kick the kernel
		 * left unread is processed by the device (the ring is not
		 * started anymore: nothing to do). */
		virtio_device_queue_notifier_claim(rs->dev, r->queue, false);
		r->kick = -1;
		vhost_kernel_set_vring_call(vk, i, -1);
		r->call_bound = -1;
		vhost_kernel_set_vring_err(vk, i, -1);
	}
}
