/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzz target: the split and the packed layouts against each other.
 *
 * Two queues of the same size and features, one split and one packed, each
 * with its mock driver in its own part of guest memory, receive the SAME
 * sequence of driver and device operations (each input byte picks one).
 * Heads differ between the layouts (descriptor indexes against buffer
 * ids), so chains are named by the order the driver added them.  Checked
 * after every operation:
 *  - both drivers accept or refuse an add alike (-ENOSPC at the same time);
 *  - both devices pop the same chain (same added order number) with the
 *    same buffers (addresses, lengths, flags), counts and totals, and
 *    agree on virtq_avail_count() and virtq_in_flight();
 *  - both drivers receive the same completions (chain and length) in the
 *    same order, whether completed one by one, in a batch, out of order,
 *    or (with IN_ORDER, bit 1 of the second byte) collapsed;
 *  - neither queue ever breaks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/virtio-queue-driver.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include "test-memory.h"

#define MEM_SIZE 0x40000ull
#define RING0	 0x0ull
#define RING1	 0x8000ull
#define DATA	 0x10000ull
#define TABLES	 0x30000ull
#define MAXQ	 32u

#define check(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

struct side {
	struct virtq_driver *d;
	struct virtq *q;
	uint32_t serial_of[MAXQ]; /* head -> order number of its chain */
	/* one more than can be in flight: the next pop's storage */
	struct virtq_chain held[MAXQ + 1];
	struct virtq_buf bufs[MAXQ + 1][MAXQ];
};

static struct side sides[2];

/* Chains popped and not completed, by order number, oldest first. */
struct model {
	uint32_t inflight[MAXQ];
	unsigned int n;
	uint32_t next_serial;
	uint32_t table_rot;
};

static void side_setup(struct side *s, struct guest_memory *m, uint32_t qsize,
		       uint64_t features, guest_addr_t base)
{
	guest_addr_t da, aa, ua;
	unsigned int i;

	virtq_driver_layout(qsize, base, &da, &aa, &ua);
	check(virtq_driver_create(m, qsize, features, da, aa, ua, &s->d) == 0);
	check(virtq_create(MAXQ, &s->q) == 0);
	check(virtq_set_memory(s->q, m) == 0);
	check(virtq_driver_configure(s->d, s->q) == 0);
	for (i = 0; i <= MAXQ; i++)
		virtq_chain_init(&s->held[i], s->bufs[i], MAXQ);
}

static void side_teardown(struct side *s)
{
	virtq_driver_destroy(s->d);
	virtq_destroy(s->q);
	s->d = NULL;
	s->q = NULL;
}

static bool same_chain(const struct virtq_chain *a, const struct virtq_chain *b)
{
	unsigned int i;

	if (a->nbufs != b->nbufs || a->nread != b->nread ||
	    a->read_len != b->read_len || a->write_len != b->write_len)
		return false;
	for (i = 0; i < a->nbufs; i++) {
		if (a->bufs[i].addr != b->bufs[i].addr ||
		    a->bufs[i].len != b->bufs[i].len ||
		    a->bufs[i].flags != b->bufs[i].flags)
			return false;
	}
	return true;
}

/* Find the held chain of order number @serial on side @s. */
static struct virtq_chain *held(struct side *s, uint32_t serial)
{
	unsigned int i;

	for (i = 0; i <= MAXQ; i++) {
		if (s->held[i].q && s->serial_of[s->held[i].head] == serial)
			return &s->held[i];
	}
	abort();
}

static struct virtq_chain *free_slot(struct side *s)
{
	unsigned int i;

	for (i = 0; i <= MAXQ; i++) {
		if (!s->held[i].q)
			return &s->held[i];
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_memory *m;
	struct model md;
	uint64_t features;
	uint32_t qsize;
	bool in_order;
	size_t i;
	int k;

	if (size < 2)
		return 0;
	memset(&md, 0, sizeof(md));
	m = CVMM_TEST_MEMORY({.gpa = 0, .size = MEM_SIZE});
	qsize = 1u << (data[0] % 6); /* 1..32 */
	in_order = data[1] & 2;
	features = (1ull << 32) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
		   (data[1] & 1 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
		   (in_order ? 1ull << 35 /* IN_ORDER */ : 0);
	side_setup(&sides[0], m, qsize, features, RING0);
	side_setup(&sides[1], m, qsize, features | (1ull << 34 /* PACKED */),
		   RING1);
	check(!virtq_is_packed(sides[0].q) && virtq_is_packed(sides[1].q));

	for (i = 2; i < size; i++) {
		uint8_t op = data[i] % 6, arg = data[i] / 6;
		struct virtq_driver_buf b[4];
		unsigned int n, nr, j;
		uint16_t head[2];
		int ret[2];

		switch (op) {
		case 0: /* driver: add a chain, direct or indirect */
			n = 1 + arg % 4;
			nr = (arg / 4) % (n + 1);
			for (j = 0; j < n; j++) {
				b[j].addr = DATA + 0x1000ull * j + arg;
				b[j].len = 1 + ((arg * 37u + j * 101u) % 300);
				b[j].flags = j < nr ? 0 : VRING_DESC_F_WRITE;
			}
			for (k = 0; k < 2; k++) {
				/* A table is reused after 2 * qsize adds, when
				 * its chain is long popped (in order). */
				guest_addr_t t =
					TABLES + 0x8000ull * k +
					64ull * (md.table_rot % (2 * qsize));

				if (arg & 0x20)
					ret[k] = virtq_driver_add_indirect(
						sides[k].d, b, n, t, &head[k]);
				else
					ret[k] = virtq_driver_add(sides[k].d, b,
								  n, &head[k]);
			}
			check(ret[0] == ret[1]);
			if (ret[0])
				break;
			if (arg & 0x20)
				md.table_rot++;
			for (k = 0; k < 2; k++)
				sides[k].serial_of[head[k]] = md.next_serial;
			md.next_serial++;
			break;
		case 1: /* device: pop one (or a batch of up to 4) */
			for (j = 0; j < 1 + (arg & 3u); j++) {
				struct virtq_chain *c[2];

				for (k = 0; k < 2; k++) {
					c[k] = free_slot(&sides[k]);
					ret[k] = virtq_pop(sides[k].q, c[k]);
				}
				check(ret[0] == ret[1]);
				check(ret[0] == 0 || ret[0] == 1);
				if (!ret[0])
					break;
				check(sides[0].serial_of[c[0]->head] ==
				      sides[1].serial_of[c[1]->head]);
				check(same_chain(c[0], c[1]));
				check(md.n < MAXQ);
				md.inflight[md.n++] =
					sides[0].serial_of[c[0]->head];
				/* write some bytes: the used length */
				for (k = 0; k < 2; k++)
					virtq_chain_skip_write(c[k], arg * 3u);
			}
			break;
		case 2: /* device: complete one (the oldest under IN_ORDER) */
			if (!md.n)
				break;
			j = in_order ? 0 : arg % md.n;
			for (k = 0; k < 2; k++) {
				struct virtq_chain *c =
					held(&sides[k], md.inflight[j]);

				check(virtq_complete(sides[k].q, c) == 0);
				c->q = NULL;
			}
			memmove(&md.inflight[j], &md.inflight[j + 1],
				(md.n - j - 1) * sizeof(md.inflight[0]));
			md.n--;
			break;
		case 3: { /* device: complete the oldest arg % n + 1 as a batch */
			struct virtq_chain batch[MAXQ];

			if (!md.n)
				break;
			n = 1 + arg % md.n;
			for (k = 0; k < 2; k++) {
				for (j = 0; j < n; j++)
					batch[j] = *held(&sides[k],
							 md.inflight[j]);
				check(virtq_complete_batch(sides[k].q, batch,
							   n) == 0);
				for (j = 0; j < n; j++)
					held(&sides[k], md.inflight[j])->q =
						NULL;
			}
			memmove(&md.inflight[0], &md.inflight[n],
				(md.n - n) * sizeof(md.inflight[0]));
			md.n -= n;
			break;
		}
		case 4: { /* drivers: consume used elements alike */
			struct vring_used_elem e[2];

			for (;;) {
				for (k = 0; k < 2; k++)
					ret[k] = virtq_driver_get_used(
						sides[k].d, &e[k]);
				check(ret[0] == ret[1]);
				check(ret[0] == 0 || ret[0] == 1);
				if (!ret[0])
					break;
				check(sides[0].serial_of[e[0].id] ==
				      sides[1].serial_of[e[1].id]);
				check(e[0].len == e[1].len);
			}
			break;
		}
		case 5: /* both devices: what is waiting */
			check(virtq_avail_count(sides[0].q) ==
			      virtq_avail_count(sides[1].q));
			check(virtq_in_flight(sides[0].q) ==
			      virtq_in_flight(sides[1].q));
			check(virtq_in_flight(sides[0].q) == md.n);
			break;
		}
		check(!virtq_is_broken(sides[0].q));
		check(!virtq_is_broken(sides[1].q));
	}
	side_teardown(&sides[0]);
	side_teardown(&sides[1]);
	guest_memory_unref(m);
	return 0;
}
