/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: the vhost-user wire protocol (QEMU docs/interop/vhost-user.rst).
 *
 * A vhost-user message is a 12-byte header (request, flags, payload size,
 * all little-endian u32 on the x86_64 hosts c-vmm targets) followed by
 * @size payload bytes, sent over a unix stream socket; file descriptors
 * travel with it as SCM_RIGHTS ancillary data (at most
 * VHOST_USER_MAX_FDS per message).  The frontend (the VMM,
 * <cvmm/vhost/user-frontend.h>) sends requests; the backend (a device
 * daemon, <cvmm/vhost/user-backend.h>) answers them.
 *
 * This header holds the protocol constants, the payload layouts and the
 * framing functions both sides use: vhost_user_msg_send() and
 * vhost_user_msg_recv() move one whole message with its descriptors.
 * Names are prefixed vhost_user_ so that they never clash with
 * <linux/vhost.h>.
 *
 * Threads: the functions here keep no state; one thread at a time per
 * socket.
 */
#ifndef CVMM_VHOST_USER_H
#define CVMM_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmm/vhost-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** Requests the frontend sends (the spec's "front-end message types"). */
enum vhost_user_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
};

/** Header flags: the version lives in bits 0-1 and must be 1. */
#define VHOST_USER_VERSION	   0x1u
#define VHOST_USER_VERSION_MASK	   0x3u
#define VHOST_USER_FLAG_REPLY	   (1u << 2) /**< this is a reply */
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3) /**< ack wanted (REPLY_ACK) */

/** Virtio feature bit 30: the protocol-feature handshake is available. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/** Protocol feature bit numbers (GET/SET_PROTOCOL_FEATURES). */
enum vhost_user_protocol_feature {
	VHOST_USER_PROTOCOL_F_MQ = 0,
	VHOST_USER_PROTOCOL_F_LOG_SHMFD = 1,
	VHOST_USER_PROTOCOL_F_RARP = 2,
	VHOST_USER_PROTOCOL_F_REPLY_ACK = 3,
	VHOST_USER_PROTOCOL_F_NET_MTU = 4,
	VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5,
	VHOST_USER_PROTOCOL_F_CROSS_ENDIAN = 6,
	VHOST_USER_PROTOCOL_F_CRYPTO_SESSION = 7,
	VHOST_USER_PROTOCOL_F_PAGEFAULT = 8,
	VHOST_USER_PROTOCOL_F_CONFIG = 9,
	VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VHOST_USER_PROTOCOL_F_HOST_NOTIFIER = 11,
	VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13,
	VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VHOST_USER_PROTOCOL_F_STATUS = 16,
};

/** Size of the message header on the wire. */
#define VHOST_USER_HDR_SIZE	   12u
/** Most descriptors one message carries (and regions in SET_MEM_TABLE). */
#define VHOST_USER_MAX_FDS	   8u
/** Largest device configuration space GET/SET_CONFIG move. */
#define VHOST_USER_MAX_CONFIG_SIZE 256u
/** SET_VRING_KICK/CALL/ERR payload: queue index bits and "no fd". */
#define VHOST_USER_VRING_IDX_MASK  0xffu
#define VHOST_USER_VRING_NOFD	   (1u << 8)

/** The header, as on the wire. */
struct vhost_user_hdr {
	uint32_t request; /**< enum vhost_user_request */
	uint32_t flags;	  /**< version | VHOST_USER_FLAG_* */
	uint32_t size;	  /**< payload bytes that follow */
};

/** SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE. */
struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
};

/** SET_VRING_ADDR: ring addresses in the FRONTEND's address space (the
 *  userspace_addr space of the memory table), not guest physical. */
struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags; /**< bit 0: log the used ring (not supported) */
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

/** One memory region of SET_MEM_TABLE / ADD_MEM_REG / REM_MEM_REG. */
struct vhost_user_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr; /**< the frontend's address of the region */
	uint64_t mmap_offset;	 /**< offset of the region in its fd */
};

/** SET_MEM_TABLE: @nregions regions, one fd each, in order. */
struct vhost_user_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_USER_MAX_FDS];
};

/** ADD_MEM_REG / REM_MEM_REG. */
struct vhost_user_mem_single {
	uint64_t padding;
	struct vhost_user_mem_region region;
};

/** GET_CONFIG / SET_CONFIG: @size bytes of config space at @offset. */
struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VHOST_USER_MAX_CONFIG_SIZE];
};

/** GET_INFLIGHT_FD / SET_INFLIGHT_FD. */
struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

/** Every payload this library sends or accepts. */
union vhost_user_payload {
	uint64_t u64;
	struct vhost_user_vring_state state;
	struct vhost_user_vring_addr addr;
	struct vhost_user_mem_table mem;
	struct vhost_user_mem_single mem_single;
	struct vhost_user_config config;
	struct vhost_user_inflight inflight;
	uint8_t bytes[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE];
};

/** Largest payload accepted; a header announcing more is a protocol
 *  error (the stream cannot be trusted after it). */
#define VHOST_USER_MAX_PAYLOAD sizeof(union vhost_user_payload)

/** Payload sizes of the fixed-size payloads. */
#define VHOST_USER_CONFIG_HDR_SIZE 12u
#define VHOST_USER_MEM_TABLE_SIZE(n) \
	(8u + (n) * (uint32_t)sizeof(struct vhost_user_mem_region))

/**
 * struct vhost_user_msg - one message with the descriptors it carries.
 * @fds[0..nfds) belong to whoever holds the message: close them with
 * vhost_user_msg_close_fds() unless taken.
 */
struct vhost_user_msg {
	struct vhost_user_hdr hdr;
	union vhost_user_payload payload;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nfds;
};

/**
 * vhost_user_msg_init() - clear @msg and set its header: @request, the
 * version in the flags plus @flags, payload size @size.  No descriptors.
 */
CVMM_EXPORT void vhost_user_msg_init(struct vhost_user_msg *msg,
				     uint32_t request, uint32_t flags,
				     uint32_t size);

/**
 * vhost_user_msg_send() - write @msg (header and hdr.size payload bytes)
 * to the stream socket @sock, with msg->fds[0..nfds) as SCM_RIGHTS on its
 * first byte.  The descriptors are not closed (they stay the caller's).
 * Retries on EINTR and short writes; never raises SIGPIPE.
 * Errors: -EINVAL (hdr.size > VHOST_USER_MAX_PAYLOAD, nfds too large,
 * NULL), -EPIPE / -ECONNRESET (peer gone), or the errno of sendmsg.
 */
CVMM_EXPORT int vhost_user_msg_send(int sock, const struct vhost_user_msg *msg);

/**
 * vhost_user_msg_recv() - read one whole message from @sock into @msg.
 * Blocks until the header and its payload have arrived (the caller polls
 * first); a peer that stops mid-message stalls the call until it closes,
 * or until the socket's receive timeout (vhost_user_set_recv_timeout(),
 * which the frontend and the backend set) runs out: -ETIMEDOUT.
 * Every descriptor that came with the message is in msg->fds, owned by
 * the caller.
 * Errors (no descriptor is left open on error):
 *   -ECONNRESET  the peer closed, before or in the middle of a message
 *   -EPROTO      bad version bits in the header
 *   -EMSGSIZE    payload larger than VHOST_USER_MAX_PAYLOAD, or more than
 *                VHOST_USER_MAX_FDS descriptors (or truncated ancillary
 *                data); the stream is then out of step: drop the socket
 *   -EBADMSG     ancillary data that is not SCM_RIGHTS, or descriptors
 *                arriving after the header's first byte
 *   -ETIMEDOUT   the receive timeout ran out in the middle of a message
 *   or the errno of recvmsg.
 */
CVMM_EXPORT int vhost_user_msg_recv(int sock, struct vhost_user_msg *msg);

/**
 * vhost_user_set_recv_timeout() - SO_RCVTIMEO of @ms on @sock (0: none),
 * so that a peer stopping in the middle of a message cannot block
 * vhost_user_msg_recv() for longer.  Returns 0 or the setsockopt errno.
 */
CVMM_EXPORT int vhost_user_set_recv_timeout(int sock, unsigned int ms);

/** vhost_user_msg_close_fds() - close msg->fds[0..nfds) and set nfds 0. */
CVMM_EXPORT void vhost_user_msg_close_fds(struct vhost_user_msg *msg);

/** vhost_user_request_name() - "SET_MEM_TABLE" etc., "UNKNOWN" otherwise. */
CVMM_EXPORT const char *vhost_user_request_name(uint32_t request);

/**
 * vhost_user_listen() - a unix stream socket listening at @path (the file
 * must not exist; a stale one is not removed).  Close-on-exec.
 * Returns the fd, or -ENAMETOOLONG, or the errno of socket/bind/listen.
 */
CVMM_EXPORT int vhost_user_listen(const char *path);

/**
 * vhost_user_connect() - a unix stream socket connected to @path.
 * Close-on-exec.  Returns the fd, -ENAMETOOLONG, or the errno of
 * socket/connect.
 */
CVMM_EXPORT int vhost_user_connect(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VHOST_USER_H */
