/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: the vhost-user frontend, the VMM side of the protocol.
 *
 * A struct vhost_user_frontend owns one connection to a backend's socket
 * and sends it requests, one at a time, waiting for the reply of those
 * that have one (and for the REPLY_ACK acknowledgement of the others once
 * that protocol feature is negotiated).  A typical start:
 *
 *   vhost_user_frontend_connect(path, NULL, &fe);
 *   vhost_user_frontend_get_features(fe, &f);
 *   vhost_user_frontend_get_protocol_features(fe, &pf);   (if bit 30 in f)
 *   vhost_user_frontend_set_protocol_features(fe, pf & wanted);
 *   vhost_user_frontend_set_owner(fe);
 *   vhost_user_frontend_set_features(fe, f & wanted);
 *   vhost_user_frontend_set_mem_table(fe, mem);
 *   per queue: set_vring_num, set_vring_base, set_vring_addr,
 *              set_vring_call, set_vring_kick, set_vring_enable(true)
 *
 * Guest memory must be fd-backed (libvm-memory GUEST_REGION_MEMFD or
 * GUEST_REGION_FILE regions): each region's fd travels with SET_MEM_TABLE
 * and its host address is the region's userspace_addr.  Ring addresses
 * are given as guest physical addresses and translated through the
 * memory table last sent.
 *
 * Disconnection.  When the backend closes the socket, sends garbage or
 * does not answer within the reply timeout, the frontend becomes broken:
 * the call returns -ECONNRESET (or -ETIMEDOUT / -EPROTO for that call),
 * the disconnect callback runs once (a device turns it into
 * DEVICE_NEEDS_RESET), and every later request returns -ECONNRESET
 * without touching the socket.  The VMM keeps running.
 *
 * Threads: a frontend is not locked; calls on one frontend must be
 * serialised by the caller.  Calls block for at most the reply timeout.
 */
#ifndef CVMM_VHOST_USER_FRONTEND_H
#define CVMM_VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/vhost/user.h>
#include <cvmm/vm-memory.h>

#include <cvmm/vhost-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct vhost_user_frontend;

/** Called once when the frontend becomes broken (see the file comment),
 *  on the thread of the call that found it, before that call returns. */
typedef void (*vhost_user_frontend_disconnect_fn)(
	struct vhost_user_frontend *fe, int err, void *opaque);

/** Frontend configuration; NULL or all-zero means the defaults. */
struct vhost_user_frontend_config {
	/** How long to wait for a reply, in ms; 0 = 5000. */
	unsigned int reply_timeout_ms;
	/** Called once on disconnection; NULL: nobody is told (the calls'
	 *  errors and vhost_user_frontend_is_broken() still are). */
	vhost_user_frontend_disconnect_fn disconnected;
	void *opaque; /**< passed to @disconnected */
};

/**
 * vhost_user_frontend_connect() - connect to the backend listening at
 * @path and make a frontend of the connection.
 * @cfg: NULL for the defaults; copied.
 * Errors: -EINVAL, -ENOMEM, or vhost_user_connect()'s errors.
 */
CVMM_EXPORT int
vhost_user_frontend_connect(const char *path,
			    const struct vhost_user_frontend_config *cfg,
			    struct vhost_user_frontend **out);

/**
 * vhost_user_frontend_create() - a frontend on the connected stream
 * socket @sock (e.g. one end of a socketpair).  It takes @sock on success
 * and closes it on destroy; its receive timeout is set to the reply
 * timeout (a reply that stops half way fails like a late one).  On error @sock still belongs to the caller.
 * Errors: -EINVAL (negative @sock, NULL @out), -ENOMEM.
 */
CVMM_EXPORT int
vhost_user_frontend_create(int sock,
			   const struct vhost_user_frontend_config *cfg,
			   struct vhost_user_frontend **out);

/** vhost_user_frontend_destroy() - close the socket, drop the memory
 *  reference, free; NULL is fine.  The backend sees the disconnection. */
CVMM_EXPORT void vhost_user_frontend_destroy(struct vhost_user_frontend *fe);

/** vhost_user_frontend_socket() - the connection's fd (still owned by
 *  @fe): poll it for POLLHUP to learn of a disconnect between requests,
 *  then call vhost_user_frontend_check(). */
CVMM_EXPORT int
vhost_user_frontend_socket(const struct vhost_user_frontend *fe);

/** vhost_user_frontend_check() - without a request: if the socket reports
 *  hang-up or unexpected data, mark the frontend broken (callback runs)
 *  and return -ECONNRESET; 0 while the connection is fine. */
CVMM_EXPORT int vhost_user_frontend_check(struct vhost_user_frontend *fe);

/** vhost_user_frontend_is_broken() - true once disconnected. */
CVMM_EXPORT bool
vhost_user_frontend_is_broken(const struct vhost_user_frontend *fe);

/**
 * vhost_user_frontend_protocol_features() - the protocol features agreed
 * with SET_PROTOCOL_FEATURES (0 before).
 */
CVMM_EXPORT uint64_t
vhost_user_frontend_protocol_features(const struct vhost_user_frontend *fe);

/*
 * Requests.  Each returns 0 (or the documented value), -ECONNRESET /
 * -ETIMEDOUT / -EPROTO when the backend broke the connection (the
 * frontend is then broken), -EIO when the backend acknowledged a request
 * with a failure (REPLY_ACK) or refused a request that has a reply (an
 * empty reply), -EINVAL for bad arguments (nothing sent), -ENOTSUP when
 * the protocol feature the request needs was not negotiated.
 */

/** GET_FEATURES: the backend's virtio feature bits. */
CVMM_EXPORT int vhost_user_frontend_get_features(struct vhost_user_frontend *fe,
						 uint64_t *features);
/** SET_FEATURES: the bits the driver accepted (may include bit 30). */
CVMM_EXPORT int vhost_user_frontend_set_features(struct vhost_user_frontend *fe,
						 uint64_t features);
/** GET_PROTOCOL_FEATURES (the backend must offer bit 30). */
CVMM_EXPORT int
vhost_user_frontend_get_protocol_features(struct vhost_user_frontend *fe,
					  uint64_t *features);
/**
 * SET_PROTOCOL_FEATURES.  Only the bits this frontend implements are
 * allowed (REPLY_ACK, MQ, CONFIG, CONFIGURE_MEM_SLOTS, INFLIGHT_SHMFD,
 * RESET_DEVICE); others give -ENOTSUP and nothing is sent.  REPLY_ACK
 * takes effect for the requests after this one.
 */
CVMM_EXPORT int
vhost_user_frontend_set_protocol_features(struct vhost_user_frontend *fe,
					  uint64_t features);
/** The protocol features this frontend can use. */
#define VHOST_USER_FRONTEND_PROTOCOL_FEATURES             \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) |             \
	 (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |      \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |         \
	 (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |   \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/** SET_OWNER. */
CVMM_EXPORT int vhost_user_frontend_set_owner(struct vhost_user_frontend *fe);
/** RESET_DEVICE (protocol feature RESET_DEVICE) or RESET_OWNER. */
CVMM_EXPORT int vhost_user_frontend_reset(struct vhost_user_frontend *fe);
/** GET_QUEUE_NUM (protocol feature MQ): how many queues the backend has. */
CVMM_EXPORT int
vhost_user_frontend_get_queue_num(struct vhost_user_frontend *fe,
				  uint64_t *num);
/** GET_MAX_MEM_SLOTS (protocol feature CONFIGURE_MEM_SLOTS). */
CVMM_EXPORT int
vhost_user_frontend_get_max_mem_slots(struct vhost_user_frontend *fe,
				      uint64_t *slots);

/**
 * vhost_user_frontend_set_mem_table() - SET_MEM_TABLE with every region
 * of @mem and its fd (SCM_RIGHTS).  A reference to @mem is kept (the
 * previous one dropped) to translate ring addresses.
 * Errors: -EINVAL (a region without an fd: not MEMFD or FILE backed),
 * -E2BIG (more than VHOST_USER_MAX_FDS regions), and the common ones.
 */
CVMM_EXPORT int
vhost_user_frontend_set_mem_table(struct vhost_user_frontend *fe,
				  struct guest_memory *mem);

/**
 * vhost_user_frontend_add_mem_region() / _remove_mem_region() -
 * ADD_MEM_REG / REM_MEM_REG of one region of @mem (the region containing
 * @gpa), for memory hot-plug with CONFIGURE_MEM_SLOTS.  @mem becomes the
 * frontend's translation table as in set_mem_table().
 */
CVMM_EXPORT int
vhost_user_frontend_add_mem_region(struct vhost_user_frontend *fe,
				   struct guest_memory *mem, guest_addr_t gpa);
CVMM_EXPORT int
vhost_user_frontend_remove_mem_region(struct vhost_user_frontend *fe,
				      struct guest_memory *mem,
				      const struct guest_region *r);

/** SET_VRING_NUM: queue @index has @num entries. */
CVMM_EXPORT int
vhost_user_frontend_set_vring_num(struct vhost_user_frontend *fe,
				  unsigned int index, unsigned int num);
/** SET_VRING_BASE: the next avail index the backend will read. */
CVMM_EXPORT int
vhost_user_frontend_set_vring_base(struct vhost_user_frontend *fe,
				   unsigned int index, unsigned int base);
/** GET_VRING_BASE: stops the ring; @base gets its next avail index. */
CVMM_EXPORT int
vhost_user_frontend_get_vring_base(struct vhost_user_frontend *fe,
				   unsigned int index, unsigned int *base);
/**
 * SET_VRING_ADDR with the guest physical addresses of the three areas,
 * translated to this process's addresses through the memory table last
 * sent.  Errors: -EINVAL (no table sent, an address outside it).
 */
CVMM_EXPORT int
vhost_user_frontend_set_vring_addr(struct vhost_user_frontend *fe,
				   unsigned int index, guest_addr_t desc,
				   guest_addr_t avail, guest_addr_t used);
/** SET_VRING_KICK / CALL / ERR: @fd (an eventfd, not taken: the backend
 *  receives a duplicate) or -1 for "no fd" (polling). */
CVMM_EXPORT int
vhost_user_frontend_set_vring_kick(struct vhost_user_frontend *fe,
				   unsigned int index, int fd);
CVMM_EXPORT int
vhost_user_frontend_set_vring_call(struct vhost_user_frontend *fe,
				   unsigned int index, int fd);
CVMM_EXPORT int
vhost_user_frontend_set_vring_err(struct vhost_user_frontend *fe,
				  unsigned int index, int fd);
/** SET_VRING_ENABLE (needs bit 30 negotiated). */
CVMM_EXPORT int
vhost_user_frontend_set_vring_enable(struct vhost_user_frontend *fe,
				     unsigned int index, bool enable);

/**
 * GET_CONFIG (protocol feature CONFIG): @len bytes of the device's
 * configuration space at @offset into @buf.  @len <= 256.
 */
CVMM_EXPORT int vhost_user_frontend_get_config(struct vhost_user_frontend *fe,
					       uint32_t offset, void *buf,
					       uint32_t len);
/** SET_CONFIG (protocol feature CONFIG). */
CVMM_EXPORT int vhost_user_frontend_set_config(struct vhost_user_frontend *fe,
					       uint32_t offset, const void *buf,
					       uint32_t len);

/**
 * GET_INFLIGHT_FD (protocol feature INFLIGHT_SHMFD): ask for the shared
 * in-flight tracking area of @num_queues queues of @queue_size; @info
 * receives the backend's answer and @fd the area's descriptor (the
 * caller's to close).  SET_INFLIGHT_FD gives it back after a reconnect.
 */
CVMM_EXPORT int
vhost_user_frontend_get_inflight_fd(struct vhost_user_frontend *fe,
				    uint16_t num_queues, uint16_t queue_size,
				    struct vhost_user_inflight *info, int *fd);
CVMM_EXPORT int
vhost_user_frontend_set_inflight_fd(struct vhost_user_frontend *fe,
				    const struct vhost_user_inflight *info,
				    int fd);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VHOST_USER_FRONTEND_H */
