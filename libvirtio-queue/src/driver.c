/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Mock virtio driver (the guest side of a split or packed virtqueue), for
 * tests.  Every guest access goes through libvm-memory's checked
 * accessors.  The packed mode follows virtio 1.2, 2.8 (wrap counters
 * starting at 1, the head's flags written last with release, ids in every
 * descriptor of a chain).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>

#include <cvmm/virtio-queue-driver.h>

#define PF_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define PF_USED	 ((uint16_t)(1u << VRING_PACKED_DESC_F_USED))
#define EV_WRAP	 ((uint16_t)(1u << VRING_PACKED_EVENT_F_WRAP_CTR))

struct virtq_driver {
	struct guest_memory *mem;
	uint32_t size;
	uint64_t features;
	bool event_idx;
	bool raw; /* raw functions used: stop checking used ids */
	guest_addr_t addr[3];
	uint16_t avail_idx;  /* next avail slot (unpublished adds included) */
	uint16_t published;  /* avail.idx as last published */
	uint16_t kicked_idx; /* avail.idx at the last needs_kick() */
	bool kicked_valid;
	uint16_t last_used; /* next used slot to consume */
	uint16_t avail_flags;
	uint16_t *free_stack; /* free descriptor indexes */
	uint32_t nfree;
	uint16_t *chain_n;   /* per head: ring descriptors held, 0 = free */
	uint16_t *host_next; /* host copy of the next links we wrote */
	uint32_t *wlen;	     /* per head: writable total (IN_ORDER skips) */
	/* IN_ORDER: heads / ids in the order they were made available, and
	 * the batch being reported (one used element names its last). */
	bool in_order;
	uint16_t *fifo;
	uint32_t fifo_first, fifo_n;
	uint32_t ib_left; /* buffers of the batch still to report */
	uint32_t ib_id, ib_len;
	/* packed mode: free_stack / nfree hold buffer ids, slots here */
	bool packed;
	bool p_avail_wrap, p_used_wrap, p_pub_wrap;
	uint16_t p_avail_pos, p_used_pos, p_pub_pos;
	uint32_t p_free_slots;
	uint32_t p_kick_adv; /* slots published since the last needs_kick */
	uint16_t *pend_pos;  /* heads added, flags not yet written */
	uint16_t *pend_flags;
	uint32_t npend;
};

static void fifo_push(struct virtq_driver *d, uint16_t id)
{
	if (!d->in_order || d->fifo_n >= d->size)
		return;
	d->fifo[(d->fifo_first + d->fifo_n++) % d->size] = id;
}

static bool is_pow2(uint32_t n)
{
	return n && !(n & (n - 1));
}

uint64_t virtq_driver_layout(uint32_t size, guest_addr_t base,
			     guest_addr_t *desc, guest_addr_t *avail,
			     guest_addr_t *used)
{
	guest_addr_t a = base + 16ull * size;
	guest_addr_t u = (a + 6 + 2ull * size + 3) & ~3ull;

	if (desc)
		*desc = base;
	if (avail)
		*avail = a;
	if (used)
		*used = u;
	return u + 6 + 8ull * size - base;
}

void virtq_driver_destroy(struct virtq_driver *d)
{
	if (!d)
		return;
	guest_memory_unref(d->mem);
	free(d->free_stack);
	free(d->chain_n);
	free(d->host_next);
	free(d->wlen);
	free(d->fifo);
	free(d->pend_pos);
	free(d->pend_flags);
	free(d);
}

int virtq_driver_create(struct guest_memory *mem, uint32_t size,
			uint64_t features, guest_addr_t desc,
			guest_addr_t avail, guest_addr_t used,
			struct virtq_driver **out)
{
	struct virtq_driver *d;
	uint32_t i;
	int ret;

	/* Packed: any size from 1 (virtio 1.2, 2.8); split: a power of 2. */
	if (!mem || !out || size == 0 || size > VIRTQ_MAX_SIZE ||
	    (!(features & (1ull << VIRTIO_F_RING_PACKED)) && !is_pow2(size)))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->mem = guest_memory_ref(mem);
	d->size = size;
	d->features = features;
	d->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	d->packed = features & (1ull << VIRTIO_F_RING_PACKED);
	d->in_order = features & (1ull << VIRTIO_F_IN_ORDER);
	d->p_avail_wrap = d->p_used_wrap = d->p_pub_wrap = true;
	d->p_free_slots = size;
	d->addr[VIRTQ_AREA_DESC] = desc;
	d->addr[VIRTQ_AREA_AVAIL] = avail;
	d->addr[VIRTQ_AREA_USED] = used;
	d->free_stack = calloc(size, sizeof(uint16_t));
	d->chain_n = calloc(size, sizeof(uint16_t));
	d->host_next = calloc(size, sizeof(uint16_t));
	d->wlen = calloc(size, sizeof(uint32_t));
	d->fifo = calloc(size, sizeof(uint16_t));
	d->pend_pos = calloc(size, sizeof(uint16_t));
	d->pend_flags = calloc(size, sizeof(uint16_t));
	if (!d->free_stack || !d->chain_n || !d->host_next || !d->wlen ||
	    !d->fifo || !d->pend_pos || !d->pend_flags) {
		virtq_driver_destroy(d);
		return -ENOMEM;
	}
	/* Pop order 0, 1, 2...: the stack holds them reversed. */
	for (i = 0; i < size; i++)
		d->free_stack[i] = (uint16_t)(size - 1 - i);
	d->nfree = size;
	ret = guest_memory_fill(mem, desc, 0, 16ull * size);
	if (!ret)
		ret = guest_memory_fill(mem, avail, 0,
					d->packed ? 4 : 6 + 2ull * size);
	if (!ret)
		ret = guest_memory_fill(mem, used, 0,
					d->packed ? 4 : 6 + 8ull * size);
	if (ret) {
		virtq_driver_destroy(d);
		return ret;
	}
	*out = d;
	return 0;
}

int virtq_driver_configure(const struct virtq_driver *d, struct virtq *q)
{
	int ret = virtq_set_size(q, d->size);

	if (!ret)
		ret = virtq_set_addr(q, VIRTQ_AREA_DESC, d->addr[0]);
	if (!ret)
		ret = virtq_set_addr(q, VIRTQ_AREA_AVAIL, d->addr[1]);
	if (!ret)
		ret = virtq_set_addr(q, VIRTQ_AREA_USED, d->addr[2]);
	if (!ret)
		ret = virtq_set_features(q, d->features);
	if (!ret)
		ret = virtq_set_ready(q, true);
	return ret;
}

uint32_t virtq_driver_size(const struct virtq_driver *d)
{
	return d->size;
}

guest_addr_t virtq_driver_addr(const struct virtq_driver *d,
			       enum virtq_area area)
{
	if ((unsigned int)area > VIRTQ_AREA_USED)
		return 0;
	return d->addr[area];
}

uint32_t virtq_driver_num_free(const struct virtq_driver *d)
{
	return d->packed ? d->p_free_slots : d->nfree;
}

bool virtq_driver_packed(const struct virtq_driver *d)
{
	return d->packed;
}

/* ---------------------------------------------------------- packed mode */

static guest_addr_t pdesc_gpa(const struct virtq_driver *d, uint16_t pos)
{
	return d->addr[VIRTQ_AREA_DESC] + 16ull * pos;
}

/* The AVAIL/USED bits that make a slot available in wrap @wrap. */
static uint16_t avail_bits(bool wrap)
{
	return wrap ? PF_AVAIL : PF_USED;
}

static void p_advance(const struct virtq_driver *d, uint16_t *pos, bool *wrap,
		      uint32_t n)
{
	uint32_t p = (uint32_t)*pos + n;

	if (p >= d->size) {
		p -= d->size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* Write a packed descriptor's addr, len, id; flags only if @flags_too. */
static int put_pdesc(struct virtq_driver *d, guest_addr_t gpa, uint64_t addr,
		     uint32_t len, uint16_t id, uint16_t flags, bool flags_too)
{
	struct vring_packed_desc v;

	v.addr = addr;
	v.len = len;
	v.id = id;
	v.flags = flags;
	return guest_memory_write(d->mem, gpa, &v, flags_too ? 16 : 14);
}

/* Add a chain: @n direct buffers, or (when @table) one indirect slot. */
static int packed_add(struct virtq_driver *d,
		      const struct virtq_driver_buf *bufs, unsigned int n,
		      guest_addr_t table, bool indirect, uint16_t *head)
{
	unsigned int i, slots = indirect ? 1 : n;
	uint16_t id, pos = d->p_avail_pos, head_flags = 0;
	bool wrap = d->p_avail_wrap;
	uint32_t wl = 0;
	int ret;

	if (!bufs || n == 0 || n > d->size)
		return -EINVAL;
	if (slots > d->p_free_slots || d->nfree == 0)
		return -ENOSPC;
	id = d->free_stack[d->nfree - 1];
	for (i = 0; i < n; i++) {
		if (bufs[i].flags & VRING_DESC_F_WRITE)
			wl += bufs[i].len;
	}
	if (indirect) {
		for (i = 0; i < n; i++) {
			ret = put_pdesc(d, table + 16ull * i, bufs[i].addr,
					bufs[i].len, 0,
					bufs[i].flags & VRING_DESC_F_WRITE,
					true);
			if (ret)
				return ret;
		}
		head_flags =
			(uint16_t)(VRING_DESC_F_INDIRECT | avail_bits(wrap));
		ret = put_pdesc(d, pdesc_gpa(d, pos), table, 16u * n, id, 0,
				false);
		if (ret)
			return ret;
	} else {
		for (i = 0; i < n; i++) {
			uint16_t f =
				(uint16_t)((bufs[i].flags &
					    VRING_DESC_F_WRITE) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0) |
					   avail_bits(wrap));

			/* Every slot but the head gets its flags now; the
			 * head's come last, at publish. */
			ret = put_pdesc(d, pdesc_gpa(d, pos), bufs[i].addr,
					bufs[i].len, id, f, i > 0);
			if (ret)
				return ret;
			if (i == 0)
				head_flags = f;
			if (i + 1 < n)
				p_advance(d, &pos, &wrap, 1);
		}
	}
	d->pend_pos[d->npend] = d->p_avail_pos;
	d->pend_flags[d->npend] = head_flags;
	d->npend++;
	d->nfree--;
	d->chain_n[id] = (uint16_t)slots;
	d->wlen[id] = wl;
	d->p_free_slots -= slots;
	p_advance(d, &d->p_avail_pos, &d->p_avail_wrap, slots);
	fifo_push(d, id);
	*head = id;
	return 0;
}

static int packed_publish(struct virtq_driver *d)
{
	uint32_t i, adv;
	int ret = 0;

	/* The last chain's head first, the first one's last: the device
	 * polls the first, and then finds the whole batch. */
	for (i = d->npend; i-- > 0;) {
		/* Release: the chain's other slots and buffers first. */
		ret = guest_memory_store_u16(d->mem,
					     pdesc_gpa(d, d->pend_pos[i]) + 14,
					     d->pend_flags[i],
					     memory_order_release);
		if (ret)
			return ret;
	}
	d->npend = 0;
	adv = (uint32_t)d->p_avail_pos +
	      (d->p_avail_wrap != d->p_pub_wrap ? d->size : 0) - d->p_pub_pos;
	d->p_kick_adv = d->p_kick_adv + adv > d->size ? d->size
						      : d->p_kick_adv + adv;
	d->p_pub_pos = d->p_avail_pos;
	d->p_pub_wrap = d->p_avail_wrap;
	d->published = (uint16_t)(d->published + 1);
	return 0;
}

int virtq_driver_write_packed_desc(struct virtq_driver *d, uint16_t idx,
				   const struct vring_packed_desc *desc)
{
	int ret;

	if (!desc || idx >= d->size || !d->packed)
		return -EINVAL;
	d->raw = true;
	/* flags last, with release, as a driver makes a slot available */
	ret = put_pdesc(d, pdesc_gpa(d, idx), desc->addr, desc->len, desc->id,
			0, false);
	if (ret)
		return ret;
	return guest_memory_store_u16(d->mem, pdesc_gpa(d, idx) + 14,
				      desc->flags, memory_order_release);
}

static int put_desc(struct virtq_driver *d, guest_addr_t base, uint16_t idx,
		    guest_addr_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct vring_desc v;

	v.addr = addr;
	v.len = len;
	v.flags = flags;
	v.next = next;
	return guest_memory_write(d->mem, base + 16ull * idx, &v, sizeof(v));
}

static int put_avail(struct virtq_driver *d, uint16_t head)
{
	int ret = guest_memory_write_u16(d->mem,
					 d->addr[VIRTQ_AREA_AVAIL] + 4 +
						 2ull * (d->avail_idx &
							 (d->size - 1)),
					 head);

	if (!ret)
		d->avail_idx++;
	return ret;
}

int virtq_driver_publish(struct virtq_driver *d)
{
	if (d->packed)
		return packed_publish(d);
	/* Release: pairs with the device's acquire load of avail.idx; the
	 * ring entries and descriptors written above are visible first. */
	int ret = guest_memory_store_u16(d->mem, d->addr[VIRTQ_AREA_AVAIL] + 2,
					 d->avail_idx, memory_order_release);

	if (!ret)
		d->published = d->avail_idx;
	return ret;
}

static int add_direct(struct virtq_driver *d,
		      const struct virtq_driver_buf *bufs, unsigned int n,
		      uint16_t *head)
{
	uint32_t nfree0 = d->nfree, wl = 0;
	uint16_t first, prev = 0;
	unsigned int i;
	int ret;

	if (d->packed)
		return packed_add(d, bufs, n, 0, false, head);
	if (!bufs || n == 0 || n > d->size)
		return -EINVAL;
	if (n > d->nfree)
		return -ENOSPC;
	first = d->free_stack[d->nfree - 1];
	for (i = 0; i < n; i++) {
		uint16_t cur = d->free_stack[--d->nfree];

		if (i)
			d->host_next[prev] = cur;
		prev = cur;
	}
	/* Write them in chain order, each linking to the next. */
	{
		uint16_t cur = first;

		for (i = 0; i < n; i++) {
			bool last = i + 1 == n;
			uint16_t next = last ? 0 : d->host_next[cur];

			ret = put_desc(
				d, d->addr[VIRTQ_AREA_DESC], cur, bufs[i].addr,
				bufs[i].len,
				(uint16_t)((bufs[i].flags & VRING_DESC_F_WRITE) |
					   (last ? 0 : VRING_DESC_F_NEXT)),
				next);
			if (ret) {
				d->nfree = nfree0;
				return ret;
			}
			cur = next;
		}
	}
	for (i = 0; i < n; i++) {
		if (bufs[i].flags & VRING_DESC_F_WRITE)
			wl += bufs[i].len;
	}
	d->chain_n[first] = (uint16_t)n;
	d->wlen[first] = wl;
	fifo_push(d, first);
	*head = first;
	return put_avail(d, first);
}

int virtq_driver_add_nopublish(struct virtq_driver *d,
			       const struct virtq_driver_buf *bufs,
			       unsigned int n, uint16_t *head)
{
	uint16_t h;

	return add_direct(d, bufs, n, head ? head : &h);
}

int virtq_driver_add(struct virtq_driver *d,
		     const struct virtq_driver_buf *bufs, unsigned int n,
		     uint16_t *head)
{
	int ret = virtq_driver_add_nopublish(d, bufs, n, head);

	return ret ? ret : virtq_driver_publish(d);
}

int virtq_driver_add_indirect(struct virtq_driver *d,
			      const struct virtq_driver_buf *bufs,
			      unsigned int n, guest_addr_t table,
			      uint16_t *head)
{
	unsigned int i;
	uint32_t wl = 0;
	uint16_t h;
	int ret;

	if (d->packed) {
		ret = packed_add(d, bufs, n, table, true, &h);
		if (!ret)
			ret = packed_publish(d);
		if (!ret && head)
			*head = h;
		return ret;
	}
	if (!bufs || n == 0 || n > d->size)
		return -EINVAL;
	if (d->nfree == 0)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		bool last = i + 1 == n;

		ret = put_desc(d, table, (uint16_t)i, bufs[i].addr, bufs[i].len,
			       (uint16_t)((bufs[i].flags & VRING_DESC_F_WRITE) |
					  (last ? 0 : VRING_DESC_F_NEXT)),
			       (uint16_t)(last ? 0 : i + 1));
		if (ret)
			return ret;
	}
	h = d->free_stack[--d->nfree];
	ret = put_desc(d, d->addr[VIRTQ_AREA_DESC], h, table, 16u * n,
		       VRING_DESC_F_INDIRECT, 0);
	if (ret) {
		d->nfree++;
		return ret;
	}
	for (i = 0; i < n; i++) {
		if (bufs[i].flags & VRING_DESC_F_WRITE)
			wl += bufs[i].len;
	}
	d->chain_n[h] = 1;
	d->wlen[h] = wl;
	fifo_push(d, h);
	ret = put_avail(d, h);
	if (!ret)
		ret = virtq_driver_publish(d);
	if (!ret && head)
		*head = h;
	return ret;
}

int virtq_driver_write_desc(struct virtq_driver *d, uint16_t idx,
			    const struct vring_desc *desc)
{
	if (!desc || idx >= d->size || d->packed)
		return -EINVAL;
	d->raw = true;
	return guest_memory_write(d->mem,
				  d->addr[VIRTQ_AREA_DESC] + 16ull * idx, desc,
				  sizeof(*desc));
}

int virtq_driver_set_avail_ring(struct virtq_driver *d, uint16_t slot,
				uint16_t head)
{
	if (d->packed)
		return -EINVAL;
	d->raw = true;
	return guest_memory_write_u16(d->mem,
				      d->addr[VIRTQ_AREA_AVAIL] + 4 +
					      2ull * (slot & (d->size - 1)),
				      head);
}

int virtq_driver_set_avail_idx(struct virtq_driver *d, uint16_t idx)
{
	if (d->packed)
		return -EINVAL;
	d->raw = true;
	d->avail_idx = idx;
	return virtq_driver_publish(d);
}

int virtq_driver_push_head(struct virtq_driver *d, uint16_t head)
{
	int ret;

	if (d->packed)
		return -EINVAL;
	d->raw = true;
	ret = put_avail(d, head);
	return ret ? ret : virtq_driver_publish(d);
}

uint16_t virtq_driver_avail_idx(const struct virtq_driver *d)
{
	return d->published;
}

int virtq_driver_set_start(struct virtq_driver *d, uint16_t idx)
{
	int ret;

	if (d->packed)
		return -EINVAL;
	d->avail_idx = idx;
	d->last_used = idx;
	d->kicked_valid = false;
	ret = guest_memory_store_u16(d->mem, d->addr[VIRTQ_AREA_USED] + 2, idx,
				     memory_order_relaxed);
	if (!ret && d->event_idx)
		ret = guest_memory_write_u16(
			d->mem, d->addr[VIRTQ_AREA_AVAIL] + 4 + 2ull * d->size,
			idx);
	return ret ? ret : virtq_driver_publish(d);
}

static void free_chain(struct virtq_driver *d, uint16_t head)
{
	uint16_t cur = head;
	uint16_t n = d->chain_n[head];

	d->chain_n[head] = 0;
	while (n--) {
		d->free_stack[d->nfree++] = cur;
		cur = d->host_next[cur];
	}
}

/* Free buffer @id (packed): its id and slots. */
static void packed_free(struct virtq_driver *d, uint16_t id)
{
	d->p_free_slots += d->chain_n[id];
	d->chain_n[id] = 0;
	d->free_stack[d->nfree++] = id;
}

/* IN_ORDER: the used element (@id, @len) names the last buffer of a batch
 * starting at the oldest one in flight; set up its reporting. */
static int in_order_batch(struct virtq_driver *d, uint32_t id, uint32_t len,
			  uint32_t most)
{
	uint32_t k;

	for (k = 0; k < d->fifo_n && k < most; k++) {
		if (d->fifo[(d->fifo_first + k) % d->size] == id) {
			d->ib_left = k + 1;
			d->ib_id = id;
			d->ib_len = len;
			return 0;
		}
	}
	return -EPROTO;
}

/* Report the next buffer of the IN_ORDER batch: the last with the used
 * element's length, the others as wholly written. */
static void in_order_next(struct virtq_driver *d, struct vring_used_elem *elem)
{
	uint16_t id = d->fifo[d->fifo_first];
	uint32_t len = --d->ib_left ? d->wlen[id] : d->ib_len;

	d->fifo_first = (d->fifo_first + 1) % d->size;
	d->fifo_n--;
	if (d->packed) {
		p_advance(d, &d->p_used_pos, &d->p_used_wrap, d->chain_n[id]);
		packed_free(d, id);
	} else {
		free_chain(d, id);
		d->last_used++;
	}
	if (elem) {
		elem->id = id;
		elem->len = len;
	}
}

static int packed_get_used(struct virtq_driver *d, struct vring_used_elem *elem)
{
	guest_addr_t g = pdesc_gpa(d, d->p_used_pos);
	uint16_t flags, id16;
	uint32_t len;
	bool u;
	int ret;

	if (d->in_order && !d->raw && d->ib_left) {
		in_order_next(d, elem);
		return 1;
	}
	/* Acquire: pairs with the device's release store of the flags. */
	ret = guest_memory_load_u16(d->mem, g + 14, &flags,
				    memory_order_acquire);
	if (ret)
		return ret;
	u = flags & PF_USED;
	if (u != !!(flags & PF_AVAIL) || u != d->p_used_wrap)
		return 0;
	ret = guest_memory_read_u16(d->mem, g + 12, &id16);
	if (!ret)
		ret = guest_memory_read_u32(d->mem, g + 8, &len);
	if (ret)
		return ret;
	if (d->raw) {
		p_advance(d, &d->p_used_pos, &d->p_used_wrap, 1);
	} else {
		if (id16 >= d->size || d->chain_n[id16] == 0)
			return -EPROTO;
		if (d->in_order) {
			if (in_order_batch(d, id16, len, d->size))
				return -EPROTO;
			in_order_next(d, elem);
			return 1;
		}
		p_advance(d, &d->p_used_pos, &d->p_used_wrap, d->chain_n[id16]);
		packed_free(d, id16);
	}
	if (elem) {
		elem->id = id16;
		elem->len = len;
	}
	return 1;
}

int virtq_driver_get_used(struct virtq_driver *d, struct vring_used_elem *elem)
{
	guest_addr_t used = d->addr[VIRTQ_AREA_USED];
	uint16_t idx;
	uint32_t id, len;
	guest_addr_t e;
	int ret;

	if (d->packed)
		return packed_get_used(d, elem);
	if (d->in_order && !d->raw && d->ib_left) {
		in_order_next(d, elem);
		return 1;
	}
	/* Acquire: pairs with the device's release store of used.idx. */
	ret = guest_memory_load_u16(d->mem, used + 2, &idx,
				    memory_order_acquire);
	if (ret)
		return ret;
	if (idx == d->last_used)
		return 0;
	if ((uint16_t)(idx - d->last_used) > d->size)
		return -EPROTO;
	e = used + 4 + 8ull * (d->last_used & (d->size - 1));
	ret = guest_memory_read_u32(d->mem, e, &id);
	if (!ret)
		ret = guest_memory_read_u32(d->mem, e + 4, &len);
	if (ret)
		return ret;
	if (!d->raw) {
		if (id >= d->size || d->chain_n[id] == 0)
			return -EPROTO;
		if (d->in_order) {
			/* The batch may not run past used.idx. */
			if (in_order_batch(d, id, len,
					   (uint16_t)(idx - d->last_used)))
				return -EPROTO;
			in_order_next(d, elem);
			return 1;
		}
		free_chain(d, (uint16_t)id);
	}
	d->last_used++;
	if (elem) {
		elem->id = id;
		elem->len = len;
	}
	return 1;
}

uint16_t virtq_driver_used_idx(const struct virtq_driver *d)
{
	uint16_t v = 0;

	if (d->packed)
		return 0;
	/* Acquire: pairs with the device's release store of used.idx. */
	guest_memory_load_u16(d->mem, d->addr[VIRTQ_AREA_USED] + 2, &v,
			      memory_order_acquire);
	return v;
}

/* needs_kick in packed mode: the device event suppression structure. */
static bool packed_needs_kick(struct virtq_driver *d)
{
	guest_addr_t ev = d->addr[VIRTQ_AREA_USED];
	uint32_t adv = d->p_kick_adv;
	bool valid = d->kicked_valid;
	uint16_t flags = 0, off_wrap = 0, event, new_pos, old_pos;

	d->p_kick_adv = 0;
	d->kicked_valid = true;
	/* Full fence: the slots' flags before the device's structure. */
	atomic_thread_fence(memory_order_seq_cst);
	guest_memory_read_u16(d->mem, ev + 2, &flags);
	flags &= 3;
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !d->event_idx)
		return true;
	if (!valid || adv >= d->size)
		return true;
	guest_memory_read_u16(d->mem, ev, &off_wrap);
	new_pos = d->p_pub_pos;
	old_pos = (uint16_t)(new_pos - adv);
	event = off_wrap & (uint16_t)~EV_WRAP;
	if (!!(off_wrap & EV_WRAP) != d->p_pub_wrap)
		event = (uint16_t)(event - d->size);
	return vring_need_event(event, new_pos, old_pos);
}

bool virtq_driver_needs_kick(struct virtq_driver *d)
{
	uint16_t old = d->kicked_idx, now = d->published, v = 0;
	bool valid = d->kicked_valid;

	if (d->packed)
		return packed_needs_kick(d);
	d->kicked_idx = now;
	d->kicked_valid = true;
	/* Full fence: our avail.idx store before reading the device's
	 * used.flags / avail_event; pairs with the fence in
	 * virtq_enable_notification(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (d->event_idx) {
		guest_memory_read_u16(
			d->mem, d->addr[VIRTQ_AREA_USED] + 4 + 8ull * d->size,
			&v);
		if (!valid)
			return true;
		return vring_need_event(v, now, old);
	}
	guest_memory_read_u16(d->mem, d->addr[VIRTQ_AREA_USED], &v);
	return !(v & VRING_USED_F_NO_NOTIFY);
}

int virtq_driver_set_used_event(struct virtq_driver *d, uint16_t ev)
{
	if (d->packed) /* the driver area's off_wrap */
		return guest_memory_write_u16(d->mem, d->addr[VIRTQ_AREA_AVAIL],
					      ev);
	return guest_memory_write_u16(
		d->mem, d->addr[VIRTQ_AREA_AVAIL] + 4 + 2ull * d->size, ev);
}

int virtq_driver_set_avail_flags(struct virtq_driver *d, uint16_t flags)
{
	d->avail_flags = flags;
	if (d->packed) /* the driver area's flags */
		return guest_memory_write_u16(
			d->mem, d->addr[VIRTQ_AREA_AVAIL] + 2, flags);
	return guest_memory_write_u16(d->mem, d->addr[VIRTQ_AREA_AVAIL], flags);
}

int virtq_driver_enable_interrupts(struct virtq_driver *d)
{
	int ret;

	if (d->packed && d->event_idx) {
		ret = virtq_driver_set_used_event(
			d, (uint16_t)(d->p_used_pos |
				      (d->p_used_wrap ? EV_WRAP : 0)));
		if (!ret)
			ret = virtq_driver_set_avail_flags(
				d, VRING_PACKED_EVENT_FLAG_DESC);
	} else if (d->packed) {
		ret = virtq_driver_set_avail_flags(
			d, VRING_PACKED_EVENT_FLAG_ENABLE);
	} else if (d->event_idx)
		ret = virtq_driver_set_used_event(d, d->last_used);
	else
		ret = virtq_driver_set_avail_flags(
			d,
			d->avail_flags & (uint16_t)~VRING_AVAIL_F_NO_INTERRUPT);
	/* Full fence: pairs with the fence in virtq_needs_interrupt(). */
	atomic_thread_fence(memory_order_seq_cst);
	return ret;
}

int virtq_driver_disable_interrupts(struct virtq_driver *d)
{
	if (d->packed)
		return virtq_driver_set_avail_flags(
			d, VRING_PACKED_EVENT_FLAG_DISABLE);
	if (d->event_idx)
		return 0;
	return virtq_driver_set_avail_flags(
		d, d->avail_flags | VRING_AVAIL_F_NO_INTERRUPT);
}

uint16_t virtq_driver_used_flags(const struct virtq_driver *d)
{
	uint16_t v = 0;

	/* packed: the device area's flags */
	guest_memory_read_u16(
		d->mem, d->addr[VIRTQ_AREA_USED] + (d->packed ? 2 : 0), &v);
	return v;
}

uint16_t virtq_driver_avail_event(const struct virtq_driver *d)
{
	uint16_t v = 0;

	/* packed: the device area's off_wrap */
	guest_memory_read_u16(d->mem,
			      d->addr[VIRTQ_AREA_USED] +
				      (d->packed ? 0 : 4 + 8ull * d->size),
			      &v);
	return v;
}
