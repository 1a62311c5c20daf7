/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Device side of a split virtqueue: configuration, activation, popping and
 * validating chains, the used ring, notifications, snapshot/restore.
 *
 * Memory ordering with the driver (Linux drivers/virtio/virtio_ring.c is the
 * usual partner; virtio 1.2, 2.7.13 and 2.7.7-2.7.10):
 *  - avail.idx is loaded with acquire; its partner is the driver's write
 *    barrier (virtio_wmb) before it stores avail.idx, so the ring entry and
 *    the descriptors it names are visible once the new index is.
 *  - used.idx is stored with release; its partner is the driver's read
 *    barrier (virtio_rmb) after it loads used.idx, so the used element and
 *    the data written into the buffers are visible before the index.
 *  - the full fences in virtq_needs_interrupt() and
 *    virtq_enable_notification() pair with the driver's full barriers
 *    (virtio_mb) in virtqueue_kick_prepare / virtqueue_enable_cb_prepare:
 *    each side stores (index or event/flag) then loads the other side's
 *    field, which needs store->load ordering on both sides.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LOAD16(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD32(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD64(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE16(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE32(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static const char *const error_names[VIRTQ_ERR__COUNT] = {
	[VIRTQ_ERR_NONE] = "NONE",
	[VIRTQ_ERR_SIZE_INVALID] = "SIZE_INVALID",
	[VIRTQ_ERR_NO_MEMORY] = "NO_MEMORY",
	[VIRTQ_ERR_DESC_MISALIGNED] = "DESC_MISALIGNED",
	[VIRTQ_ERR_AVAIL_MISALIGNED] = "AVAIL_MISALIGNED",
	[VIRTQ_ERR_USED_MISALIGNED] = "USED_MISALIGNED",
	[VIRTQ_ERR_DESC_OUTSIDE_RAM] = "DESC_OUTSIDE_RAM",
	[VIRTQ_ERR_AVAIL_OUTSIDE_RAM] = "AVAIL_OUTSIDE_RAM",
	[VIRTQ_ERR_USED_OUTSIDE_RAM] = "USED_OUTSIDE_RAM",
	[VIRTQ_ERR_USED_READONLY] = "USED_READONLY",
	[VIRTQ_ERR_RINGS_OVERLAP] = "RINGS_OVERLAP",
	[VIRTQ_ERR_AVAIL_IDX_AHEAD] = "AVAIL_IDX_AHEAD",
	[VIRTQ_ERR_HEAD_OUT_OF_RANGE] = "HEAD_OUT_OF_RANGE",
	[VIRTQ_ERR_HEAD_IN_FLIGHT] = "HEAD_IN_FLIGHT",
	[VIRTQ_ERR_NEXT_OUT_OF_RANGE] = "NEXT_OUT_OF_RANGE",
	[VIRTQ_ERR_CHAIN_TOO_LONG] = "CHAIN_TOO_LONG",
	[VIRTQ_ERR_INDIRECT_NOT_NEGOTIATED] = "INDIRECT_NOT_NEGOTIATED",
	[VIRTQ_ERR_INDIRECT_WITH_NEXT] = "INDIRECT_WITH_NEXT",
	[VIRTQ_ERR_INDIRECT_NESTED] = "INDIRECT_NESTED",
	[VIRTQ_ERR_INDIRECT_LEN_ZERO] = "INDIRECT_LEN_ZERO",
	[VIRTQ_ERR_INDIRECT_LEN_UNALIGNED] = "INDIRECT_LEN_UNALIGNED",
	[VIRTQ_ERR_INDIRECT_TOO_BIG] = "INDIRECT_TOO_BIG",
	[VIRTQ_ERR_INDIRECT_OUTSIDE_RAM] = "INDIRECT_OUTSIDE_RAM",
	[VIRTQ_ERR_READABLE_AFTER_WRITABLE] = "READABLE_AFTER_WRITABLE",
	[VIRTQ_ERR_ZERO_LENGTH] = "ZERO_LENGTH",
	[VIRTQ_ERR_BUFFER_WRAPS] = "BUFFER_WRAPS",
	[VIRTQ_ERR_CHAIN_LEN_OVERFLOW] = "CHAIN_LEN_OVERFLOW",
	[VIRTQ_ERR_BUFFER_OUTSIDE_RAM] = "BUFFER_OUTSIDE_RAM",
	[VIRTQ_ERR_BUFFER_READONLY] = "BUFFER_READONLY",
};

const char *virtq_error_name(enum virtq_error err)
{
	if ((unsigned int)err >= VIRTQ_ERR__COUNT)
		return "UNKNOWN";
	return error_names[err];
}

static bool is_pow2(uint32_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

int virtq_break(struct virtq *q, enum virtq_error err)
{
	q->active = false;
	if (q->error == VIRTQ_ERR_NONE) {
		q->error = err;
		if (q->err_fn)
			q->err_fn(q, err, q->err_opaque);
	}
	return -EIO;
}

/* ------------------------------------------------------------ configuration */

int virtq_create(uint32_t max_size, struct virtq **out)
{
	struct virtq *q;

	if (!out || !is_pow2(max_size) || max_size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	q = calloc(1, sizeof(*q) + max_size);
	if (!q)
		return -ENOMEM;
	q->max_size = max_size;
	q->bufs = calloc(max_size, sizeof(*q->bufs));
	q->itab = calloc(max_size, sizeof(*q->itab));
	if (!q->bufs || !q->itab) {
		virtq_destroy(q);
		return -ENOMEM;
	}
	virtq_reset(q);
	*out = q;
	return 0;
}

void virtq_destroy(struct virtq *q)
{
	if (!q)
		return;
	guest_memory_unref(q->mem);
	free(q->bufs);
	free(q->itab);
	free(q);
}

void virtq_reset(struct virtq *q)
{
	q->ready = false;
	q->active = false;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->avail_event = NULL;
	q->used_event = NULL;
	q->size = q->max_size;
	q->mask = (uint16_t)(q->max_size - 1);
	q->next_avail = q->shadow_avail = q->next_used = 0;
	q->signalled_used = 0;
	q->signalled_valid = false;
	q->used_flags = 0;
	q->event_idx = q->indirect = false;
	q->used_dirty_log = false;
	q->hot_gpa = 1;
	q->hot_end = 0; /* empty: no fast path until activation */
	q->hot_host = NULL;
	q->hot_write_ok = false;
	q->error = VIRTQ_ERR_NONE;
	q->cfg_error = VIRTQ_ERR_NONE;
	memset(q->in_flight, 0, q->max_size);
	q->in_flight_count = 0;
	q->last_popped = -1;
	q->addr[0] = q->addr[1] = q->addr[2] = 0;
	q->features = 0;
}

uint32_t virtq_max_size(const struct virtq *q)
{
	return q->max_size;
}

int virtq_set_size(struct virtq *q, uint32_t size)
{
	if (q->ready)
		return -EBUSY;
	if (!is_pow2(size) || size > q->max_size) {
		q->cfg_error = VIRTQ_ERR_SIZE_INVALID;
		return -EINVAL;
	}
	q->size = size;
	q->mask = (uint16_t)(size - 1);
	q->cfg_error = VIRTQ_ERR_NONE;
	return 0;
}

uint32_t virtq_size(const struct virtq *q)
{
	return q->size;
}

int virtq_set_addr(struct virtq *q, enum virtq_area area, guest_addr_t gpa)
{
	if ((unsigned int)area > VIRTQ_AREA_USED)
		return -EINVAL;
	if (q->ready)
		return -EBUSY;
	q->addr[area] = gpa;
	return 0;
}

int virtq_set_addr_lo(struct virtq *q, enum virtq_area area, uint32_t lo)
{
	if ((unsigned int)area > VIRTQ_AREA_USED)
		return -EINVAL;
	return virtq_set_addr(q, area,
			      (q->addr[area] & 0xffffffff00000000ull) | lo);
}

int virtq_set_addr_hi(struct virtq *q, enum virtq_area area, uint32_t hi)
{
	if ((unsigned int)area > VIRTQ_AREA_USED)
		return -EINVAL;
	return virtq_set_addr(q, area,
			      (q->addr[area] & 0xffffffffull) |
				      ((uint64_t)hi << 32));
}

guest_addr_t virtq_addr(const struct virtq *q, enum virtq_area area)
{
	if ((unsigned int)area > VIRTQ_AREA_USED)
		return 0;
	return q->addr[area];
}

int virtq_set_features(struct virtq *q, uint64_t features)
{
	if (q->ready)
		return -EBUSY;
	q->features = features & VIRTQ_RING_FEATURES;
	return 0;
}

uint64_t virtq_features(const struct virtq *q)
{
	return q->features;
}

void virtq_set_error_cb(struct virtq *q, virtq_error_fn fn, void *opaque)
{
	q->err_fn = fn;
	q->err_opaque = opaque;
}

enum virtq_error virtq_config_error(const struct virtq *q)
{
	return q->cfg_error;
}

bool virtq_is_broken(const struct virtq *q)
{
	return q->error != VIRTQ_ERR_NONE;
}

enum virtq_error virtq_error_get(const struct virtq *q)
{
	return q->error;
}

void virtq_allow_zero_length(struct virtq *q, bool allow)
{
	q->allow_zero_len = allow;
}

bool virtq_ready(const struct virtq *q)
{
	return q->ready;
}

uint32_t virtq_in_flight(const struct virtq *q)
{
	return q->in_flight_count;
}

static uint64_t area_bytes(uint32_t size, bool event_idx, enum virtq_area area)
{
	switch (area) {
	case VIRTQ_AREA_DESC:
		return 16ull * size;
	case VIRTQ_AREA_AVAIL:
		return 4ull + 2ull * size + (event_idx ? 2 : 0);
	default:
		return 4ull + 8ull * size + (event_idx ? 2 : 0);
	}
}

static bool ranges_overlap(guest_addr_t a, uint64_t alen, guest_addr_t b,
			   uint64_t blen)
{
	/* Both ranges were translated, so neither wraps. */
	return a < b + blen && b < a + alen;
}

/*
 * Validate the ring areas of @q against @mem and compute host pointers.
 * On success fills @host[3]; returns 0 or a negative errno with *@why set.
 */
static int validate_rings(const struct virtq *q, struct guest_memory *mem,
			  bool event_idx, void *host[3], enum virtq_error *why)
{
	static const uint64_t align[3] = {16, 2, 4};
	static const enum virtq_error misaligned[3] = {
		VIRTQ_ERR_DESC_MISALIGNED, VIRTQ_ERR_AVAIL_MISALIGNED,
		VIRTQ_ERR_USED_MISALIGNED};
	static const enum virtq_error outside[3] = {VIRTQ_ERR_DESC_OUTSIDE_RAM,
						    VIRTQ_ERR_AVAIL_OUTSIDE_RAM,
						    VIRTQ_ERR_USED_OUTSIDE_RAM};
	uint64_t len[3];
	struct guest_region *r;
	int i;

	if (!mem) {
		*why = VIRTQ_ERR_NO_MEMORY;
		return -EINVAL;
	}
	for (i = 0; i < 3; i++) {
		if (q->addr[i] & (align[i] - 1)) {
			*why = misaligned[i];
			return -EINVAL;
		}
	}
	for (i = 0; i < 3; i++) {
		len[i] = area_bytes(q->size, event_idx, (enum virtq_area)i);
		/* One region only: the host pointer covers the whole area. */
		if (guest_memory_translate(mem, q->addr[i], len[i], &host[i]) !=
		    0) {
			*why = outside[i];
			return -EFAULT;
		}
	}
	r = guest_memory_find_region(mem, q->addr[VIRTQ_AREA_USED]);
	if (!r || (guest_region_flags(r) & GUEST_REGION_READONLY)) {
		*why = VIRTQ_ERR_USED_READONLY;
		return -EFAULT;
	}
	/* The device writes the used area; it must not rewrite what it
	 * reads (descriptors, avail ring), or its own writes could feed it
	 * work. */
	if (ranges_overlap(q->addr[2], len[2], q->addr[0], len[0]) ||
	    ranges_overlap(q->addr[2], len[2], q->addr[1], len[1])) {
		*why = VIRTQ_ERR_RINGS_OVERLAP;
		return -EEXIST;
	}
	*why = VIRTQ_ERR_NONE;
	return 0;
}

static void install_rings(struct virtq *q, void *host[3])
{
	struct guest_region *r;

	q->desc = host[0];
	q->avail = host[1];
	q->used = host[2];
	q->used_event = &q->avail->ring[q->size];
	q->avail_event = (uint16_t *)&q->used->ring[q->size];
	r = guest_memory_find_region(q->mem, q->addr[VIRTQ_AREA_USED]);
	q->used_dirty_log = r &&
			    (guest_region_flags(r) & GUEST_REGION_DIRTY_LOG);
	/* The region holding the descriptor table is where indirect tables
	 * and buffers usually are: keep its bounds for a lookup-free path.
	 * Valid as long as q->mem (an immutable snapshot) is held. */
	r = guest_memory_find_region(q->mem, q->addr[VIRTQ_AREA_DESC]);
	q->hot_gpa = guest_region_gpa(r);
	q->hot_end = q->hot_gpa + guest_region_size(r);
	q->hot_host = guest_region_host_addr(r);
	q->hot_write_ok = !(guest_region_flags(r) &
			    (GUEST_REGION_READONLY | GUEST_REGION_DIRTY_LOG));
}

int virtq_set_memory(struct virtq *q, struct guest_memory *mem)
{
	enum virtq_error why;
	void *host[3];
	int ret;

	if (q->ready && !mem)
		return -EINVAL;
	if (mem)
		guest_memory_ref(mem);
	/* The cached hot region points into the old snapshot, which may be
	 * unmapped once released below: forget it before that.  Chains still
	 * in flight then go through libvm-memory on the new snapshot, and
	 * install_rings() recomputes it on activation. */
	q->hot_gpa = 1;
	q->hot_end = 0;
	q->hot_host = NULL;
	q->hot_write_ok = false;
	guest_memory_unref(q->mem);
	q->mem = mem;
	if (!q->ready)
		return 0;
	ret = validate_rings(q, mem, q->event_idx, host, &why);
	if (ret) {
		/* The rings are gone from RAM: stop touching them. */
		virtq_break(q, why == VIRTQ_ERR_RINGS_OVERLAP
				       ? VIRTQ_ERR_USED_OUTSIDE_RAM
				       : why);
		q->ready = false;
		q->active = false;
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return -EFAULT;
	}
	install_rings(q, host);
	return 0;
}

int virtq_set_ready(struct virtq *q, bool ready)
{
	enum virtq_error why;
	void *host[3];
	bool ev;
	int ret;

	if (!ready) {
		q->ready = false;
		q->active = false;
		return 0;
	}
	if (q->ready)
		return 0;
	ev = q->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	ret = validate_rings(q, q->mem, ev, host, &why);
	q->cfg_error = why;
	if (ret)
		return ret;
	q->event_idx = ev;
	q->indirect = q->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	install_rings(q, host);
	/* The driver starts with used_event = 0 = used.idx: a valid
	 * interval, so the first completion is judged by the inequality. */
	q->signalled_used = q->next_used;
	q->signalled_valid = true;
	q->ready = true;
	q->active = q->error == VIRTQ_ERR_NONE;
	return 0;
}

/* ---------------------------------------------------------------- popping */

/* Read avail.idx and validate it; 0 or -EIO (queue broken). */
static inline int refresh_avail(struct virtq *q)
{
	/* Acquire: pairs with the driver's write barrier before it publishes
	 * avail.idx; ring entries and descriptors read after this are at
	 * least as new as the index. */
	uint16_t idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);

	if (unlikely((uint16_t)(idx - q->next_avail) > q->size))
		return virtq_break(q, VIRTQ_ERR_AVAIL_IDX_AHEAD);
	q->shadow_avail = idx;
	return 0;
}

int virtq_avail_count(struct virtq *q)
{
	int ret;

	if (unlikely(!q->active))
		return q->error ? -EIO : -ENODEV;
	ret = refresh_avail(q);
	if (ret)
		return ret;
	return (uint16_t)(q->shadow_avail - q->next_avail);
}

/* Walk state, carried from the ring into an indirect table. */
struct walk {
	uint32_t n;	/* buffers stored */
	uint32_t nread; /* readable buffers among them (they come first) */
	uint64_t total; /* bytes, all buffers */
	uint64_t rlen;	/* bytes, readable buffers */
	uint16_t ndesc; /* ring descriptors visited */
};

/* Internal: a batch ran out of snapshot room (not a guest error). */
#define WALK_NO_ROOM VIRTQ_ERR__COUNT

/*
 * Validate one snapshotted descriptor and store it at out[w->n].  @room is
 * how many buffers @out can take; it is the queue size except in a batch.
 */
static inline enum virtq_error take_buf(const struct virtq *q,
					struct virtq_buf *out, uint32_t room,
					struct walk *w, uint64_t addr,
					uint32_t len, uint16_t flags)
{
	if (unlikely(w->n >= room))
		return room < q->size ? WALK_NO_ROOM : VIRTQ_ERR_CHAIN_TOO_LONG;
	if (unlikely(len == 0) && !q->allow_zero_len)
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
	out[w->n].addr = addr;
	out[w->n].len = len;
	out[w->n].flags = flags & VRING_DESC_F_WRITE;
	w->n++;
	return VIRTQ_ERR_NONE;
}

/*
 * The descriptor (@addr, @len, @flags) refers to an indirect table: check
 * it, snapshot the whole table into q->itab, and walk it.  The table ends
 * the chain (INDIRECT with NEXT is refused).
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_indirect(struct virtq *q, struct virtq_buf *out, uint32_t room,
	      struct walk *w, uint64_t addr, uint32_t len, uint16_t flags)
{
	const struct vring_desc *t = q->itab;
	uint32_t tsize = len / sizeof(struct vring_desc);
	enum virtq_error err;
	uint16_t idx = 0;
	guest_addr_t end;

	if (!q->indirect)
		return VIRTQ_ERR_INDIRECT_NOT_NEGOTIATED;
	if (flags & VRING_DESC_F_NEXT)
		return VIRTQ_ERR_INDIRECT_WITH_NEXT;
	if (len == 0)
		return VIRTQ_ERR_INDIRECT_LEN_ZERO;
	if (len % sizeof(struct vring_desc))
		return VIRTQ_ERR_INDIRECT_LEN_UNALIGNED;
	if (tsize > q->size)
		return VIRTQ_ERR_INDIRECT_TOO_BIG;
	if (__builtin_add_overflow(addr, len, &end))
		return VIRTQ_ERR_INDIRECT_OUTSIDE_RAM;
	/* A table in the region holding the rings, naturally aligned, is
	 * walked in place, each descriptor loaded once like ring ones;
	 * anything else is copied whole into q->itab through libvm-memory
	 * (which checks the range as a whole and may cross regions). */
	if (addr >= q->hot_gpa && end <= q->hot_end && !(addr & 7)) {
		t = (const struct vring_desc *)(const void *)(q->hot_host +
							      (addr -
							       q->hot_gpa));
	} else if (guest_memory_read(q->mem, addr, q->itab, len)) {
		return VIRTQ_ERR_INDIRECT_OUTSIDE_RAM;
	}
	/* Bounded: take_buf() fails once w->n reaches room (<= size). */
	for (;;) {
		const struct vring_desc *d = &t[idx];
		uint64_t a = LOAD64(&d->addr);
		uint32_t l = LOAD32(&d->len);
		uint16_t f = LOAD16(&d->flags), next = LOAD16(&d->next);

		if (f & VRING_DESC_F_INDIRECT)
			return VIRTQ_ERR_INDIRECT_NESTED;
		err = take_buf(q, out, room, w, a, l, f);
		if (err)
			return err;
		if (!(f & VRING_DESC_F_NEXT))
			return VIRTQ_ERR_NONE;
		if (next >= tsize)
			return VIRTQ_ERR_NEXT_OUT_OF_RANGE;
		idx = next;
	}
}

static inline void fill_chain(struct virtq *q, struct virtq_chain *c,
			      struct virtq_buf *out, uint16_t head,
			      const struct walk *w)
{
	c->q = q;
	c->bufs = out;
	c->head = head;
	c->nbufs = (uint16_t)w->n; /* n <= size <= 32768 */
	c->nread = (uint16_t)w->nread;
	c->ndesc = w->ndesc;
	c->read_len = (uint32_t)w->rlen;
	c->write_len = (uint32_t)(w->total - w->rlen);
	c->rd_buf = 0;
	c->wr_buf = 0;
	c->rd_off = c->wr_off = 0;
	c->rd_done = c->wr_done = 0;
}

/*
 * The general walk, from the head descriptor already snapshotted by
 * walk_chain() (@addr, @len, @flags, @next): never read twice.
 */
static __attribute__((noinline)) enum virtq_error
walk_chain_slow(struct virtq *q, uint16_t head, struct virtq_buf *out,
		uint32_t room, struct virtq_chain *c, uint64_t addr,
		uint32_t len, uint16_t flags, uint16_t next)
{
	struct walk w = {0, 0, 0, 0, 0};
	enum virtq_error err;

	/* Bounded: every pass stores a buffer (take_buf() fails once
	 * w.n reaches room <= size) or ends in the indirect table. */
	for (;;) {
		const struct vring_desc *d;

		w.ndesc++;
		if (unlikely(flags & VRING_DESC_F_INDIRECT)) {
			err = walk_indirect(q, out, room, &w, addr, len, flags);
			if (err)
				return err;
			break;
		}
		err = take_buf(q, out, room, &w, addr, len, flags);
		if (unlikely(err))
			return err;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (unlikely(next >= q->size))
			return VIRTQ_ERR_NEXT_OUT_OF_RANGE;
		/* Snapshot: each field is loaded exactly once; only these
		 * local copies are checked and used. */
		d = &q->desc[next];
		addr = LOAD64(&d->addr);
		len = LOAD32(&d->len);
		flags = LOAD16(&d->flags);
		next = LOAD16(&d->next);
	}
	fill_chain(q, c, out, head, &w);
	return VIRTQ_ERR_NONE;
}

/*
 * A chain that is not one plain descriptor.  The common case of a head
 * that is an indirect table (how Linux sends multi-buffer requests) is
 * walked inline; anything else by walk_chain_slow().
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_chain_other(struct virtq *q, uint16_t head, struct virtq_buf *out,
		 uint32_t room, struct virtq_chain *c, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	if ((flags & (VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT)) ==
	    VRING_DESC_F_INDIRECT) {
		struct walk w = {0, 0, 0, 0, 1};
		enum virtq_error err;

		err = walk_indirect(q, out, room, &w, addr, len, flags);
		if (err)
			return err;
		fill_chain(q, c, out, head, &w);
		return VIRTQ_ERR_NONE;
	}
	return walk_chain_slow(q, head, out, room, c, addr, len, flags, next);
}

/*
 * Walk the chain starting at @head into @out (room for @room buffers),
 * snapshotting each descriptor before checking it.  Returns 0 with @c
 * filled, or a virtq_error / WALK_NO_ROOM with nothing consumed.  A chain
 * of one plain descriptor (the common small request) takes a straight
 * path; everything else the general walk.
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_chain(struct virtq *q, uint16_t head, struct virtq_buf *out, uint32_t room,
	   struct virtq_chain *c)
{
	const struct vring_desc *d = &q->desc[head];
	/* Snapshot: each field is loaded exactly once. */
	uint64_t addr = LOAD64(&d->addr);
	uint32_t len = LOAD32(&d->len);
	uint16_t flags = LOAD16(&d->flags);
	uint16_t next = LOAD16(&d->next);
	uint32_t w;

	if (unlikely((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
		     len == 0 || addr + len < addr || room == 0))
		return walk_chain_other(q, head, out, room, c, addr, len, flags,
					next);
	w = flags & VRING_DESC_F_WRITE;
	out[0].addr = addr;
	out[0].len = len;
	out[0].flags = w;
	c->q = q;
	c->bufs = out;
	c->head = head;
	c->nbufs = 1;
	c->nread = !w;
	c->ndesc = 1;
	c->read_len = w ? 0 : len;
	c->write_len = w ? len : 0;
	c->rd_buf = 0;
	c->wr_buf = 0;
	c->rd_off = c->wr_off = 0;
	c->rd_done = c->wr_done = 0;
	return VIRTQ_ERR_NONE;
}

/*
 * Fill @c (and its one buffer @out) for a chain of one plain descriptor
 * already checked: the fields in as few stores as the layout allows (the
 * adjacent 16-bit counts and 32-bit lengths each go as one 64-bit word).
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
_Static_assert(offsetof(struct virtq_chain, nbufs) ==
			       offsetof(struct virtq_chain, head) + 2 &&
		       offsetof(struct virtq_chain, nread) ==
			       offsetof(struct virtq_chain, head) + 4 &&
		       offsetof(struct virtq_chain, ndesc) ==
			       offsetof(struct virtq_chain, head) + 6 &&
		       offsetof(struct virtq_chain, write_len) ==
			       offsetof(struct virtq_chain, read_len) + 4 &&
		       offsetof(struct virtq_buf, flags) ==
			       offsetof(struct virtq_buf, len) + 4,
	       "virtq_chain / virtq_buf layout");
#endif
static inline __attribute__((always_inline)) void
fill_plain(struct virtq *q, struct virtq_chain *c, struct virtq_buf *out,
	   uint16_t head, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint32_t w = flags & VRING_DESC_F_WRITE;

	out->addr = addr;
	c->q = q;
	c->bufs = out;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	{
		/* head, nbufs = 1, nread = !w, ndesc = 1 */
		uint64_t counts = head | 1ull << 16 | (uint64_t)!w << 32 |
				  1ull << 48;
		/* read_len, write_len: len goes to one of them */
		uint64_t lens = (uint64_t)len << (w ? 32 : 0);
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
	c->rd_buf = 0;
	c->wr_buf = 0;
	c->rd_off = c->wr_off = 0;
	c->rd_done = c->wr_done = 0;
}

/* Pop one chain into @out; 1, 0 (nothing, or no room in a batch), -EIO. */
static inline __attribute__((always_inline)) int pop_one(struct virtq *q,
							 struct virtq_chain *c,
							 struct virtq_buf *out,
							 uint32_t room)
{
	enum virtq_error err;
	uint16_t head;
	int ret;

	if (q->next_avail == q->shadow_avail) {
		ret = refresh_avail(q);
		if (ret)
			return ret;
		if (q->next_avail == q->shadow_avail)
			return 0;
	}
	/* Ordered after the acquire load of avail.idx in refresh_avail(). */
	head = LOAD16(&q->avail->ring[q->next_avail & q->mask]);
	if (unlikely(head >= q->size))
		return virtq_break(q, VIRTQ_ERR_HEAD_OUT_OF_RANGE);
	/* A head already in flight would put a second copy of the chain in
	 * flight; this also bounds the chains in flight by the size. */
	if (unlikely(q->in_flight[head]))
		return virtq_break(q, VIRTQ_ERR_HEAD_IN_FLIGHT);
	err = walk_chain(q, head, out, room, c);
	if (unlikely(err)) {
		if (err == WALK_NO_ROOM)
			return 0;
		return virtq_break(q, err);
	}
	q->in_flight_count++;
	q->last_popped = head;
	q->next_avail++;
	q->in_flight[head] = 1; /* last: a byte store may alias anything */
	return 1;
}

/*
 * A head that is an indirect table of exactly one plain descriptor in the
 * region holding the rings: the shape of many small requests, taken
 * without the general walk.  The head was snapshotted by the caller; the
 * table descriptor is loaded once here.  Returns false, having used
 * nothing it read, for anything else (including every malformed case):
 * the general walk then takes its own snapshot and reports the error.
 */
static inline __attribute__((always_inline)) bool
pop_indirect1(struct virtq *q, struct virtq_chain *c, struct virtq_buf *out,
	      uint32_t room, uint16_t head, uint64_t addr, uint32_t len,
	      uint16_t flags)
{
	const struct vring_desc *t;
	uint64_t a;
	uint32_t l;
	uint16_t f;

	if ((flags & (VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT)) !=
		    VRING_DESC_F_INDIRECT ||
	    len != sizeof(*t) || !q->indirect || room == 0 || (addr & 7))
		return false;
	t = virtq_hot_ptr(q, addr, sizeof(*t));
	if (!t)
		return false;
	a = LOAD64(&t->addr);
	l = LOAD32(&t->len);
	f = LOAD16(&t->flags);
	if ((f & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) || l == 0 ||
	    a + l < a)
		return false;
	fill_plain(q, c, out, head, a, l, f); /* ndesc 1: the table */
	return true;
}

/*
 * The out-of-line parts of virtq_pop().  Each is entered before the guest
 * field it concerns was read, or is handed the value already read, so no
 * guest field is read twice.
 */

/* Not active, or every announced chain popped: the general path. */
static __attribute__((noinline)) int pop_slow(struct virtq *q,
					      struct virtq_chain *c)
{
	if (unlikely(!q->active))
		return q->error ? -EIO : -ENODEV;
	return pop_one(q, c, q->bufs, q->size);
}

/* @head (read once from the avail ring) is out of range or in flight. */
static __attribute__((noinline, cold)) int pop_bad_head(struct virtq *q,
							uint16_t head)
{
	return virtq_break(q, head >= q->size ? VIRTQ_ERR_HEAD_OUT_OF_RANGE
					      : VIRTQ_ERR_HEAD_IN_FLIGHT);
}

/* pop_other()'s general walk, out of line to keep pop_other() lean. */
static __attribute__((noinline)) int
pop_other_walk(struct virtq *q, struct virtq_chain *c, uint16_t head,
	       uint64_t addr, uint32_t len, uint32_t flags_next)
{
	enum virtq_error err;

	err = walk_chain_other(q, head, q->bufs, q->size, c, addr, len,
			       (uint16_t)flags_next,
			       (uint16_t)(flags_next >> 16));
	/* room == size: WALK_NO_ROOM cannot come back. */
	if (unlikely(err))
		return virtq_break(q, err);
	q->in_flight_count++;
	q->last_popped = head;
	q->next_avail++;
	q->in_flight[head] = 1;
	return 1;
}

/* A head that is not one plain descriptor, already snapshotted. */
static __attribute__((noinline)) int
pop_other(struct virtq *q, struct virtq_chain *c, uint16_t head, uint64_t addr,
	  uint32_t len, uint32_t flags_next)
{
	if (!pop_indirect1(q, c, q->bufs, q->size, head, addr, len,
			   (uint16_t)flags_next))
		return pop_other_walk(q, c, head, addr, len, flags_next);
	q->in_flight_count++;
	q->last_popped = head;
	q->next_avail++;
	q->in_flight[head] = 1;
	return 1;
}

/*
 * One chain: the same checks as pop_one(), laid out so that a chain of
 * one plain descriptor (the common small request) runs straight through
 * without a call or a stack frame; everything else tail-calls out.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	uint16_t na = q->next_avail, head, flags, next;
	const struct vring_desc *d;
	uint64_t addr;
	uint32_t len;

	/* Chains left from the last validated avail.idx: no re-read. */
	if (unlikely(!q->active || na == q->shadow_avail))
		return pop_slow(q, c);
	/* Ordered after the acquire load of avail.idx in refresh_avail(). */
	head = LOAD16(&q->avail->ring[na & q->mask]);
	/* A head already in flight would put a second copy of the chain in
	 * flight; this also bounds the chains in flight by the size. */
	if (unlikely(head >= q->size || q->in_flight[head]))
		return pop_bad_head(q, head);
	/* Snapshot: each field is loaded exactly once. */
	d = &q->desc[head];
	addr = LOAD64(&d->addr);
	len = LOAD32(&d->len);
	flags = LOAD16(&d->flags);
	next = LOAD16(&d->next);
	if (unlikely((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
		     len == 0 || addr + len < addr))
		return pop_other(q, c, head, addr, len,
				 flags | (uint32_t)next << 16);
	fill_plain(q, c, q->bufs, head, addr, len, flags);
	q->in_flight_count++;
	q->last_popped = head;
	q->next_avail = (uint16_t)(na + 1);
	q->in_flight[head] = 1; /* last: a byte store may alias anything */
	return 1;
}

/*
 * virtq_pop_batch()'s path for a head that is not one plain descriptor,
 * out of line so the plain loop keeps its state in registers.  @fnh packs
 * the snapshotted flags and next, and the head: flags | next << 16 |
 * head << 32.  Walks into the snapshot room left after @used buffers.
 */
static __attribute__((noinline)) enum virtq_error
batch_other_walk(struct virtq *q, struct virtq_chain *c, uint32_t used,
		 uint64_t addr, uint32_t len, uint64_t fnh)
{
	return walk_chain_other(q, (uint16_t)(fnh >> 32), q->bufs + used,
				q->size - used, c, addr, len, (uint16_t)fnh,
				(uint16_t)(fnh >> 16));
}

static __attribute__((noinline)) enum virtq_error
batch_other(struct virtq *q, struct virtq_chain *c, uint32_t used,
	    uint64_t addr, uint32_t len, uint64_t fnh)
{
	if (pop_indirect1(q, c, q->bufs + used, q->size - used,
			  (uint16_t)(fnh >> 32), addr, len, (uint16_t)fnh))
		return VIRTQ_ERR_NONE;
	return batch_other_walk(q, c, used, addr, len, fnh);
}

int virtq_pop_batch(struct virtq *q, struct virtq_chain *chains,
		    unsigned int max)
{
	const struct vring_desc *desc = q->desc;
	const uint16_t *ring = q->avail->ring;
	uint8_t *in_flight = q->in_flight;
	struct virtq_buf *out = q->bufs;
	enum virtq_error err = VIRTQ_ERR_NONE;
	uint32_t size = q->size, used = 0;
	uint16_t mask = q->mask, next;
	unsigned int i, lim;
	int ret;

	if (unlikely(!q->active))
		return q->error ? -EIO : -ENODEV;
	/* One avail.idx read per batch (acquire, in refresh_avail()). */
	if (q->next_avail == q->shadow_avail) {
		ret = refresh_avail(q);
		if (ret)
			return ret;
	}
	next = q->next_avail;
	/* The chains the validated avail.idx announced: <= size. */
	lim = (uint16_t)(q->shadow_avail - next);
	if (lim > max)
		lim = max;
	/* Bounded by @max, by the announced chains and by the snapshot
	 * room (size buffers). */
	for (i = 0; i < lim && used < size; i++) {
		struct virtq_chain *c = &chains[i];
		const struct vring_desc *d;
		uint64_t addr;
		uint32_t len;
		uint16_t head, flags, dnext;

		/* Ordered after the acquire load of avail.idx. */
		head = LOAD16(&ring[next & mask]);
		if (unlikely(head >= size)) {
			err = VIRTQ_ERR_HEAD_OUT_OF_RANGE;
			break;
		}
		if (unlikely(in_flight[head])) {
			err = VIRTQ_ERR_HEAD_IN_FLIGHT;
			break;
		}
		/* Snapshot the head descriptor: each field loaded once. */
		d = &desc[head];
		addr = LOAD64(&d->addr);
		len = LOAD32(&d->len);
		flags = LOAD16(&d->flags);
		dnext = LOAD16(&d->next);
		if (unlikely((flags &
			      (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
			     len == 0 || addr + len < addr)) {
			err = batch_other(q, c, used, addr, len,
					  flags | (uint32_t)dnext << 16 |
						  (uint64_t)head << 32);
			if (err == WALK_NO_ROOM) {
				err = VIRTQ_ERR_NONE;
				break;
			}
			if (err)
				break;
			used += c->nbufs;
		} else {
			/* One plain descriptor, as in virtq_pop(). */
			fill_plain(q, c, out + used, head, addr, len, flags);
			used++;
		}
		in_flight[head] = 1;
		next++;
	}
	q->next_avail = next;
	q->in_flight_count += i;
	if (i)
		q->last_popped = chains[i - 1].head;
	if (unlikely(err)) {
		ret = virtq_break(q, err);
		return i ? (int)i : ret;
	}
	return (int)i;
}

int virtq_undo_pop(struct virtq *q, const struct virtq_chain *chain)
{
	if (!chain || chain->q != q || q->last_popped != (int32_t)chain->head ||
	    !q->in_flight[chain->head])
		return -EINVAL;
	q->in_flight[chain->head] = 0;
	q->in_flight_count--;
	q->last_popped = -1;
	q->next_avail--;
	return 0;
}

/* ------------------------------------------------------------- used ring */

/* Dirty-log the used elements [first, first + n) and used.idx. */
static __attribute__((noinline, cold)) void
used_mark_dirty(struct virtq *q, uint16_t first, uint32_t n)
{
	guest_addr_t base = q->addr[VIRTQ_AREA_USED];
	uint16_t s = first & q->mask;

	guest_memory_mark_dirty(q->mem, base, 4);
	if ((uint32_t)s + n <= q->size)
		guest_memory_mark_dirty(q->mem, base + 4 + 8ull * s, 8ull * n);
	else
		guest_memory_mark_dirty(q->mem, base + 4, 8ull * q->size);
}

static inline void publish_used(struct virtq *q, uint16_t first, uint16_t n)
{
	/* Release: pairs with the driver's read barrier after it loads
	 * used.idx (virtqueue_get_buf); makes the used elements and all
	 * data the device wrote into the buffers visible first. */
	__atomic_store_n(&q->used->idx, q->next_used, __ATOMIC_RELEASE);
	if (unlikely(q->used_dirty_log))
		used_mark_dirty(q, first, n);
}

int virtq_add_used(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used *used = q->used;
	uint8_t *in_flight = q->in_flight;
	uint16_t slot = q->next_used;
	vring_used_elem_t *e;

	if (unlikely(!q->active))
		return q->error ? -EIO : -ENODEV;
	if (unlikely(head >= q->size || !in_flight[head]))
		return -EINVAL;
	e = &used->ring[slot & q->mask];
	q->next_used = (uint16_t)(slot + 1);
	q->in_flight_count--;
	/* (virtq_undo_pop() checks in_flight, so last_popped may stay.) */
	in_flight[head] = 0;
	/* Plain (relaxed) stores, published by the release store below. */
	STORE32(&e->id, head);
	STORE32(&e->len, len);
	/* Release: pairs with the driver's read barrier after it loads
	 * used.idx (virtqueue_get_buf); makes the element and all data the
	 * device wrote into the buffers visible first. */
	__atomic_store_n(&used->idx, (uint16_t)(slot + 1), __ATOMIC_RELEASE);
	/* used.idx came round (u16) to the value last signalled: the next
	 * virtq_needs_interrupt() must not take "nothing new" for it. */
	if (unlikely((uint16_t)(slot + 1) == q->signalled_used))
		q->signalled_valid = false;
	if (unlikely(q->used_dirty_log))
		used_mark_dirty(q, slot, 1);
	return 0;
}

int virtq_add_used_batch(struct virtq *q, const struct vring_used_elem *elems,
			 unsigned int n)
{
	vring_used_elem_t *ring;
	uint8_t *in_flight = q->in_flight;
	uint32_t size = q->size;
	uint16_t first, mask = q->mask;
	unsigned int i;

	if (unlikely(!q->active))
		return q->error ? -EIO : -ENODEV;
	if (n == 0)
		return 0;
	if (!elems || n > size)
		return -EINVAL;
	ring = q->used->ring;
	first = q->next_used;
	/*
	 * One pass: check each id, clear it, write its element.  Slots past
	 * used.idx are free (at most size chains are outstanding), and
	 * nothing is published until all ids passed; a bad id (not in
	 * flight, or twice in the batch) rolls the in-flight marks back.
	 */
	for (i = 0; i < n; i++) {
		uint32_t id = elems[i].id;
		vring_used_elem_t *e = &ring[(uint16_t)(first + i) & mask];

		if (unlikely(id >= size || !in_flight[id])) {
			while (i--)
				in_flight[elems[i].id] = 1;
			return -EINVAL;
		}
		in_flight[id] = 0;
		/* Plain stores, published by publish_used()'s release. */
		STORE32(&e->id, id);
		STORE32(&e->len, elems[i].len);
	}
	q->next_used = (uint16_t)(first + n);
	q->in_flight_count -= n;
	/* The batch went past (or onto) the index last signalled, modulo
	 * 2^16: see virtq_add_used(). */
	if (unlikely((uint16_t)(q->next_used - q->signalled_used) < n))
		q->signalled_valid = false;
	publish_used(q, first, (uint16_t)n);
	return 0;
}

int virtq_complete(struct virtq_chain *c)
{
	return virtq_add_used(c->q, c->head, c->wr_done);
}

/* ---------------------------------------------------------- notifications */

bool virtq_needs_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used;
	bool valid = q->signalled_valid;

	if (!q->ready || q->error)
		return false;
	if (valid && old == q->next_used)
		return false;
	q->signalled_used = q->next_used;
	q->signalled_valid = true;
	/* Full fence: our used.idx store must be globally visible before we
	 * read the driver's used_event / avail.flags.  Pairs with the
	 * driver's virtio_mb() between writing used_event (or clearing
	 * NO_INTERRUPT) and re-reading used.idx. */
	atomic_thread_fence(memory_order_seq_cst);
	if (q->event_idx) {
		uint16_t ev = LOAD16(q->used_event);

		if (!valid)
			return true;
		return vring_need_event(ev, q->next_used, old);
	}
	return !(LOAD16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
}

void virtq_disable_notification(struct virtq *q)
{
	if (!q->ready || q->error || q->event_idx)
		return;
	q->used_flags |= VRING_USED_F_NO_NOTIFY;
	STORE16(&q->used->flags, q->used_flags);
	if (unlikely(q->used_dirty_log))
		guest_memory_mark_dirty(q->mem, q->addr[VIRTQ_AREA_USED], 2);
}

bool virtq_enable_notification(struct virtq *q)
{
	uint16_t idx;

	if (!q->ready || q->error)
		return false;
	if (q->event_idx) {
		STORE16(q->avail_event, q->next_avail);
		if (unlikely(q->used_dirty_log))
			guest_memory_mark_dirty(q->mem,
						q->addr[VIRTQ_AREA_USED] + 4 +
							8ull * q->size,
						2);
	} else {
		q->used_flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
		STORE16(&q->used->flags, q->used_flags);
		if (unlikely(q->used_dirty_log))
			guest_memory_mark_dirty(q->mem,
						q->addr[VIRTQ_AREA_USED], 2);
	}
	/* Full fence: the flag/event store above must be visible before we
	 * re-read avail.idx.  Pairs with the driver's virtio_mb() between
	 * its avail.idx store and reading used.flags / avail_event in
	 * virtqueue_kick_prepare(): either it sees notifications enabled and
	 * kicks, or we see its new index here. */
	atomic_thread_fence(memory_order_seq_cst);
	idx = LOAD16(&q->avail->idx);
	return idx != q->next_avail;
}

/* ------------------------------------------------------- snapshot/restore */

void virtq_save(const struct virtq *q, struct virtq_state *st)
{
	uint32_t i;

	memset(st, 0, sizeof(*st));
	st->version = VIRTQ_STATE_VERSION;
	st->max_size = q->max_size;
	st->size = q->size;
	st->ready = q->ready;
	st->desc_addr = q->addr[0];
	st->avail_addr = q->addr[1];
	st->used_addr = q->addr[2];
	st->features = q->features;
	st->next_avail = q->next_avail;
	st->next_used = q->next_used;
	st->signalled_used = q->signalled_used;
	st->signalled_valid = q->signalled_valid;
	st->used_flags = q->used_flags;
	st->error = q->error;
	st->allow_zero_len = q->allow_zero_len;
	st->in_flight = q->in_flight_count;
	for (i = 0; i < q->max_size; i++) {
		if (q->in_flight[i])
			st->in_flight_heads[i / 64] |= 1ull << (i % 64);
	}
}

int virtq_restore(struct virtq *q, const struct virtq_state *st)
{
	uint32_t i, count = 0;
	int ret;

	virtq_reset(q);
	if (!st || st->version != VIRTQ_STATE_VERSION ||
	    st->max_size != q->max_size || st->error >= VIRTQ_ERR__COUNT)
		return -EINVAL;
	if (virtq_set_size(q, st->size))
		goto inval;
	for (i = 0; i < VIRTQ_MAX_SIZE; i++) {
		if (!(st->in_flight_heads[i / 64] & (1ull << (i % 64))))
			continue;
		if (i >= st->size)
			goto inval;
		count++;
	}
	if (count != st->in_flight)
		goto inval;
	q->addr[0] = st->desc_addr;
	q->addr[1] = st->avail_addr;
	q->addr[2] = st->used_addr;
	q->features = st->features & VIRTQ_RING_FEATURES;
	if (st->ready) {
		ret = virtq_set_ready(q, true);
		if (ret) {
			virtq_reset(q);
			return ret;
		}
	}
	q->next_avail = q->shadow_avail = st->next_avail;
	q->next_used = st->next_used;
	q->signalled_used = st->signalled_used;
	q->signalled_valid = st->signalled_valid;
	q->used_flags = st->used_flags;
	q->allow_zero_len = st->allow_zero_len;
	for (i = 0; i < st->size; i++)
		q->in_flight[i] =
			!!(st->in_flight_heads[i / 64] & (1ull << (i % 64)));
	q->in_flight_count = count;
	q->error = (enum virtq_error)st->error;
	q->active = q->ready && q->error == VIRTQ_ERR_NONE;
	return 0;
inval:
	virtq_reset(q);
	return -EINVAL;
}
