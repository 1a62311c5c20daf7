/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvirtio-queue internals shared by queue.c and chain.c. */
#ifndef CVMM_VIRTIO_QUEUE_INTERNAL_H
#define CVMM_VIRTIO_QUEUE_INTERNAL_H

#include <stddef.h>
#include <string.h>

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
	/* active && split && !in_order: the one check of the split hot
	 * paths, so packed and IN_ORDER queues cost them nothing (both keep
	 * shadow_avail == next_avail, so virtq_pop() sends them to its slow
	 * path too, where an IN_ORDER pop records its sequence number). */
	bool split_active;
	/* active && packed && !in_order && !used_dirty_log: the one check
	 * of the packed completion fast path (virtq_add_used / complete). */
	bool packed_fast;
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
	bool p_avail_wrap; /* wrap counter of p_avail_pos */
	/* The wrap counter of p_used_pos as the AVAIL|USED bits a used
	 * descriptor carries: both when it is 1, neither when 0. */
	uint16_t p_used_bits;
	uint16_t p_avail_pos; /* next ring slot to read */
	uint16_t p_used_pos;  /* next ring slot to write a used descriptor */
	uint32_t p_desc_out;  /* ring descriptors in flight (<= size) */
	/* Used slots written since the last interrupt check; 64 bits so it
	 * need not saturate on the completion path: read min(it, size). */
	uint64_t p_used_adv;
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

/* Set active (and split_active, packed_fast) from ready / error / layout
 * / dirty logging. */
static inline void virtq_update_active(struct virtq *q)
{
	q->active = q->ready && q->error == VIRTQ_ERR_NONE;
	q->split_active = q->active && !q->packed && !q->in_order;
	q->packed_fast = q->active && q->packed && !q->in_order &&
			 !q->used_dirty_log;
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

/*
 * Fill @c for a chain of one plain descriptor already checked: the fields
 * in as few stores as the layout allows (adjacent 16-bit counts and 32-bit
 * lengths each go as one 64-bit word).
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
_Static_assert(offsetof(struct virtq_chain, head) % 8 == 0 &&
		       offsetof(struct virtq_chain, nbufs) ==
			       offsetof(struct virtq_chain, head) + 2 &&
		       offsetof(struct virtq_chain, nread) ==
			       offsetof(struct virtq_chain, head) + 4 &&
		       offsetof(struct virtq_chain, ndesc) ==
			       offsetof(struct virtq_chain, head) + 6 &&
		       offsetof(struct virtq_chain, write_len) ==
			       offsetof(struct virtq_chain, read_len) + 4 &&
		       offsetof(struct virtq_chain, read_len) % 8 == 0 &&
		       offsetof(struct virtq_buf, flags) ==
			       offsetof(struct virtq_buf, len) + 4,
	       "virtq_chain / virtq_buf layout");
#endif
_Static_assert(VRING_DESC_F_WRITE == 2, "write flag");
static inline __attribute__((always_inline)) void
virtq_fill_plain(struct virtq *q, struct virtq_chain *c, uint16_t head,
		 uint64_t addr, uint32_t len, uint32_t w)
{
	struct virtq_buf *out = c->bufs;

	out->addr = addr;
	c->q = q;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	{
		/* head, nbufs = 1, nread = !w, ndesc = 1: the constant part
		 * looked up by w (0 or 2) */
		static const uint64_t plain_counts[3] = {
			1ull << 16 | 1ull << 32 | 1ull << 48, 0,
			1ull << 16 | 1ull << 48};
		uint64_t counts = head | plain_counts[w];
		/* read_len, write_len: len goes to one of them */
		uint64_t lens = w ? (uint64_t)len << 32 : len;
		uint64_t lf = len | (uint64_t)w << 32;

		memcpy((char *)out + offsetof(struct virtq_buf, len), &lf, 8);
		memcpy((char *)c + offsetof(struct virtq_chain, head), &counts,
		       8);
		memcpy((char *)c + offsetof(struct virtq_chain, read_len),
		       &lens, 8);
	}
#else
	out->len = len;
	out->flags = w;
	c->head = head;
	c->nbufs = 1;
	c->nread = !w;
	c->ndesc = 1;
	c->read_len = w ? 0 : len;
	c->write_len = w ? len : 0;
#endif
	/* The zeroed cursors are laid out apart (rd_off/rd_done,
	 * wr_off/wr_done) so each pair is one scalar store: a 16-byte
	 * vector store here would not forward to the 4-byte loads of
	 * wr_done that follow at completion. */
	c->rd_off = c->rd_done = 0;
	c->wr_off = c->wr_done = 0;
	c->rd_buf = c->wr_buf = 0;
}

/* Break @q with @err (first reason sticks); returns -EIO. */
int virtq_break(struct virtq *q, enum virtq_error err);

/* The packed layout (packed.c), called by queue.c's entry points. */
int virtq_packed_pop(struct virtq *q, struct virtq_chain *c);
int virtq_packed_avail_count(struct virtq *q);
int virtq_packed_pop_batch(struct virtq *q, struct virtq_chain *chains,
			   unsigned int max);
int virtq_packed_undo_pop(struct virtq *q, const struct virtq_chain *c);
int virtq_packed_used(struct virtq *q, const struct vring_used_elem *elems,
		      const struct virtq_chain *chains, unsigned int n);
int virtq_packed_pop_walk(struct virtq *q, struct virtq_chain *c,
			  uint16_t flags);
void virtq_packed_mark_dirty(struct virtq *q, uint16_t pos, uint32_t n);

/* ---- the packed fast paths, inline in queue.c's entry points too ---- */

#define PF_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define PF_USED	 ((uint16_t)(1u << VRING_PACKED_DESC_F_USED))
#define EV_WRAP	 ((uint16_t)(1u << VRING_PACKED_EVENT_F_WRAP_CTR))

_Static_assert(sizeof(struct vring_packed_desc) == 16, "packed desc");
_Static_assert(sizeof(struct vring_desc) == 16, "indirect scratch");

/* Whether a slot's @flags say "available" for the wrap counter @wrap. */
static inline bool virtq_slot_avail(uint16_t flags, bool wrap)
{
	/* AVAIL == wrap and USED != wrap: exactly the bit of the lap. */
	return (flags & (PF_AVAIL | PF_USED)) == (wrap ? PF_AVAIL : PF_USED);
}

/*
 * The fast path: a chain of one plain descriptor (the common small
 * request), whose flags @flags were loaded with acquire, checked and taken
 * without the walker.  Returns 1, or 0 to send it to the general walk
 * (which loads the slot again and reports any error; nothing read here is
 * kept).
 */
static inline __attribute__((always_inline)) int
virtq_packed_pop_plain(struct virtq *q, struct virtq_chain *c,
		       const struct vring_packed_desc *d, uint16_t flags)
{
	/* @d: the slot at p_avail_pos, its address taken before the
	 * acquire load of @flags (so it is not computed twice). */
	uint64_t addr = __atomic_load_n(&d->addr, __ATOMIC_RELAXED);
	uint32_t len = __atomic_load_n(&d->len, __ATOMIC_RELAXED), w;
	uint16_t id = __atomic_load_n(&d->id, __ATOMIC_RELAXED);

	if (unlikely(len == 0 || addr + len < addr || c->cap == 0 ||
		     id >= q->size || (q->heads[id] & VIRTQ_HEAD_IN_FLIGHT) ||
		     q->p_desc_out >= q->size))
		return 0;
	w = flags & VRING_DESC_F_WRITE;
	virtq_fill_plain(q, c, id, addr, len, w);
	q->heads[id] = VIRTQ_HEAD_IN_FLIGHT | (w ? len : 0) |
		       (uint64_t)q->next_avail << VIRTQ_HEAD_SEQ_SHIFT;
	q->last_popped = id;
	q->next_avail++;
	q->shadow_avail = q->next_avail;
	q->p_desc_out++;
	if (unlikely(++q->p_avail_pos == q->size)) {
		q->p_avail_pos = 0;
		q->p_avail_wrap = !q->p_avail_wrap;
	}
	return 1;
}

/* One completion (virtq_add_used / virtq_complete*): id and len, then
 * the flags with release.  @fast: the caller checked packed_fast (no
 * IN_ORDER, no dirty log), so those tests are left out. */
static inline __attribute__((always_inline)) int
virtq_packed_used_one(struct virtq *q, uint32_t id, uint32_t len, bool fast)
{
	struct vring_packed_desc *d = &q->pdesc[q->p_used_pos];
	uint16_t pos = q->p_used_pos;
	uint32_t nd;
	uint64_t h;

	if (unlikely(id >= q->size))
		return -EINVAL;
	h = q->heads[id];
	if (unlikely(!(h & VIRTQ_HEAD_IN_FLIGHT)) ||
	    (!fast && unlikely(q->in_order) &&
	     virtq_head_seq(h) != q->next_used))
		return -EINVAL;
	q->heads[id] = h & ~VIRTQ_HEAD_IN_FLIGHT;
	if (len > (uint32_t)h)
		len = (uint32_t)h;
	__atomic_store_n(&d->id, (uint16_t)id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
	__atomic_store_n(&d->flags,
			 (uint16_t)(q->p_used_bits |
				    (len ? VRING_DESC_F_WRITE : 0)),
			 __ATOMIC_RELEASE);
	nd = virtq_head_ndesc(h);
	q->p_used_pos = (uint16_t)(q->p_used_pos + nd);
	if (unlikely(q->p_used_pos >= q->size)) {
		q->p_used_pos = (uint16_t)(q->p_used_pos - q->size);
		q->p_used_bits ^= PF_AVAIL | PF_USED;
	}
	q->p_desc_out -= nd;
	q->p_used_adv += nd;
	q->next_used++;
	if (!fast && unlikely(q->used_dirty_log))
		virtq_packed_mark_dirty(q, pos, nd);
	return 0;
}

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
	/* q->size and q->allow_zero_len, copied in by VIRTQ_WALK_INIT():
	 * the stores into @out could alias the queue's fields, so reading
	 * them from the queue would reload them for every buffer. */
	uint32_t size;
	bool zero_ok;
};
#define VIRTQ_WALK_INIT(q, bufs, cap)                                        \
	{                                                                    \
		(bufs), (cap), 0, 0, 0, 0, 0, (q)->size, (q)->allow_zero_len \
	}
/*
 * Check one snapshotted descriptor and store it at out[w->n] if the
 * caller's storage has room; past it the walk goes on checking and
 * counting, so the caller learns the size it needs.
 */
static inline __attribute__((always_inline)) enum virtq_error
virtq_take_buf(struct virtq_walk *w, uint64_t addr, uint32_t len,
	       uint16_t flags)
{
	/* A chain has at most size buffers; more means a loop. */
	if (unlikely(w->n >= w->size))
		return VIRTQ_ERR_CHAIN_TOO_LONG;
	if (unlikely(len == 0) && !w->zero_ok)
		return VIRTQ_ERR_ZERO_LENGTH;
	if (unlikely(addr + len < addr))
		return VIRTQ_ERR_BUFFER_WRAPS;
	if (!(flags & VRING_DESC_F_WRITE)) {
		/* Readable after a writable one: some earlier buffer was
		 * not counted as readable. */
		if (unlikely(w->nread != w->n))
			return VIRTQ_ERR_READABLE_AFTER_WRITABLE;
		w->nread++;
		w->rlen += len;
	}
	w->total += len;
	if (unlikely(w->total > UINT32_MAX))
		return VIRTQ_ERR_CHAIN_LEN_OVERFLOW;
	if (likely(w->n < w->cap)) {
		w->out[w->n].addr = addr;
		w->out[w->n].len = len;
		w->out[w->n].flags = flags & VRING_DESC_F_WRITE;
	}
	w->n++;
	return VIRTQ_ERR_NONE;
}

#endif
