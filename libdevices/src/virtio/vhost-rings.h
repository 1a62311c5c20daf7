/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Internal to libdevices: queues of a virtio device handed to the kernel's
 * vhost (libvhost's struct vhost_kernel), shared by vhost-net
 * (net-backend-vhost.c) and vhost-vsock (vhost-vsock.c).
 *
 * The plumbing has the shape of the vhost-user device (vhost-user.c): per
 * ring the kick is the queue's own notifier (virtio_device_queue_notifier():
 * the VMM's ioeventfd signals it and the kernel reads it, no VMM thread in
 * between; the device claims it out of its poll list while the ring is
 * the kernel's, and signals it itself for a notify that arrived as an
 * MMIO exit: a "relayed kick"), as call the queue's direct interrupt fd
 * when the transport offers one (virtio_device_queue_irq_fd(): the
 * irqfd of its MSI-X vector; re-pointed by the irq-fd watcher with
 * SET_VRING_CALL when the guest masks, unmasks or reprograms the
 * vector), else a relay call eventfd the kernel writes and the device
 * turns into the queue's interrupt through the transport (a "relayed
 * call": masked vectors keep their pending bit this way), and an error
 * eventfd the kernel writes when a ring is bad (the
 * device then goes to NEEDS_RESET).  The call and error eventfds are in
 * the device's poll list.
 *
 * Hand-over at DRIVER_OK (vhost_rings_start()): SET_FEATURES with the
 * negotiated features the kernel knows, SET_MEM_TABLE, then per ring
 * SET_VRING_NUM, SET_VRING_BASE (the queue's next avail index), SET_VRING_
 * ADDR, SET_VRING_CALL, SET_VRING_ERR, SET_VRING_KICK.  The device type
 * then attaches its backend (tap, running) and kicks (buffers posted
 * before DRIVER_OK).  Taking back (vhost_rings_stop(), after the device
 * type detached its backend): GET_VRING_BASE per started ring, loaded into
 * the queue (next avail = next used = the kernel's base, nothing in
 * flight) so that the VMM's view of the ring is the kernel's.
 *
 * All calls with the device lock held (or before the device exists).
 */
#ifndef CVMM_DEVICES_VHOST_RINGS_H
#define CVMM_DEVICES_VHOST_RINGS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/virtio.h>
#include <cvmm/vhost/kernel.h>

#define VHOST_RINGS_MAX 2u

struct vhost_rings;

struct vhost_ring {
	struct vhost_rings *set;
	uint32_t queue; /* the device's queue index */
	int kick;	/* the queue's notifier fd while started, else -1 */
	int call, err;	/* the relay call eventfd, the error eventfd */
	int call_bound; /* the call fd the kernel has (direct or relay) */
	bool started;
	uint32_t base; /* GET_VRING_BASE at the last stop */
};

struct vhost_rings {
	struct virtio_device *dev; /* set by the first start */
	uint32_t n;
	struct vhost_ring r[VHOST_RINGS_MAX];
	struct vhost_kernel *vk; /* set by start */
	/* Orders the started flags and the call re-pointing (the irq-fd
	 * watcher runs on vCPU threads); taken under the device lock and
	 * the transport's route lock, never around a device call. */
	pthread_mutex_t call_lock;
	bool lock_inited;
	/* Notifications that took a VMM thread (--verbose figures). */
	_Atomic uint64_t relayed_kicks, relayed_calls;
};

/*
 * The feature bits whose support is the kernel's business (ring layout,
 * notification, the virtio version, and @device_bits of the device type):
 * a device offers one of them only when VHOST_GET_FEATURES has it.
 */
#define VHOST_RINGS_TRANSPORT_BITS                                          \
	((1ull << 24) /* NOTIFY_ON_EMPTY */ | (1ull << 28) /* INDIRECT */ | \
	 (1ull << 29) /* EVENT_IDX */ | (1ull << 32) /* VERSION_1 */ |      \
	 (1ull << 33) /* ACCESS_PLATFORM */ | (1ull << 34) /* PACKED */ |   \
	 (1ull << 35) /* IN_ORDER */)

/* Shared with the vhost-user device (vhost-user.c), which hands its
 * queues to a backend process the same way. */
/* The kick a ring's server reads: queue @queue's notifier fd. */
int vhost_queue_kick_fd(struct virtio_device *dev, uint32_t queue);
/* The call fd a ring's server should signal: the queue's direct
 * interrupt fd when the transport offers one, else @relay. */
int vhost_queue_call_fd(struct virtio_device *dev, uint32_t queue, int relay);
/* Consume the relay call eventfd @fd: true when it was signalled (the
 * caller raises the queue's interrupt), counted in @count. */
bool vhost_relay_call(int fd, _Atomic uint64_t *count);

/* @offered minus the kernel-served bits (transport bits and
 * @device_bits) that @kernel lacks. */
uint64_t vhost_rings_offer(uint64_t offered, uint64_t kernel,
			   uint64_t device_bits);

/* Call and error eventfds for rings 0..@n-1 serving device queues @queues[i]. */
int vhost_rings_init(struct vhost_rings *rs, uint32_t n,
		     const uint32_t *queues);
/* Close the eventfds (after the device stopped polling them). */
void vhost_rings_fini(struct vhost_rings *rs);

/* The hand-over above; @acked: the features to SET_FEATURES.  On error
 * the rings started are taken back; the negative errno is returned. */
int vhost_rings_start(struct vhost_rings *rs, struct vhost_kernel *vk,
		      struct virtio_device *dev, uint64_t acked);
/* Write every started ring's kick eventfd. */
void vhost_rings_kick_all(struct vhost_rings *rs);
/* Queue @queue was notified: kick its ring if it is started.  Returns
 * whether @queue is one of the rings. */
bool vhost_rings_notify(struct vhost_rings *rs, uint32_t queue);
/* Kicks the device wrote for notifies it was called for, and calls it
 * turned into interrupts, since init (either may be NULL). */
void vhost_rings_relay_counts(struct vhost_rings *rs, uint64_t *kicks,
			      uint64_t *calls);
/* Take the started rings back (see the top). */
void vhost_rings_stop(struct vhost_rings *rs, struct vhost_kernel *vk);

#endif
