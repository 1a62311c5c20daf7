/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Model-based fuzzer for the I/O bus: registrations, unregistrations, moves
 * and accesses decoded from the input are applied to the bus and to a
 * shadow map (a plain array searched linearly); every result must agree.
 */
#include <cvmm/devices/bus.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXDEV 64

struct shadow {
	uint64_t base, len;
	unsigned id;
	int used;
};

static struct shadow sh[MAXDEV];
static unsigned ids[MAXDEV];
static unsigned last_id;
static uint64_t last_off;
static int called;

static void dev_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	last_id = *(unsigned *)opaque;
	last_off = off;
	called++;
	memset(data, (int)(last_id & 0xff), size);
}

static void dev_write(void *opaque, uint64_t off, const void *data,
		      unsigned size)
{
	last_id = *(unsigned *)opaque;
	last_off = off;
	called++;
}

static const struct io_bus_ops ops = {dev_read, dev_write};

struct in {
	const uint8_t *d;
	size_t n, i;
};

static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned b = 0; b < bytes; b++)
		v |= (uint64_t)(in->i < in->n ? in->d[in->i++] : 0) << (8 * b);
	return v;
}

/* Addresses: mostly a small window so ranges collide, sometimes the top of
 * the 64-bit space so wrap checks run. */
static uint64_t addr(struct in *in)
{
	uint64_t v = take(in, 2);

	if (v & 0x8000)
		return UINT64_MAX - (v & 0x3ff);
	return v & 0x3ff;
}

static uint64_t length(struct in *in)
{
	uint64_t v = take(in, 1);

	if (v == 0xff)
		return UINT64_MAX;
	return v & 0x7f; /* 0 is a valid test of -EINVAL */
}

static int overlaps(uint64_t base, uint64_t last, int skip)
{
	for (int i = 0; i < MAXDEV; i++) {
		uint64_t l;

		if (!sh[i].used || i == skip)
			continue;
		l = sh[i].base + sh[i].len - 1;
		if (base <= l && sh[i].base <= last)
			return 1;
	}
	return 0;
}

static int find_at(uint64_t base)
{
	for (int i = 0; i < MAXDEV; i++)
		if (sh[i].used && sh[i].base == base)
			return i;
	return -1;
}

static int find_cover(uint64_t a)
{
	for (int i = 0; i < MAXDEV; i++)
		if (sh[i].used && a >= sh[i].base &&
		    a - sh[i].base <= sh[i].len - 1)
			return i;
	return -1;
}

static int free_slot(void)
{
	for (int i = 0; i < MAXDEV; i++)
		if (!sh[i].used)
			return i;
	return -1;
}

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "model mismatch: %s (line %d)\n", #c, \
				__LINE__);                                    \
			abort();                                              \
		}                                                             \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size, 0};
	struct io_bus *bus;
	unsigned steps = 0;

	memset(sh, 0, sizeof(sh));
	for (unsigned i = 0; i < MAXDEV; i++)
		ids[i] = i;
	if (io_bus_create(&bus))
		return 0;
	while (in.i < in.n && steps++ < 4096) {
		unsigned op = (unsigned)take(&in, 1) % 6;
		uint64_t a = addr(&in), l, last;
		int ret, idx, exp;

		switch (op) {
		case 0: { /* register */
			int slot = free_slot();

			l = length(&in);
			if (slot < 0)
				break;
			if (l == 0)
				exp = -EINVAL;
			else if (__builtin_add_overflow(a, l - 1, &last))
				exp = -EOVERFLOW;
			else if (overlaps(a, last, -1))
				exp = -EEXIST;
			else
				exp = 0;
			ret = io_bus_register(bus, a, l, &ops, &ids[slot]);
			CHECK(ret == exp);
			if (ret == 0)
				sh[slot] = (struct shadow){a, l, (unsigned)slot,
							   1};
			break;
		}
		case 1: /* unregister (waiting or not) */
			idx = find_at(a);
			ret = (take(&in, 1) & 1)
				      ? io_bus_unregister(bus, a)
				      : io_bus_unregister_nowait(bus, a);
			CHECK(ret == (idx < 0 ? -ENOENT : 0));
			if (idx >= 0)
				sh[idx].used = 0;
			break;
		case 2: { /* move */
			uint64_t nb = addr(&in);

			idx = find_at(a);
			if (idx < 0)
				exp = -ENOENT;
			else if (nb == a)
				exp = 0;
			else if (__builtin_add_overflow(nb, sh[idx].len - 1,
							&last))
				exp = -EOVERFLOW;
			else if (overlaps(nb, last, idx))
				exp = -EEXIST;
			else
				exp = 0;
			ret = io_bus_move(bus, a, nb);
			CHECK(ret == exp);
			if (ret == 0 && idx >= 0)
				sh[idx].base = nb;
			break;
		}
		case 3:
		case 4: { /* access */
			static const unsigned sizes[] = {1, 2, 4, 8, 3, 0};
			unsigned sz = sizes[take(&in, 1) % 6];
			uint8_t buf[8];
			int before = called;

			memset(buf, 0, sizeof(buf));
			idx = find_cover(a);
			if (sz != 1 && sz != 2 && sz != 4 && sz != 8)
				exp = -EINVAL;
			else if (a > UINT64_MAX - (sz - 1))
				exp = -EOVERFLOW;
			else if (idx < 0)
				exp = IO_BUS_UNHANDLED;
			else if (a - sh[idx].base + (sz - 1) > sh[idx].len - 1)
				exp = -ERANGE;
			else
				exp = 0;
			ret = op == 3 ? io_bus_read(bus, a, buf, sz)
				      : io_bus_write(bus, a, buf, sz);
			CHECK(ret == exp);
			if (exp == 0) {
				CHECK(called == before + 1);
				CHECK(last_id == sh[idx].id);
				CHECK(last_off == a - sh[idx].base);
				if (op == 3)
					CHECK(buf[0] == (sh[idx].id & 0xff));
			} else {
				CHECK(called == before);
				if (op == 3 && sz <= 8)
					for (unsigned b = 0; b < sz; b++)
						CHECK(buf[b] == 0xff);
			}
			break;
		}
		default: { /* find and count */
			uint64_t b = 0, len = 0;
			size_t n = 0;

			idx = find_cover(a);
			ret = io_bus_find(bus, a, &b, &len);
			CHECK(ret == (idx < 0 ? -ENOENT : 0));
			if (idx >= 0)
				CHECK(b == sh[idx].base && len == sh[idx].len);
			for (int i = 0; i < MAXDEV; i++)
				n += sh[i].used ? 1 : 0;
			CHECK(io_bus_count(bus) == n);
			CHECK(io_bus_synchronize(bus) == 0);
			break;
		}
		}
	}
	io_bus_destroy(bus);
	return 0;
}
