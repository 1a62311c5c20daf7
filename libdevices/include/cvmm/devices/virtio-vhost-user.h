/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-vhost-user.h
 * libdevices: a generic vhost-user virtio device.  The device's queues are
 * served by another process, a vhost-user backend (QEMU's
 * qemu-storage-daemon, virtiofsd, c-vmm's examples/vhost-user-blk...),
 * through libvhost's frontend; this device keeps what the guest sees of
 * it: the transport (virtio-pci or virtio-mmio on the virtio device core),
 * the feature negotiation, the status and the configuration space.
 *
 *   struct virtio_vhost_user *vu;
 *   struct virtio_vhost_user_options o = {.device_id = 2,      // blk
 *                                         .config_size = 60};
 *   virtio_vhost_user_create("/run/blk.sock", &o, &vu);
 *   virtio_pci_create(virtio_vhost_user_device(vu), NULL, &vp);
 *   ... the VMM polls virtio_device_poll_fds() as for any device ...
 *   virtio_vhost_user_destroy(vu);         // after the transport
 *
 * Creation connects to the backend, reads its features (and protocol
 * features, queue count, configuration space unless the VMM supplies it:
 * virtio-fs, see virtio_vhost_user_fs_config()), and offers the guest the
 * backend's device-specific feature bits (0..23; VERSION_1 required,
 * INDIRECT_DESC and EVENT_IDX when the backend has them).  When the
 * driver sets DRIVER_OK the device hands the backend the negotiated
 * features, the guest memory table (guest memory must be fd-backed:
 * GUEST_REGION_MEMFD regions, see virtio_device_set_memory()) and every
 * enabled queue's size, base and addresses with a kick and a call
 * eventfd.  The kick is the queue's notifier (virtio_device_queue_
 * notifier(): the VMM's ioeventfd reaches the backend with no VMM thread;
 * the device stops polling it while the backend has the ring, and
 * signals it for a notify the VMM handled itself).  The call is the
 * queue's direct interrupt fd when the transport offers one
 * (virtio_device_queue_irq_fd(): the MSI-X vector's irqfd), else a relay
 * eventfd in the device's poll list that raises the queue interrupt; the
 * device re-points it (SET_VRING_CALL, from its poll list) when the guest
 * masks, unmasks or reprograms the vector, then raises the queue's
 * interrupt once through the transport so that a call made to the old fd
 * meanwhile is not lost (a masked vector keeps it pending; between the
 * guest's mask and the re-pointing a call may still reach the vector's
 * irqfd: early, never lost).  A driver reset stops the backend's rings (GET_VRING_BASE).
 *
 * Backend failure: when the backend disconnects or misbehaves (found on
 * a request, or by polling its socket, which is in the poll list too) the
 * device sets DEVICE_NEEDS_RESET and raises a configuration interrupt;
 * the VMM keeps running.  No reconnection: the device stays broken until
 * destroyed.  Memory hot-plug after DRIVER_OK is not forwarded.
 *
 * Threads and locking: as every virtio device (virtio.h); backend
 * requests are made with the device lock held and block for at most the
 * reply timeout.
 */
#ifndef CVMM_DEVICES_VIRTIO_VHOST_USER_H
#define CVMM_DEVICES_VIRTIO_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/virtio.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct virtio_vhost_user;

/**
 * struct virtio_vhost_user_options - how to build the device.  NULL or a
 * zero field means the default, except @device_id which is required.
 * @device_id:       virtio device id the guest sees (2 blk, 1 net, 26 fs).
 * @num_queues:      queues; 0 = the backend's GET_QUEUE_NUM when it offers
 *                   MQ, else 1.
 * @queue_max_size:  each queue's maximum size, a power of two; 0 = 256.
 * @config_size:     bytes of configuration space, read from the backend
 *                   with GET_CONFIG (needs the CONFIG protocol feature;
 *                   without it the space stays zero); 0 = none.  At most
 *                   256.
 * @features_mask:   device-specific feature bits the VMM allows the guest
 *                   to see; 0 = every bit 0..23 the backend offers.
 * @reply_timeout_ms: how long a backend request may take; 0 = 5000.
 * @config:          NULL, or @config_size bytes the VMM supplies as the
 *                   configuration space instead of asking the backend
 *                   (copied at create).  Such a space is read-only to the
 *                   guest: its writes are dropped, never forwarded.  This
 *                   is how virtio-fs is built (QEMU's vhost-user-fs device
 *                   does the same): the tag and the number of request
 *                   queues are the VMM's, and virtiofsd offers no CONFIG
 *                   protocol feature.  See virtio_vhost_user_fs_config().
 */
struct virtio_vhost_user_options {
	uint32_t device_id;
	uint32_t num_queues;
	uint32_t queue_max_size;
	uint32_t config_size;
	uint64_t features_mask;
	unsigned int reply_timeout_ms;
	const void *config;
};

/** VIRTIO_VHOST_USER_FS_TAG_MAX - bytes of a virtio-fs tag (virtio 1.2,
 *  5.11.4: tag[36], UTF-8, NUL-padded, not NUL-terminated when full). */
#define VIRTIO_VHOST_USER_FS_TAG_MAX	 36u
/** VIRTIO_VHOST_USER_FS_CONFIG_SIZE - bytes of the virtio-fs configuration
 *  space: tag[36], le32 num_request_queues (the notify_buf_size of the
 *  notification feature is not offered). */
#define VIRTIO_VHOST_USER_FS_CONFIG_SIZE 40u

/**
 * virtio_vhost_user_fs_config() - fill @out (VIRTIO_VHOST_USER_FS_CONFIG_SIZE
 * bytes) with a virtio-fs configuration space for @tag and
 * @num_request_queues, for &virtio_vhost_user_options.config (device id 26,
 * num_queues = 1 + @num_request_queues: the hiprio queue, then the request
 * queues).
 * Errors: -EINVAL when @tag is NULL, empty, longer than
 * VIRTIO_VHOST_USER_FS_TAG_MAX bytes, or holds a byte outside printable
 * ASCII without space (0x21..0x7e: the guest's mount names it), or when
 * @num_request_queues is 0 or leaves no room for the hiprio queue below
 * VIRTIO_DEVICE_MAX_QUEUES.
 */
CVMM_EXPORT int virtio_vhost_user_fs_config(const char *tag,
					    uint32_t num_request_queues,
					    uint8_t *out);

/**
 * virtio_vhost_user_create() - connect to the vhost-user backend listening
 * at @socket_path and build the device.
 * Errors: -EINVAL (NULL, device_id 0, config_size > 256, bad sizes),
 * -ENOTSUP (the backend lacks VERSION_1), -ENOMEM, the connect errno
 * (-ENOENT, -ECONNREFUSED), or the backend's failure (-ECONNRESET,
 * -ETIMEDOUT, -EPROTO, -EIO).
 */
CVMM_EXPORT int
virtio_vhost_user_create(const char *socket_path,
			 const struct virtio_vhost_user_options *opts,
			 struct virtio_vhost_user **out);

/** virtio_vhost_user_destroy() - destroy the device (stopping the
 *  backend's rings) and close the connection.  The transport must be
 *  destroyed first.  NULL is fine. */
CVMM_EXPORT void virtio_vhost_user_destroy(struct virtio_vhost_user *vu);

/** virtio_vhost_user_device() - the device core, for a transport. */
CVMM_EXPORT struct virtio_device *
virtio_vhost_user_device(struct virtio_vhost_user *vu);

/** virtio_vhost_user_connected() - false once the backend is gone.  Any
 *  thread (a relaxed read). */
CVMM_EXPORT bool
virtio_vhost_user_connected(const struct virtio_vhost_user *vu);

/**
 * virtio_vhost_user_relay_counts() - notifications that took a VMM
 * thread since create: @kicks, guest notifies the device passed on (the
 * VMM delivered them itself, not through an ioeventfd); @calls, backend
 * calls on the relay turned into queue interrupts (no direct interrupt
 * fd at the time).  Either may be NULL; 0 for a NULL @vu.  Any thread.
 */
CVMM_EXPORT void virtio_vhost_user_relay_counts(struct virtio_vhost_user *vu,
						uint64_t *kicks,
						uint64_t *calls);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_VHOST_USER_H */
