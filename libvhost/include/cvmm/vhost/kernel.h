/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: the kernel's vhost API (/dev/vhost-net, /dev/vhost-vsock) as a
 * C object.
 *
 * A struct vhost_kernel owns one open /dev/vhost-* fd.  The kernel moves
 * the data of the queues handed to it: the VMM gives it the guest memory
 * table (from a libvm-memory object), each ring's size, base index and
 * addresses, and the kick/call/error eventfds (normally the ioeventfd and
 * irqfd of the virtio device), then the device-specific backend: a tap fd
 * per queue for vhost-net, the guest CID and "running" for vhost-vsock.
 *
 *   vhost_kernel_open("/dev/vhost-net", NULL, &vk);
 *   vhost_kernel_set_owner(vk);
 *   vhost_kernel_get_features(vk, &f);  vhost_kernel_set_features(vk, acked);
 *   vhost_kernel_set_mem_table(vk, mem);
 *   per queue: set_vring_num, set_vring_base, set_vring_addr,
 *              set_vring_kick, set_vring_call, then
 *              vhost_kernel_net_set_backend(vk, q, tap_fd);
 *
 * Addresses: the kernel wants the VMM's own (userspace) addresses for the
 * memory table and the rings.  The memory table is every region's guest
 * physical range with its host mapping; ring addresses are given here as
 * guest physical addresses and translated through the table last set.
 *
 * Test seam: struct vhost_kernel_config.ioctl replaces ioctl(2), so the
 * error paths can be tested without the vhost modules (the build host has
 * none; the lab's kernel has vhost_net and vhost_vsock).
 *
 * Errors: negative errno: the kernel's (through the ioctl), or -EINVAL for
 * an argument refused before any ioctl.  Threads: not locked; serialise
 * calls on one object.
 */
#ifndef CVMM_VHOST_KERNEL_H
#define CVMM_VHOST_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/vm-memory.h>

#include <cvmm/vhost-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct vhost_kernel;

/**
 * typedef vhost_kernel_ioctl_fn - the seam: perform @request on @fd with
 * @arg (a pointer to the uapi struct of <linux/vhost.h>, or NULL for
 * requests without one) and return 0 or a negative errno.
 */
typedef int (*vhost_kernel_ioctl_fn)(void *opaque, int fd,
				     unsigned long request, void *arg);

/** Configuration; NULL or all-zero means ioctl(2). */
struct vhost_kernel_config {
	vhost_kernel_ioctl_fn ioctl; /**< NULL: the real ioctl(2) */
	void *opaque;		     /**< passed to @ioctl */
};

/**
 * vhost_kernel_open() - open @path (e.g. "/dev/vhost-net") read-write,
 * close-on-exec, and make an object of it.  SET_OWNER is not sent (call
 * vhost_kernel_set_owner()).
 * Errors: -EINVAL, -ENOMEM, or open's errno (-ENOENT without the module).
 */
CVMM_EXPORT int vhost_kernel_open(const char *path,
				  const struct vhost_kernel_config *cfg,
				  struct vhost_kernel **out);

/**
 * vhost_kernel_create() - an object on the already open vhost fd @fd,
 * taken on success (closed by destroy).  On error @fd still belongs to
 * the caller.  Errors: -EINVAL, -ENOMEM.
 */
CVMM_EXPORT int vhost_kernel_create(int fd,
				    const struct vhost_kernel_config *cfg,
				    struct vhost_kernel **out);

/** vhost_kernel_destroy() - close the fd (the kernel stops the queues and
 *  drops the owner), drop the memory reference; NULL is fine. */
CVMM_EXPORT void vhost_kernel_destroy(struct vhost_kernel *vk);

/** vhost_kernel_fd() - the vhost fd (still owned by @vk), -1 for NULL. */
CVMM_EXPORT int vhost_kernel_fd(const struct vhost_kernel *vk);

/** VHOST_SET_OWNER: this process owns the device (its mm is used). */
CVMM_EXPORT int vhost_kernel_set_owner(struct vhost_kernel *vk);
/** VHOST_RESET_OWNER: give it up (stops everything). */
CVMM_EXPORT int vhost_kernel_reset_owner(struct vhost_kernel *vk);
/** VHOST_GET_FEATURES. */
CVMM_EXPORT int vhost_kernel_get_features(struct vhost_kernel *vk,
					  uint64_t *features);
/** VHOST_SET_FEATURES. */
CVMM_EXPORT int vhost_kernel_set_features(struct vhost_kernel *vk,
					  uint64_t features);

/**
 * vhost_kernel_set_mem_table() - VHOST_SET_MEM_TABLE with one entry per
 * region of @mem (guest physical start, size, host address).  A reference
 * to @mem is kept for ring address translation (the previous dropped).
 * Errors: -EINVAL (NULL, empty @mem), -ENOMEM, the kernel's (-E2BIG /
 * -EINVAL beyond its max_mem_regions, 64 by default).
 */
CVMM_EXPORT int vhost_kernel_set_mem_table(struct vhost_kernel *vk,
					   struct guest_memory *mem);

/** VHOST_SET_VRING_NUM: queue @index has @num entries (@num <= 65535). */
CVMM_EXPORT int vhost_kernel_set_vring_num(struct vhost_kernel *vk,
					   unsigned int index,
					   unsigned int num);
/** VHOST_SET_VRING_BASE: next avail index (@base <= 65535). */
CVMM_EXPORT int vhost_kernel_set_vring_base(struct vhost_kernel *vk,
					    unsigned int index,
					    unsigned int base);
/** VHOST_GET_VRING_BASE: stops the queue; @base gets its next avail
 *  index. */
CVMM_EXPORT int vhost_kernel_get_vring_base(struct vhost_kernel *vk,
					    unsigned int index,
					    unsigned int *base);
/**
 * vhost_kernel_set_vring_addr() - VHOST_SET_VRING_ADDR with the three
 * areas given as guest physical addresses, translated to host addresses
 * through the memory table last set.  Errors: -EINVAL (no table, an
 * address outside it; no ioctl made), the kernel's.
 */
CVMM_EXPORT int vhost_kernel_set_vring_addr(struct vhost_kernel *vk,
					    unsigned int index,
					    guest_addr_t desc,
					    guest_addr_t avail,
					    guest_addr_t used);
/** VHOST_SET_VRING_KICK / CALL / ERR: @fd (not taken; -1 unbinds). */
CVMM_EXPORT int vhost_kernel_set_vring_kick(struct vhost_kernel *vk,
					    unsigned int index, int fd);
CVMM_EXPORT int vhost_kernel_set_vring_call(struct vhost_kernel *vk,
					    unsigned int index, int fd);
CVMM_EXPORT int vhost_kernel_set_vring_err(struct vhost_kernel *vk,
					   unsigned int index, int fd);

/** VHOST_NET_SET_BACKEND: queue @index moves packets of the tap (or
 *  packet socket) @fd; -1 detaches it (not taken). */
CVMM_EXPORT int vhost_kernel_net_set_backend(struct vhost_kernel *vk,
					     unsigned int index, int fd);

/** VHOST_VSOCK_SET_GUEST_CID: the guest's context id; 0, 1, 2, U32_MAX
 *  and anything above 32 bits are refused (-EINVAL, no ioctl made). */
CVMM_EXPORT int vhost_kernel_vsock_set_guest_cid(struct vhost_kernel *vk,
						 uint64_t cid);
/** VHOST_VSOCK_SET_RUNNING: start (true) or stop the device. */
CVMM_EXPORT int vhost_kernel_vsock_set_running(struct vhost_kernel *vk,
					       bool running);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VHOST_KERNEL_H */
