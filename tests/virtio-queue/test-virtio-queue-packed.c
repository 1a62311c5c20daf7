/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvirtio-queue unit tests of the packed layout (virtio 1.2, 2.8) and of
 * VIRTIO_F_IN_ORDER in both layouts.  The device queue is driven by the
 * mock driver in its packed mode.  Tests named test_hostile_packed_* each
 * cover one packed line of the "Virtqueues" section of docs/security.md.
 *
 * Guest memory: A [0, 1 MiB) RAM; C [4 MiB, 4 MiB+64K) read-only RAM.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <linux/virtio_config.h>

#include <cvmm/virtio-queue-driver.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include <check.h>
#ifndef suite_free
#define suite_free(s) ((void)(s))
#endif
#include "cvmm-check.h"
#include "test-memory.h"

#define A_SIZE	  0x100000ull
#define C_GPA	  0x400000ull
#define C_SIZE	  0x10000ull
#define RING_BASE 0x10000ull
#define DATA	  0x40000ull
#define TABLE	  0x80000ull

#define F_EVENT_IDX (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT  (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define F_PACKED    (1ull << VIRTIO_F_RING_PACKED)
#define F_IN_ORDER  (1ull << VIRTIO_F_IN_ORDER)
#define F_VERSION_1 (1ull << 32)

#define P_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define P_USED	((uint16_t)(1u << VRING_PACKED_DESC_F_USED))

static struct guest_memory *mem;
static struct virtq *q;
static struct virtq_driver *drv;
static int cb_count;
static enum virtq_error cb_err;

static void on_error(struct virtq *vq, enum virtq_error err, void *opaque)
{
	(void)vq;
	(void)opaque;
	cb_count++;
	cb_err = err;
}

static void setup(void)
{
	mem = CVMM_TEST_MEMORY(
		{.gpa = 0, .size = A_SIZE},
		{.gpa = C_GPA, .size = C_SIZE, .flags = GUEST_REGION_READONLY});
	ck_assert_int_eq(virtq_create(256, &q), 0);
	ck_assert_int_eq(virtq_set_memory(q, mem), 0);
	virtq_set_error_cb(q, on_error, NULL);
	cb_count = 0;
	cb_err = VIRTQ_ERR_NONE;
	drv = NULL;
}

static void teardown(void)
{
	virtq_driver_destroy(drv);
	virtq_destroy(q);
	guest_memory_unref(mem);
	drv = NULL;
	q = NULL;
}

static void start(uint32_t size, uint64_t features)
{
	guest_addr_t d, a, u;

	virtq_driver_layout(size, RING_BASE, &d, &a, &u);
	ck_assert_int_eq(
		virtq_driver_create(mem, size, features, d, a, u, &drv), 0);
	ck_assert_int_eq(virtq_driver_configure(drv, q), 0);
	ck_assert(virtq_ready(q));
}

#define CHAIN(name)                        \
	struct virtq_buf name##_bufs[256]; \
	struct virtq_chain name = VIRTQ_CHAIN_INIT(name##_bufs)

static uint16_t add(const struct virtq_driver_buf *b, unsigned int n)
{
	uint16_t id;

	ck_assert_int_eq(virtq_driver_add(drv, b, n, &id), 0);
	return id;
}

static uint16_t add1(guest_addr_t addr, uint32_t len, uint16_t flags)
{
	struct virtq_driver_buf b = {addr, len, flags};

	return add(&b, 1);
}

/* Raw slot @pos: @flags plus the AVAIL/USED bits of wrap @wrap. */
static void raw(uint16_t pos, uint64_t addr, uint32_t len, uint16_t id,
		uint16_t flags, bool wrap)
{
	struct vring_packed_desc v = {
		.addr = addr,
		.len = len,
		.id = id,
		.flags = (uint16_t)(flags | (wrap ? P_AVAIL : P_USED))};

	ck_assert_int_eq(virtq_driver_write_packed_desc(drv, pos, &v), 0);
}

static void expect_broken(enum virtq_error e)
{
	CHAIN(c);

	ck_assert_int_eq(virtq_pop(q, &c), -EIO);
	ck_assert(virtq_is_broken(q));
	ck_assert_int_eq(virtq_error_get(q), e);
	ck_assert_int_eq(cb_count, 1);
	ck_assert_int_eq(cb_err, e);
	/* sticky: nothing more pops */
	ck_assert_int_eq(virtq_pop(q, &c), -EIO);
}

static void get_used(uint16_t id, uint32_t len)
{
	struct vring_used_elem e;

	ck_assert_int_eq(virtq_driver_get_used(drv, &e), 1);
	ck_assert_uint_eq(e.id, id);
	ck_assert_uint_eq(e.len, len);
}

/* ========================================================== functional */

START_TEST(test_packed_selected_by_feature)
{
	start(8, F_VERSION_1 | F_PACKED);
	ck_assert(virtq_is_packed(q));
	ck_assert(virtq_driver_packed(drv));
	ck_assert_uint_eq(virtq_features(q), F_VERSION_1 | F_PACKED);
	virtq_reset(q);
	ck_assert(!virtq_is_packed(q));
}
END_TEST

START_TEST(test_packed_pop_read_write_complete)
{
	struct virtq_driver_buf b[2] = {{DATA, 8, 0},
					{DATA + 0x100, 4, VRING_DESC_F_WRITE}};
	uint8_t in[8], out[4] = {1, 2, 3, 4}, back[4];
	uint16_t id;
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	ck_assert_int_eq(guest_memory_write(mem, DATA, "abcdefgh", 8), 0);
	ck_assert_int_eq(virtq_pop(q, &c), 0);
	id = add(b, 2);
	ck_assert_int_eq(virtq_avail_count(q), 1);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_uint_eq(c.head, id);
	ck_assert_uint_eq(c.nbufs, 2);
	ck_assert_uint_eq(c.nread, 1);
	ck_assert_uint_eq(c.ndesc, 2);
	ck_assert_uint_eq(c.read_len, 8);
	ck_assert_uint_eq(c.write_len, 4);
	ck_assert_uint_eq(virtq_in_flight(q), 1);
	ck_assert_int_eq(VIRTQ_CHAIN_READ_OBJ(&c, &in), 0);
	ck_assert_mem_eq(in, "abcdefgh", 8);
	ck_assert_int_eq(VIRTQ_CHAIN_WRITE_OBJ(&c, &out), 0);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert_uint_eq(virtq_in_flight(q), 0);
	get_used(id, 4);
	ck_assert_int_eq(guest_memory_read(mem, DATA + 0x100, back, 4), 0);
	ck_assert_mem_eq(back, out, 4);
	ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 0);
	ck_assert_int_eq(virtq_pop(q, &c), 0);
}
END_TEST

/* Many laps of a small ring with chains of 1..3 descriptors: both wrap
 * counters flip many times and chains straddle the end of the ring. */
START_TEST(test_packed_wrap_many_laps)
{
	CHAIN(c);
	unsigned int i;

	start(4, F_VERSION_1 | F_PACKED);
	for (i = 0; i < 100; i++) {
		struct virtq_driver_buf b[3] = {
			{DATA, 16, 0},
			{DATA + 0x100, 32, VRING_DESC_F_WRITE},
			{DATA + 0x200, 32, VRING_DESC_F_WRITE}};
		unsigned int n = 1 + i % 3;
		uint16_t id = add(b, n);

		ck_assert_int_eq(virtq_pop(q, &c), 1);
		ck_assert_uint_eq(c.head, id);
		ck_assert_uint_eq(c.nbufs, n);
		ck_assert_uint_eq(c.ndesc, n);
		uint32_t w = n == 1 ? 0 : n == 2 ? 32 : 40;

		ck_assert_uint_eq(virtq_chain_skip_write(&c, 40), w);
		ck_assert_int_eq(virtq_complete(q, &c), 0);
		get_used(id, w);
		ck_assert_uint_eq(virtq_driver_num_free(drv), 4);
	}
	ck_assert(!virtq_is_broken(q));
}
END_TEST

/*
 * Packed rings of sizes that are not powers of two (virtio 1.2, 2.8 allows
 * any): many laps of chains of 1..3 descriptors, several in flight at a
 * time and completed out of order, so both wrap counters flip at slot
 * size - 1 -> 0 with chains straddling the end; the driver's view of every
 * used descriptor (id, length) must match.  _i: sizes 100 and 3.
 */
START_TEST(test_packed_size_not_power_of_two)
{
	static const uint32_t sizes[] = {100, 3};
	uint32_t size = sizes[_i], laps_slots = 0;
	struct virtq_chain c[3];
	struct virtq_buf bufs[3][4];
	struct virtq_state *st = calloc(1, sizeof(*st));
	unsigned int i, k, round;

	ck_assert_ptr_nonnull(st);
	start(size, F_VERSION_1 | F_PACKED | F_INDIRECT);
	ck_assert_uint_eq(virtq_size(q), size);
	ck_assert(virtq_is_packed(q));
	for (round = 0; round < 3 * size + 10; round++) {
		/* up to 3 chains, at most size descriptors outstanding */
		unsigned int nchains = size >= 9 ? 3 : 1, used_slots = 0;
		uint16_t id[3];
		uint32_t n[3];

		for (i = 0; i < nchains; i++) {
			struct virtq_driver_buf b[3] = {
				{DATA + 0x1000 * i, 16, 0},
				{DATA + 0x1000 * i + 0x100, 32,
				 VRING_DESC_F_WRITE},
				{DATA + 0x1000 * i + 0x200, 8,
				 VRING_DESC_F_WRITE}};

			n[i] = 1 + (round + i) % 3;
			id[i] = add(b, n[i]);
			used_slots += n[i];
		}
		ck_assert_int_eq(virtq_avail_count(q), (int)nchains);
		for (i = 0; i < nchains; i++) {
			virtq_chain_init(&c[i], bufs[i], 4);
			ck_assert_int_eq(virtq_pop(q, &c[i]), 1);
			ck_assert_uint_eq(c[i].head, id[i]);
			ck_assert_uint_eq(c[i].nbufs, n[i]);
			ck_assert_uint_eq(c[i].ndesc, n[i]);
		}
		ck_assert_int_eq(virtq_pop(q, &c[0]), 0);
		/* complete in reverse, each writing what it can */
		for (k = nchains; k-- > 0;) {
			uint32_t w = n[k] == 1 ? 0 : n[k] == 2 ? 32 : 40;

			ck_assert_uint_eq(virtq_chain_skip_write(&c[k], 100),
					  w);
			ck_assert_int_eq(virtq_complete(q, &c[k]), 0);
		}
		for (k = nchains; k-- > 0;)
			get_used(id[k], n[k] == 1 ? 0 : n[k] == 2 ? 32 : 40);
		ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 0);
		ck_assert_uint_eq(virtq_in_flight(q), 0);
		ck_assert_uint_eq(virtq_driver_num_free(drv), size);
		laps_slots += used_slots;
	}
	ck_assert_uint_ge(laps_slots, 3 * size); /* 3 laps at least */
	/* an indirect chain, and the state through a save/restore at an
	 * odd position */
	{
		struct virtq_driver_buf b[2] = {
			{DATA, 4, 0}, {DATA + 0x100, 4, VRING_DESC_F_WRITE}};
		uint16_t tid;

		ck_assert_int_eq(
			virtq_driver_add_indirect(drv, b, 2, TABLE, &tid), 0);
		virtq_save(q, st);
		ck_assert_uint_eq(st->size, size);
		virtq_reset(q);
		ck_assert_int_eq(virtq_restore(q, st), 0);
		virtq_chain_init(&c[0], bufs[0], 4);
		ck_assert_int_eq(virtq_pop(q, &c[0]), 1);
		ck_assert_uint_eq(c[0].head, tid);
		ck_assert_uint_eq(c[0].nbufs, 2);
		ck_assert_int_eq(virtq_complete_len(q, &c[0], 4), 0);
		get_used(tid, 4);
	}
	ck_assert(!virtq_is_broken(q));
	free(st);
}
END_TEST

/* 0 and sizes above the maximum (32768 at most) stay refused in the
 * packed layout; a split state of a size that is not a power of two is
 * not restored. */
START_TEST(test_packed_size_limits)
{
	struct virtq *big = NULL;
	struct virtq_driver *d2 = NULL;
	struct virtq_state *st = calloc(1, sizeof(*st));

	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(virtq_set_size(q, 0), -EINVAL);
	ck_assert_int_eq(virtq_config_error(q), VIRTQ_ERR_SIZE_INVALID);
	ck_assert_int_eq(virtq_set_size(q, 257), -EINVAL);
	ck_assert_int_eq(virtq_create(32768, &big), 0);
	ck_assert_int_eq(virtq_set_size(big, 32769), -EINVAL);
	ck_assert_int_eq(virtq_set_size(big, 65535), -EINVAL);
	ck_assert_int_eq(virtq_set_size(big, 32767), 0);
	ck_assert_int_eq(virtq_size(big), 32767);
	virtq_destroy(big);
	ck_assert_int_eq(virtq_driver_create(mem, 0, F_PACKED, RING_BASE,
					     RING_BASE + 0x8000,
					     RING_BASE + 0x8010, &d2),
			 -EINVAL);
	ck_assert_int_eq(virtq_driver_create(mem, 32769, F_PACKED, RING_BASE,
					     RING_BASE + 0x8000,
					     RING_BASE + 0x8010, &d2),
			 -EINVAL);
	ck_assert_int_eq(virtq_driver_create(mem, 100, 0, RING_BASE,
					     RING_BASE + 0x8000,
					     RING_BASE + 0x8010, &d2),
			 -EINVAL);
	ck_assert_ptr_null(d2);
	/* a packed queue of 7 configured by hand, then the same size and
	 * state claimed for a split queue */
	start(7, F_VERSION_1 | F_PACKED);
	virtq_save(q, st);
	ck_assert_int_eq(virtq_restore(q, st), 0);
	ck_assert_uint_eq(virtq_size(q), 7);
	st->features &= ~F_PACKED;
	ck_assert_int_eq(virtq_restore(q, st), -EINVAL);
	free(st);
}
END_TEST

START_TEST(test_packed_out_of_order_completion)
{
	struct virtq_chain c[3];
	struct virtq_buf bufs[3][4];
	uint16_t id[3];
	unsigned int i, round;

	start(8, F_VERSION_1 | F_PACKED);
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 3; i++) {
			virtq_chain_init(&c[i], bufs[i], 4);
			id[i] = add1(DATA + 0x100 * i, 8, VRING_DESC_F_WRITE);
		}
		ck_assert_int_eq(virtq_pop_batch(q, c, 3), 3);
		for (i = 0; i < 3; i++)
			ck_assert_uint_eq(c[i].head, id[i]);
		ck_assert_int_eq(virtq_complete_len(q, &c[2], 3), 0);
		ck_assert_int_eq(virtq_add_used(q, c[0].head, 1), 0);
		ck_assert_int_eq(virtq_complete_len(q, &c[1], 2), 0);
		get_used(id[2], 3);
		get_used(id[0], 1);
		get_used(id[1], 2);
	}
	ck_assert(!virtq_is_broken(q));
}
END_TEST

START_TEST(test_packed_batch_completion)
{
	struct virtq_chain c[4];
	struct virtq_buf bufs[4][4];
	struct vring_used_elem e[2];
	uint16_t id[4];
	unsigned int i;

	start(8, F_VERSION_1 | F_PACKED);
	for (i = 0; i < 4; i++) {
		struct virtq_driver_buf b[2] = {{DATA, 4, 0},
						{DATA + 0x100 * i, 8,
						 VRING_DESC_F_WRITE}};

		virtq_chain_init(&c[i], bufs[i], 4);
		ck_assert_int_eq(virtq_driver_add_nopublish(drv, b, 2, &id[i]),
				 0);
	}
	ck_assert_int_eq(virtq_pop(q, &c[0]), 0); /* nothing published */
	ck_assert_int_eq(virtq_driver_publish(drv), 0);
	ck_assert_int_eq(virtq_avail_count(q), 4);
	ck_assert_int_eq(virtq_pop_batch(q, c, 4), 4);
	virtq_chain_skip_write(&c[1], 5);
	virtq_chain_skip_write(&c[0], 8);
	/* a second copy of a chain in the batch: nothing completed */
	{
		struct virtq_chain two[2] = {c[0], c[0]};

		ck_assert_int_eq(virtq_complete_batch(q, two, 2), -EINVAL);
	}
	ck_assert_int_eq(
		virtq_complete_batch(q, (struct virtq_chain[]){c[1], c[0]}, 2),
		0);
	e[0].id = c[3].head;
	e[0].len = 100; /* clamped to 8 */
	e[1].id = c[2].head;
	e[1].len = 7;
	ck_assert_int_eq(virtq_add_used_batch(q, e, 2), 0);
	get_used(id[1], 5);
	get_used(id[0], 8);
	get_used(id[3], 8);
	get_used(id[2], 7);
	ck_assert_uint_eq(virtq_driver_num_free(drv), 8);
}
END_TEST

START_TEST(test_packed_indirect)
{
	struct virtq_driver_buf b[3] = {{DATA, 16, 0},
					{DATA + 0x100, 8, VRING_DESC_F_WRITE},
					{DATA + 0x200, 8, VRING_DESC_F_WRITE}};
	uint16_t id;
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	ck_assert_int_eq(virtq_driver_add_indirect(drv, b, 3, TABLE, &id), 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_uint_eq(c.head, id);
	ck_assert_uint_eq(c.nbufs, 3);
	ck_assert_uint_eq(c.ndesc, 1);
	ck_assert_uint_eq(c.read_len, 16);
	ck_assert_uint_eq(c.write_len, 16);
	ck_assert_uint_eq(virtq_chain_skip_write(&c, 12), 12);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	get_used(id, 12);
}
END_TEST

/* In a packed indirect table NEXT and the id are ignored (2.8.7). */
START_TEST(test_packed_indirect_ignores_next_and_id)
{
	struct vring_packed_desc t[2] = {
		{.addr = DATA, .len = 4, .id = 77, .flags = VRING_DESC_F_NEXT},
		{.addr = DATA + 0x100,
		 .len = 4,
		 .id = 99,
		 .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT}};
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	ck_assert_int_eq(guest_memory_write(mem, TABLE, t, sizeof(t)), 0);
	raw(0, TABLE, 32, 5, VRING_DESC_F_INDIRECT, true);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_uint_eq(c.head, 5);
	ck_assert_uint_eq(c.nbufs, 2);
	ck_assert_uint_eq(c.nread, 1);
}
END_TEST

START_TEST(test_packed_enobufs_not_consumed)
{
	struct virtq_driver_buf b[3] = {
		{DATA, 4, 0}, {DATA, 4, 0}, {DATA, 4, VRING_DESC_F_WRITE}};
	struct virtq_buf small[2];
	struct virtq_chain s = VIRTQ_CHAIN_INIT(small);
	uint16_t id;
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	id = add(b, 3);
	ck_assert_int_eq(virtq_pop(q, &s), -ENOBUFS);
	ck_assert_uint_eq(s.nbufs, 3);
	ck_assert_uint_eq(virtq_in_flight(q), 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_uint_eq(c.head, id);
	/* undo gives it back; it pops again */
	ck_assert_int_eq(virtq_undo_pop(q, &c), 0);
	ck_assert_int_eq(virtq_undo_pop(q, &c), -EINVAL);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_uint_eq(c.head, id);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	get_used(id, 0);
}
END_TEST

START_TEST(test_packed_state_roundtrip)
{
	struct virtq_state *st = calloc(1, sizeof(*st));
	struct virtq *q2;
	CHAIN(c1);
	CHAIN(c2);
	uint16_t id1, id2;
	unsigned int i;

	ck_assert_ptr_nonnull(st);
	start(4, F_VERSION_1 | F_PACKED | F_EVENT_IDX);
	for (i = 0; i < 3; i++) { /* move the positions off zero */
		add1(DATA, 4, 0);
		ck_assert_int_eq(virtq_pop(q, &c1), 1);
		ck_assert_int_eq(virtq_complete(q, &c1), 0);
		ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 1);
	}
	id1 = add1(DATA, 4, VRING_DESC_F_WRITE);
	{
		struct virtq_driver_buf b[2] = {{DATA, 4, 0},
						{DATA, 4, VRING_DESC_F_WRITE}};
		id2 = add(b, 2);
	}
	ck_assert_int_eq(virtq_pop(q, &c1), 1);
	ck_assert_int_eq(virtq_pop(q, &c2), 1);
	virtq_save(q, st);
	ck_assert_uint_eq(st->desc_out, 3);
	ck_assert_int_eq(virtq_create(256, &q2), 0);
	ck_assert_int_eq(virtq_set_memory(q2, mem), 0);
	ck_assert_int_eq(virtq_restore(q2, st), 0);
	ck_assert(virtq_is_packed(q2));
	ck_assert_uint_eq(virtq_in_flight(q2), 2);
	/* the bound survives: 100 is clamped to the 4 writable bytes */
	ck_assert_int_eq(virtq_add_used(q2, id2, 100), 0);
	ck_assert_int_eq(virtq_add_used(q2, id1, 1), 0);
	ck_assert_int_eq(virtq_add_used(q2, id1, 1), -EINVAL);
	get_used(id2, 4);
	get_used(id1, 1);
	/* and the ring goes on from there */
	id1 = add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q2, &c1), 1);
	ck_assert_uint_eq(c1.head, id1);
	/* a state saved while not ready keeps the positions too */
	ck_assert_int_eq(virtq_complete(q2, &c1), 0);
	get_used(id1, 0);
	ck_assert_int_eq(virtq_set_ready(q2, false), 0);
	virtq_save(q2, st);
	ck_assert_int_eq(virtq_restore(q2, st), 0);
	ck_assert_int_eq(virtq_set_ready(q2, true), 0);
	id1 = add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q2, &c1), 1);
	ck_assert_uint_eq(c1.head, id1);
	virtq_save(q2, st);
	/* inconsistent packed positions are refused */
	st->used_pos = (uint16_t)(st->used_pos + 1) % 4;
	ck_assert_int_eq(virtq_restore(q2, st), -EINVAL);
	st->used_pos = 9;
	ck_assert_int_eq(virtq_restore(q2, st), -EINVAL);
	virtq_destroy(q2);
	free(st);
}
END_TEST

START_TEST(test_packed_config_checks)
{
	/* driver area 2-aligned: fine for split, not for packed */
	ck_assert_int_eq(virtq_set_size(q, 8), 0);
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_DESC, RING_BASE), 0);
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_AVAIL, RING_BASE + 0x802),
			 0);
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_USED, RING_BASE + 0x900),
			 0);
	ck_assert_int_eq(virtq_set_features(q, F_PACKED), 0);
	ck_assert_int_eq(virtq_set_ready(q, true), -EINVAL);
	ck_assert_int_eq(virtq_config_error(q), VIRTQ_ERR_AVAIL_MISALIGNED);
	/* driver area inside the ring */
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_AVAIL, RING_BASE + 0x10),
			 0);
	ck_assert_int_eq(virtq_set_ready(q, true), -EEXIST);
	ck_assert_int_eq(virtq_config_error(q), VIRTQ_ERR_RINGS_OVERLAP);
	/* the ring in ROM: the device writes used descriptors there */
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_AVAIL, RING_BASE + 0x800),
			 0);
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_DESC, C_GPA), 0);
	ck_assert_int_eq(virtq_set_ready(q, true), -EFAULT);
	ck_assert_int_eq(virtq_config_error(q), VIRTQ_ERR_DESC_READONLY);
	ck_assert_int_eq(virtq_set_addr(q, VIRTQ_AREA_DESC, RING_BASE), 0);
	ck_assert_int_eq(virtq_set_ready(q, true), 0);
	ck_assert(virtq_is_packed(q));
}
END_TEST

/* ======================================================= notifications */

START_TEST(test_packed_notify_device_area)
{
	start(8, F_VERSION_1 | F_PACKED);
	ck_assert(virtq_driver_needs_kick(drv)); /* ENABLE (zeroed) */
	virtq_disable_notification(q);
	ck_assert_uint_eq(virtq_driver_used_flags(drv),
			  VRING_PACKED_EVENT_FLAG_DISABLE);
	add1(DATA, 4, 0);
	ck_assert(!virtq_driver_needs_kick(drv));
	/* enable finds the chain that raced in */
	ck_assert(virtq_enable_notification(q));
	ck_assert_uint_eq(virtq_driver_used_flags(drv),
			  VRING_PACKED_EVENT_FLAG_ENABLE);
	ck_assert(virtq_driver_needs_kick(drv));
}
END_TEST

START_TEST(test_packed_notify_event_idx_kick)
{
	CHAIN(c);

	start(4, F_VERSION_1 | F_PACKED | F_EVENT_IDX);
	add1(DATA, 4, 0);
	ck_assert(virtq_driver_needs_kick(drv)); /* first: always */
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert(!virtq_enable_notification(q));
	ck_assert_uint_eq(virtq_driver_used_flags(drv),
			  VRING_PACKED_EVENT_FLAG_DESC);
	/* event at slot 1, wrap 1 */
	ck_assert_uint_eq(virtq_driver_avail_event(drv), 1u | 0x8000u);
	add1(DATA, 4, 0); /* slot 1: the event slot */
	ck_assert(virtq_driver_needs_kick(drv));
	add1(DATA, 4, 0); /* slot 2: past it, no kick */
	ck_assert(!virtq_driver_needs_kick(drv));
}
END_TEST

START_TEST(test_packed_interrupt_driver_area)
{
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	ck_assert(!virtq_needs_interrupt(q)); /* nothing used */
	add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert(virtq_needs_interrupt(q));  /* ENABLE */
	ck_assert(!virtq_needs_interrupt(q)); /* nothing new */
	ck_assert_int_eq(virtq_driver_disable_interrupts(drv), 0);
	add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert(!virtq_needs_interrupt(q)); /* DISABLE */
}
END_TEST

START_TEST(test_packed_interrupt_event_idx)
{
	CHAIN(c);
	unsigned int i;

	start(4, F_VERSION_1 | F_PACKED | F_EVENT_IDX);
	/* the driver wants an interrupt when slot 2 of lap 1 is used */
	ck_assert_int_eq(virtq_driver_set_used_event(drv, 2 | 0x8000), 0);
	ck_assert_int_eq(
		virtq_driver_set_avail_flags(drv, VRING_PACKED_EVENT_FLAG_DESC),
		0);
	for (i = 0; i < 3; i++) {
		add1(DATA, 4, 0);
		ck_assert_int_eq(virtq_pop(q, &c), 1);
		ck_assert_int_eq(virtq_complete(q, &c), 0);
		ck_assert_int_eq(virtq_needs_interrupt(q), i == 2);
		ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 1);
	}
	/* through the driver's helper: the next used slot (3, lap 1) */
	ck_assert_int_eq(virtq_driver_enable_interrupts(drv), 0);
	add1(DATA, 4, 0);
	add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert(virtq_needs_interrupt(q));
	ck_assert_int_eq(virtq_pop(q, &c), 1); /* slot 0 of lap 2 */
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert(!virtq_needs_interrupt(q));
}
END_TEST

/* ============================================================ IN_ORDER */

static void in_order_batch(uint64_t layout)
{
	struct virtq_chain c[3];
	struct virtq_buf bufs[3][2];
	uint16_t id[3];
	unsigned int i;

	start(8, F_VERSION_1 | layout | F_IN_ORDER);
	for (i = 0; i < 3; i++) {
		virtq_chain_init(&c[i], bufs[i], 2);
		id[i] = add1(DATA + 0x100 * i, 8, VRING_DESC_F_WRITE);
	}
	ck_assert_int_eq(virtq_pop_batch(q, c, 3), 3);
	/* out of order: refused, nothing used, queue fine */
	ck_assert_int_eq(virtq_complete(q, &c[1]), -EINVAL);
	ck_assert_int_eq(
		virtq_complete_batch(q, (struct virtq_chain[]){c[1], c[0]}, 2),
		-EINVAL);
	ck_assert(!virtq_is_broken(q));
	ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 0);
	/* a batch of three, the first two wholly written: one element */
	virtq_chain_skip_write(&c[0], 8);
	virtq_chain_skip_write(&c[1], 8);
	virtq_chain_skip_write(&c[2], 3);
	ck_assert_int_eq(virtq_complete_batch(q, c, 3), 0);
	if (layout) {
		/* slot 0 names the last id; slot 1 was never written used */
		struct vring_packed_desc p0, p1;

		ck_assert_int_eq(guest_memory_read(mem, RING_BASE, &p0, 16), 0);
		ck_assert_int_eq(
			guest_memory_read(mem, RING_BASE + 16, &p1, 16), 0);
		ck_assert_uint_eq(p0.id, id[2]);
		ck_assert_uint_eq(p0.len, 3);
		ck_assert(!(p1.flags & P_USED));
	} else {
		uint32_t e0[2];
		guest_addr_t u = virtq_driver_addr(drv, VIRTQ_AREA_USED);

		ck_assert_int_eq(guest_memory_read(mem, u + 4, e0, 8), 0);
		ck_assert_uint_eq(e0[0], id[2]);
		ck_assert_uint_eq(e0[1], 3);
		ck_assert_uint_eq(virtq_driver_used_idx(drv), 3);
	}
	get_used(id[0], 8);
	get_used(id[1], 8);
	get_used(id[2], 3);
	ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 0);
	/* partly written chains before the last: one element each */
	for (i = 0; i < 3; i++) {
		virtq_chain_init(&c[i], bufs[i], 2);
		id[i] = add1(DATA + 0x100 * i, 8, VRING_DESC_F_WRITE);
	}
	ck_assert_int_eq(virtq_pop_batch(q, c, 3), 3);
	virtq_chain_skip_write(&c[0], 2);
	ck_assert_int_eq(virtq_complete_batch(q, c, 3), 0);
	get_used(id[0], 2);
	get_used(id[1], 0);
	get_used(id[2], 0);
	ck_assert(!virtq_is_broken(q));
}

START_TEST(test_in_order_batch_split)
{
	in_order_batch(0);
}
END_TEST

START_TEST(test_in_order_batch_packed)
{
	in_order_batch(F_PACKED);
}
END_TEST

/* ============================================================= hostile */

START_TEST(test_hostile_packed_id_made_available_twice)
{
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	raw(0, DATA, 4, 3, 0, true);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	raw(1, DATA, 4, 3, 0, true); /* id 3 again, still in flight */
	expect_broken(VIRTQ_ERR_HEAD_IN_FLIGHT);
	/* the chain in flight can still be dropped, nothing is written */
	ck_assert_int_eq(virtq_complete(q, &c), -EIO);
}
END_TEST

START_TEST(test_hostile_packed_id_out_of_range)
{
	start(8, F_VERSION_1 | F_PACKED);
	raw(0, DATA, 4, 8, 0, true);
	expect_broken(VIRTQ_ERR_HEAD_OUT_OF_RANGE);
}
END_TEST

START_TEST(test_hostile_packed_completed_twice)
{
	CHAIN(c);
	uint16_t id;

	start(8, F_VERSION_1 | F_PACKED);
	id = add1(DATA, 4, VRING_DESC_F_WRITE);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_int_eq(virtq_complete(q, &c), 0);
	ck_assert_int_eq(virtq_complete(q, &c), -EINVAL);
	ck_assert_int_eq(virtq_add_used(q, id, 0), -EINVAL);
	ck_assert_int_eq(virtq_add_used(q, 200, 0), -EINVAL);
	ck_assert(!virtq_is_broken(q));
	get_used(id, 0);
	ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 0);
}
END_TEST

START_TEST(test_hostile_packed_chain_longer_than_ring)
{
	unsigned int i;

	start(4, F_VERSION_1 | F_PACKED);
	for (i = 0; i < 4; i++) /* every slot says NEXT */
		raw((uint16_t)i, DATA, 4, 0, VRING_DESC_F_NEXT, true);
	expect_broken(VIRTQ_ERR_CHAIN_TOO_LONG);
}
END_TEST

START_TEST(test_hostile_packed_chain_into_unavailable_slot)
{
	start(8, F_VERSION_1 | F_PACKED);
	/* slot 1 still has the zeroed flags: not available on lap 1 */
	raw(0, DATA, 4, 0, VRING_DESC_F_NEXT, true);
	expect_broken(VIRTQ_ERR_DESC_NOT_AVAIL);
}
END_TEST

START_TEST(test_hostile_packed_chain_into_wrong_lap)
{
	start(4, F_VERSION_1 | F_PACKED);
	/* slot 1 written with the bits of lap 2 */
	raw(0, DATA, 4, 0, VRING_DESC_F_NEXT, true);
	raw(1, DATA, 4, 0, 0, false);
	expect_broken(VIRTQ_ERR_DESC_NOT_AVAIL);
}
END_TEST

START_TEST(test_hostile_packed_ring_overrun)
{
	struct virtq_driver_buf b[3] = {
		{DATA, 4, 0}, {DATA, 4, 0}, {DATA, 4, 0}};
	CHAIN(c);

	start(4, F_VERSION_1 | F_PACKED);
	add(b, 3); /* slots 0..2, id 0, popped and held */
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	/* slots 3 and 0 (lap 2): slot 0 is still in flight */
	raw(0, DATA, 4, 3, 0, false);
	raw(3, DATA, 4, 3, VRING_DESC_F_NEXT, true);
	expect_broken(VIRTQ_ERR_RING_OVERRUN);
}
END_TEST

START_TEST(test_hostile_packed_indirect_in_chain)
{
	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	raw(1, TABLE, 16, 0, VRING_DESC_F_INDIRECT, true);
	raw(0, DATA, 4, 0, VRING_DESC_F_NEXT, true);
	expect_broken(VIRTQ_ERR_INDIRECT_IN_CHAIN);
}
END_TEST

START_TEST(test_hostile_packed_indirect_with_next)
{
	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	raw(1, DATA, 4, 0, 0, true);
	raw(0, TABLE, 16, 0, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, true);
	expect_broken(VIRTQ_ERR_INDIRECT_WITH_NEXT);
}
END_TEST

START_TEST(test_hostile_packed_indirect_not_negotiated)
{
	start(8, F_VERSION_1 | F_PACKED);
	raw(0, TABLE, 16, 0, VRING_DESC_F_INDIRECT, true);
	expect_broken(VIRTQ_ERR_INDIRECT_NOT_NEGOTIATED);
}
END_TEST

START_TEST(test_hostile_packed_indirect_table_checks)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
		enum virtq_error e;
	} cases[] = {
		{TABLE, 0, VIRTQ_ERR_INDIRECT_LEN_ZERO},
		{TABLE, 24, VIRTQ_ERR_INDIRECT_LEN_UNALIGNED},
		{TABLE, 16 * 9, VIRTQ_ERR_INDIRECT_TOO_BIG},
		{0x200000, 16, VIRTQ_ERR_INDIRECT_OUTSIDE_RAM},
		{~0ull - 7, 16, VIRTQ_ERR_INDIRECT_OUTSIDE_RAM},
	};
	unsigned int i = (unsigned int)_i;

	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	raw(0, cases[i].addr, cases[i].len, 0, VRING_DESC_F_INDIRECT, true);
	expect_broken(cases[i].e);
}
END_TEST

START_TEST(test_hostile_packed_indirect_nested)
{
	struct vring_packed_desc t = {
		.addr = TABLE, .len = 16, .flags = VRING_DESC_F_INDIRECT};

	start(8, F_VERSION_1 | F_PACKED | F_INDIRECT);
	ck_assert_int_eq(guest_memory_write(mem, TABLE, &t, 16), 0);
	raw(0, TABLE, 16, 0, VRING_DESC_F_INDIRECT, true);
	expect_broken(VIRTQ_ERR_INDIRECT_NESTED);
}
END_TEST

START_TEST(test_hostile_packed_buffer_checks)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t f0, f1;
		enum virtq_error e;
	} cases[] = {
		{DATA, 0, 0, 0, VIRTQ_ERR_ZERO_LENGTH},
		{~0ull - 3, 8, 0, 0, VIRTQ_ERR_BUFFER_WRAPS},
		{DATA, 4, VRING_DESC_F_WRITE, 0,
		 VIRTQ_ERR_READABLE_AFTER_WRITABLE},
		{DATA, 0xffffffffu, 0, 0, VIRTQ_ERR_CHAIN_LEN_OVERFLOW},
	};
	unsigned int i = (unsigned int)_i;

	start(8, F_VERSION_1 | F_PACKED);
	raw(1, DATA, cases[i].e == VIRTQ_ERR_CHAIN_LEN_OVERFLOW ? 2 : 4, 0,
	    cases[i].f1, true);
	raw(0, cases[i].addr, cases[i].len, 0,
	    (uint16_t)(cases[i].f0 | VRING_DESC_F_NEXT), true);
	expect_broken(cases[i].e);
}
END_TEST

START_TEST(test_hostile_packed_descriptor_snapshot_before_use)
{
	uint8_t got[4];
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	ck_assert_int_eq(guest_memory_write(mem, DATA, "good", 4), 0);
	ck_assert_int_eq(guest_memory_write(mem, DATA + 0x500, "evil", 4), 0);
	add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	/* the driver rewrites the slot after the pop */
	raw(0, DATA + 0x500, 4, 0, 0, true);
	ck_assert_int_eq(virtq_chain_read_exact(&c, got, 4), 0);
	ck_assert_mem_eq(got, "good", 4);
}
END_TEST

START_TEST(test_hostile_packed_used_len_bounded)
{
	CHAIN(c);
	uint16_t id;

	start(8, F_VERSION_1 | F_PACKED);
	id = add1(DATA, 4, 0); /* readable only: nothing writable */
	ck_assert_int_eq(virtq_pop(q, &c), 1);
	ck_assert_int_eq(virtq_complete_len(q, &c, 4096), 0);
	get_used(id, 0);
}
END_TEST

START_TEST(test_hostile_packed_event_structure_garbage)
{
	CHAIN(c);
	unsigned int i;

	start(4, F_VERSION_1 | F_PACKED | F_EVENT_IDX);
	for (i = 0; i < 40; i++) {
		ck_assert_int_eq(virtq_driver_set_used_event(
					 drv, (uint16_t)(i * 0x1357u)),
				 0);
		ck_assert_int_eq(virtq_driver_set_avail_flags(
					 drv, (uint16_t)(i * 0x2468u + i)),
				 0);
		add1(DATA, 4, 0);
		ck_assert_int_eq(virtq_pop(q, &c), 1);
		ck_assert_int_eq(virtq_complete(q, &c), 0);
		/* any answer, no crash, and the reserved value 3 means
		 * "interrupt" (never a lost one) */
		if (((i * 0x2468u + i) & 3) == 3)
			ck_assert(virtq_needs_interrupt(q));
		else
			(void)virtq_needs_interrupt(q);
		ck_assert_int_eq(virtq_driver_get_used(drv, NULL), 1);
	}
	ck_assert(!virtq_is_broken(q));
}
END_TEST

START_TEST(test_hostile_packed_broken_queue_pops_nothing)
{
	CHAIN(c);

	start(8, F_VERSION_1 | F_PACKED);
	raw(0, DATA, 0, 0, 0, true);
	expect_broken(VIRTQ_ERR_ZERO_LENGTH);
	ck_assert_int_eq(virtq_pop_batch(q, &c, 1), -EIO);
	ck_assert_int_eq(virtq_avail_count(q), -EIO);
	ck_assert(!virtq_needs_interrupt(q));
	ck_assert(!virtq_enable_notification(q));
	virtq_reset(q);
	ck_assert(!virtq_is_broken(q));
	ck_assert_int_eq(virtq_pop(q, &c), -ENODEV);
}
END_TEST

START_TEST(test_hostile_in_order_violation_refused)
{
	struct virtq_chain c[2];
	struct virtq_buf bufs[2][2];
	unsigned int layout = (unsigned int)_i;

	start(8, F_VERSION_1 | F_IN_ORDER | (layout ? F_PACKED : 0));
	virtq_chain_init(&c[0], bufs[0], 2);
	virtq_chain_init(&c[1], bufs[1], 2);
	add1(DATA, 4, 0);
	add1(DATA, 4, 0);
	ck_assert_int_eq(virtq_pop_batch(q, c, 2), 2);
	ck_assert_int_eq(virtq_add_used(q, c[1].head, 0), -EINVAL);
	ck_assert_int_eq(virtq_complete(q, &c[0]), 0);
	ck_assert_int_eq(virtq_complete(q, &c[1]), 0);
	ck_assert(!virtq_is_broken(q));
}
END_TEST

/* IN_ORDER pops keep their order through avail_count, undo and batch. */
START_TEST(test_in_order_undo_count_batch)
{
	struct virtq_chain c[3];
	struct virtq_buf bufs[3][2];
	unsigned int i, layout = (unsigned int)_i;

	start(8, F_VERSION_1 | F_IN_ORDER | (layout ? F_PACKED : 0));
	for (i = 0; i < 3; i++) {
		virtq_chain_init(&c[i], bufs[i], 2);
		add1(DATA, 4, VRING_DESC_F_WRITE);
	}
	ck_assert_int_eq(virtq_avail_count(q), 3);
	ck_assert_int_eq(virtq_pop(q, &c[0]), 1);
	ck_assert_int_eq(virtq_undo_pop(q, &c[0]), 0);
	ck_assert_int_eq(virtq_avail_count(q), 3);
	ck_assert_int_eq(virtq_pop(q, &c[0]), 1);
	ck_assert_int_eq(virtq_pop(q, &c[1]), 1); /* back to back */
	ck_assert_int_eq(virtq_pop_batch(q, &c[2], 2), 1);
	ck_assert_int_eq(virtq_complete(q, &c[2]), -EINVAL);
	ck_assert_int_eq(virtq_complete(q, &c[1]), -EINVAL);
	ck_assert_int_eq(virtq_complete(q, &c[0]), 0);
	ck_assert_int_eq(virtq_complete_batch(q, &c[1], 2), 0);
	get_used(c[0].head, 0);
	get_used(c[1].head, 0);
	get_used(c[2].head, 0);
	ck_assert(!virtq_is_broken(q));
}
END_TEST

static Suite *packed_suite(void)
{
	Suite *s = suite_create("virtio-queue-packed");
	TCase *tc = tcase_create("packed");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_packed_selected_by_feature);
	tcase_add_test(tc, test_packed_pop_read_write_complete);
	tcase_add_test(tc, test_packed_wrap_many_laps);
	tcase_add_loop_test(tc, test_packed_size_not_power_of_two, 0, 2);
	tcase_add_test(tc, test_packed_size_limits);
	tcase_add_test(tc, test_packed_out_of_order_completion);
	tcase_add_test(tc, test_packed_batch_completion);
	tcase_add_test(tc, test_packed_indirect);
	tcase_add_test(tc, test_packed_indirect_ignores_next_and_id);
	tcase_add_test(tc, test_packed_enobufs_not_consumed);
	tcase_add_test(tc, test_packed_state_roundtrip);
	tcase_add_test(tc, test_packed_config_checks);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_packed_notify_device_area);
	tcase_add_test(tc, test_packed_notify_event_idx_kick);
	tcase_add_test(tc, test_packed_interrupt_driver_area);
	tcase_add_test(tc, test_packed_interrupt_event_idx);
	suite_add_tcase(s, tc);

	tc = tcase_create("in-order");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_in_order_batch_split);
	tcase_add_test(tc, test_in_order_batch_packed);
	tcase_add_loop_test(tc, test_hostile_in_order_violation_refused, 0, 2);
	tcase_add_loop_test(tc, test_in_order_undo_count_batch, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hostile_packed_id_made_available_twice);
	tcase_add_test(tc, test_hostile_packed_id_out_of_range);
	tcase_add_test(tc, test_hostile_packed_completed_twice);
	tcase_add_test(tc, test_hostile_packed_chain_longer_than_ring);
	tcase_add_test(tc, test_hostile_packed_chain_into_unavailable_slot);
	tcase_add_test(tc, test_hostile_packed_chain_into_wrong_lap);
	tcase_add_test(tc, test_hostile_packed_ring_overrun);
	tcase_add_test(tc, test_hostile_packed_indirect_in_chain);
	tcase_add_test(tc, test_hostile_packed_indirect_with_next);
	tcase_add_test(tc, test_hostile_packed_indirect_not_negotiated);
	tcase_add_loop_test(tc, test_hostile_packed_indirect_table_checks, 0,
			    5);
	tcase_add_test(tc, test_hostile_packed_indirect_nested);
	tcase_add_loop_test(tc, test_hostile_packed_buffer_checks, 0, 4);
	tcase_add_test(tc, test_hostile_packed_descriptor_snapshot_before_use);
	tcase_add_test(tc, test_hostile_packed_used_len_bounded);
	tcase_add_test(tc, test_hostile_packed_event_structure_garbage);
	tcase_add_test(tc, test_hostile_packed_broken_queue_pops_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(packed_suite(), false);
}
