/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* liblinux-loader internals shared by the source files. */
#ifndef CVMM_LINUX_LOADER_INTERNAL_H
#define CVMM_LINUX_LOADER_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cvmm/linux-loader.h>

#define LL_4G 0x100000000ull

/* [a, a + alen) and [b, b + blen) overlap; both known not to wrap. */
static inline bool ll_overlap(uint64_t a, uint64_t alen, uint64_t b,
			      uint64_t blen)
{
	if (alen == 0 || blen == 0)
		return false;
	return a < b + blen && b < a + alen;
}

/* a + b without wrapping, or false. */
static inline bool ll_add(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

static inline uint16_t ll_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t ll_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t ll_get64(const uint8_t *p)
{
	return (uint64_t)ll_get32(p) | (uint64_t)ll_get32(p + 4) << 32;
}

static inline void ll_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ll_put32(uint8_t *p, uint32_t v)
{
	ll_put16(p, (uint16_t)v);
	ll_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void ll_put64(uint8_t *p, uint64_t v)
{
	ll_put32(p, (uint32_t)v);
	ll_put32(p + 4, (uint32_t)(v >> 32));
}

/* Byte that makes the sum of @len bytes at @p zero (the byte at the
 * checksum position must be 0 when this is computed). */
static inline uint8_t ll_checksum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)(0 - s);
}

/* Range check in RAM as a whole. */
static inline int ll_in_ram(const struct guest_memory *m, uint64_t gpa,
			    uint64_t len)
{
	uint64_t end;

	if (!ll_add(gpa, len, &end))
		return -ERANGE;
	return guest_memory_check_range(m, gpa, len) ? -ERANGE : 0;
}

#endif /* CVMM_LINUX_LOADER_INTERNAL_H */
