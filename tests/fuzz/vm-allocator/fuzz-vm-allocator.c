/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Model-based fuzzer for libvm-allocator.
 *
 * The input is decoded into: a managed range (small, odd, at the top of the
 * 64-bit space, the whole space, around 2^63, or raw), an id range, then a
 * sequence of operations: allocate with each policy and many sizes and
 * alignments (valid and invalid), free valid and invalid addresses with and
 * without a size, and id allocator operations.  After every operation the
 * allocator is compared with a shadow model (tests/vm-allocator/
 * alloc-model.h: a sorted array of intervals, answers by brute force over
 * its gaps): return codes, returned addresses (so first fit really is the
 * lowest fitting aligned address and last fit the highest), the list of
 * allocations and of free ranges, byte counters and the library's own
 * invariant check.  Any disagreement aborts.
 */
#include <cvmm/vm-allocator.h>

#include "alloc-model.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 400
#define MAX_IDS 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t get8(struct input *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t get16(struct input *in)
{
	return (uint16_t)(get8(in) | (uint16_t)get8(in) << 8);
}

static uint64_t get64(struct input *in)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)get8(in) << (8 * i);
	return v;
}

static void fail(const char *what, int op, const char *detail)
{
	fprintf(stderr, "fuzz-vm-allocator: op %d: %s: %s\n", op, what,
		detail ? detail : "");
	abort();
}

static void pick_range(struct input *in, uint64_t *base, uint64_t *last)
{
	uint16_t w = get16(in);

	switch (get8(in) % 8) {
	case 0:
		*base = 0;
		*last = 0xff;
		break;
	case 1:
		*base = 0x1000;
		*last = 0x1fff;
		break;
	case 2: /* odd bounds */
		*base = 3 + (w >> 8);
		*last = *base + (w & 0xff) * 7 + 5;
		break;
	case 3:
		*base = 0;
		*last = UINT64_MAX;
		break;
	case 4:
		*base = UINT64_MAX - w;
		*last = UINT64_MAX;
		break;
	case 5:
		*base = (1ULL << 63) - (w & 0xff);
		*last = (1ULL << 63) + (w >> 8);
		break;
	case 6:
		*base = get64(in);
		*last = *base > UINT64_MAX - w ? UINT64_MAX : *base + w;
		break;
	default: /* raw, possibly base > last */
		*base = get64(in);
		*last = get64(in);
		break;
	}
}

static uint64_t pick_size(struct input *in, uint64_t span)
{
	uint8_t k = get8(in);

	switch (k % 8) {
	case 0:
		return 0;
	case 1:
		return 1 + get8(in) % 64;
	case 2:
		return (span >> (get8(in) % 64)) + get8(in) % 3;
	case 3:
		return UINT64_MAX - get8(in) % 4;
	case 4:
		return get64(in);
	case 5:
		return span + 1; /* the whole range (0 when it is 2^64) */
	default:
		return 1 + get16(in) % 0x200;
	}
}

static uint64_t pick_align(struct input *in)
{
	uint8_t k = get8(in);

	if (k < 200)
		return 1ULL << (k % 12);
	if (k < 240)
		return 1ULL << (k % 64);
	switch (k % 4) {
	case 0:
		return 0;
	case 1:
		return 3ULL << (k % 62);
	case 2:
		return UINT64_MAX;
	default:
		return get64(in);
	}
}

static uint64_t pick_addr(struct input *in, const struct model *m,
			  uint64_t align)
{
	uint64_t span = m->last - m->base, a;
	uint8_t k = get8(in);

	switch (k % 6) {
	case 0:
		return get64(in);
	case 1:
		return m->base - 1 - get8(in) % 4; /* below (may wrap) */
	case 2:
		return m->last + 1 + get8(in) % 4; /* above (may wrap) */
	case 3:
		if (m->n) {
			size_t i = get16(in) % m->n;

			return get8(in) % 2 ? m->v[i].start : m->v[i].last;
		}
		break;
	default:
		break;
	}
	a = m->base +
	    (span < 0xffff ? get16(in) % (span + 1) : (uint64_t)get16(in) * 3);
	if (k & 0x80)
		a &= ~(align - 1);
	return a;
}

struct id_model {
	struct id_allocator *a;
	uint32_t first;
	uint32_t last;
	bool used[MAX_IDS];
	uint64_t count;
};

static void id_op(struct input *in, struct id_model *im, int op)
{
	uint32_t id, got = 0, lowest;
	uint64_t n = (uint64_t)im->last - im->first + 1;
	int err, want;
	uint8_t k = get8(in);

	/* An id near the range, in or out of it. */
	id = im->first + (uint32_t)(get16(in) % (n + 4)) - 2;
	switch (k % 4) {
	case 0:
		for (lowest = 0; lowest < n && im->used[lowest]; lowest++)
			;
		err = id_allocator_allocate(im->a, &got);
		if (lowest == n) {
			if (err != -ENOSPC)
				fail("id allocate on full", op, NULL);
			break;
		}
		if (err || got != im->first + lowest)
			fail("id allocate lowest", op, NULL);
		im->used[lowest] = true;
		im->count++;
		break;
	case 1:
		err = id_allocator_allocate_id(im->a, id);
		want = id < im->first || id > im->last ? -ERANGE
		       : im->used[id - im->first]      ? -EBUSY
						       : 0;
		if (err != want)
			fail("id allocate_id", op, NULL);
		if (!err) {
			im->used[id - im->first] = true;
			im->count++;
		}
		break;
	default:
		err = id_allocator_free(im->a, id);
		want = id < im->first || id > im->last ? -ERANGE
		       : !im->used[id - im->first]     ? -ENOENT
						       : 0;
		if (err != want)
			fail("id free", op, NULL);
		if (!err) {
			im->used[id - im->first] = false;
			im->count--;
		}
		break;
	}
	if (id_allocator_count(im->a) != im->count)
		fail("id count", op, NULL);
	err = id_allocator_is_allocated(im->a, id);
	want = id < im->first || id > im->last ? -ERANGE
					       : im->used[id - im->first];
	if (err != want)
		fail("id is_allocated", op, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model_iv buf[MAX_OPS + 1];
	struct input in = {data, size};
	struct address_allocator *a = NULL;
	struct id_model im;
	struct model m;
	uint64_t base, last;
	char why[256];
	const char *diff;
	int op, err;

	pick_range(&in, &base, &last);
	err = address_allocator_create(base, last, &a);
	if (base > last) {
		if (err != -EINVAL || a)
			fail("create with base > last", -1, NULL);
		return 0;
	}
	if (err)
		fail("create", -1, NULL);
	model_init(&m, base, last, buf, MAX_OPS + 1);

	memset(&im, 0, sizeof(im));
	im.first = get16(&in);
	im.first = im.first > 0xff00 ? UINT32_MAX - (im.first & 0xff)
				     : im.first;
	im.last = im.first + get8(&in) % MAX_IDS;
	if (im.last < im.first)
		im.last = UINT32_MAX;
	if (id_allocator_create(im.first, im.last, &im.a))
		fail("id create", -1, NULL);

	diff = model_compare(&m, a, why, sizeof(why));
	if (diff)
		fail("initial state", -1, diff);

	for (op = 0; op < MAX_OPS && in.n; op++) {
		uint8_t k = get8(&in);
		uint64_t sz, align, at = 0, mat, addr;
		enum address_allocator_policy p;
		size_t i;
		int merr;

		switch (k % 8) {
		case 0:
		case 1:
		case 2:
		case 3: /* allocate, each policy (or an invalid one) */
			if (k % 4 == 3) /* 3 and 4 are invalid policies */
				p = (enum address_allocator_policy)(get8(&in) %
								    5);
			else
				p = (enum address_allocator_policy)(k % 4);
			sz = pick_size(&in, last - base);
			align = pick_align(&in);
			if (p == ADDRESS_ALLOC_EXACT)
				at = pick_addr(&in, &m, align);
			mat = at;
			err = address_allocator_allocate(a, sz, align, p, &at);
			merr = model_allocate(&m, sz, align, (int)p, &mat);
			if (err != merr) {
				snprintf(why, sizeof(why),
					 "size %#llx align %#llx policy %d: "
					 "%d, model %d",
					 (unsigned long long)sz,
					 (unsigned long long)align, (int)p, err,
					 merr);
				fail("allocate result", op, why);
			}
			if (!err && at != mat) {
				snprintf(why, sizeof(why),
					 "policy %d placed at %#llx, model "
					 "%#llx",
					 (int)p, (unsigned long long)at,
					 (unsigned long long)mat);
				fail("allocate address", op, why);
			}
			if (!err && (at % align || at < base ||
				     at - base > (last - base) - (sz - 1)))
				fail("allocate placement", op, NULL);
			break;
		case 4:
		case 5: /* free a live allocation, with or without its size */
			if (!m.n)
				break;
			i = get16(&in) % m.n;
			addr = m.v[i].start;
			sz = 0;
			if (k & 0x10) {
				sz = m.v[i].last - addr + 1;
				if (k & 0x20) /* wrong size */
					sz += 1 + get8(&in);
			}
			err = address_allocator_free(a, addr, sz);
			merr = model_free(&m, addr, sz);
			if (err != merr)
				fail("free live", op, NULL);
			break;
		case 6: /* free anything */
			addr = pick_addr(&in, &m, 1);
			sz = k & 0x10 ? pick_size(&in, last - base) : 0;
			err = address_allocator_free(a, addr, sz);
			merr = model_free(&m, addr, sz);
			if (err != merr) {
				snprintf(why, sizeof(why),
					 "addr %#llx size %#llx: %d, model %d",
					 (unsigned long long)addr,
					 (unsigned long long)sz, err, merr);
				fail("free", op, why);
			}
			break;
		default:
			id_op(&in, &im, op);
			break;
		}
		diff = model_compare(&m, a, why, sizeof(why));
		if (diff)
			fail("state", op, diff);
	}
	address_allocator_destroy(a);
	id_allocator_destroy(im.a);
	return 0;
}
