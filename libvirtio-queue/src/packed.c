/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Device side of a packed virtqueue (virtio 1.2, section 2.8): popping and
 * validating chains from the descriptor ring, writing used descriptors,
 * event suppression.  Configuration, the chain accessors and the state
 * export are shared with the split layout (queue.c, chain.c).
 *
 * Ring state: p_avail_pos / p_avail_wrap is the next slot the device reads
 * and the Device Ring Wrap Counter it expects there; p_used_pos /
 * p_used_bits the next slot it writes a used descriptor to and its wrap
 * counter as the AVAIL|USED bits written there.  Both wrap counters
 * start at 1 (2.8.1).  A slot is available when its AVAIL bit
 * equals the wrap counter and its USED bit does not.  q->next_avail and
 * q->next_used count pops and completions.
 *
 * Memory ordering with the driver (Linux virtio_ring.c, packed half):
 *  - the head descriptor's flags are loaded with acquire; the driver
 *    writes the rest of the chain, then (write barrier) the head's flags,
 *    so every other field of the chain read after it is at least as new.
 *  - a used descriptor's id and len are plain stores, its flags a release
 *    store: the driver reads flags, then (read barrier) id and len and the
 *    buffer contents.  A batch writes its first descriptor's flags last.
 *  - needs_interrupt / enable_notification use full fences pairing with
 *    the driver's virtio_mb() around its event suppression accesses.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#define LOAD16(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD32(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD64(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE16(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE32(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

_Static_assert(sizeof(struct vring_desc) == 16, "indirect scratch");

/* Move @pos on by @n (<= size) slots, flipping @wrap past the end. */
static inline void slot_advance(const struct virtq *q, uint16_t *pos,
				bool *wrap, uint32_t n)
{
	uint32_t p = (uint32_t)*pos + n;

	if (p >= q->size) {
		p -= q->size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* Move @pos back by @n (<= size) slots. */
static inline void slot_retreat(const struct virtq *q, uint16_t *pos,
				bool *wrap, uint32_t n)
{
	if (*pos < n) {
		*pos = (uint16_t)(*pos + q->size - n);
		*wrap = !*wrap;
	} else {
		*pos = (uint16_t)(*pos - n);
	}
}

/*
 * An indirect table in packed form (2.8.7): len / 16 descriptors one after
 * the other, each loaded once.  WRITE is the only flag that counts (NEXT
 * and the id are ignored, as the spec says); INDIRECT inside a table is
 * refused as in the split layout.
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_indirect(struct virtq *q, struct virtq_walk *w, uint64_t addr,
	      uint32_t len, uint16_t flags)
{
	const struct vring_packed_desc *t =
		(const struct vring_packed_desc *)(const void *)q->itab;
	uint32_t tsize = len / sizeof(*t), i;
	enum virtq_error err;
	guest_addr_t end;

	if (!q->indirect)
		return VIRTQ_ERR_INDIRECT_NOT_NEGOTIATED;
	if (flags & VRING_DESC_F_NEXT)
		return VIRTQ_ERR_INDIRECT_WITH_NEXT;
	if (len == 0)
		return VIRTQ_ERR_INDIRECT_LEN_ZERO;
	if (len % sizeof(*t))
		return VIRTQ_ERR_INDIRECT_LEN_UNALIGNED;
	if (tsize > q->size)
		return VIRTQ_ERR_INDIRECT_TOO_BIG;
	if (__builtin_add_overflow(addr, len, &end))
		return VIRTQ_ERR_INDIRECT_OUTSIDE_RAM;
	if (addr >= q->hot_gpa && end <= q->hot_end && !(addr & 7))
		t = (const struct vring_packed_desc
			     *)(const void *)(q->hot_host +
					      (addr - q->hot_gpa));
	else if (guest_memory_read(q->mem, addr, q->itab, len))
		return VIRTQ_ERR_INDIRECT_OUTSIDE_RAM;
	for (i = 0; i < tsize; i++) {
		uint64_t a = LOAD64(&t[i].addr);
		uint32_t l = LOAD32(&t[i].len);
		uint16_t f = LOAD16(&t[i].flags);

		if (f & VRING_DESC_F_INDIRECT)
			return VIRTQ_ERR_INDIRECT_NESTED;
		err = virtq_take_buf(w, a, l, f & VRING_DESC_F_WRITE);
		if (err)
			return err;
	}
	return VIRTQ_ERR_NONE;
}

/*
 * Walk the chain starting at the slot (@pos, @wrap) whose flags @flags
 * were loaded with acquire and say "available".  On success the buffer id
 * (from the last descriptor, 2.8.6) is in *@id and the ring descriptors
 * consumed in w->ndesc.
 */
static inline __attribute__((always_inline)) enum virtq_error
walk_chain(struct virtq *q, struct virtq_walk *w, uint16_t pos, bool wrap,
	   uint16_t flags, uint16_t *id)
{
	/* Locals: the stores into the caller's buffers could alias the
	 * queue's fields. */
	const struct vring_packed_desc *ring = q->pdesc;
	uint32_t size = q->size;
	uint16_t bits = wrap ? PF_AVAIL : PF_USED; /* "available" */
	enum virtq_error err;

	/* Bounded: at most size ring descriptors (CHAIN_TOO_LONG). */
	for (;;) {
		const struct vring_packed_desc *d = &ring[pos];
		uint64_t addr = LOAD64(&d->addr);
		uint32_t len = LOAD32(&d->len);

		w->ndesc++;
		if (flags & VRING_DESC_F_INDIRECT) {
			/* 2.8.8: never inside a list linked by NEXT. */
			if (w->ndesc > 1)
				return VIRTQ_ERR_INDIRECT_IN_CHAIN;
			*id = LOAD16(&d->id);
			return walk_indirect(q, w, addr, len, flags);
		}
		err = virtq_take_buf(w, addr, len, flags);
		if (err)
			return err;
		if (!(flags & VRING_DESC_F_NEXT)) {
			/* 2.8.6: the buffer id is the last descriptor's */
			*id = LOAD16(&d->id);
			return VIRTQ_ERR_NONE;
		}
		if (w->ndesc >= size)
			return VIRTQ_ERR_CHAIN_TOO_LONG;
		if (++pos == size) {
			pos = 0;
			bits ^= PF_AVAIL | PF_USED;
		}
		/* Ordered after the head's acquire: the driver wrote the
		 * rest of the chain before it. */
		flags = LOAD16(&ring[pos].flags);
		if ((flags & (PF_AVAIL | PF_USED)) != bits)
			return VIRTQ_ERR_DESC_NOT_AVAIL;
	}
}

/* Every chain the fast path does not take: the general walk. */
int virtq_packed_pop_walk(struct virtq *q, struct virtq_chain *c,
			  uint16_t flags)
{
	struct virtq_walk w = VIRTQ_WALK_INIT(q, c->bufs, c->cap);
	enum virtq_error err;
	uint16_t id = 0;
	uint32_t wlen;

	/* Shortcut: an indirect table of one plain entry in the region
	 * holding the ring (how Linux sends small requests), filled like a
	 * direct one.  Anything else, every malformed case included, takes
	 * the walk below, which reads the slot and the table again. */
	if ((flags & (VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT)) ==
		    VRING_DESC_F_INDIRECT &&
	    q->indirect && c->cap) {
		const struct vring_packed_desc *d = &q->pdesc[q->p_avail_pos];
		uint64_t ta = LOAD64(&d->addr);
		const struct vring_packed_desc *t;

		id = LOAD16(&d->id);
		t = LOAD32(&d->len) == sizeof(*t) && !(ta & 7)
			    ? virtq_hot_ptr(q, ta, sizeof(*t))
			    : NULL;
		if (t && id < q->size &&
		    !(q->heads[id] & VIRTQ_HEAD_IN_FLIGHT) &&
		    q->p_desc_out < q->size) {
			uint64_t a = LOAD64(&t->addr);
			uint32_t l = LOAD32(&t->len);
			uint16_t f = LOAD16(&t->flags);

			if (!(f & VRING_DESC_F_INDIRECT) && l && a + l >= a) {
				uint32_t wr = f & VRING_DESC_F_WRITE;

				virtq_fill_plain(q, c, id, a, l, wr);
				q->heads[id] = VIRTQ_HEAD_IN_FLIGHT |
					       (wr ? l : 0) |
					       (uint64_t)q->next_avail
						       << VIRTQ_HEAD_SEQ_SHIFT;
				q->last_popped = id;
				q->next_avail++;
				q->shadow_avail = q->next_avail;
				q->p_desc_out++;
				slot_advance(q, &q->p_avail_pos,
					     &q->p_avail_wrap, 1);
				return 1;
			}
		}
	}
	err = walk_chain(q, &w, q->p_avail_pos, q->p_avail_wrap, flags, &id);
	if (!err && id >= q->size)
		err = VIRTQ_ERR_HEAD_OUT_OF_RANGE;
	else if (!err && virtq_head_in_flight(q, id))
		err = VIRTQ_ERR_HEAD_IN_FLIGHT; /* made available twice */
	else if (!err && q->p_desc_out + w.ndesc > q->size)
		err = VIRTQ_ERR_RING_OVERRUN; /* it rewrote slots in flight */
	if (err)
		return virtq_break(q, err);
	if (w.n > w.cap) {
		/* Not consumed: the device may retry with more room. */
		c->nbufs = (uint16_t)w.n;
		return -ENOBUFS;
	}
	wlen = (uint32_t)(w.total - w.rlen);
	c->q = q;
	c->head = id;
	c->nbufs = (uint16_t)w.n;
	c->nread = (uint16_t)w.nread;
	c->ndesc = (uint16_t)w.ndesc;
	c->rd_buf = c->wr_buf = c->reserved = 0;
	c->read_len = (uint32_t)w.rlen;
	c->write_len = wlen;
	c->rd_off = c->wr_off = 0;
	c->rd_done = c->wr_done = 0;
	q->heads[id] = VIRTQ_HEAD_IN_FLIGHT | wlen |
		       (uint64_t)(w.ndesc - 1) << VIRTQ_HEAD_NDESC_SHIFT |
		       (uint64_t)q->next_avail << VIRTQ_HEAD_SEQ_SHIFT;
	q->last_popped = id;
	q->next_avail++;
	q->shadow_avail = q->next_avail; /* keeps split's fast test off */
	q->p_desc_out += w.ndesc;
	slot_advance(q, &q->p_avail_pos, &q->p_avail_wrap, w.ndesc);
	return 1;
}

int virtq_packed_pop(struct virtq *q, struct virtq_chain *c)
{
	const struct vring_packed_desc *d;
	uint16_t flags;

	if (unlikely(!q->active))
		return virtq_inactive_error(q);
	/* Acquire: pairs with the driver's write barrier before it stores
	 * the head's flags; the chain it names is visible once they are. */
	d = &q->pdesc[q->p_avail_pos];
	flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
	if (!virtq_slot_avail(flags, q->p_avail_wrap))
		return 0;
	if (likely(!(flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT))) &&
	    likely(virtq_packed_pop_plain(q, c, d, flags)))
		return 1;
	return virtq_packed_pop_walk(q, c, flags);
}

/* The ring state a batch keeps in locals (the stores into the chains
 * could alias the queue's fields, which would be reloaded after each). */
struct pbatch {
	uint16_t pos, na, bits; /* bits: the AVAIL/USED value of "available" */
	bool wrap;
	uint32_t out;
};

static inline void pbatch_store(struct virtq *q, const struct pbatch *b)
{
	q->p_avail_pos = b->pos;
	q->p_avail_wrap = b->wrap;
	q->next_avail = b->na;
	q->shadow_avail = b->na; /* keeps split's fast test off */
	q->p_desc_out = b->out;
}

static inline void pbatch_load(const struct virtq *q, struct pbatch *b)
{
	b->pos = q->p_avail_pos;
	b->wrap = q->p_avail_wrap;
	b->bits = b->wrap ? PF_AVAIL : PF_USED;
	b->na = q->next_avail;
	b->out = q->p_desc_out;
}

/*
 * The batch pop: the one-plain-descriptor chain with the ring state in
 * locals, the same checks as virtq_packed_pop_plain(); anything else goes
 * to the general walk with the state stored first.
 *
 * Never inlined (virtq_pop_batch() tail-calls it): inlined under -flto
 * into a caller whose chain array is a static object, it ran ~60% slower
 * per chain with the same instruction count (bench-virtio-queue-lto, both
 * packed 128x1 batch shapes: 13.2 ns against 8.3 ns per chain; cause not
 * found without hardware counters).
 */
__attribute__((noinline)) int virtq_packed_pop_batch(struct virtq *q,
						     struct virtq_chain *chains,
						     unsigned int max)
{
	const struct vring_packed_desc *ring = q->pdesc;
	uint64_t *heads = q->heads;
	uint32_t size = q->size;
	struct pbatch b;
	unsigned int i;
	int ret = 0;

	if (unlikely(!q->active))
		return virtq_inactive_error(q);
	pbatch_load(q, &b);
	for (i = 0; i < max; i++) {
		/* Acquire per slot: each head's flags publish its chain. */
		const struct vring_packed_desc *d = &ring[b.pos];
		uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		struct virtq_chain *c = &chains[i];
		uint64_t addr;
		uint32_t len, w;
		uint16_t id, bflags; /* the buffer's: head or table entry */

		if ((flags & (PF_AVAIL | PF_USED)) != b.bits) {
			ret = 0;
			break;
		}
		if (unlikely(flags & VRING_DESC_F_NEXT))
			goto walk;
		bflags = flags;
		addr = LOAD64(&d->addr);
		len = LOAD32(&d->len);
		id = LOAD16(&d->id);
		if (flags & VRING_DESC_F_INDIRECT) {
			/* pop_walk()'s shortcut: a table of one plain
			 * entry in the hot region, aligned. */
			const struct vring_packed_desc *t =
				len == sizeof(*t) && !(addr & 7) && q->indirect
					? virtq_hot_ptr(q, addr, sizeof(*t))
					: NULL;

			if (!t)
				goto walk;
			addr = LOAD64(&t->addr);
			len = LOAD32(&t->len);
			bflags = LOAD16(&t->flags);
			if (unlikely(bflags & VRING_DESC_F_INDIRECT))
				goto walk; /* reads the table again */
		}
		if (unlikely(len == 0 || addr + len < addr || c->cap == 0 ||
			     id >= size || (heads[id] & VIRTQ_HEAD_IN_FLIGHT) ||
			     b.out >= size))
			goto walk;
		w = bflags & VRING_DESC_F_WRITE;
		virtq_fill_plain(q, c, id, addr, len, w);
		heads[id] = VIRTQ_HEAD_IN_FLIGHT | (w ? len : 0) |
			    (uint64_t)b.na << VIRTQ_HEAD_SEQ_SHIFT;
		b.na++;
		b.out++;
		if (unlikely(++b.pos == size)) {
			b.pos = 0;
			b.wrap = !b.wrap;
			b.bits ^= PF_AVAIL | PF_USED;
		}
		continue;
walk:
		pbatch_store(q, &b);
		if (i)
			q->last_popped = chains[i - 1].head;
		ret = virtq_packed_pop_walk(q, c, flags);
		if (ret != 1)
			return i ? (int)i : ret;
		pbatch_load(q, &b);
	}
	pbatch_store(q, &b);
	if (i)
		q->last_popped = chains[i - 1].head;
	return i ? (int)i : ret;
}

int virtq_packed_avail_count(struct virtq *q)
{
	uint16_t pos = q->p_avail_pos, flags;
	bool wrap = q->p_avail_wrap;
	uint32_t out = q->p_desc_out;
	int n = 0;

	/* Counts the chains whose head slot is available, each walked only
	 * by its flags (NEXT); bounded by the free slots. */
	while (out < q->size) {
		flags = __atomic_load_n(&q->pdesc[pos].flags, __ATOMIC_ACQUIRE);
		if (!virtq_slot_avail(flags, wrap))
			break;
		out++;
		slot_advance(q, &pos, &wrap, 1);
		if (flags & VRING_DESC_F_NEXT)
			continue;
		n++;
	}
	return n;
}

int virtq_packed_undo_pop(struct virtq *q, const struct virtq_chain *c)
{
	uint64_t h;
	uint32_t nd;

	if (!c || c->q != q || q->last_popped != (int32_t)c->head ||
	    !virtq_head_in_flight(q, c->head))
		return -EINVAL;
	h = q->heads[c->head];
	nd = virtq_head_ndesc(h);
	q->heads[c->head] = 0;
	q->last_popped = -1;
	q->next_avail--;
	q->shadow_avail = q->next_avail;
	q->p_desc_out -= nd;
	slot_retreat(q, &q->p_avail_pos, &q->p_avail_wrap, nd);
	return 0;
}

/* Dirty-log @n used slots from @pos (the whole ring when they wrap). */
__attribute__((noinline, cold)) void
virtq_packed_mark_dirty(struct virtq *q, uint16_t pos, uint32_t n)
{
	guest_addr_t base = q->addr[VIRTQ_AREA_DESC];

	if ((uint32_t)pos + n <= q->size)
		guest_memory_mark_dirty(q->mem, base + 16ull * pos, 16ull * n);
	else
		guest_memory_mark_dirty(q->mem, base, 16ull * q->size);
}

/* Write the used descriptor (@id, @len) at @d with the lap bits @bits
 * (AVAIL|USED or 0): id and len plainly, flags with release unless
 * @defer (then the caller stores *@flags_out last). */
static inline void put_used(struct vring_packed_desc *d, uint16_t bits,
			    uint16_t id, uint32_t len, bool defer,
			    uint16_t *flags_out)
{
	uint16_t f = (uint16_t)(bits | (len ? VRING_DESC_F_WRITE : 0));

	STORE16(&d->id, id);
	STORE32(&d->len, len);
	if (defer)
		*flags_out = f;
	else
		__atomic_store_n(&d->flags, f, __ATOMIC_RELEASE);
}

/* Id and used length of entry @i of a batch (elems or chains). */
#define B_ID(i)	 (elems ? elems[i].id : chains[i].head)
#define B_LEN(i) (elems ? elems[i].len : chains[i].wr_done)

/*
 * The batch completion; always inlined into its two callers so the
 * elems/chains choice is constant.  Every id is checked (and taken out of
 * flight, so a second copy in the batch fails) before anything is
 * written; then the used descriptors go out, the first one's flags last.
 * The queue's fields are read into locals first: the stores into the
 * ring could alias them, and would make the compiler reload them.
 */
static inline __attribute__((always_inline)) int
packed_used(struct virtq *q, const struct vring_used_elem *elems,
	    const struct virtq_chain *chains, unsigned int n)
{
	struct vring_packed_desc *ring = q->pdesc;
	uint64_t *heads = q->heads;
	uint32_t size = q->size, total = 0, id, len, bound, p;
	uint16_t pos = q->p_used_pos, first_pos = pos, f0 = 0, seq;
	bool wrap = q->p_used_bits != 0;
	bool in_order = q->in_order;
	uint16_t bits = q->p_used_bits;
	unsigned int i;
	uint64_t h;

	if (n == 0)
		return 0;
	if (n > size)
		return -EINVAL;
	seq = q->next_used;
	for (i = 0; i < n; i++) {
		id = B_ID(i);
		h = id < size ? heads[id] : 0;
		if ((chains && chains[i].q != q) ||
		    !(h & VIRTQ_HEAD_IN_FLIGHT) ||
		    (in_order && virtq_head_seq(h) != (uint16_t)(seq + i))) {
			while (i--)
				heads[B_ID(i)] |= VIRTQ_HEAD_IN_FLIGHT;
			return -EINVAL;
		}
		heads[id] = h & ~VIRTQ_HEAD_IN_FLIGHT;
		total += virtq_head_ndesc(h);
	}
	if (unlikely(in_order) && n > 1) {
		/* One used descriptor for the batch when every chain but
		 * the last was wholly written (the driver assumes so). */
		for (i = 0; i + 1 < n; i++) {
			if (B_LEN(i) < (uint32_t)heads[B_ID(i)])
				break;
		}
		if (i + 1 == n) {
			id = B_ID(n - 1);
			len = B_LEN(n - 1);
			bound = (uint32_t)heads[id];
			put_used(&ring[first_pos], bits, (uint16_t)id,
				 len < bound ? len : bound, true, &f0);
			slot_advance(q, &pos, &wrap, total);
			goto publish;
		}
	}
	for (i = 0; i < n; i++) {
		id = B_ID(i);
		len = B_LEN(i);
		h = heads[id];
		bound = (uint32_t)h;
		put_used(&ring[pos], bits, (uint16_t)id,
			 len < bound ? len : bound, i == 0, &f0);
		/* total <= p_desc_out <= size: one wrap at most */
		p = (uint32_t)pos + virtq_head_ndesc(h);
		if (p >= size) {
			p -= size;
			wrap = !wrap;
			bits ^= PF_AVAIL | PF_USED;
		}
		pos = (uint16_t)p;
	}
publish:
	/* Release: the first descriptor's flags last, so the driver, which
	 * polls that slot, sees the whole batch once it sees any of it. */
	__atomic_store_n(&ring[first_pos].flags, f0, __ATOMIC_RELEASE);
	q->p_used_pos = pos;
	q->p_used_bits = wrap ? PF_AVAIL | PF_USED : 0;
	q->p_desc_out -= total;
	q->p_used_adv += total;
	q->next_used = (uint16_t)(seq + n);
	if (unlikely(q->used_dirty_log))
		virtq_packed_mark_dirty(q, first_pos, total);
	return 0;
}

int virtq_packed_used(struct virtq *q, const struct vring_used_elem *elems,
		      const struct virtq_chain *chains, unsigned int n)
{
	if (elems)
		return packed_used(q, elems, NULL, n);
	if (chains)
		return packed_used(q, NULL, chains, n);
	return n ? -EINVAL : 0;
}

bool virtq_packed_needs_interrupt(struct virtq *q)
{
	const struct vring_packed_desc_event *ev = q->p_driver;
	uint32_t adv = q->p_used_adv < q->size ? (uint32_t)q->p_used_adv
					       : q->size;
	bool valid = q->signalled_valid;
	uint16_t flags, off_wrap, event, new_pos, old_pos;

	if (valid && adv == 0)
		return false;
	q->p_used_adv = 0;
	q->signalled_valid = true;
	/* Full fence: our used descriptors before the driver's event
	 * structure; pairs with the driver's virtio_mb() between writing it
	 * and polling the ring again. */
	atomic_thread_fence(memory_order_seq_cst);
	flags = LOAD16(&ev->flags) & 3;
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	/* ENABLE, DESC without EVENT_IDX, or the reserved value 3. */
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !q->event_idx)
		return true;
	if (!valid || adv >= q->size)
		return true; /* the window covers the whole ring */
	off_wrap = LOAD16(&ev->off_wrap);
	/* Positions in the used wrap's frame, the event one lap earlier if
	 * its wrap bit differs; then the usual "event in (old, new]". */
	new_pos = q->p_used_pos;
	old_pos = (uint16_t)(new_pos - adv);
	event = off_wrap & (uint16_t)~EV_WRAP;
	if (!!(off_wrap & EV_WRAP) != (q->p_used_bits != 0))
		event = (uint16_t)(event - q->size);
	return vring_need_event(event, new_pos, old_pos);
}

static void device_event_write(struct virtq *q, uint16_t off_wrap,
			       uint16_t flags, bool with_off)
{
	if (with_off)
		STORE16(&q->p_device->off_wrap, off_wrap);
	STORE16(&q->p_device->flags, flags);
	if (unlikely(q->used_dirty_log))
		guest_memory_mark_dirty(q->mem, q->addr[VIRTQ_AREA_USED], 4);
}

void virtq_packed_disable_notification(struct virtq *q)
{
	device_event_write(q, 0, VRING_PACKED_EVENT_FLAG_DISABLE, false);
}

bool virtq_packed_enable_notification(struct virtq *q)
{
	uint16_t flags;

	if (q->event_idx)
		device_event_write(q,
				   (uint16_t)(q->p_avail_pos |
					      (q->p_avail_wrap ? EV_WRAP : 0)),
				   VRING_PACKED_EVENT_FLAG_DESC, true);
	else
		device_event_write(q, 0, VRING_PACKED_EVENT_FLAG_ENABLE, false);
	/* Full fence: the event structure before the ring is polled again;
	 * pairs with the driver's virtio_mb() between making a descriptor
	 * available and reading the device event structure. */
	atomic_thread_fence(memory_order_seq_cst);
	flags = LOAD16(&q->pdesc[q->p_avail_pos].flags);
	return virtq_slot_avail(flags, q->p_avail_wrap);
}
