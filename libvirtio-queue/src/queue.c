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
	[VIRTQ_ERR_DESC_READONLY] = "DESC_READONLY",
	[VIRTQ_ERR_DESC_NOT_AVAIL] = "DESC_NOT_AVAIL",
	[VIRTQ_ERR_RING_OVERRUN] = "RING_OVERRUN",
	[VIRTQ_ERR_INDIRECT_IN_CHAIN] = "INDIRECT_IN_CHAIN",
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
	q->split_active = false;
	q->packed_fast = false;
	q->shadow_avail = q->next_avail; /* see internal.h */
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
	q = calloc(1, sizeof(*q) + max_size * sizeof(q->heads[0]));
	if (!q)
		return -ENOMEM;
	q->max_size = max_size;
	q->itab = calloc(max_size, sizeof(*q->itab));
	if (!q->itab) {
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
	free(q->itab);
	free(q);
}

void virtq_reset(struct virtq *q)
{
	q->ready = false;
	q->active = false;
	q->split_active = false;
	q->packed_fast = false;
	q->packed = false;
	q->in_order = false;
	q->p_avail_wrap = true; /* both start at 1 */
	q->p_used_bits = PF_AVAIL | PF_USED;
	q->p_avail_pos = q->p_used_pos = 0;
	q->p_desc_out = 0;
	q->p_used_adv = 0;
	q->pdesc = NULL;
	q->p_driver = NULL;
	q->p_device = NULL;
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
	memset(q->heads, 0, q->max_size * sizeof(q->heads[0]));
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
	/* Any size for now: a packed ring may have any (virtio 1.2, 2.8);
	 * a split one must be a power of two, which virtq_set_ready()
	 * checks once the layout is known (queues are sized before the
	 * transport hands over the features). */
	if (size == 0 || size > q->max_size) {
		q->cfg_error = VIRTQ_ERR_SIZE_INVALID;
		return -EINVAL;
	}
	q->size = size;
	q->mask = is_pow2(size) ? (uint16_t)(size - 1) : 0; /* split only */
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

bool virtq_is_packed(const struct virtq *q)
{
	return q->ready && q->packed;
}

uint32_t virtq_in_flight(const struct virtq *q)
{
	/* Every pop advances next_avail, every completion next_used, and
	 * at most size (<= 2^15) chains are in flight: exact mod 2^16. */
	return (uint16_t)(q->next_avail - q->next_used);
}

static uint64_t area_bytes(uint32_t size, bool event_idx, bool packed,
			   enum virtq_area area)
{
	if (packed) /* 2.8.10.1: a ring, two event suppression structures */
		return area == VIRTQ_AREA_DESC ? 16ull * size : 4;
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
static bool area_writable(struct guest_memory *mem, guest_addr_t gpa)
{
	struct guest_region *r = guest_memory_find_region(mem, gpa);

	return r && !(guest_region_flags(r) & GUEST_REGION_READONLY);
}

static int validate_rings(const struct virtq *q, struct guest_memory *mem,
			  bool event_idx, void *host[3], enum virtq_error *why)
{
	static const uint64_t split_align[3] = {16, 2, 4};
	static const uint64_t packed_align[3] = {16, 4, 4};
	const uint64_t *align = q->packed ? packed_align : split_align;
	static const enum virtq_error misaligned[3] = {
		VIRTQ_ERR_DESC_MISALIGNED, VIRTQ_ERR_AVAIL_MISALIGNED,
		VIRTQ_ERR_USED_MISALIGNED};
	static const enum virtq_error outside[3] = {VIRTQ_ERR_DESC_OUTSIDE_RAM,
						    VIRTQ_ERR_AVAIL_OUTSIDE_RAM,
						    VIRTQ_ERR_USED_OUTSIDE_RAM};
	uint64_t len[3];
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
		len[i] = area_bytes(q->size, event_idx, q->packed,
				    (enum virtq_area)i);
		/* One region only: the host pointer covers the whole area. */
		if (guest_memory_translate(mem, q->addr[i], len[i], &host[i]) !=
		    0) {
			*why = outside[i];
			return -EFAULT;
		}
	}
	if (!area_writable(mem, q->addr[VIRTQ_AREA_USED])) {
		*why = VIRTQ_ERR_USED_READONLY;
		return -EFAULT;
	}
	if (q->packed) {
		/* The device writes used descriptors into the ring, and
		 * reads the driver area: no two areas may share a byte. */
		if (!area_writable(mem, q->addr[VIRTQ_AREA_DESC])) {
			*why = VIRTQ_ERR_DESC_READONLY;
			return -EFAULT;
		}
		if (ranges_overlap(q->addr[0], len[0], q->addr[1], len[1])) {
			*why = VIRTQ_ERR_RINGS_OVERLAP;
			return -EEXIST;
		}
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
	if (q->packed) {
		/* Nothing of the split view is valid: its pointers stay
		 * NULL.  The ring is device-written too. */
		q->pdesc = host[0];
		q->p_driver = host[1];
		q->p_device = host[2];
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		q->used_event = NULL;
		q->avail_event = NULL;
		r = guest_memory_find_region(q->mem, q->addr[VIRTQ_AREA_DESC]);
		if (r && (guest_region_flags(r) & GUEST_REGION_DIRTY_LOG))
			q->used_dirty_log = true;
	}
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
		virtq_update_active(q);
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		q->pdesc = NULL;
		q->p_driver = NULL;
		q->p_device = NULL;
		return -EFAULT;
	}
	install_rings(q, host);
	virtq_update_active(q); /* the dirty log may have changed */
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
		virtq_update_active(q);
		q->shadow_avail = q->next_avail; /* see internal.h */
		return 0;
	}
	if (q->ready)
		return 0;
	ev = q->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->packed = q->features & (1ull << VIRTIO_F_RING_PACKED);
	if (!q->packed && !is_pow2(q->size)) {
		/* 2.7: a split queue's size is a power of two. */
		q->cfg_error = VIRTQ_ERR_SIZE_INVALID;
		q->packed = false;
		return -EINVAL;
	}
	ret = validate_rings(q, q->mem, ev, host, &why);
	q->cfg_error = why;
	if (ret) {
		q->packed = false;
		return ret;
	}
	q->event_idx = ev;
	q->indirect = q->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	q->in_order = q->features & (1ull << VIRTIO_F_IN_ORDER);
	install_rings(q, host);
	/* The driver starts with used_event = 0 = used.idx: a valid
	 * interval, so the first completion is judged by the inequality. */
	q->signalled_used = q->next_used;
	q->signalled_valid = true;
	q->p_used_adv = 0;
	q->ready = true;
	virtq_update_active(q);
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

/* Read avail.idx: the chains available and not popped, or -EIO/-ENODEV. */
static inline int avail_count(struct virtq *q)
{
	int ret;

	if (unlikely(!q->active))
		return virtq_inactive_error(q);
	if (q->packed)
		return virtq_packed_avail_count(q);
	ret = refresh_avail(q);
	if (ret)
		return ret;
	ret = (uint16_t)(q->shadow_avail - q->next_avail);
	/* IN_ORDER pops all go through pop_slow() (see internal.h). */
	if (unlikely(q->in_order))
		q->shadow_avail = q->next_avail;
	return ret;
}

int virtq_avail_count(struct virtq *q)
{
	return avail_count(q);
}

/* Walk state, carried from the ring into an indirect table. */
#define walk virtq_walk

#define take_buf virtq_take_buf

/*
 * The descriptor (@addr, @len, @flags) refers to an indirect table: check
 * it and walk it, each entry loaded once.  The table ends the chain
 * (INDIRECT with NEXT is refused).
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_indirect(struct virtq *q, struct walk *w, uint64_t addr, uint32_t len,
	      uint16_t flags)
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
	/* Bounded: take_buf() fails once w->n reaches the size. */
	for (;;) {
		const struct vring_desc *d = &t[idx];
		uint64_t a = LOAD64(&d->addr);
		uint32_t l = LOAD32(&d->len);
		uint16_t f = LOAD16(&d->flags), next = LOAD16(&d->next);

		if (f & VRING_DESC_F_INDIRECT)
			return VIRTQ_ERR_INDIRECT_NESTED;
		err = take_buf(w, a, l, f);
		if (err)
			return err;
		if (!(f & VRING_DESC_F_NEXT))
			return VIRTQ_ERR_NONE;
		if (next >= tsize)
			return VIRTQ_ERR_NEXT_OUT_OF_RANGE;
		idx = next;
	}
}

/*
 * THE walker: every chain that is not one plain descriptor, from its head
 * descriptor already snapshotted by the caller (@addr, @len, @flags,
 * @next: never read twice).  Each further descriptor is loaded once into
 * locals, checked, then stored.  Returns VIRTQ_ERR_NONE with @w filled.
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_chain(struct virtq *q, struct walk *w, uint64_t addr, uint32_t len,
	   uint16_t flags, uint16_t next)
{
	enum virtq_error err;

	/* Bounded: every pass stores a buffer (take_buf() fails once w->n
	 * reaches the size) or ends in the indirect table. */
	for (;;) {
		const struct vring_desc *d;

		w->ndesc++;
		if (flags & VRING_DESC_F_INDIRECT)
			return walk_indirect(q, w, addr, len, flags);
		err = take_buf(w, addr, len, flags);
		if (unlikely(err))
			return err;
		if (!(flags & VRING_DESC_F_NEXT))
			return VIRTQ_ERR_NONE;
		if (unlikely(next >= q->size))
			return VIRTQ_ERR_NEXT_OUT_OF_RANGE;
		d = &q->desc[next];
		addr = LOAD64(&d->addr);
		len = LOAD32(&d->len);
		flags = LOAD16(&d->flags);
		next = LOAD16(&d->next);
	}
}

/*
 * The one place a chain becomes in flight: its head is marked, with its
 * writable total (the bound of its used length), and unless @batch (whose
 * loop keeps the index in a register and stores it once) next_avail moves
 * past it.
 */
static inline __attribute__((always_inline)) void
mark_popped(struct virtq *q, uint16_t head, uint32_t write_len, bool batch)
{
	q->heads[head] = VIRTQ_HEAD_IN_FLIGHT | write_len;
	if (!batch) {
		q->last_popped = head;
		q->next_avail++;
	}
}

/* The writable total of one buffer of @len whose write flag is @w. */
static inline uint32_t write_total(uint32_t len, uint32_t w)
{
	return w ? len : 0;
}

/*
 * The general walk of a chain that is not one plain descriptor (or does
 * not fit an empty storage), then fill @c or report the room it needs.
 * The head's addr, len and flags were snapshotted by the caller; its next
 * field is loaded here, the one time it is read.
 */
static __attribute__((noinline)) int pop_walk(struct virtq *q,
					      struct virtq_chain *c,
					      uint16_t head, uint64_t addr,
					      uint32_t len, uint16_t flags)
{
	struct walk w = VIRTQ_WALK_INIT(q, c->bufs, c->cap);
	enum virtq_error err;
	uint32_t wlen;

	err = walk_chain(q, &w, addr, len, flags, LOAD16(&q->desc[head].next));
	if (unlikely(err))
		return virtq_break(q, err);
	if (unlikely(w.n > w.cap)) {
		/* Not consumed: the device may retry with more room. */
		c->nbufs = (uint16_t)w.n; /* n <= size <= 32768 */
		return -ENOBUFS;
	}
	wlen = (uint32_t)(w.total - w.rlen);
	c->q = q;
	c->head = head;
	c->nbufs = (uint16_t)w.n;
	c->nread = (uint16_t)w.nread;
	c->ndesc = (uint16_t)w.ndesc;
	c->rd_buf = c->wr_buf = c->reserved = 0;
	c->read_len = (uint32_t)w.rlen;
	c->write_len = wlen;
	c->rd_off = c->wr_off = 0;
	c->rd_done = c->wr_done = 0;
	mark_popped(q, head, wlen, false);
	return 1;
}

/*
 * The shortcut of the walker's entry (and of a batch, inline): an indirect
 * table of one plain descriptor in the region holding the rings (how Linux
 * sends many small requests) fills @c like a direct one, without the
 * general walk's frame.  Returns false, with nothing changed, for anything
 * else, every malformed case included: pop_walk() then reads the table
 * again (nothing read here was used) and reports the error.
 */
static inline __attribute__((always_inline)) bool
pop_indirect1(struct virtq *q, struct virtq_chain *c, uint16_t head,
	      uint64_t addr, uint32_t len, uint16_t flags, bool batch)
{
	const struct vring_desc *t;
	uint64_t a;
	uint32_t l, w;
	uint16_t f;

	if ((flags & (VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT)) !=
		    VRING_DESC_F_INDIRECT ||
	    len != sizeof(*t) || !q->indirect || !c->cap || (addr & 7))
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
	w = f & VRING_DESC_F_WRITE;
	virtq_fill_plain(q, c, head, a, l, w);
	mark_popped(q, head, write_total(l, w), batch);
	return true;
}

/* The walker's entry, for every chain the fast path does not take. */
static __attribute__((noinline)) int pop_other(struct virtq *q,
					       struct virtq_chain *c,
					       uint16_t head, uint64_t addr,
					       uint32_t len, uint16_t flags)
{
	if (pop_indirect1(q, c, head, addr, len, flags, false))
		return 1;
	return pop_walk(q, c, head, addr, len, flags);
}

/* The head read from the avail ring is out of range or in flight. */
static __attribute__((noinline, cold)) int pop_bad_head(struct virtq *q,
							uint16_t head)
{
	/* A head already in flight would put a second copy of the chain in
	 * flight; this also bounds the chains in flight by the size. */
	return virtq_break(q, head >= q->size ? VIRTQ_ERR_HEAD_OUT_OF_RANGE
					      : VIRTQ_ERR_HEAD_IN_FLIGHT);
}

/* The ring fields the fast path uses, loaded once by its callers. */
struct ring_view {
	const uint16_t *avail; /* avail->ring */
	const struct vring_desc *desc;
	uint32_t size;
	uint16_t mask;
};

static inline void ring_view_load(const struct virtq *q, struct ring_view *r)
{
	r->avail = q->avail->ring;
	r->desc = q->desc;
	r->size = q->size;
	r->mask = q->mask;
}

/*
 * THE fast path: pop the chain at avail slot @na into @c (the caller
 * checked that the queue is active and that a validated avail.idx
 * announced the slot).  A chain of one plain descriptor (the common small
 * request) runs straight through without a call; everything else goes to
 * the walker (pop_other()), handed the head descriptor already read, so no
 * guest field is read twice.  Returns 1, -ENOBUFS or -EIO.
 */
static inline __attribute__((always_inline)) int
pop_head(struct virtq *q, struct virtq_chain *c, const struct ring_view *r,
	 uint16_t na, bool batch)
{
	const struct vring_desc *d;
	uint16_t head, flags;
	uint64_t addr;
	uint32_t len, w;

	/* Ordered after the acquire load of avail.idx in refresh_avail(). */
	head = LOAD16(&r->avail[na & r->mask]);
	if (unlikely(head >= r->size || virtq_head_in_flight(q, head))) {
		if (batch)
			q->next_avail = na; /* the error callback sees it */
		return pop_bad_head(q, head);
	}
	/* Snapshot: each field is loaded exactly once (next only by the
	 * walker, which is the only one to use it). */
	d = &r->desc[head];
	addr = LOAD64(&d->addr);
	len = LOAD32(&d->len);
	flags = LOAD16(&d->flags);
	if (unlikely((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
		     len == 0 || addr + len < addr || c->cap == 0)) {
		/* A batch takes pop_other()'s shortcut inline (an indirect
		 * table of one plain entry in the hot region, how Linux
		 * sends small requests): no call per chain. */
		if (batch && pop_indirect1(q, c, head, addr, len, flags, true))
			return 1;
		if (batch)
			q->next_avail = na; /* the walker moves it on */
		return pop_other(q, c, head, addr, len, flags);
	}
	w = flags & VRING_DESC_F_WRITE;
	virtq_fill_plain(q, c, head, addr, len, w);
	mark_popped(q, head, write_total(len, w), batch);
	return 1;
}

/* virtq_pop() on a packed ring (which always fails virtq_pop()'s test):
 * its own small frame, the one-descriptor chain inline. */
static __attribute__((noinline)) int pop_packed(struct virtq *q,
						struct virtq_chain *c)
{
	const struct vring_packed_desc *d;
	uint16_t flags;

	if (unlikely(!q->active))
		return virtq_inactive_error(q);
	/* Acquire: see packed.c (the head's flags are written last). */
	d = &q->pdesc[q->p_avail_pos];
	flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
	if (!virtq_slot_avail(flags, q->p_avail_wrap))
		return 0;
	if (likely(!(flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT))) &&
	    likely(virtq_packed_pop_plain(q, c, d, flags)))
		return 1;
	return virtq_packed_pop_walk(q, c, flags);
}

/* virtq_pop() when not active or avail.idx must be read again. */
static __attribute__((noinline)) int pop_slow(struct virtq *q,
					      struct virtq_chain *c)
{
	struct ring_view r;
	int ret;

	ret = avail_count(q);
	if (ret <= 0)
		return ret;
	ring_view_load(q, &r);
	ret = pop_head(q, c, &r, q->next_avail, false);
	/* IN_ORDER: the pop's sequence number, checked at completion; the
	 * next pop comes here again (see internal.h). */
	if (unlikely(q->in_order)) {
		if (ret == 1)
			q->heads[c->head] |=
				(uint64_t)(uint16_t)(q->next_avail - 1)
				<< VIRTQ_HEAD_SEQ_SHIFT;
		q->shadow_avail = q->next_avail;
	}
	return ret;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	uint16_t na = q->next_avail;
	struct ring_view r;

	/* Chains left from the last validated avail.idx: no re-read.  An
	 * inactive queue always has shadow_avail == next_avail (see
	 * internal.h), so this one test sends it to pop_slow() too. */
	if (unlikely(na == q->shadow_avail)) {
		if (q->packed)
			return pop_packed(q, c);
		return pop_slow(q, c);
	}
	ring_view_load(q, &r);
	return pop_head(q, c, &r, na, false);
}

/* virtq_pop_batch() under IN_ORDER (split): one pop after the other,
 * each recording its sequence number. */
static __attribute__((noinline)) int
pop_batch_in_order(struct virtq *q, struct virtq_chain *chains,
		   unsigned int max)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < max; i++) {
		ret = pop_slow(q, &chains[i]);
		if (ret != 1)
			break;
	}
	return i ? (int)i : ret;
}

int virtq_pop_batch(struct virtq *q, struct virtq_chain *chains,
		    unsigned int max)
{
	struct ring_view r;
	unsigned int i, lim;
	uint16_t na;
	int ret = 0;

	/* Before any ring field is touched: a queue never made ready (or
	 * just reset) has no rings. */
	if (unlikely(!q->split_active)) {
		if (!q->active)
			return virtq_inactive_error(q);
		if (q->packed)
			return virtq_packed_pop_batch(q, chains, max);
		return pop_batch_in_order(q, chains, max);
	}
	/* One avail.idx read per batch (acquire, in refresh_avail()). */
	if (q->next_avail == q->shadow_avail) {
		ret = refresh_avail(q);
		if (ret)
			return ret;
	}
	na = q->next_avail;
	/* The chains the validated avail.idx announced: <= size. */
	lim = (uint16_t)(q->shadow_avail - na);
	if (lim > max)
		lim = max;
	ring_view_load(q, &r);
	for (i = 0; i < lim; i++) {
		ret = pop_head(q, &chains[i], &r, (uint16_t)(na + i), true);
		if (unlikely(ret != 1))
			break;
	}
	/* The fast path left next_avail to this one store (the slow paths
	 * set it before they ran, so the walker and the error callback saw
	 * the right value). */
	q->next_avail = (uint16_t)(na + i);
	if (i)
		q->last_popped = chains[i - 1].head;
	return i ? (int)i : ret;
}

int virtq_undo_pop(struct virtq *q, const struct virtq_chain *chain)
{
	if (q->packed)
		return virtq_packed_undo_pop(q, chain);
	if (!chain || chain->q != q || q->last_popped != (int32_t)chain->head ||
	    !virtq_head_in_flight(q, chain->head))
		return -EINVAL;
	q->heads[chain->head] = 0;
	q->last_popped = -1;
	q->next_avail--;
	if (!q->active || q->in_order)
		q->shadow_avail = q->next_avail; /* see internal.h */
	return 0;
}

/* ------------------------------------------------------- chain storage */

void virtq_chain_init(struct virtq_chain *c, struct virtq_buf *bufs, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->bufs = bufs;
	c->cap = (uint16_t)(cap > UINT16_MAX ? UINT16_MAX : cap);
}

struct virtq_chain *virtq_chain_alloc(size_t cap)
{
	struct virtq_chain *c;

	if (cap > UINT16_MAX) {
		errno = EINVAL;
		return NULL;
	}
	c = malloc(sizeof(*c) + cap * sizeof(struct virtq_buf));
	if (!c)
		return NULL;
	virtq_chain_init(c, (struct virtq_buf *)(void *)(c + 1), cap);
	return c;
}

void virtq_chain_free(struct virtq_chain *c)
{
	free(c);
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

/*
 * Publish used.idx after @n elements from @first were written.  Release:
 * pairs with the driver's read barrier after it loads used.idx
 * (virtqueue_get_buf); makes the used elements and all data the device
 * wrote into the buffers visible first.
 */
static inline void publish_used(struct virtq *q, struct vring_used *used,
				uint16_t first, uint16_t n)
{
	__atomic_store_n(&used->idx, (uint16_t)(first + n), __ATOMIC_RELEASE);
	q->next_used = (uint16_t)(first + n);
	/* used.idx went past (or onto) the index last signalled, modulo
	 * 2^16: the next virtq_needs_interrupt() must not take "nothing
	 * new" for it. */
	if (unlikely((uint16_t)(q->next_used - q->signalled_used) < n))
		q->signalled_valid = false;
	if (unlikely(q->used_dirty_log))
		used_mark_dirty(q, first, n);
}

/*
 * Take @head out of flight and write its used element at slot @slot, the
 * length bounded by the chain's writable total.  Returns false (nothing
 * changed) if @head is not in flight.
 */
static inline __attribute__((always_inline)) bool
put_used(struct virtq *q, struct vring_used *used, uint16_t slot, uint32_t head,
	 uint32_t len, bool in_order)
{
	vring_used_elem_t *e = &used->ring[slot & q->mask];
	uint64_t h;

	if (unlikely(head >= q->size))
		return false;
	h = q->heads[head];
	if (unlikely(!(h & VIRTQ_HEAD_IN_FLIGHT)))
		return false;
	if (in_order) {
		/* Used in the order popped; the sequence number stays for
		 * a rollback of the batch. */
		if (virtq_head_seq(h) != slot)
			return false;
		q->heads[head] = h & ~VIRTQ_HEAD_IN_FLIGHT;
	} else {
		/* Out of flight; the low half (the bound) stays for a
		 * rollback. */
		q->heads[head] = (uint32_t)h;
	}
	if (unlikely(len > (uint32_t)h))
		len = (uint32_t)h;
	/* Plain (relaxed) stores, published by publish_used()'s release. */
	STORE32(&e->id, head);
	STORE32(&e->len, len);
	return true;
}

/* A completion on a queue the split fast path does not serve: not
 * active, packed, or split under IN_ORDER. */
static __attribute__((noinline)) int used_other(struct virtq *q, uint16_t head,
						uint32_t len)
{
	uint16_t slot = q->next_used;

	if (unlikely(!q->active))
		return virtq_inactive_error(q);
	if (q->packed)
		return virtq_packed_used_one(q, head, len, false);
	if (!put_used(q, q->used, slot, head, len, true))
		return -EINVAL;
	publish_used(q, q->used, slot, 1);
	return 0;
}

static int used_batch_other(struct virtq *q,
			    const struct vring_used_elem *elems,
			    const struct virtq_chain *chains, unsigned int n);

static inline int add_used(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used *used = q->used;
	uint16_t slot = q->next_used;

	if (unlikely(!q->split_active)) {
		/* The packed fast path inline too: a packed queue then
		 * costs one more test, not the general path's. */
		if (likely(q->packed_fast))
			return virtq_packed_used_one(q, head, len, true);
		return used_other(q, head, len);
	}
	if (unlikely(!put_used(q, used, slot, head, len, false)))
		return -EINVAL;
	publish_used(q, used, slot, 1);
	return 0;
}

int virtq_add_used(struct virtq *q, uint16_t head, uint32_t len)
{
	return add_used(q, head, len);
}

/*
 * The chain-based completions take @q from the caller rather than from
 * @c->q: the chain was just written by the pop, and a load of c->q put in
 * front of every queue access would wait on that store.  c->q is only
 * compared, off the critical path.
 */
int virtq_complete(struct virtq *q, struct virtq_chain *c)
{
	if (unlikely(c->q != q))
		return -EINVAL;
	return add_used(q, c->head, c->wr_done);
}

int virtq_complete_len(struct virtq *q, struct virtq_chain *c, uint32_t len)
{
	if (unlikely(c->q != q))
		return -EINVAL;
	/* add_used() bounds @len by the writable total recorded at pop
	 * (c->write_len for an intact chain). */
	return add_used(q, c->head, len);
}

/*
 * IN_ORDER (virtio 1.2, 2.7.9): a batch may be reported by one used
 * element, at the batch's first slot, naming its last chain; the driver
 * takes the chains before it as wholly used.  So the batch is collapsed
 * only when every chain but the last was written up to its writable
 * total (the element's length would otherwise be lost); else the
 * elements written one by one stand.  The others were already written
 * (harmless: the driver skips their slots).
 */
static __attribute__((noinline)) void
in_order_collapse(struct virtq *q, struct vring_used *used,
		  const struct vring_used_elem *elems,
		  const struct virtq_chain *chains, uint16_t first,
		  unsigned int n)
{
	vring_used_elem_t *e = &used->ring[first & q->mask];
	uint32_t id, len, bound;
	unsigned int i;

	for (i = 0; i + 1 < n; i++) {
		id = elems ? elems[i].id : chains[i].head;
		len = elems ? elems[i].len : chains[i].wr_done;
		bound = (uint32_t)q->heads[id]; /* id checked by put_used() */
		if (len < bound)
			return;
	}
	id = elems ? elems[n - 1].id : chains[n - 1].head;
	len = elems ? elems[n - 1].len : chains[n - 1].wr_done;
	bound = (uint32_t)q->heads[id];
	STORE32(&e->id, id);
	STORE32(&e->len, len < bound ? len : bound);
}

/*
 * The batch completions: one pass checks each id, takes it out of flight
 * and writes its element.  Slots past used.idx are free (at most size
 * chains are outstanding), and nothing is published until all ids passed;
 * a bad id (not in flight, or twice in the batch) puts the ids already
 * taken back in flight.  @elems or @chains gives the ids and lengths.
 */
static inline __attribute__((always_inline)) int
used_batch(struct virtq *q, const struct vring_used_elem *elems,
	   const struct virtq_chain *chains, unsigned int n, bool in_order)
{
	struct vring_used *used = q->used;
	uint16_t first = q->next_used;
	unsigned int i;

	if (!in_order && unlikely(!q->split_active))
		return used_batch_other(q, elems, chains, n);
	if (n == 0)
		return 0;
	if (!(elems || chains) || n > q->size)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		bool ok;

		if (elems)
			ok = put_used(q, used, (uint16_t)(first + i),
				      elems[i].id, elems[i].len, in_order);
		else
			ok = chains[i].q == q &&
			     put_used(q, used, (uint16_t)(first + i),
				      chains[i].head, chains[i].wr_done,
				      in_order);
		if (unlikely(!ok)) {
			while (i--)
				q->heads[elems ? elems[i].id : chains[i].head] |=
					VIRTQ_HEAD_IN_FLIGHT;
			return -EINVAL;
		}
	}
	if (in_order && n > 1)
		in_order_collapse(q, used, elems, chains, first, n);
	publish_used(q, used, first, (uint16_t)n);
	return 0;
}

/* used_batch() on a queue its fast path does not serve: not active,
 * packed, or split under IN_ORDER. */
static __attribute__((noinline)) int
used_batch_other(struct virtq *q, const struct vring_used_elem *elems,
		 const struct virtq_chain *chains, unsigned int n)
{
	if (!q->active)
		return virtq_inactive_error(q);
	if (q->packed)
		return virtq_packed_used(q, elems, chains, n);
	if (elems)
		return used_batch(q, elems, NULL, n, true);
	return used_batch(q, NULL, chains, n, true);
}

int virtq_add_used_batch(struct virtq *q, const struct vring_used_elem *elems,
			 unsigned int n)
{
	return used_batch(q, elems, NULL, n, false);
}

int virtq_complete_batch(struct virtq *q, const struct virtq_chain *chains,
			 unsigned int n)
{
	return used_batch(q, NULL, chains, n, false);
}

/* ---------------------------------------------------------- notifications */

bool virtq_needs_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used;
	bool valid = q->signalled_valid;

	if (!q->ready || q->error)
		return false;
	if (q->packed)
		return virtq_packed_needs_interrupt(q);
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
	if (!q->ready || q->error)
		return;
	if (q->packed) {
		virtq_packed_disable_notification(q);
		return;
	}
	if (q->event_idx)
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
	if (q->packed)
		return virtq_packed_enable_notification(q);
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
	st->in_flight = virtq_in_flight(q);
	st->avail_pos = q->p_avail_pos;
	st->used_pos = q->p_used_pos;
	st->avail_wrap = q->p_avail_wrap;
	st->used_wrap = q->p_used_bits != 0;
	st->used_adv = q->p_used_adv < q->size ? (uint32_t)q->p_used_adv
					       : q->size;
	st->desc_out = q->p_desc_out;
	for (i = 0; i < q->max_size; i++) {
		uint64_t h = q->heads[i];

		if (!(h & VIRTQ_HEAD_IN_FLIGHT))
			continue;
		st->in_flight_heads[i / 64] |= 1ull << (i % 64);
		st->in_flight_meta[i] =
			(uint32_t)virtq_head_seq(h) << 16 |
			(uint32_t)((h >> VIRTQ_HEAD_NDESC_SHIFT) & 0x7fff);
		st->in_flight_bound[i] = (uint32_t)h;
	}
}

/* The packed positions of @st agree with its descriptors in flight. */
static bool packed_state_ok(const struct virtq_state *st)
{
	uint64_t sum = 0, dist;
	uint32_t i;

	if (st->avail_pos >= st->size || st->used_pos >= st->size ||
	    st->avail_wrap > 1 || st->used_wrap > 1 || st->desc_out > st->size)
		return false;
	for (i = 0; i < st->size; i++) {
		if (st->in_flight_heads[i / 64] & (1ull << (i % 64)))
			sum += (st->in_flight_meta[i] & 0x7fff) + 1;
	}
	dist = (uint64_t)st->avail_pos +
	       (st->avail_wrap != st->used_wrap ? st->size : 0) - st->used_pos;
	return sum == st->desc_out && dist == st->desc_out;
}

/*
 * The writable total of the chain at @head as its descriptors say now, the
 * used-length bound of a head restored in flight (the state does not carry
 * it): UINT32_MAX (unknown) without rings, 0 for a chain that does not
 * walk (nothing the device could have written is known).
 */
static uint32_t restored_bound(struct virtq *q, uint16_t head)
{
	struct walk w = VIRTQ_WALK_INIT(q, NULL, 0);
	const struct vring_desc *d;

	if (!q->ready)
		return UINT32_MAX;
	d = &q->desc[head];
	if (walk_chain(q, &w, LOAD64(&d->addr), LOAD32(&d->len),
		       LOAD16(&d->flags), LOAD16(&d->next)))
		return 0;
	return (uint32_t)(w.total - w.rlen);
}

int virtq_restore(struct virtq *q, const struct virtq_state *st)
{
	uint32_t i, count = 0;
	int ret;

	virtq_reset(q);
	if (!st || st->version != VIRTQ_STATE_VERSION ||
	    st->max_size != q->max_size || st->error >= VIRTQ_ERR__COUNT)
		return -EINVAL;
	if (virtq_set_size(q, st->size) ||
	    (!(st->features & (1ull << VIRTIO_F_RING_PACKED)) &&
	     !is_pow2(st->size)))
		goto inval;
	if ((st->features & (1ull << VIRTIO_F_RING_PACKED)) &&
	    !packed_state_ok(st))
		goto inval;
	for (i = 0; i < VIRTQ_MAX_SIZE; i++) {
		if (!(st->in_flight_heads[i / 64] & (1ull << (i % 64))))
			continue;
		if (i >= st->size)
			goto inval;
		count++;
	}
	/* In flight = popped - completed, which the indexes say too. */
	if (count != st->in_flight ||
	    count != (uint16_t)(st->next_avail - st->next_used))
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
	if (st->features & (1ull << VIRTIO_F_RING_PACKED)) {
		/* also when not ready: activation goes on from here */
		q->p_avail_pos = st->avail_pos;
		q->p_used_pos = st->used_pos;
		q->p_avail_wrap = st->avail_wrap;
		q->p_used_bits = st->used_wrap ? PF_AVAIL | PF_USED : 0;
		q->p_used_adv = st->used_adv;
		q->p_desc_out = st->desc_out;
	}
	for (i = 0; i < st->size; i++) {
		uint64_t meta = st->in_flight_meta[i];

		if (!(st->in_flight_heads[i / 64] & (1ull << (i % 64))))
			continue;
		q->heads[i] = VIRTQ_HEAD_IN_FLIGHT |
			      (meta & 0x7fff) << VIRTQ_HEAD_NDESC_SHIFT |
			      (meta >> 16) << VIRTQ_HEAD_SEQ_SHIFT |
			      ((st->features & (1ull << VIRTIO_F_RING_PACKED))
				       ? st->in_flight_bound[i]
				       : restored_bound(q, (uint16_t)i));
	}
	q->error = (enum virtq_error)st->error;
	virtq_update_active(q);
	return 0;
inval:
	virtq_reset(q);
	return -EINVAL;
}
