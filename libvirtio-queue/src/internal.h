/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvirtio-queue internals shared by queue.c and chain.c. */
#ifndef CVMM_VIRTIO_QUEUE_INTERNAL_H
#define CVMM_VIRTIO_QUEUE_INTERNAL_H

#include <linux/virtio_config.h>

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
	bool active; /* ready && !error: what the chain accessors check */
	/* active && split: the one check of the split hot paths, so a
	 * packed queue costs them nothing (packed queues keep shadow_avail
	 * == next_avail, so virtq_pop() sends them to its slow path too). */
	bool split_active;
	bool event_idx;
	bool indirect;
	bool allow_zero_len;
	bool signalled_valid;
	bool used_dirty_log;	 /* used area is in a dirty-logged region */
	enum virtq_error error;	 /* sticky; NONE = healthy */
	bool in_order;		 /* VIRTIO_F_IN_ORDER negotiated */
	int32_t last_popped;	 /* head of the last pop, -1 after undo/use */
	struct vring_desc *itab; /* scratch: an indirect table during a pop */
	/* The region holding the descriptor table, for lookup-free access
	 * (empty when hot_gpa > hot_end). */
	guest_addr_t hot_gpa, hot_end;
	uint8_t *hot_host;
	bool hot_write_ok; /* not read-only, not dirty-logged */

	/* --- packed layout (virtio 1.2, 2.8); next_avail and next_used
	 * then count pops and completions (u16), which keeps
	 * virtq_in_flight() and the in-order sequence layout-free --- */
	bool packed;
	bool p_avail_wrap;    /* wrap counter of p_avail_pos */
	bool p_used_wrap;     /* wrap counter of p_used_pos */
	uint16_t p_avail_pos; /* next ring slot to read */
	uint16_t p_used_pos;  /* next ring slot to write a used descriptor */
	uint32_t p_desc_out;  /* ring descriptors in flight (<= size) */
	uint32_t p_used_adv;  /* used slots written since the last check */
	struct vring_packed_desc *pdesc; /* the descriptor ring */
	const struct vring_packed_desc_event *p_driver; /* driver area */
	struct vring_packed_desc_event *p_device;	/* device area */

	/* --- cold --- */
	struct guest_memory *mem;
	guest_addr_t addr[3];
	uint64_t features;
	uint32_t max_size;
	enum virtq_error cfg_error;
	virtq_error_fn err_fn;
	void *err_opaque;

	/* Per head / buffer id (max_size entries): VIRTQ_HEAD_IN_FLIGHT
	 * while popped and not yet used; in the low 32 bits the chain's
	 * writable total (the bound of its used length); bits 33..47 the
	 * ring descriptors it holds minus one (packed); bits 48..63 its pop
	 * sequence number (next_avail at its pop; checked under IN_ORDER).
	 * In the same allocation, so the hot paths index it off q directly. */
	uint64_t heads[];
};

#define VIRTQ_HEAD_IN_FLIGHT   (1ull << 32)
#define VIRTQ_HEAD_NDESC_SHIFT 33
#define VIRTQ_HEAD_SEQ_SHIFT   48

static inline uint32_t virtq_head_ndesc(uint64_t h)
{
	return (uint32_t)((h >> VIRTQ_HEAD_NDESC_SHIFT) & 0x7fff) + 1;
}

static inline uint16_t virtq_head_seq(uint64_t h)
{
	return (uint16_t)(h >> VIRTQ_HEAD_SEQ_SHIFT);
}

/* Set active (and split_active) from ready / error / layout. */
static inline void virtq_update_active(struct virtq *q)
{
	q->active = q->ready && q->error == VIRTQ_ERR_NONE;
	q->split_active = q->active && !q->packed;
}

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

/* The packed layout (packed.c), called by queue.c's entry points. */
int virtq_packed_pop(struct virtq *q, struct virtq_chain *c);
int virtq_packed_avail_count(struct virtq *q);
int virtq_packed_undo_pop(struct virtq *q, const struct virtq_chain *c);
int virtq_packed_used(struct virtq *q, const struct vring_used_elem *elems,
		      const struct virtq_chain *chains, unsigned int n);
bool virtq_packed_needs_interrupt(struct virtq *q);
void virtq_packed_disable_notification(struct virtq *q);
bool virtq_packed_enable_notification(struct virtq *q);

/* Shared with packed.c: the checks of one snapshotted buffer (the walk
 * state and take_buf() live in queue.c). */
struct virtq_walk {
	struct virtq_buf *out; /* the caller's storage */
	uint32_t cap;	       /* its entries: buffers past it are counted */
	uint32_t n;	       /* buffers seen (stored while n < cap) */
	uint32_t nread; /* readable buffers among them (they come first) */
	uint64_t total; /* bytes, all buffers */
	uint64_t rlen;	/* bytes, readable buffers */
	uint32_t ndesc; /* ring descriptors visited */
};
enum virtq_error virtq_take_buf(const struct virtq *q, struct virtq_walk *w,
				uint64_t addr, uint32_t len, uint16_t flags);

#endif
