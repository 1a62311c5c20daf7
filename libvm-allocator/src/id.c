/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Id allocator: one bit per id in [first, last], set when allocated.
 *
 * Bits past the last id in the final word are kept set, so a search for a
 * zero bit never returns an id outside the range.  "hint" is the index of
 * the lowest word that may contain a zero bit: every word below it is full.
 */
#include <cvmm/vm-allocator.h>

#include <errno.h>
#include <stdlib.h>

struct id_allocator {
	uint32_t first;
	uint32_t last;
	uint64_t nids; /* last - first + 1, up to 2^32 */
	uint64_t nwords;
	uint64_t hint;
	uint64_t count;
	uint64_t *bits;
};

int id_allocator_create(uint32_t first, uint32_t last,
			struct id_allocator **out)
{
	struct id_allocator *a;
	uint64_t tail;

	if (!out || first > last)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->first = first;
	a->last = last;
	a->nids = (uint64_t)last - first + 1;
	a->nwords = (a->nids + 63) / 64;
	a->bits = calloc(a->nwords, sizeof(*a->bits));
	if (!a->bits) {
		free(a);
		return -ENOMEM;
	}
	tail = a->nids % 64;
	if (tail)
		a->bits[a->nwords - 1] = ~0ULL << tail;
	*out = a;
	return 0;
}

void id_allocator_destroy(struct id_allocator *a)
{
	if (!a)
		return;
	free(a->bits);
	free(a);
}

int id_allocator_allocate(struct id_allocator *a, uint32_t *id)
{
	uint64_t w, bit;

	if (!a || !id)
		return -EINVAL;
	for (w = a->hint; w < a->nwords; w++) {
		if (a->bits[w] != ~0ULL)
			break;
	}
	a->hint = w;
	if (w == a->nwords)
		return -ENOSPC;
	bit = (uint64_t)__builtin_ctzll(~a->bits[w]);
	a->bits[w] |= 1ULL << bit;
	a->count++;
	*id = (uint32_t)(a->first + w * 64 + bit);
	return 0;
}

int id_allocator_allocate_id(struct id_allocator *a, uint32_t id)
{
	uint64_t off;

	if (!a)
		return -EINVAL;
	if (id < a->first || id > a->last)
		return -ERANGE;
	off = id - a->first;
	if (a->bits[off / 64] & (1ULL << (off % 64)))
		return -EBUSY;
	a->bits[off / 64] |= 1ULL << (off % 64);
	a->count++;
	return 0;
}

int id_allocator_free(struct id_allocator *a, uint32_t id)
{
	uint64_t off;

	if (!a)
		return -EINVAL;
	if (id < a->first || id > a->last)
		return -ERANGE;
	off = id - a->first;
	if (!(a->bits[off / 64] & (1ULL << (off % 64))))
		return -ENOENT;
	a->bits[off / 64] &= ~(1ULL << (off % 64));
	a->count--;
	if (off / 64 < a->hint)
		a->hint = off / 64;
	return 0;
}

int id_allocator_is_allocated(const struct id_allocator *a, uint32_t id)
{
	uint64_t off;

	if (!a)
		return -EINVAL;
	if (id < a->first || id > a->last)
		return -ERANGE;
	off = id - a->first;
	return (a->bits[off / 64] >> (off % 64)) & 1;
}

uint64_t id_allocator_count(const struct id_allocator *a)
{
	return a ? a->count : 0;
}

int id_allocator_range(const struct id_allocator *a, uint32_t *first,
		       uint32_t *last)
{
	if (!a)
		return -EINVAL;
	if (first)
		*first = a->first;
	if (last)
		*last = a->last;
	return 0;
}
