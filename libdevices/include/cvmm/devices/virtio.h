/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio.h
 * libdevices: the virtio device core (virtio 1.2, sections 2 and 3),
 * transport independent.
 *
 * A virtio device is two halves:
 *   - struct virtio_device, this core: feature pages, the status state
 *     machine, the device configuration space and its generation counter,
 *     one struct virtq (libvirtio-queue) per queue with its notifier, reset,
 *     broken-queue handling and interrupt bookkeeping;
 *   - a device type (rng, blk, console, or one a library user writes) that
 *     fills in struct virtio_device_ops and implements the queues' work.
 * A transport (virtio-pci.h, virtio-mmio.h) maps the guest's registers onto
 * the core and delivers the core's interrupts.  A device type never sees
 * the transport; a transport never sees the device type.
 *
 * Writing a device type:
 *
 *   static const struct virtio_device_ops my_ops = {
 *       .queue_notify = my_process_queue,   // pop, work, complete
 *       .reset = my_reset,                  // drain in-flight work
 *   };
 *   struct virtio_device_info info = {
 *       .device_id = 4,                     // VIRTIO_ID_RNG
 *       .num_queues = 1, .queue_max_size = 256,
 *       .features = my_feature_bits,        // VERSION_1 is added
 *       .config_size = sizeof(struct my_config),
 *   };
 *   virtio_device_create(&info, &my_ops, my_state, &vdev);
 *   virtio_device_config_set(vdev, 0, &initial_config, sizeof(...));
 *   virtio_pci_create(vdev, NULL, &vp);      // or virtio_mmio_create()
 *
 * Locking.  Each device has ONE mutex (the "device lock"), held by the core
 * while it changes the device's state and while it calls every op of
 * struct virtio_device_ops and every poll-fd ready function a device
 * registered.  A device type therefore needs no lock of its own for state
 * touched only from ops and ready functions: a queue notifier firing on an
 * I/O thread and a vCPU writing the device's config space or status are
 * serialised.  Functions marked "(locked)" below must be called with the
 * device lock held: from inside an op or ready function, or between
 * virtio_device_lock() and virtio_device_unlock().  Calls into the VMM
 * (interrupt delivery through the transport, the poll watcher) are made
 * after the lock is released: interrupts raised while it is held are
 * collected and sent by virtio_device_unlock() (which the core calls at the
 * end of every op it ran).  Ops must not call virtio_device_lock() (the
 * mutex is not recursive) nor block for long (the vCPU that touches a
 * register waits for the lock).
 *
 * Threads and events.  libdevices creates no threads and owns no loop.
 * A device reports the file descriptors it needs polled as a list of
 * struct virtio_poll_fd (each queue's notifier eventfd, plus whatever the
 * device type adds: an io_uring completion eventfd, sockets), each with the
 * function to call when it is ready.  The VMM polls them however it likes
 * (its own epoll thread, the vCPU thread, a helper loop) and calls
 * ready(opaque, revents); virtio_device_set_poll_watcher() tells it when the
 * list changed.  Without ioeventfds a VMM needs no polling at all: a guest
 * notify arriving as an MMIO exit is processed inline on the vCPU thread.
 *
 * Queue processing contract (the queue_notify op):
 *   - called with the device lock held, only while the driver has set
 *     DRIVER_OK, the device is neither NEEDS_RESET nor FAILED, and the
 *     queue is enabled and not broken;
 *   - the op pops chains with virtq_pop() on virtio_device_queue(), into
 *     chain storage it owns, and completes them (virtq_complete*()) now or
 *     later; after completing it calls virtio_device_queue_used() (which
 *     raises the queue interrupt if virtq_needs_interrupt() says so);
 *   - a chain may stay in flight after the op returns (asynchronous
 *     backends); it is completed later from a ready function (lock held),
 *     never from an unlocked thread;
 *   - when virtq_pop() returns 0 the op calls virtq_enable_notification()
 *     and pops again if it returns true: that re-arms the driver's kicks
 *     (with EVENT_IDX it publishes avail_event; without it, a driver never
 *     kicks again);
 *   - the work done per call must be bounded (at most the queue size
 *     chains is natural; a device may stop earlier and signal its notifier
 *     with virtio_device_queue_kick() to continue on the next round);
 *   - a malformed chain breaks the queue (libvirtio-queue): the core then
 *     sets DEVICE_NEEDS_RESET and raises a configuration interrupt (QEMU's
 *     virtio_error pattern); the op just stops using the queue.  A device
 *     that finds a device-level protocol error calls virtio_device_error().
 *
 * Reset contract.  When the driver writes status 0 (or the VMM calls
 * virtio_device_reset()), the core, under the device lock, calls the reset
 * op - which must cancel or wait for every request still in flight,
 * including I/O the kernel may still be doing into guest memory (io_uring
 * reads), and forget its chains - then resets every queue (indexes, broken
 * state), the features, the status and pending interrupts.  Only then does
 * the status read back 0, so no completion lands in guest memory after the
 * driver saw status 0.
 *
 * Errors are negative errno values; nothing here prints or aborts.
 */
#ifndef CVMM_DEVICES_VIRTIO_H
#define CVMM_DEVICES_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmm/devices/irq.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_device;

/* --------------------------------------------------------------- constants */

/** Device status bits (virtio 1.2, 2.1), as in <linux/virtio_config.h>. */
#define VIRTIO_DEVICE_STATUS_ACKNOWLEDGE 0x01u
#define VIRTIO_DEVICE_STATUS_DRIVER	 0x02u
#define VIRTIO_DEVICE_STATUS_DRIVER_OK	 0x04u
#define VIRTIO_DEVICE_STATUS_FEATURES_OK 0x08u
#define VIRTIO_DEVICE_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_DEVICE_STATUS_FAILED	 0x80u

/** Feature bits the core handles itself (bit numbers). */
#define VIRTIO_DEVICE_F_INDIRECT_DESC 28
#define VIRTIO_DEVICE_F_EVENT_IDX     29
#define VIRTIO_DEVICE_F_VERSION_1     32
#define VIRTIO_DEVICE_F_RING_PACKED   34
#define VIRTIO_DEVICE_F_IN_ORDER      35

/** Most queues a device may have, and most config-space bytes. */
#define VIRTIO_DEVICE_MAX_QUEUES 1024u
#define VIRTIO_DEVICE_MAX_CONFIG 4096u

/** "No queue": returned where a queue index is expected. */
#define VIRTIO_DEVICE_NO_QUEUE 0xffffu

/* ------------------------------------------------------------- poll fds */

/**
 * struct virtio_poll_fd - one file descriptor a device needs polled.
 * @fd:     the descriptor (owned by the device; never close it).
 * @events: poll(2) / epoll(7) event bits to wait for (POLLIN = EPOLLIN,
 *          POLLOUT = EPOLLOUT have the same values).
 * @ready:  call this (from any thread) when the fd reported @revents.  It
 *          takes the device lock itself; never call it with the lock held.
 *          It may be called spuriously (the device's fds are
 *          non-blocking and it copes with EAGAIN), and calling it for an
 *          entry that was meanwhile removed is harmless until the device
 *          is destroyed.
 * @opaque: argument of @ready.
 *
 * The same type is used by device types to add their own fds
 * (virtio_device_add_poll_fd()): the core then wraps @ready so that it is
 * called with the device lock held and interrupts are sent afterwards.
 */
struct virtio_poll_fd {
	int fd;
	uint32_t events;
	void (*ready)(void *opaque, uint32_t revents);
	void *opaque;
};

/* ----------------------------------------------------------- device ops */

/**
 * struct virtio_device_ops - what a device type supplies.  Every member is
 * optional.  All are called with the device lock held (see the top of the
 * file) and must not call back into the transport or virtio_device_lock().
 *
 * @features_ok:  the driver set FEATURES_OK with @features (already checked
 *                by the core: a subset of the offered features, VERSION_1
 *                set).  Return 0 to accept, a negative errno to refuse
 *                (FEATURES_OK then does not stick).  Without it: accepted.
 * @config_read:  the driver reads @len bytes at @offset of the device
 *                configuration space (offset + len <= config_size, checked):
 *                the core has copied its config bytes into @data; the op
 *                may replace them (values computed on the fly).
 * @config_write: the driver wrote @len bytes at @offset (bounds checked;
 *                the core does NOT store them).  The device validates and
 *                stores what is writable in its layout through
 *                virtio_device_config_data().  Without it writes are ignored.
 * @activate:     the driver set DRIVER_OK; the negotiated features are
 *                virtio_device_features().  A negative return puts the
 *                device into NEEDS_RESET (config interrupt raised).
 * @queue_ready:  queue @queue was enabled (@ready true) after the core had
 *                validated and activated its rings, or the driver disabled
 *                it (@ready false: virtio-mmio QueueReady 0; drop its
 *                chains, the queue is reset after the op returns).  A device
 *                reset calls @reset instead.
 * @queue_notify: the driver notified queue @queue: process it (see "Queue
 *                processing contract").
 * @reset:        device reset: cancel or wait for in-flight requests (no
 *                guest-memory write may happen after it returns), drop
 *                chains, restore the device type's state to power-on.  Its
 *                config bytes stay as they are unless it changes them.
 * @destroy:      virtio_device_destroy() is freeing the device: release the
 *                device type's state (@opaque).  Called without the lock,
 *                after every fd has stopped being called.
 */
struct virtio_device_ops {
	int (*features_ok)(void *opaque, uint64_t features);
	void (*config_read)(void *opaque, uint32_t offset, void *data,
			    unsigned len);
	void (*config_write)(void *opaque, uint32_t offset, const void *data,
			     unsigned len);
	int (*activate)(void *opaque);
	void (*queue_ready)(void *opaque, uint16_t queue, bool ready);
	void (*queue_notify)(void *opaque, uint16_t queue);
	void (*reset)(void *opaque);
	void (*destroy)(void *opaque);
};

/** Flags of struct virtio_device_info. */
enum {
	/** Do not offer VIRTIO_RING_F_INDIRECT_DESC (offered by default). */
	VIRTIO_DEVICE_NO_INDIRECT = 1u << 0,
	/** Do not offer VIRTIO_RING_F_EVENT_IDX (offered by default). */
	VIRTIO_DEVICE_NO_EVENT_IDX = 1u << 1,
};

/**
 * struct virtio_device_info - identity and shape of a device.
 * @device_id:      virtio device id (1 net, 2 blk, 3 console, 4 rng ...),
 *                  1..0xffff (the PCI device id is 0x1040 + @device_id).
 * @num_queues:     1..VIRTIO_DEVICE_MAX_QUEUES.
 * @queue_max_size: the maximum size of every queue (QueueNumMax), a power
 *                  of two 1..32768; 0 means 256.
 * @queue_max_sizes: optional array of @num_queues per-queue maxima (each as
 *                  @queue_max_size; 0 entries mean @queue_max_size).
 * @features:       device-specific features offered (bits 0..23 and any
 *                  transport bit the device type handles); the core adds
 *                  VERSION_1, INDIRECT_DESC and EVENT_IDX (see @flags).
 * @config_size:    bytes of device configuration space,
 *                  0..VIRTIO_DEVICE_MAX_CONFIG; initially zero-filled.
 * @flags:          VIRTIO_DEVICE_NO_* flags.
 */
struct virtio_device_info {
	uint32_t device_id;
	uint32_t num_queues;
	uint32_t queue_max_size;
	const uint32_t *queue_max_sizes;
	uint64_t features;
	uint32_t config_size;
	uint32_t flags;
};

/* -------------------------------------------------------- life cycle */

/**
 * virtio_device_create() - a device core in the reset state.
 * @info:   copied (queue_max_sizes too).
 * @ops:    the device type's ops; the pointer is kept (must outlive the
 *          device).  NULL: a device that does nothing.
 * @opaque: passed to every op; owned by the device type (see ops.destroy).
 * @out:    receives the device, owned by the caller.
 * Creates one virtq and one event notifier (eventfd) per queue.
 * Errors: -EINVAL (NULL @info/@out, bad id, queue count, sizes, config
 * size, unknown flags), -ENOMEM, the eventfd errno.  On error ops.destroy
 * is NOT called: @opaque still belongs to the caller.
 */
CVMM_EXPORT int virtio_device_create(const struct virtio_device_info *info,
				     const struct virtio_device_ops *ops,
				     void *opaque, struct virtio_device **out);

/**
 * virtio_device_destroy() - reset the device (reset op), call ops.destroy,
 * free everything.  The transport using it must be destroyed first, and
 * the VMM must have stopped polling its fds.  NULL is fine.
 */
CVMM_EXPORT void virtio_device_destroy(struct virtio_device *dev);

/**
 * virtio_device_set_memory() - the guest memory snapshot to use (a
 * reference is taken, the previous one dropped), handed to every queue.
 * Call before the guest runs, and again after a memory change.  A queue
 * whose rings no longer fit breaks (NEEDS_RESET).  Takes the device lock.
 * Errors: -EINVAL (NULL @dev or, while a queue is enabled, NULL @mem).
 */
CVMM_EXPORT int virtio_device_set_memory(struct virtio_device *dev,
					 struct guest_memory *mem);

/** virtio_device_memory() - the current snapshot (no reference taken;
 *  valid while the device holds it).  (locked) */
CVMM_EXPORT struct guest_memory *
virtio_device_memory(struct virtio_device *dev);

/**
 * virtio_device_reset() - host-initiated device reset, as if the driver
 * had written status 0 (the reset contract above).  Takes the lock.
 */
CVMM_EXPORT void virtio_device_reset(struct virtio_device *dev);

/* ------------------------------------------------------------ locking */

/** virtio_device_lock() - take the device lock (not recursive). */
CVMM_EXPORT void virtio_device_lock(struct virtio_device *dev);

/**
 * virtio_device_unlock() - release the lock, then send the interrupts
 * raised while it was held and tell the poll watcher if the poll list
 * changed (both outside the lock).
 */
CVMM_EXPORT void virtio_device_unlock(struct virtio_device *dev);

/* -------------------------------------------------- for device types */

/** virtio_device_opaque() - the @opaque given at creation. */
CVMM_EXPORT void *virtio_device_opaque(const struct virtio_device *dev);
/** virtio_device_id() - the virtio device id. */
CVMM_EXPORT uint32_t virtio_device_id(const struct virtio_device *dev);
/** virtio_device_num_queues() - number of queues. */
CVMM_EXPORT uint32_t virtio_device_num_queues(const struct virtio_device *dev);

/**
 * virtio_device_queue() - queue @idx's struct virtq (NULL when out of
 * range).  The pointer is valid for the device's life; use it only with
 * the lock held.
 */
CVMM_EXPORT struct virtq *virtio_device_queue(struct virtio_device *dev,
					      uint32_t idx);

/** virtio_device_features() - features the driver accepted (valid once
 *  FEATURES_OK stuck; 0 before).  (locked) */
CVMM_EXPORT uint64_t virtio_device_features(const struct virtio_device *dev);
/** virtio_device_has_feature() - whether feature bit @bit was accepted.
 *  (locked) */
CVMM_EXPORT bool virtio_device_has_feature(const struct virtio_device *dev,
					   unsigned bit);
/** virtio_device_offered_features() - what the device offers (with the
 *  core's bits). */
CVMM_EXPORT uint64_t
virtio_device_offered_features(const struct virtio_device *dev);
/**
 * virtio_device_set_ring_features() - choose the ring features the device
 * offers on top of its device type's: @bits is a subset of
 * (1 << VIRTIO_DEVICE_F_RING_PACKED) | (1 << VIRTIO_DEVICE_F_IN_ORDER) and
 * replaces what was offered of these two (0: split ring, completions in
 * any order, the default).  The driver still chooses: a driver that does
 * not accept RING_PACKED gets a split ring; one that accepts a bit that
 * is not offered fails FEATURES_OK.  The core hands the negotiated bits to
 * every queue it enables (libvirtio-queue serves both layouts and the
 * transports' three area addresses map onto the packed descriptor ring and
 * driver / device event suppression areas), so a device type needs no
 * change for RING_PACKED.
 *
 * IN_ORDER is a promise of the device type: it completes each queue's
 * chains in the order virtq_pop() returned them (libvirtio-queue refuses
 * any other completion with -EINVAL, and the chain would then never be
 * returned to the driver).  Offer it only for a device type and backend
 * known to do so (virtio-blk on the synchronous backend does; on io_uring
 * it does not).
 *
 * Call while the driver has not started (status 0: before the guest runs,
 * or after a reset).  Takes the device lock.
 * Errors: -EINVAL (NULL @dev, other bits), -EBUSY (status not 0).
 */
CVMM_EXPORT int virtio_device_set_ring_features(struct virtio_device *dev,
						uint64_t bits);

/** virtio_device_status() - the device status byte.  (locked) */
CVMM_EXPORT uint8_t virtio_device_status(const struct virtio_device *dev);

/**
 * virtio_device_queue_used() - after completing chains on queue @idx:
 * raise the queue's interrupt if virtq_needs_interrupt() says the driver
 * wants one (sent at unlock).  (locked)
 */
CVMM_EXPORT void virtio_device_queue_used(struct virtio_device *dev,
					  uint32_t idx);

/** virtio_device_queue_interrupt() - raise queue @idx's interrupt
 *  unconditionally (sent at unlock).  (locked) */
CVMM_EXPORT void virtio_device_queue_interrupt(struct virtio_device *dev,
					       uint32_t idx);

/**
 * virtio_device_queue_kick() - signal queue @idx's notifier as the driver
 * would, so the poller calls queue_notify again later (to yield after a
 * bounded amount of work).  Any context.  Errors: -EINVAL, eventfd errno.
 */
CVMM_EXPORT int virtio_device_queue_kick(struct virtio_device *dev,
					 uint32_t idx);

/**
 * virtio_device_error() - the device found an unrecoverable error: set
 * DEVICE_NEEDS_RESET and raise a configuration interrupt (once; queues stop
 * being processed until a reset).  (locked)
 */
CVMM_EXPORT void virtio_device_error(struct virtio_device *dev);

/** virtio_device_needs_reset() - whether NEEDS_RESET is set.  (locked) */
CVMM_EXPORT bool virtio_device_needs_reset(const struct virtio_device *dev);

/**
 * virtio_device_config_set() - a device-side change of config bytes
 * [@offset, @offset + @len): copy @data in, bump config_generation and,
 * when @notify and the driver has set DRIVER_OK, raise a configuration
 * interrupt.  (locked)  Errors: -EINVAL (NULL, range past config_size).
 */
CVMM_EXPORT int virtio_device_config_set(struct virtio_device *dev,
					 uint32_t offset, const void *data,
					 size_t len, bool notify);

/**
 * virtio_device_config_data() - the config bytes (config_size of them),
 * for a config_write op that stores a driver-written field (a driver-side
 * change does not bump the generation).  NULL when config_size is 0.
 * (locked)
 */
CVMM_EXPORT void *virtio_device_config_data(struct virtio_device *dev);

/** virtio_device_config_generation() - the current generation.  (locked) */
CVMM_EXPORT uint32_t
virtio_device_config_generation(const struct virtio_device *dev);

/**
 * virtio_device_add_poll_fd() - a device type adds an fd to the device's
 * poll list: @pfd->ready(@pfd->opaque, revents) will be called with the
 * device lock held (and interrupts sent after it).  @id receives a handle
 * for removal (may be NULL).  Callable with or without the lock; the poll
 * watcher is told at unlock (or at once when called without the lock).
 * Errors: -EINVAL (NULL, fd < 0, no ready), -ENOMEM, -ENOSPC (more than
 * 4096 entries).
 */
CVMM_EXPORT int virtio_device_add_poll_fd(struct virtio_device *dev,
					  const struct virtio_poll_fd *pfd,
					  unsigned *id);

/** virtio_device_remove_poll_fd() - remove entry @id: its ready is not
 *  called anymore (a VMM call racing the removal is ignored).  Errors:
 *  -EINVAL, -ENOENT. */
CVMM_EXPORT int virtio_device_remove_poll_fd(struct virtio_device *dev,
					     unsigned id);

/* ------------------------------------------------------------- for VMMs */

/**
 * virtio_device_poll_fds() - the fds to poll now: the queue notifiers
 * first (in queue order, events POLLIN; those claimed by the device type
 * left out: virtio_device_queue_notifier_claim()), then the device type's
 * fds.  Fills up to @max entries of @fds and returns the total
 * number (call again with a bigger array if it exceeds @max).  The ready
 * functions handed out take the device lock themselves: call them with no
 * lock held, from any thread.  A notifier's ready consumes the eventfd and
 * processes the queue (as a notify register write would).  Errors: -EINVAL.
 */
CVMM_EXPORT int virtio_device_poll_fds(struct virtio_device *dev,
				       struct virtio_poll_fd *fds,
				       unsigned max);

/**
 * virtio_device_set_poll_watcher() - @fn(@opaque, @dev) is called
 * (without the device lock, from whichever thread changed it) whenever
 * the list virtio_device_poll_fds() returns changed; the VMM re-reads it
 * and updates its epoll set.  NULL removes it.  Entries are identified by
 * (fd, opaque); an unchanged entry keeps both.
 */
CVMM_EXPORT void virtio_device_set_poll_watcher(
	struct virtio_device *dev,
	void (*fn)(void *opaque, struct virtio_device *dev), void *opaque);

/**
 * virtio_device_queue_notifier() - queue @idx's event notifier: the VMM
 * registers its fd as an ioeventfd at the transport's notify address for
 * the queue (virtio_pci_queue_notify_addr(), virtio-mmio's QueueNotify with
 * datamatch @idx) and polls it (it is in virtio_device_poll_fds()).  NULL
 * when out of range.  Owned by the device.
 */
CVMM_EXPORT struct event_notifier *
virtio_device_queue_notifier(struct virtio_device *dev, uint32_t idx);

/**
 * virtio_device_queue_notifier_claim() - a device type whose queue @idx is
 * served by another party (the kernel's vhost, a vhost-user backend)
 * hands that party virtio_device_queue_notifier()'s fd as the ring's kick
 * and claims the notifier (@claimed true): it leaves the poll list, so a
 * guest notify delivered by the VMM's ioeventfd reaches the backend with
 * no VMM thread in between.  A notify arriving another way (a notify
 * register write the VMM handles itself) still calls the queue_notify
 * op, which signals the notifier (virtio_device_queue_kick()).  @claimed
 * false puts it back (the device takes the ring back).  The poll watcher
 * is told (at unlock when called with the lock held).  Idempotent.
 * Errors: -EINVAL (NULL, @idx out of range).
 */
CVMM_EXPORT int virtio_device_queue_notifier_claim(struct virtio_device *dev,
						   uint32_t idx, bool claimed);

/**
 * virtio_device_queue_irq_fd() - an eventfd that raises queue @idx's
 * interrupt when signalled, with no VMM thread in between, or -1 when
 * there is none now.  The transport offers one while it can deliver the
 * queue's interrupt that way: virtio-pci, the irqfd the VMM gave for the
 * queue's MSI-X vector (virtio_pci_set_vector_notifier()) while MSI-X is
 * enabled, the vector unmasked and the VMM's route for it current (its
 * msix_update returned 0).  Never for INTx or virtio-mmio (a level line
 * whose status register the transport must set): -1.  A device type
 * whose rings another party serves (the kernel's vhost, a vhost-user
 * backend) hands that party this fd as the ring's call fd, and its own
 * relay eventfd (turned into virtio_device_queue_interrupt()) while it is
 * -1.  The fd is the VMM's: valid while it is the current value.  Not
 * owned by the caller.  -1 for NULL or an out-of-range @idx.  Any thread.
 */
CVMM_EXPORT int virtio_device_queue_irq_fd(struct virtio_device *dev,
					   uint32_t idx);

/**
 * virtio_device_set_irq_fd_watcher() - @fn(@opaque, queue, fd) is called
 * whenever virtio_device_queue_irq_fd(queue) changes (the guest wrote
 * the queue's vector, masked or unmasked or reprogrammed a vector,
 * enabled or disabled MSI-X, reset the device; the VMM replaced a
 * vector's notifier; the transport went away), on the thread that made
 * the change, before that change takes effect for the guest: a vector
 * masked by the guest is reported (fd -1) before the mask write
 * completes, an unmasked one (its fd) before its pending message is sent.
 * Calls are serialised and in order.  @fn runs with transport locks and
 * possibly the device lock held: it must not call into the device or
 * the transport (virtio_device_queue_irq_fd() excepted); it may take a
 * lock of its own that it never holds while calling those.  NULL
 * removes it.  Errors: none (NULL @dev ignored).
 */
CVMM_EXPORT void virtio_device_set_irq_fd_watcher(
	struct virtio_device *dev,
	void (*fn)(void *opaque, uint32_t queue, int fd), void *opaque);

/**
 * virtio_device_notify() - the driver notified queue @idx (a notify
 * register write, an ioeventfd, virtio-mmio QueueNotify): process it if the
 * device is live and the queue enabled (queue_notify op, under the lock),
 * then send interrupts.  Out-of-range indexes are ignored.  Any thread.
 */
CVMM_EXPORT void virtio_device_notify(struct virtio_device *dev, uint32_t idx);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_H */
