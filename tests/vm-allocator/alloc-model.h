/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A deliberately simple shadow model of the address allocator, shared by
 * the unit tests and the fuzzer: a sorted array of allocated intervals.
 * Every answer is computed by brute force over the array and its gaps, so
 * it is easy to believe and independent of the tree code.
 */
#ifndef CVMM_TESTS_ALLOC_MODEL_H
#define CVMM_TESTS_ALLOC_MODEL_H

#include <cvmm/vm-allocator.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 model_u128;

struct model_iv {
	uint64_t start;
	uint64_t last;
};

struct model {
	uint64_t base;
	uint64_t last;
	struct model_iv *v; /* sorted, disjoint */
	size_t n;
	size_t cap;
};

static inline void model_init(struct model *m, uint64_t base, uint64_t last,
			      struct model_iv *buf, size_t cap)
{
	m->base = base;
	m->last = last;
	m->v = buf;
	m->n = 0;
	m->cap = cap;
}

/*
 * Gap i (0 <= i <= n) is the free space before interval i (or after the last
 * one for i == n).  Returns false when that gap is empty.
 */
static inline bool model_gap(const struct model *m, size_t i, uint64_t *gs,
			     uint64_t *gl)
{
	uint64_t s, l;

	if (i == 0) {
		s = m->base;
	} else {
		if (m->v[i - 1].last == m->last)
			return false;
		s = m->v[i - 1].last + 1;
	}
	if (i == m->n) {
		l = m->last;
	} else {
		if (m->v[i].start == s)
			return false;
		l = m->v[i].start - 1;
	}
	*gs = s;
	*gl = l;
	return true;
}

static inline void model_insert(struct model *m, uint64_t s, uint64_t l)
{
	size_t i = 0;

	while (i < m->n && m->v[i].start < s)
		i++;
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(m->v[0]));
	m->v[i].start = s;
	m->v[i].last = l;
	m->n++;
}

/* Expected result of address_allocator_allocate(); applies it on success.
 * The model cannot fail for lack of memory: callers keep n < cap. */
static inline int model_allocate(struct model *m, uint64_t size, uint64_t align,
				 int policy, uint64_t *addr)
{
	uint64_t span, a, gs, gl, end;
	size_t i;

	if (size == 0 || align == 0 || (align & (align - 1)))
		return -EINVAL;
	span = size - 1;
	if (policy == ADDRESS_ALLOC_EXACT) {
		a = *addr;
		if (a % align)
			return -EINVAL;
		if (a > UINT64_MAX - span)
			return -EOVERFLOW;
		end = a + span;
		if (a < m->base || end > m->last)
			return -ERANGE;
		for (i = 0; i < m->n; i++) {
			if (!(m->v[i].last < a || m->v[i].start > end))
				return -EBUSY;
		}
		model_insert(m, a, end);
		return 0;
	}
	if (policy == ADDRESS_ALLOC_FIRST_FIT) {
		for (i = 0; i <= m->n; i++) {
			if (!model_gap(m, i, &gs, &gl))
				continue;
			/* Lowest multiple of align >= gs, if any. */
			if (gs % align == 0)
				a = gs;
			else if (gs / align == UINT64_MAX / align)
				continue;
			else
				a = (gs / align + 1) * align;
			if (a >= gs && a <= gl && gl - a >= span) {
				model_insert(m, a, a + span);
				*addr = a;
				return 0;
			}
		}
		return -ENOMEM;
	}
	if (policy == ADDRESS_ALLOC_LAST_FIT) {
		for (i = m->n + 1; i-- > 0;) {
			if (!model_gap(m, i, &gs, &gl))
				continue;
			if (gl - gs < span)
				continue;
			a = (gl - span) / align * align;
			if (a >= gs) {
				model_insert(m, a, a + span);
				*addr = a;
				return 0;
			}
		}
		return -ENOMEM;
	}
	return -EINVAL;
}

/* Expected result of address_allocator_free(); applies it on success. */
static inline int model_free(struct model *m, uint64_t addr, uint64_t size)
{
	size_t i;

	if (size && addr > UINT64_MAX - (size - 1))
		return -EOVERFLOW;
	if (addr < m->base || addr > m->last)
		return -ERANGE;
	for (i = 0; i < m->n; i++) {
		if (m->v[i].start == addr)
			break;
	}
	if (i == m->n)
		return -ENOENT;
	if (size && m->v[i].last - m->v[i].start != size - 1)
		return -EINVAL;
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(m->v[0]));
	m->n--;
	return 0;
}

/*
 * Compare everything observable about @a with the model.  Returns NULL when
 * they agree, else a description of the first difference (in @buf).
 */
static inline const char *model_compare(const struct model *m,
					const struct address_allocator *a,
					char *buf, size_t len)
{
	uint64_t s, z, gs, gl, from, fl, free_lo, alloc_lo;
	model_u128 total, alloc = 0;
	bool big, at_top = false;
	size_t i;
	int err;

	if (address_allocator_check(a) != 0)
		return "address_allocator_check failed";
	if (address_allocator_count(a) != m->n) {
		snprintf(buf, len, "count %zu, model %zu",
			 address_allocator_count(a), m->n);
		return buf;
	}
	/* Allocations, in order, through next(). */
	from = 0;
	for (i = 0; i < m->n; i++) {
		err = address_allocator_next(a, from, &s, &z);
		if (err || s != m->v[i].start || z - 1 != m->v[i].last - s) {
			snprintf(buf, len,
				 "allocation %zu: err %d start %#llx size %#llx"
				 ", model [%#llx, %#llx]",
				 i, err, (unsigned long long)s,
				 (unsigned long long)z,
				 (unsigned long long)m->v[i].start,
				 (unsigned long long)m->v[i].last);
			return buf;
		}
		alloc += (model_u128)z;
		if (address_allocator_find(a, m->v[i].last, &s, NULL) ||
		    s != m->v[i].start)
			return "find(last byte) disagrees";
		if (m->v[i].last == UINT64_MAX) {
			at_top = true;
			break;
		}
		from = m->v[i].last + 1;
	}
	if (!at_top && address_allocator_next(a, from, &s, &z) != -ENOENT)
		return "next() found an allocation the model lacks";
	/* Free ranges, in order, through next_free(): exactly the gaps. */
	from = 0;
	at_top = false;
	for (i = 0; i <= m->n; i++) {
		if (!model_gap(m, i, &gs, &gl))
			continue;
		err = address_allocator_next_free(a, from, &s, &fl);
		if (err || s != gs || fl != gl) {
			snprintf(buf, len,
				 "free range: err %d [%#llx, %#llx], model "
				 "[%#llx, %#llx]",
				 err, (unsigned long long)s,
				 (unsigned long long)fl, (unsigned long long)gs,
				 (unsigned long long)gl);
			return buf;
		}
		if (address_allocator_find(a, gs, NULL, NULL) != -ENOENT)
			return "find() inside a free range succeeded";
		if (gl == UINT64_MAX) {
			at_top = true;
			break;
		}
		from = gl + 1;
	}
	if (!at_top && address_allocator_next_free(a, from, &s, &fl) != -ENOENT)
		return "next_free() found a range the model lacks";
	/* Byte counters. */
	total = (model_u128)(m->last - m->base) + 1;
	alloc_lo = address_allocator_allocated_bytes(a, &big);
	if (big != (alloc > UINT64_MAX) ||
	    (!big && alloc_lo != (uint64_t)alloc))
		return "allocated_bytes disagrees";
	free_lo = address_allocator_free_bytes(a, &big);
	if (big != (total - alloc > UINT64_MAX) ||
	    (!big && free_lo != (uint64_t)(total - alloc)))
		return "free_bytes disagrees";
	return NULL;
}

#endif /* CVMM_TESTS_ALLOC_MODEL_H */
