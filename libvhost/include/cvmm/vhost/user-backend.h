/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: the vhost-user backend, what a device daemon links.
 *
 * A struct vhost_user_backend serves one frontend connection at a time:
 * it answers every request of <cvmm/vhost/user.h> it implements, maps the
 * memory table from the received descriptors into a libvm-memory object
 * keyed by guest physical address, turns ring addresses (given in the
 * frontend's address space) into guest physical ones through the table's
 * userspace_addr, and serves each queue with a libvirtio-queue struct
 * virtq.  The device code sees only virtqueues: its process_queue callback
 * pops chains, completes them, and the backend signals the call eventfd
 * when the queue asks for an interrupt.
 *
 * Every message is hostile input: payload sizes are exact per request,
 * descriptor counts are exact per request (extra or missing descriptors
 * refuse the message and every descriptor that came is closed), regions
 * must be page aligned, must not wrap, must lie inside their fd (a regular
 * file at least mmap_offset + memory_size long), and must not overlap in
 * guest physical or frontend address space; ring addresses must fall in
 * the table; queue indexes and sizes are bounded.  A refused message
 * changes nothing; with REPLY_ACK the frontend is told it failed.
 * Framing errors (bad version, oversized payload, truncated message,
 * too many descriptors) end the connection: the stream can no longer be
 * trusted.
 *
 * Event model: the library creates no threads.  The caller polls
 * vhost_user_backend_socket() (call vhost_user_backend_handle_message()
 * when readable) and each started queue's kick fd
 * (vhost_user_backend_kick_fd(), then vhost_user_backend_handle_kick());
 * vhost_user_backend_run() is a ready-made poll loop doing just that.
 *
 * Threads: a backend is not locked; one thread at a time (the callbacks
 * run on it).
 */
#ifndef CVMM_VHOST_USER_BACKEND_H
#define CVMM_VHOST_USER_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/vhost/user.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include <cvmm/vhost-version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

struct vhost_user_backend;

/** Most queues a backend serves (the protocol's index field is 8 bits). */
#define VHOST_USER_BACKEND_MAX_QUEUES 256u
/** Memory slots a backend accepts (GET_MAX_MEM_SLOTS). */
#define VHOST_USER_BACKEND_MAX_SLOTS  32u

/** The device's callbacks; any may be NULL. */
struct vhost_user_backend_ops {
	/** A kick arrived on queue @index (started and enabled): pop and
	 *  complete chains of @q.  A negative return is passed on by
	 *  vhost_user_backend_handle_kick(). */
	int (*process_queue)(void *opaque, struct vhost_user_backend *b,
			     unsigned int index, struct virtq *q);
	/** GET_CONFIG: fill @len bytes at @offset; negative errno refuses
	 *  (NULL: the CONFIG protocol feature is not offered). */
	int (*get_config)(void *opaque, uint32_t offset, void *buf,
			  uint32_t len);
	/** SET_CONFIG; NULL refuses every write with -ENOTSUP. */
	int (*set_config)(void *opaque, uint32_t offset, const void *buf,
			  uint32_t len);
	/** SET_FEATURES accepted @features (after the check against the
	 *  offered ones). */
	void (*features_set)(void *opaque, uint64_t features);
	/** The queue @index started (true: SET_VRING_KICK with the rings
	 *  valid) or stopped (false: GET_VRING_BASE, reset, disconnect). */
	void (*queue_state)(void *opaque, unsigned int index, bool started);
};

/** Backend configuration; NULL or all-zero means the defaults. */
struct vhost_user_backend_config {
	unsigned int num_queues; /**< 1..256; 0 = 1 */
	uint32_t max_queue_size; /**< power of two <= 32768; 0 = 1024 */
	uint64_t features;	 /**< virtio features offered; bit 30
					  (protocol features) is always
					  added */
	/** Protocol features offered; 0 = REPLY_ACK | MQ |
	 *  CONFIGURE_MEM_SLOTS | RESET_DEVICE, plus CONFIG when
	 *  ops->get_config is set.  Only bits the backend implements are
	 *  kept (VHOST_USER_BACKEND_PROTOCOL_FEATURES). */
	uint64_t protocol_features;
	const struct vhost_user_backend_ops *ops;
	void *opaque; /**< passed to the ops */
	/** How long a message may take to arrive once its first byte did,
	 *  in ms (the socket's receive timeout); 0 = 5000.  A frontend that
	 *  stops mid-message is then disconnected instead of blocking the
	 *  backend. */
	unsigned int message_timeout_ms;
};

/** The protocol features a backend can offer. */
#define VHOST_USER_BACKEND_PROTOCOL_FEATURES            \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) |           \
	 (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |    \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |       \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/**
 * vhost_user_backend_create() - a backend with no connection yet.
 * Errors: -EINVAL (bad num_queues or max_queue_size, NULL @out), -ENOMEM.
 */
CVMM_EXPORT int
vhost_user_backend_create(const struct vhost_user_backend_config *cfg,
			  struct vhost_user_backend **out);

/** vhost_user_backend_destroy() - close the connection and every
 *  descriptor, unmap the memory, free; NULL is fine. */
CVMM_EXPORT void vhost_user_backend_destroy(struct vhost_user_backend *b);

/**
 * vhost_user_backend_set_socket() - serve the connected stream socket
 * @sock (from accept() or a socketpair).  A previous connection is
 * dropped first and all per-connection state reset (queues stopped,
 * memory unmapped, features cleared).  Sets @sock's receive timeout to
 * the message timeout.  Takes @sock on success; on error it still
 * belongs to the caller.  Errors: -EINVAL.
 */
CVMM_EXPORT int vhost_user_backend_set_socket(struct vhost_user_backend *b,
					      int sock);

/** vhost_user_backend_socket() - the connection's fd, -1 if none. */
CVMM_EXPORT int vhost_user_backend_socket(const struct vhost_user_backend *b);

/**
 * vhost_user_backend_disconnect() - close the connection (if any) and
 * reset the per-connection state, as when the frontend goes away.
 */
CVMM_EXPORT void vhost_user_backend_disconnect(struct vhost_user_backend *b);

/**
 * vhost_user_backend_handle_message() - read one message from the socket
 * and handle it.  Blocks until a whole message arrived: call it when the
 * socket is readable.  Returns 0 when the message was handled, a negative
 * errno when it was refused (the connection stays), and -ECONNRESET (or
 * -EPROTO, -EMSGSIZE, -EBADMSG, -ETIMEDOUT: stopped mid-message) when the
 * connection ended or its framing broke: the backend then has disconnected itself
 * (vhost_user_backend_socket() returns -1).  -ENOTCONN without a socket.
 */
CVMM_EXPORT int vhost_user_backend_handle_message(struct vhost_user_backend *b);

/**
 * vhost_user_backend_dispatch() - handle the already-read message @msg
 * (its descriptors are taken: used or closed, whatever the result).  The
 * reply, if any, is written to the socket when there is one.  Returns as
 * vhost_user_backend_handle_message() for a refused message.  For tests
 * and fuzzing of the message handling without framing.
 */
CVMM_EXPORT int vhost_user_backend_dispatch(struct vhost_user_backend *b,
					    struct vhost_user_msg *msg);

/** vhost_user_backend_kick_fd() - queue @index's kick eventfd while the
 *  queue is started, else -1. */
CVMM_EXPORT int vhost_user_backend_kick_fd(const struct vhost_user_backend *b,
					   unsigned int index);

/**
 * vhost_user_backend_handle_kick() - consume queue @index's kick (if one
 * is pending; never blocks), run ops->process_queue when the queue is
 * started and enabled, then signal the call eventfd if the queue asks for
 * an interrupt (and the error eventfd if the queue broke).  Returns 0,
 * the callback's negative result, or -EINVAL for a bad @index.
 */
CVMM_EXPORT int vhost_user_backend_handle_kick(struct vhost_user_backend *b,
					       unsigned int index);

/** vhost_user_backend_notify() - for a device that completes chains
 *  outside process_queue: signal queue @index's call eventfd if the queue
 *  asks for an interrupt.  Returns 1 if signalled, 0 if not, -EINVAL. */
CVMM_EXPORT int vhost_user_backend_notify(struct vhost_user_backend *b,
					  unsigned int index);

/**
 * vhost_user_backend_run() - serve the connection until it ends: poll the
 * socket and the started queues' kick fds, handle what is ready.  Returns
 * 0 when the frontend disconnected cleanly, or the error that ended the
 * connection (framing error, poll failure).  Refused messages do not end
 * it.  Blocks; run it on a thread of the daemon's own.
 */
CVMM_EXPORT int vhost_user_backend_run(struct vhost_user_backend *b);

/** vhost_user_backend_queue() - queue @index (NULL if out of range); the
 *  backend keeps owning it. */
CVMM_EXPORT struct virtq *
vhost_user_backend_queue(const struct vhost_user_backend *b,
			 unsigned int index);

/** vhost_user_backend_memory() - the mapped memory table (no reference
 *  taken; valid until the next memory message), NULL before one. */
CVMM_EXPORT struct guest_memory *
vhost_user_backend_memory(const struct vhost_user_backend *b);

/** vhost_user_backend_features() - the features the frontend set. */
CVMM_EXPORT uint64_t
vhost_user_backend_features(const struct vhost_user_backend *b);

/** vhost_user_backend_protocol_features() - protocol features agreed. */
CVMM_EXPORT uint64_t
vhost_user_backend_protocol_features(const struct vhost_user_backend *b);

/** vhost_user_backend_queue_started() / _enabled() - queue @index's state
 *  (false for a bad index). */
CVMM_EXPORT bool
vhost_user_backend_queue_started(const struct vhost_user_backend *b,
				 unsigned int index);
CVMM_EXPORT bool
vhost_user_backend_queue_enabled(const struct vhost_user_backend *b,
				 unsigned int index);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_VHOST_USER_BACKEND_H */
