/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Mock virtio driver (the guest side of a split virtqueue), for tests.
 * Every guest access goes through libvm-memory's checked accessors.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/virtio-queue-driver.h>

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
};

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

	if (!mem || !out || !is_pow2(size) || size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->mem = guest_memory_ref(mem);
	d->size = size;
	d->features = features;
	d->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	d->addr[VIRTQ_AREA_DESC] = desc;
	d->addr[VIRTQ_AREA_AVAIL] = avail;
	d->addr[VIRTQ_AREA_USED] = used;
	d->free_stack = calloc(size, sizeof(uint16_t));
	d->chain_n = calloc(size, sizeof(uint16_t));
	d->host_next = calloc(size, sizeof(uint16_t));
	if (!d->free_stack || !d->chain_n || !d->host_next) {
		virtq_driver_destroy(d);
		return -ENOMEM;
	}
	/* Pop order 0, 1, 2...: the stack holds them reversed. */
	for (i = 0; i < size; i++)
		d->free_stack[i] = (uint16_t)(size - 1 - i);
	d->nfree = size;
	ret = guest_memory_fill(mem, desc, 0, 16ull * size);
	if (!ret)
		ret = guest_memory_fill(mem, avail, 0, 6 + 2ull * size);
	if (!ret)
		ret = guest_memory_fill(mem, used, 0, 6 + 8ull * size);
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
	return d->nfree;
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
	uint32_t nfree0 = d->nfree;
	uint16_t first, prev = 0;
	unsigned int i;
	int ret;

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
	d->chain_n[first] = (uint16_t)n;
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
	uint16_t h;
	int ret;

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
	d->chain_n[h] = 1;
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
	if (!desc || idx >= d->size)
		return -EINVAL;
	d->raw = true;
	return guest_memory_write(d->mem,
				  d->addr[VIRTQ_AREA_DESC] + 16ull * idx, desc,
				  sizeof(*desc));
}

int virtq_driver_set_avail_ring(struct virtq_driver *d, uint16_t slot,
				uint16_t head)
{
	d->raw = true;
	return guest_memory_write_u16(d->mem,
				      d->addr[VIRTQ_AREA_AVAIL] + 4 +
					      2ull * (slot & (d->size - 1)),
				      head);
}

int virtq_driver_set_avail_idx(struct virtq_driver *d, uint16_t idx)
{
	d->raw = true;
	d->avail_idx = idx;
	return virtq_driver_publish(d);
}

int virtq_driver_push_head(struct virtq_driver *d, uint16_t head)
{
	int ret;

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

int virtq_driver_get_used(struct virtq_driver *d, struct vring_used_elem *elem)
{
	guest_addr_t used = d->addr[VIRTQ_AREA_USED];
	uint16_t idx;
	uint32_t id, len;
	guest_addr_t e;
	int ret;

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

	/* Acquire: pairs with the device's release store of used.idx. */
	guest_memory_load_u16(d->mem, d->addr[VIRTQ_AREA_USED] + 2, &v,
			      memory_order_acquire);
	return v;
}

bool virtq_driver_needs_kick(struct virtq_driver *d)
{
	uint16_t old = d->kicked_idx, now = d->published, v = 0;
	bool valid = d->kicked_valid;

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
	return guest_memory_write_u16(
		d->mem, d->addr[VIRTQ_AREA_AVAIL] + 4 + 2ull * d->size, ev);
}

int virtq_driver_set_avail_flags(struct virtq_driver *d, uint16_t flags)
{
	d->avail_flags = flags;
	return guest_memory_write_u16(d->mem, d->addr[VIRTQ_AREA_AVAIL], flags);
}

int virtq_driver_enable_interrupts(struct virtq_driver *d)
{
	int ret;

	if (d->event_idx)
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
	if (d->event_idx)
		return 0;
	return virtq_driver_set_avail_flags(
		d, d->avail_flags | VRING_AVAIL_F_NO_INTERRUPT);
}

uint16_t virtq_driver_used_flags(const struct virtq_driver *d)
{
	uint16_t v = 0;

	guest_memory_read_u16(d->mem, d->addr[VIRTQ_AREA_USED], &v);
	return v;
}

uint16_t virtq_driver_avail_event(const struct virtq_driver *d)
{
	uint16_t v = 0;

	guest_memory_read_u16(
		d->mem, d->addr[VIRTQ_AREA_USED] + 4 + 8ull * d->size, &v);
	return v;
}
