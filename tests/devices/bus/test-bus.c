/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for the I/O bus (libdevices/src/bus/bus.c). */
#include "cvmm-check.h"

#include <cvmm/devices/bus.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>

struct fake_dev {
	uint64_t last_offset;
	unsigned last_size;
	uint64_t last_value;
	unsigned reads, writes;
	uint8_t fill;
};

static void fake_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->reads++;
	d->last_offset = offset;
	d->last_size = size;
	memset(data, d->fill, size);
}

static void fake_write(void *opaque, uint64_t offset, const void *data,
		       unsigned size)
{
	struct fake_dev *d = opaque;
	uint64_t v = 0;

	d->writes++;
	d->last_offset = offset;
	d->last_size = size;
	memcpy(&v, data, size);
	d->last_value = v;
}

static const struct io_bus_ops fake_ops = {fake_read, fake_write};

static struct io_bus *new_bus(void)
{
	struct io_bus *bus = NULL;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_ptr_nonnull(bus);
	return bus;
}

START_TEST(test_bus_create_destroy)
{
	struct io_bus *bus = new_bus();

	ck_assert_int_eq(io_bus_create(NULL), -EINVAL);
	ck_assert_uint_eq(io_bus_count(bus), 0);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 0);
	io_bus_destroy(bus);
	io_bus_destroy(NULL);
	ck_assert_uint_eq(io_bus_count(NULL), 0);
	ck_assert_uint_eq(io_bus_unhandled_count(NULL), 0);
}
END_TEST

START_TEST(test_bus_dispatch_offsets_and_sizes)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {.fill = 0x5a};
	static const unsigned sizes[] = {1, 2, 4, 8};
	uint8_t buf[8];
	uint64_t v;

	ck_assert_int_eq(io_bus_register(bus, 0x3f8, 8, &fake_ops, &d), 0);
	for (unsigned i = 0; i < 4; i++) {
		unsigned sz = sizes[i];

		memset(buf, 0, sizeof(buf));
		ck_assert_int_eq(io_bus_read(bus, 0x3f8 + 8 - sz, buf, sz), 0);
		ck_assert_uint_eq(d.last_offset, 8 - sz);
		ck_assert_uint_eq(d.last_size, sz);
		for (unsigned j = 0; j < sz; j++)
			ck_assert_uint_eq(buf[j], 0x5a);
	}
	v = 0x1122334455667788ull;
	ck_assert_int_eq(io_bus_write(bus, 0x3f8, &v, 8), 0);
	ck_assert_uint_eq(d.last_value, v);
	ck_assert_uint_eq(d.last_offset, 0);
	v = 0xab;
	ck_assert_int_eq(io_bus_write(bus, 0x3fd, &v, 1), 0);
	ck_assert_uint_eq(d.last_offset, 5);
	ck_assert_uint_eq(d.last_value, 0xab);
	ck_assert_uint_eq(d.reads, 4);
	ck_assert_uint_eq(d.writes, 2);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_bad_sizes)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};
	uint8_t buf[8] = {0};

	ck_assert_int_eq(io_bus_register(bus, 0, 16, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_read(bus, 0, buf, 3), -EINVAL);
	ck_assert_uint_eq(buf[0], 0xff); /* filled even on error */
	ck_assert_int_eq(io_bus_read(bus, 0, buf, 0), -EINVAL);
	ck_assert_int_eq(io_bus_read(bus, 0, buf, 16), -EINVAL);
	ck_assert_int_eq(io_bus_write(bus, 0, buf, 5), -EINVAL);
	ck_assert_int_eq(io_bus_read(bus, 0, NULL, 1), -EINVAL);
	ck_assert_int_eq(io_bus_write(bus, 0, NULL, 1), -EINVAL);
	ck_assert_int_eq(io_bus_read(NULL, 0, buf, 1), -EINVAL);
	ck_assert_int_eq(io_bus_write(NULL, 0, buf, 1), -EINVAL);
	ck_assert_uint_eq(d.reads + d.writes, 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_register_errors)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};

	ck_assert_int_eq(io_bus_register(NULL, 0, 1, &fake_ops, &d), -EINVAL);
	ck_assert_int_eq(io_bus_register(bus, 0, 1, NULL, &d), -EINVAL);
	ck_assert_int_eq(io_bus_register(bus, 0x10, 0, &fake_ops, &d), -EINVAL);
	ck_assert_int_eq(io_bus_register(bus, UINT64_MAX, 2, &fake_ops, &d),
			 -EOVERFLOW);
	ck_assert_int_eq(io_bus_register(bus, 2, UINT64_MAX, &fake_ops, &d),
			 -EOVERFLOW);
	ck_assert_uint_eq(io_bus_count(bus), 0);
	/* a range ending exactly at 2^64 is fine */
	ck_assert_int_eq(io_bus_register(bus, UINT64_MAX - 7, 8, &fake_ops, &d),
			 0);
	ck_assert_uint_eq(io_bus_count(bus), 1);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_overlap_refused)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};

	ck_assert_int_eq(io_bus_register(bus, 0x100, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x100, 0x10, &fake_ops, &d),
			 -EEXIST);
	ck_assert_int_eq(io_bus_register(bus, 0x104, 1, &fake_ops, &d),
			 -EEXIST);
	ck_assert_int_eq(io_bus_register(bus, 0xf0, 0x11, &fake_ops, &d),
			 -EEXIST);
	ck_assert_int_eq(io_bus_register(bus, 0x10f, 0x10, &fake_ops, &d),
			 -EEXIST);
	ck_assert_int_eq(io_bus_register(bus, 0x0, 0x1000, &fake_ops, &d),
			 -EEXIST);
	/* touching neighbours are fine */
	ck_assert_int_eq(io_bus_register(bus, 0xf0, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x110, 0x10, &fake_ops, &d), 0);
	ck_assert_uint_eq(io_bus_count(bus), 3);
	/* a range covering the gap between two others */
	ck_assert_int_eq(io_bus_register(bus, 0x200, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x11f, 0xe2, &fake_ops, &d),
			 -EEXIST);
	ck_assert_int_eq(io_bus_register(bus, 0x120, 0xe0, &fake_ops, &d), 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_miss_all_ones_counted)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};
	uint32_t v = 0;

	ck_assert_int_eq(io_bus_register(bus, 0x60, 1, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x61, &v, 4), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(io_bus_write(bus, 0x5f, &v, 1), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 2);
	ck_assert_uint_eq(d.reads + d.writes, 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_hostile_bus_straddle)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {.fill = 0};
	uint64_t v = 0;

	ck_assert_int_eq(io_bus_register(bus, 0x1000, 6, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x1006, 2, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x1004, &v, 4), -ERANGE);
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert_int_eq(io_bus_write(bus, 0x1002, &v, 8), -ERANGE);
	ck_assert_uint_eq(d.reads + d.writes, 0);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 2);
	ck_assert_int_eq(io_bus_read(bus, 0x1002, &v, 4), 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_hostile_bus_address_wrap)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};
	uint64_t v = 0;

	ck_assert_int_eq(io_bus_register(bus, UINT64_MAX - 3, 4, &fake_ops, &d),
			 0);
	ck_assert_int_eq(io_bus_read(bus, UINT64_MAX - 1, &v, 4), -EOVERFLOW);
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert_int_eq(io_bus_write(bus, UINT64_MAX, &v, 2), -EOVERFLOW);
	ck_assert_uint_eq(d.reads + d.writes, 0);
	ck_assert_int_eq(io_bus_read(bus, UINT64_MAX - 3, &v, 4), 0);
	ck_assert_uint_eq(d.last_offset, 0);
	ck_assert_int_eq(io_bus_read(bus, UINT64_MAX, &v, 1), 0);
	ck_assert_uint_eq(d.last_offset, 3);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 2);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_unregister)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};
	uint8_t b;

	ck_assert_int_eq(io_bus_register(bus, 0x70, 2, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_unregister(bus, 0x71), -ENOENT);
	ck_assert_int_eq(io_bus_unregister(NULL, 0x70), -EINVAL);
	ck_assert_int_eq(io_bus_unregister(bus, 0x70), 0);
	ck_assert_int_eq(io_bus_unregister(bus, 0x70), -ENOENT);
	ck_assert_int_eq(io_bus_read(bus, 0x70, &b, 1), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(d.reads, 0);
	/* re-register the same place after removal */
	ck_assert_int_eq(io_bus_register(bus, 0x70, 2, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_unregister_nowait(bus, 0x70), 0);
	ck_assert_int_eq(io_bus_unregister_nowait(bus, 0x70), -ENOENT);
	ck_assert_int_eq(io_bus_synchronize(bus), 0);
	ck_assert_int_eq(io_bus_synchronize(NULL), -EINVAL);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_move)
{
	struct io_bus *bus = new_bus();
	struct fake_dev a = {.fill = 0xaa}, b = {.fill = 0xbb};
	uint8_t v;
	uint64_t base, len;

	ck_assert_int_eq(io_bus_register(bus, 0x1000, 0x100, &fake_ops, &a), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x2000, 0x100, &fake_ops, &b), 0);
	ck_assert_int_eq(io_bus_move(bus, 0x1001, 0x3000), -ENOENT);
	ck_assert_int_eq(io_bus_move(bus, 0x1000, 0x1f01), -EEXIST);
	ck_assert_int_eq(io_bus_move(bus, 0x1000, UINT64_MAX - 0x10),
			 -EOVERFLOW);
	ck_assert_int_eq(io_bus_move(NULL, 0x1000, 0x0), -EINVAL);
	ck_assert_int_eq(io_bus_move(bus, 0x1000, 0x1000), 0);
	/* overlapping its own old place is fine */
	ck_assert_int_eq(io_bus_move(bus, 0x1000, 0x1080), 0);
	ck_assert_int_eq(io_bus_find(bus, 0x1100, &base, &len), 0);
	ck_assert_uint_eq(base, 0x1080);
	ck_assert_uint_eq(len, 0x100);
	ck_assert_int_eq(io_bus_read(bus, 0x1000, &v, 1), IO_BUS_UNHANDLED);
	ck_assert_int_eq(io_bus_read(bus, 0x1090, &v, 1), 0);
	ck_assert_uint_eq(v, 0xaa);
	ck_assert_uint_eq(a.last_offset, 0x10);
	/* move past the other device: order in the table changes */
	ck_assert_int_eq(io_bus_move(bus, 0x1080, 0x5000), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x50ff, &v, 1), 0);
	ck_assert_uint_eq(v, 0xaa);
	ck_assert_int_eq(io_bus_read(bus, 0x2000, &v, 1), 0);
	ck_assert_uint_eq(v, 0xbb);
	ck_assert_int_eq(io_bus_move(bus, 0x5000, 0x0), 0);
	ck_assert_int_eq(io_bus_find(bus, 0x0, &base, NULL), 0);
	ck_assert_uint_eq(base, 0);
	ck_assert_uint_eq(io_bus_count(bus), 2);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_find)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {0};

	ck_assert_int_eq(io_bus_find(bus, 0, NULL, NULL), -ENOENT);
	ck_assert_int_eq(io_bus_find(NULL, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(io_bus_register(bus, 0x20, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_find(bus, 0x2f, NULL, NULL), 0);
	ck_assert_int_eq(io_bus_find(bus, 0x30, NULL, NULL), -ENOENT);
	ck_assert_int_eq(io_bus_find(bus, 0x1f, NULL, NULL), -ENOENT);
	io_bus_destroy(bus);
}
END_TEST

struct def_rec {
	uint64_t addr;
	unsigned reads, writes;
};

static void def_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct def_rec *r = opaque;

	r->reads++;
	r->addr = offset;
	memset(data, 0, size);
}

static void def_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	struct def_rec *r = opaque;

	r->writes++;
	r->addr = offset;
}

START_TEST(test_bus_default_handler)
{
	struct io_bus *bus = new_bus();
	struct io_bus_ops dops = {def_read, def_write};
	struct def_rec r = {0};
	uint16_t v = 0x1234;

	ck_assert_int_eq(io_bus_set_default(NULL, &dops, &r), -EINVAL);
	ck_assert_int_eq(io_bus_set_default(bus, &dops, &r), 0);
	ck_assert_int_eq(io_bus_read(bus, 0xcafe, &v, 2), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(r.addr, 0xcafe);
	ck_assert_int_eq(io_bus_write(bus, 0xbeef, &v, 2), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(r.addr, 0xbeef);
	ck_assert_uint_eq(r.reads, 1);
	ck_assert_uint_eq(r.writes, 1);
	ck_assert_int_eq(io_bus_set_default(bus, NULL, NULL), 0);
	ck_assert_int_eq(io_bus_read(bus, 0xcafe, &v, 2), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(v, 0xffff);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 3);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_null_callbacks)
{
	struct io_bus *bus = new_bus();
	struct io_bus_ops none = {NULL, NULL};
	uint32_t v = 0;

	ck_assert_int_eq(io_bus_register(bus, 0x80, 4, &none, NULL), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x80, &v, 4), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(io_bus_write(bus, 0x80, &v, 4), 0);
	ck_assert_uint_eq(io_bus_unhandled_count(bus), 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_many_ranges_sorted)
{
	struct io_bus *bus = new_bus();
	static struct fake_dev devs[512];
	uint32_t x = 12345;
	unsigned order[512];

	/* register 512 ranges in a pseudo-random order */
	for (unsigned i = 0; i < 512; i++)
		order[i] = i;
	for (unsigned i = 511; i > 0; i--) {
		unsigned j, t;

		x = x * 1103515245u + 12345u;
		j = (x >> 8) % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i < 512; i++) {
		unsigned k = order[i];

		devs[k].fill = (uint8_t)k;
		ck_assert_int_eq(io_bus_register(bus, 0x10000 + k * 0x20ull,
						 0x10, &fake_ops, &devs[k]),
				 0);
	}
	ck_assert_uint_eq(io_bus_count(bus), 512);
	for (unsigned k = 0; k < 512; k++) {
		uint8_t v;

		ck_assert_int_eq(io_bus_read(bus, 0x10000 + k * 0x20ull + 0xf,
					     &v, 1),
				 0);
		ck_assert_uint_eq(v, (uint8_t)k);
		ck_assert_uint_eq(devs[k].last_offset, 0xf);
		ck_assert_int_eq(io_bus_read(bus, 0x10000 + k * 0x20ull + 0x10,
					     &v, 1),
				 IO_BUS_UNHANDLED);
	}
	for (unsigned k = 0; k < 512; k += 2)
		ck_assert_int_eq(io_bus_unregister(bus, 0x10000 + k * 0x20ull),
				 0);
	ck_assert_uint_eq(io_bus_count(bus), 256);
	io_bus_destroy(bus);
}
END_TEST

/* ------------------------------------------------ re-entrancy and nesting */

struct reent {
	struct io_bus *bus;
	unsigned depth, max_depth;
	int inner_ret;
	int action; /* 0 recurse, 1 unregister, 2 nowait, 3 move, 4 sync */
	int result;
};

static void reent_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct reent *r = opaque;
	uint8_t b;
	int ret;

	switch (r->action) {
	case 0:
		r->depth++;
		if (r->depth > r->max_depth)
			r->max_depth = r->depth;
		ret = io_bus_read(r->bus, 0x10, &b, 1);
		if (ret)
			r->inner_ret = ret;
		r->depth--;
		break;
	case 1:
		r->result = io_bus_unregister(r->bus, 0x10);
		break;
	case 2:
		r->result = io_bus_unregister_nowait(r->bus, 0x10);
		break;
	case 3:
		r->result = io_bus_move(r->bus, 0x10, 0x40);
		break;
	default:
		r->result = io_bus_synchronize(r->bus);
		break;
	}
	memset(data, 0, size);
}

static const struct io_bus_ops reent_ops = {reent_read, NULL};

START_TEST(test_hostile_bus_reentrancy_bounded)
{
	struct io_bus *bus = new_bus();
	struct reent r = {.bus = bus};
	uint8_t b;

	ck_assert_int_eq(io_bus_register(bus, 0x10, 1, &reent_ops, &r), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x10, &b, 1), 0);
	/* callbacks ran at nesting 1..IO_BUS_MAX_NESTING; the next was refused */
	ck_assert_uint_eq(r.max_depth, IO_BUS_MAX_NESTING);
	ck_assert_int_eq(r.inner_ret, -ELOOP);
	ck_assert_uint_eq(r.depth, 0);
	ck_assert_uint_ge(io_bus_unhandled_count(bus), 1);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_bus_unregister_inside_dispatch)
{
	struct io_bus *bus = new_bus();
	struct reent r = {.bus = bus};
	uint8_t b;

	ck_assert_int_eq(io_bus_register(bus, 0x10, 1, &reent_ops, &r), 0);
	r.action = 1;
	ck_assert_int_eq(io_bus_read(bus, 0x10, &b, 1), 0);
	ck_assert_int_eq(r.result, -EDEADLK);
	ck_assert_uint_eq(io_bus_count(bus), 1);
	r.action = 4;
	ck_assert_int_eq(io_bus_read(bus, 0x10, &b, 1), 0);
	ck_assert_int_eq(r.result, -EDEADLK);
	r.action = 3;
	ck_assert_int_eq(io_bus_read(bus, 0x10, &b, 1), 0);
	ck_assert_int_eq(r.result, 0);
	ck_assert_int_eq(io_bus_find(bus, 0x40, NULL, NULL), 0);
	ck_assert_int_eq(io_bus_move(bus, 0x40, 0x10), 0);
	r.action = 2;
	ck_assert_int_eq(io_bus_read(bus, 0x10, &b, 1), 0);
	ck_assert_int_eq(r.result, 0);
	ck_assert_uint_eq(io_bus_count(bus), 0);
	ck_assert_int_eq(io_bus_synchronize(bus), 0);
	io_bus_destroy(bus);
}
END_TEST

/* Moves from inside one dispatch cannot be reclaimed until it returns: the
 * number of retired tables is capped and the move fails cleanly. */
struct mover {
	struct io_bus *bus;
	unsigned ok;
	int err;
};

static void mover_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct mover *m = opaque;

	for (unsigned i = 0; i < 10000; i++) {
		uint64_t from = (i & 1) ? 0x2000 : 0x1000;
		int ret = io_bus_move(m->bus, from, from ^ 0x3000);

		if (ret) {
			m->err = ret;
			break;
		}
		m->ok++;
	}
}

START_TEST(test_hostile_bus_retired_tables_bounded)
{
	struct io_bus *bus = new_bus();
	struct mover m = {.bus = bus};
	struct io_bus_ops mops = {mover_read, NULL};
	struct fake_dev d = {0};
	uint8_t b;

	ck_assert_int_eq(io_bus_register(bus, 0x0, 1, &mops, &m), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x1000, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x0, &b, 1), 0);
	ck_assert_int_eq(m.err, -EAGAIN);
	ck_assert_uint_gt(m.ok, 100);
	ck_assert_uint_lt(m.ok, 10000);
	/* once the dispatch returned, writers make progress again */
	for (unsigned i = 0; i < 100000; i++) {
		uint64_t from = (i & 1) ? 0x2000 : 0x1000;

		if (m.ok & 1)
			from ^= 0x3000;
		ck_assert_int_eq(io_bus_move(bus, from, from ^ 0x3000), 0);
	}
	io_bus_destroy(bus);
}
END_TEST

/* At the retired-table bound, growth is refused but removal is not: an
 * unregister that returned 0 really took the range off the bus (PCI relies
 * on it when a BAR stops decoding). */
static void bound_then_unregister(void *opaque, uint64_t offset, void *data,
				  unsigned size)
{
	struct mover *m = opaque;

	mover_read(opaque, offset, data, size);
	/* m->err is -EAGAIN: the bound is reached.  Still: */
	m->ok = io_bus_unregister_nowait(m->bus,
					 (m->ok & 1) ? 0x2000 : 0x1000) == 0;
}

START_TEST(test_hostile_bus_unregister_at_retired_bound)
{
	struct io_bus *bus = new_bus();
	struct mover m = {.bus = bus};
	struct io_bus_ops mops = {bound_then_unregister, NULL};
	struct fake_dev d = {0};
	uint8_t b;

	ck_assert_int_eq(io_bus_register(bus, 0x0, 1, &mops, &m), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x1000, 0x10, &fake_ops, &d), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x0, &b, 1), 0);
	ck_assert_int_eq(m.err, -EAGAIN);
	ck_assert_uint_eq(m.ok, 1);
	ck_assert_int_eq(io_bus_find(bus, 0x1000, NULL, NULL), -ENOENT);
	ck_assert_int_eq(io_bus_find(bus, 0x2000, NULL, NULL), -ENOENT);
	ck_assert_int_eq(io_bus_read(bus, 0x1000, &b, 1), IO_BUS_UNHANDLED);
	ck_assert_int_eq(io_bus_read(bus, 0x2000, &b, 1), IO_BUS_UNHANDLED);
	ck_assert_uint_eq(io_bus_count(bus), 1);
	io_bus_destroy(bus);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct race {
	struct io_bus *bus;
	atomic_bool stop;
	atomic_bool dead; /* set once unregister() returned */
	atomic_ulong calls_after_dead;
	atomic_ulong hits, misses;
};

static void race_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct race *r = opaque;

	if (atomic_load(&r->dead))
		atomic_fetch_add(&r->calls_after_dead, 1);
	memset(data, 0x11, size);
}

static const struct io_bus_ops race_ops = {race_read, NULL};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	uint64_t addr = 0;

	while (!atomic_load(&r->stop)) {
		uint32_t v;
		int ret;

		addr = (addr + 0x40) & 0xfffff;
		ret = io_bus_read(r->bus, addr, &v, 4);
		if (ret == 0) {
			ck_assert_uint_eq(v, 0x11111111u);
			atomic_fetch_add(&r->hits, 1);
		} else {
			ck_assert_int_eq(ret, IO_BUS_UNHANDLED);
			ck_assert_uint_eq(v, 0xffffffffu);
			atomic_fetch_add(&r->misses, 1);
		}
	}
	return NULL;
}

START_TEST(test_hostile_bus_move_race)
{
	struct race r = {0};
	pthread_t th[3];
	uint64_t base = 0;

	r.bus = new_bus();
	ck_assert_int_eq(io_bus_register(r.bus, 0, 0x1000, &race_ops, &r), 0);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_reader, &r),
				 0);
	/* let the readers get going (bounded wait) */
	for (unsigned i = 0; i < 100000 && atomic_load(&r.hits) < 100; i++)
		sched_yield();
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t nb = (base + 0x3000) & 0xff000;

		ck_assert_int_eq(io_bus_move(r.bus, base, nb), 0);
		base = nb;
	}
	/* unregister with readers running: never called afterwards */
	ck_assert_int_eq(io_bus_unregister(r.bus, base), 0);
	atomic_store(&r.dead, true);
	for (unsigned i = 0; i < 2000; i++)
		sched_yield();
	atomic_store(&r.stop, true);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_eq(atomic_load(&r.calls_after_dead), 0);
	ck_assert_uint_gt(atomic_load(&r.hits), 0);
	ck_assert_uint_gt(atomic_load(&r.misses), 0);
	ck_assert_uint_eq(io_bus_count(r.bus), 0);
	io_bus_destroy(r.bus);
}
END_TEST

/* Repeated register/unregister of a heap-allocated device while readers
 * run: under ASan/valgrind any use after free would be reported. */
struct heapdev {
	uint32_t magic;
};

static void heap_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct heapdev *h = opaque;

	memset(data, 0, size);
	memcpy(data, &h->magic, size < 4 ? size : 4);
}

static const struct io_bus_ops heap_ops = {heap_read, NULL};

static void *heap_reader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		uint32_t v;

		if (io_bus_read(r->bus, 0x100, &v, 4) == 0) {
			ck_assert_uint_eq(v, 0xfeedf00du);
			atomic_fetch_add(&r->hits, 1);
		}
	}
	return NULL;
}

START_TEST(test_bus_unregister_frees_safely)
{
	struct race r = {0};
	pthread_t th[2];

	r.bus = new_bus();
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, heap_reader, &r),
				 0);
	for (unsigned i = 0; i < 2000; i++) {
		struct heapdev *h = malloc(sizeof(*h));

		ck_assert_ptr_nonnull(h);
		h->magic = 0xfeedf00du;
		ck_assert_int_eq(io_bus_register(r.bus, 0x100, 4, &heap_ops, h),
				 0);
		if (i % 16 == 0)
			sched_yield();
		ck_assert_int_eq(io_bus_unregister(r.bus, 0x100), 0);
		h->magic = 0xdeaddead;
		free(h);
	}
	atomic_store(&r.stop, true);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	io_bus_destroy(r.bus);
}
END_TEST

/* More threads than exclusive reader slots (127): the rest share one slot
 * with atomic counters; slots are recycled when threads exit. */
struct many {
	struct io_bus *bus;
	pthread_barrier_t start;
	atomic_ulong hits;
};

static void *many_reader(void *arg)
{
	struct many *m = arg;

	pthread_barrier_wait(&m->start);
	for (unsigned i = 0; i < 200; i++) {
		uint32_t v;

		if (io_bus_read(m->bus, 0x100 + (i % 4), &v, 1) == 0)
			atomic_fetch_add(&m->hits, 1);
	}
	return NULL;
}

START_TEST(test_bus_many_threads_share_slots)
{
	enum {
		NTH = 150
	};
	static pthread_t th[NTH];
	struct many m = {0};
	struct race dev = {0}; /* thread-safe callback */

	m.bus = new_bus();
	ck_assert_int_eq(io_bus_register(m.bus, 0x100, 4, &race_ops, &dev), 0);
	for (unsigned round = 0; round < 2; round++) {
		atomic_store(&m.hits, 0);
		ck_assert_int_eq(pthread_barrier_init(&m.start, NULL, NTH + 1),
				 0);
		for (unsigned i = 0; i < NTH; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL,
							many_reader, &m),
					 0);
		pthread_barrier_wait(&m.start);
		/* writers make progress while 150 readers run */
		ck_assert_int_eq(io_bus_move(m.bus, 0x100, 0x100), 0);
		ck_assert_int_eq(io_bus_synchronize(m.bus), 0);
		for (unsigned i = 0; i < NTH; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&m.start);
		ck_assert_uint_eq(atomic_load(&m.hits), NTH * 200);
	}
	ck_assert_int_eq(io_bus_unregister(m.bus, 0x100), 0);
	io_bus_destroy(m.bus);
}
END_TEST

/* A forked child (fresh address space) can still dispatch and reclaim. */
START_TEST(test_bus_after_fork)
{
	struct io_bus *bus = new_bus();
	struct fake_dev d = {.fill = 7};
	pid_t pid;
	int status = 0;

	ck_assert_int_eq(io_bus_register(bus, 0x10, 4, &fake_ops, &d), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint8_t v = 0;
		int ok = io_bus_move(bus, 0x10, 0x20) == 0 &&
			 io_bus_read(bus, 0x21, &v, 1) == 0 && v == 7 &&
			 io_bus_unregister(bus, 0x20) == 0 &&
			 io_bus_count(bus) == 0;

		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(io_bus_count(bus), 1);
	io_bus_destroy(bus);
}
END_TEST

static Suite *bus_suite(void)
{
	Suite *s = suite_create("io_bus");
	TCase *tc = tcase_create("core");
	TCase *tt = tcase_create("threads");

	tcase_add_test(tc, test_bus_create_destroy);
	tcase_add_test(tc, test_bus_dispatch_offsets_and_sizes);
	tcase_add_test(tc, test_bus_bad_sizes);
	tcase_add_test(tc, test_bus_register_errors);
	tcase_add_test(tc, test_bus_overlap_refused);
	tcase_add_test(tc, test_bus_miss_all_ones_counted);
	tcase_add_test(tc, test_hostile_bus_straddle);
	tcase_add_test(tc, test_hostile_bus_address_wrap);
	tcase_add_test(tc, test_bus_unregister);
	tcase_add_test(tc, test_bus_move);
	tcase_add_test(tc, test_bus_find);
	tcase_add_test(tc, test_bus_default_handler);
	tcase_add_test(tc, test_bus_null_callbacks);
	tcase_add_test(tc, test_bus_many_ranges_sorted);
	tcase_add_test(tc, test_hostile_bus_reentrancy_bounded);
	tcase_add_test(tc, test_bus_unregister_inside_dispatch);
	tcase_add_test(tc, test_hostile_bus_retired_tables_bounded);
	tcase_add_test(tc, test_hostile_bus_unregister_at_retired_bound);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tt, 120);
	tcase_add_test(tt, test_hostile_bus_move_race);
	tcase_add_test(tt, test_bus_unregister_frees_safely);
	tcase_add_test(tt, test_bus_many_threads_share_slots);
	tcase_add_test(tt, test_bus_after_fork);
	suite_add_tcase(s, tt);
	return s;
}

int main(void)
{
	return cvmm_check_run(bus_suite(), false);
}
