/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/**
 * @file virtio-vhost-kernel.h
 * libdevices: virtio devices whose data rings the kernel moves (vhost,
 * through libvhost's <cvmm/vhost/kernel.h>), built when libvhost is.
 *
 * vhost-net: a virtio-net backend (virtio-net.h) that wraps the tap
 * backend and hands the receive and transmit rings to /dev/vhost-net,
 * with the tap as the kernel's backend.  virtio-net keeps the
 * configuration space, the control queue and the feature negotiation.
 *
 *   virtio_net_backend_tap_open("tap0", 1, &tap_ops, &tap);
 *   virtio_net_backend_vhost_create(NULL, tap_ops, tap, &ops, &be);
 *   virtio_net_create(ops, be, &o, &net);
 *
 * vhost-vsock: a virtio-vsock device (id 19) whose receive and transmit
 * rings /dev/vhost-vsock serves: host programs use AF_VSOCK sockets with
 * the guest's CID directly.  The device keeps the configuration space (the
 * CID) and the event queue (no event is ever sent: cvmm does not migrate).
 *
 * Both: the device offers a ring or transport feature (INDIRECT_DESC,
 * EVENT_IDX, MRG_RXBUF for net, SEQPACKET for vsock ...) only when
 * VHOST_GET_FEATURES has it, and tells the kernel the negotiated ones it
 * knows.  At DRIVER_OK the device hands the kernel the memory table (the
 * device's libvm-memory snapshot), each ring's size, base index and
 * addresses, a kick eventfd (written when the driver notifies the queue),
 * a call eventfd (turned into the queue's interrupt), an error eventfd
 * (turned into NEEDS_RESET), then attaches the tap / sets the vsock device
 * running.  At a reset it detaches / stops and takes the rings back
 * (GET_VRING_BASE).  A kernel that refuses any of it puts the device into
 * NEEDS_RESET; the VMM goes on.
 *
 * The kick, call and error eventfds are in the device's poll list
 * (virtio_device_poll_fds()).  Locking as every device (virtio.h).
 */
#ifndef CVMM_DEVICES_VIRTIO_VHOST_KERNEL_H
#define CVMM_DEVICES_VIRTIO_VHOST_KERNEL_H

#include <stdint.h>

#include <cvmm/devices/virtio-net.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/vhost/kernel.h>

#ifndef CVMM_EXPORT
#define CVMM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct virtio_vhost_kernel_params - where the kernel device is.
 * @path:   the vhost device (NULL: "/dev/vhost-net" or "/dev/vhost-vsock").
 * @kernel: libvhost's configuration (its ioctl seam for tests); NULL for
 *          the real ioctl(2).
 */
struct virtio_vhost_kernel_params {
	const char *path;
	const struct vhost_kernel_config *kernel;
};

/**
 * virtio_net_backend_vhost_create() - a virtio-net backend over the tap
 * backend @tap_ops / @tap (virtio_net_backend_tap_open() with one pair):
 * opens the vhost device, SET_OWNER, GET_FEATURES.  The tap's fd of pair 0
 * becomes the kernel's backend; the tap backend keeps doing the header
 * size (12 bytes, TUNSETVNETHDRSZ: the kernel then passes headers
 * through) and the offloads (TUNSETOFFLOAD).
 * @p:   NULL for the defaults.
 * @out_ops, @out_be: the backend for virtio_net_create(), which owns it
 *       from then on (its destroy closes the vhost device and destroys the
 *       tap backend).
 * On success the tap backend belongs to the new backend; on error it is
 * still the caller's.  Only one queue pair (create the device with
 * max_pairs 1).
 * Errors: -EINVAL (NULL, a tap backend without rx_fd), -ENOMEM, the
 * open's errno (-ENOENT without the vhost_net module, -EACCES), the
 * kernel's for SET_OWNER / GET_FEATURES, -ENOTSUP (the tap takes no
 * virtio-net header, or the kernel lacks VERSION_1).
 */
CVMM_EXPORT int virtio_net_backend_vhost_create(
	const struct virtio_vhost_kernel_params *p,
	const struct virtio_net_backend_ops *tap_ops, void *tap,
	const struct virtio_net_backend_ops **out_ops, void **out_be);

struct virtio_vhost_vsock;

/**
 * struct virtio_vhost_vsock_params - a vhost-vsock device.
 * @guest_cid:      3..0xfffffffe.
 * @queue_max_size: every queue's maximum size; 0 means 256.
 * @kernel:         the vhost device (NULL: /dev/vhost-vsock, ioctl(2)).
 */
struct virtio_vhost_vsock_params {
	uint64_t guest_cid;
	uint32_t queue_max_size;
	const struct virtio_vhost_kernel_params *kernel;
};

/**
 * virtio_vhost_vsock_create() - open the vhost device, SET_OWNER,
 * GET_FEATURES, SET_GUEST_CID (the CID is taken from now on: another VM
 * with it gets -EADDRINUSE), and make the device.
 * @out: receives it, owned by the caller.
 * Errors: -EINVAL (NULL, CID, queue size), -ENOMEM, the open's errno
 * (-ENOENT without the vhost_vsock module), the kernel's (-EADDRINUSE: the
 * CID is in use), -ENOTSUP (no VERSION_1), virtio_device_create()'s.
 */
CVMM_EXPORT int
virtio_vhost_vsock_create(const struct virtio_vhost_vsock_params *p,
			  struct virtio_vhost_vsock **out);

/** virtio_vhost_vsock_destroy() - destroy the device (the transport
 *  first); closes the vhost device.  NULL is fine. */
CVMM_EXPORT void virtio_vhost_vsock_destroy(struct virtio_vhost_vsock *v);

/** virtio_vhost_vsock_device() - its device core; destroying that (with
 *  virtio_device_destroy()) destroys @v too. */
CVMM_EXPORT struct virtio_device *
virtio_vhost_vsock_device(struct virtio_vhost_vsock *v);

/**
 * virtio_vhost_vsock_relay_counts() - notifications that went through a
 * VMM thread since create: @kicks, guest notifies the device was called
 * for and passed on to the kernel (no ioeventfd registered for the
 * queue's notifier: with one, the kernel reads the notifier directly);
 * @calls, the kernel's used-buffer signals the device turned into queue
 * interrupts.  Either may be NULL.  Any thread.
 */
CVMM_EXPORT void virtio_vhost_vsock_relay_counts(struct virtio_vhost_vsock *v,
						 uint64_t *kicks,
						 uint64_t *calls);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_VIRTIO_VHOST_KERNEL_H */
