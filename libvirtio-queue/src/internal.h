/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvirtio-queue internals shared by queue.c and chain.c. */
#ifndef CVMM_VIRTIO_QUEUE_INTERNAL_H
#define CVMM_VIRTIO_QUEUE_INTERNAL_H

#include <cvmm/virtio-queue.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct virtq {
	/* --- hot: used on every pop / add_used --- */
	const struct vring_desc *desc; /* cached host pointers, validated */
	const struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *avail_event;	    /* &used->ring[size], EVENT_IDX only */
	const uint16_t *used_event; /* &avail->ring[size], EVENT_IDX only */
	uint32_t size;
	uint16_t mask;
	uint16_t next_avail; /* next avail ring slot to pop */
	/* Last avail.idx read and validated.  Invariant: whenever the queue
	 * is not active, shadow_avail == next_avail, so virtq_pop()'s one
	 * test "nothing left from the last avail.idx" also catches an
	 * inactive queue (every place that clears active, or moves
	 * next_avail while inactive, keeps it). */
	uint16_t shadow_avail;
	uint16_t next_used; /* next used ring slot / used.idx value */
	uint16_t signalled_used;
	uint16_t used_flags;
	bool ready;
	bool active; /* ready && !error: the one hot-path check */
	bool event_idx;
	bool indirect;
	bool allow_zero_len;
	bool signalled_valid;
	bool used_dirty_log;	 /* used area is in a dirty-logged region */
	enum virtq_error error;	 /* sticky; NONE = healthy */
	int32_t last_popped;	 /* head of the last pop, -1 after undo/use */
	struct vring_desc *itab; /* scratch: an indirect table during a pop */
	/* The region holding the descriptor table, for lookup-free access
	 * (empty when hot_gpa > hot_end). */
	guest_addr_t hot_gpa, hot_end;
	uint8_t *hot_host;
	bool hot_write_ok; /* not read-only, not dirty-logged */

	/* --- cold --- */
	struct guest_memory *mem;
	guest_addr_t addr[3];
	uint64_t features;
	uint32_t max_size;
	enum virtq_error cfg_error;
	virtq_error_fn err_fn;
	void *err_opaque;

	/* Per head (max_size entries): VIRTQ_HEAD_IN_FLIGHT while popped and
	 * not yet used, and in the low 32 bits the chain's writable total
	 * (the bound of its used length).  In the same allocation, so the hot
	 * paths index it off q directly. */
	uint64_t heads[];
};

#define VIRTQ_HEAD_IN_FLIGHT (1ull << 32)

static inline bool virtq_head_in_flight(const struct virtq *q, uint16_t head)
{
	return q->heads[head] & VIRTQ_HEAD_IN_FLIGHT;
}

/* Host pointer for [gpa, gpa+n) when it lies in the hot region. */
static inline void *virtq_hot_ptr(const struct virtq *q, guest_addr_t gpa,
				  uint64_t n)
{
	if (gpa >= q->hot_gpa && gpa < q->hot_end && n <= q->hot_end - gpa)
		return q->hot_host + (gpa - q->hot_gpa);
	return NULL;
}

/* What a call on a queue that is not active returns: -EIO if broken,
 * else -ENODEV (not ready). */
static inline int virtq_inactive_error(const struct virtq *q)
{
	return q->error ? -EIO : -ENODEV;
}

/* Break @q with @err (first reason sticks); returns -EIO. */
int virtq_break(struct virtq *q, enum virtq_error err);

#endif
