/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Instruction counts for libvirtio-queue's one-descriptor chains, for
 * callgrind (the timing benchmark is too noisy on a shared machine):
 *
 *   count-virtio-queue MODE ROUNDS
 *
 * MODE: call-direct, call-indirect, batch-direct, batch-indirect, or
 * raw-direct / raw-indirect (the unchecked walk of bench-virtio-queue.c).
 * Each round makes 128 one-descriptor chains available (direct, or each
 * through a one-entry indirect table) and pops + completes them all, in
 * the loops bench-virtio-queue.c times.  Instructions per chain:
 *
 *   (Ir(MODE, R) - Ir(MODE, 0)) / (128 * R)
 *
 * with Ir the total callgrind reports ("Collected"), which removes the
 * setup.  tools: `valgrind --tool=callgrind --callgrind-out-file=/dev/null
 * count-virtio-queue call-direct 1000`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#define QSIZE	  256u
#define MEM_SIZE  (4ull << 20)
#define RING_DESC 0x1000ull
#define RING_AVL  0x3000ull
#define RING_USED 0x4000ull
#define DATA	  0x100000ull
#define TABLES	  0x200000ull
#define CHAINS	  128u

static uint8_t *host;
static volatile uint64_t sink;

static struct vring_desc *gdesc(guest_addr_t table, unsigned int i)
{
	return (struct vring_desc *)(void *)(host + table + 16ull * i);
}

static struct vring_avail *avail(void)
{
	return (struct vring_avail *)(void *)(host + RING_AVL);
}

static struct vring_used *used(void)
{
	return (struct vring_used *)(void *)(host + RING_USED);
}

static void layout(bool indirect)
{
	unsigned int i;

	memset(host, 0, 0x10000);
	for (i = 0; i < CHAINS; i++) {
		struct vring_desc *d = gdesc(RING_DESC, i);

		if (indirect) {
			struct vring_desc *t = gdesc(TABLES + 16ull * i, 0);

			d->addr = TABLES + 16ull * i;
			d->len = 16;
			d->flags = VRING_DESC_F_INDIRECT;
			d = t;
		}
		d->addr = DATA + 4096ull * i;
		d->len = 4096;
		d->flags = 0;
	}
	for (i = 0; i < QSIZE; i++)
		avail()->ring[i] = (uint16_t)(i % CHAINS);
}

static void bump_avail(uint16_t n)
{
	uint16_t v = __atomic_load_n(&avail()->idx, __ATOMIC_RELAXED);

	__atomic_store_n(&avail()->idx, (uint16_t)(v + n), __ATOMIC_RELEASE);
}

/* The unchecked walk, as in bench-virtio-queue.c. */
struct raw_buf {
	uint64_t addr;
	uint32_t len;
	uint32_t flags;
};
static struct {
	uint16_t last_avail, used_idx;
	struct raw_buf bufs[QSIZE];
} rq;

static unsigned int raw_round(void)
{
	struct vring_avail *a = avail();
	struct vring_used *u = used();
	uint16_t idx = __atomic_load_n(&a->idx, __ATOMIC_ACQUIRE);
	unsigned int total = 0;

	while (rq.last_avail != idx) {
		uint16_t head = a->ring[rq.last_avail & (QSIZE - 1)];
		const struct vring_desc *t = gdesc(RING_DESC, 0);
		uint16_t i = head;
		unsigned int n = 0;
		uint32_t wlen = 0;

		for (;;) {
			const struct vring_desc *d = &t[i];

			if (d->flags & VRING_DESC_F_INDIRECT) {
				t = (const struct vring_desc
					     *)(const void *)(host + d->addr);
				i = 0;
				continue;
			}
			rq.bufs[n].addr = d->addr;
			rq.bufs[n].len = d->len;
			rq.bufs[n].flags = d->flags & VRING_DESC_F_WRITE;
			if (d->flags & VRING_DESC_F_WRITE)
				wlen += d->len;
			n++;
			if (!(d->flags & VRING_DESC_F_NEXT))
				break;
			i = d->next;
		}
		sink += rq.bufs[n - 1].addr;
		u->ring[rq.used_idx & (QSIZE - 1)].id = head;
		u->ring[rq.used_idx & (QSIZE - 1)].len = wlen;
		rq.used_idx++;
		__atomic_store_n(&u->idx, rq.used_idx, __ATOMIC_RELEASE);
		rq.last_avail++;
		total += n;
	}
	return total;
}

/* The loops of bench-virtio-queue.c. */
static unsigned int count_round_batch(struct virtq *q)
{
	/* Each chain its own storage, as in bench-virtio-queue.c. */
	static struct virtq_buf b[128][128 + 4];
	static struct virtq_chain c[128];
	unsigned int total = 0;
	int n, i;

	if (!c[0].bufs)
		for (i = 0; i < 128; i++)
			virtq_chain_init(&c[i], b[i], 128);
	while ((n = virtq_pop_batch(q, c, 128)) > 0) {
		for (i = 0; i < n; i++)
			total += c[i].nbufs;
		sink += c[n - 1].bufs[c[n - 1].nbufs - 1].addr;
		if (virtq_complete_batch(q, c, (unsigned int)n))
			abort();
	}
	return n < 0 ? 0 : total;
}

static unsigned int count_round(struct virtq *q)
{
	static struct virtq_buf b[128];
	struct virtq_chain c = VIRTQ_CHAIN_INIT(b);
	unsigned int total = 0;
	int r;

	while ((r = virtq_pop(q, &c)) == 1) {
		total += c.nbufs;
		sink += c.bufs[c.nbufs - 1].addr;
		if (virtq_complete(q, &c))
			abort();
	}
	return r < 0 ? 0 : total;
}

int main(int argc, char **argv)
{
	struct guest_region_params p = {.gpa = 0, .size = MEM_SIZE};
	struct guest_region *r;
	struct guest_memory *mem;
	struct virtq *q;
	const char *mode;
	bool indirect, batch, raw;
	unsigned long rounds, i;
	uint64_t total = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s MODE ROUNDS\n", argv[0]);
		return 2;
	}
	mode = argv[1];
	rounds = strtoul(argv[2], NULL, 0);
	indirect = strstr(mode, "indirect") != NULL;
	batch = strncmp(mode, "batch", 5) == 0;
	raw = strncmp(mode, "raw", 3) == 0;
	if (guest_region_create(&p, &r) || guest_memory_create(&r, 1, &mem))
		return 1;
	host = guest_region_host_addr(r);
	layout(indirect);
	if (virtq_create(QSIZE, &q) || virtq_set_memory(q, mem) ||
	    virtq_set_addr(q, VIRTQ_AREA_DESC, RING_DESC) ||
	    virtq_set_addr(q, VIRTQ_AREA_AVAIL, RING_AVL) ||
	    virtq_set_addr(q, VIRTQ_AREA_USED, RING_USED) ||
	    virtq_set_features(q, (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
					  (1ull << 32)) ||
	    virtq_set_ready(q, true))
		return 1;
	for (i = 0; i < rounds; i++) {
		bump_avail(CHAINS);
		total += raw	 ? raw_round()
			 : batch ? count_round_batch(q)
				 : count_round(q);
	}
	printf("%s: %lu rounds, %llu descriptors\n", mode, rounds,
	       (unsigned long long)total);
	virtq_destroy(q);
	guest_memory_unref(mem);
	guest_region_unref(r);
	return total == (uint64_t)rounds * CHAINS ? 0 : 1;
}
