/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Model-based libFuzzer target for libvm-memory's checked accessors.
 *
 * A fixed guest layout (adjacent regions, a read-only one, a hole, a
 * dirty-logging one, one near the top of the address space) is driven with
 * guest-chosen addresses and lengths.  Every result is compared with a
 * byte-by-byte shadow model written independently of the library: return
 * codes, data read, memory written and dirty bits.  Any disagreement aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cvmm/vm-memory.h"
#include "test-memory.h"

#define PG 4096ull

static const struct cvmm_test_range lay[] = {
	{0x0, 4 * PG, 0, GUEST_REGION_ANON_PRIVATE},
	{4 * PG, 4 * PG, 0, GUEST_REGION_MEMFD},
	{8 * PG, 2 * PG, GUEST_REGION_READONLY, GUEST_REGION_ANON_PRIVATE},
	{0x100000, 2 * PG, GUEST_REGION_DIRTY_LOG, GUEST_REGION_ANON_PRIVATE},
	{0x102000, 1 * PG, GUEST_REGION_GUARD_PAGES, GUEST_REGION_ANON_PRIVATE},
	{0ull - 2 * PG, PG, 0, GUEST_REGION_ANON_PRIVATE},
};
#define NREG	  (sizeof(lay) / sizeof(lay[0]))
#define DIRTY_REG 3

static struct guest_memory *mem;
static uint8_t *host[NREG];
static uint8_t *shadow[NREG];
static uint64_t dirty_model; /* bit per page of DIRTY_REG (2 pages) */

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

static void setup(void)
{
	size_t i;

	mem = cvmm_test_memory(lay, NREG);
	for (i = 0; i < NREG; i++) {
		host[i] = cvmm_test_host(mem, lay[i].gpa);
		shadow[i] = calloc(1, lay[i].size);
		CHECK(shadow[i]);
	}
}

/* ------------------------------------------------------------ the model */

static int region_of(guest_addr_t a)
{
	size_t i;

	for (i = 0; i < NREG; i++)
		if (a >= lay[i].gpa && a - lay[i].gpa < lay[i].size)
			return (int)i;
	return -1;
}

/* Expected result of an access of @len bytes at @a (write: @w). */
static int model_check(guest_addr_t a, uint64_t len, int w)
{
	int i;

	if (len == 0)
		return 0;
	if (a + (len - 1) < a)
		return -EOVERFLOW;
	i = region_of(a);
	if (i < 0)
		return -EFAULT;
	for (;;) {
		uint64_t end = lay[i].gpa + lay[i].size; /* < 2^64 */
		uint64_t avail = end - a;

		if (w && (lay[i].flags & GUEST_REGION_READONLY))
			return -EPERM;
		if (len <= avail)
			return 0;
		len -= avail;
		a = end;
		i = region_of(a);
		if (i < 0)
			return -ENXIO;
	}
}

static uint8_t *shadow_byte(guest_addr_t a)
{
	int i = region_of(a);

	return &shadow[i][a - lay[i].gpa];
}

static void model_dirty(guest_addr_t a, uint64_t len)
{
	const struct cvmm_test_range *d = &lay[DIRTY_REG];
	uint64_t k;

	for (k = 0; k < d->size / PG; k++) {
		uint64_t pa = d->gpa + k * PG;

		/* [a, a+len) intersects [pa, pa+PG)?  (a+len may wrap.) */
		if (len && (a <= pa + PG - 1) &&
		    (a + (len - 1) >= pa || a + (len - 1) < a))
			dirty_model |= 1ull << k;
	}
}

static void model_write(guest_addr_t a, const uint8_t *src, int byte,
			uint64_t len)
{
	uint64_t k;

	for (k = 0; k < len; k++)
		*shadow_byte(a + k) = src ? src[k] : (uint8_t)byte;
	model_dirty(a, len);
}

/* ------------------------------------------------------------ the input */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, size_t bytes)
{
	uint64_t v = 0;
	size_t k;

	for (k = 0; k < bytes && in->n; k++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * k);
	return v;
}

static guest_addr_t take_addr(struct in *in)
{
	static const guest_addr_t bases[] = {0,	       4 * PG,	      8 * PG,
					     10 * PG,  0x100000,      0x102000,
					     0x103000, 0ull - 2 * PG, 0ull - PG,
					     0};
	unsigned int sel = (unsigned int)take(in, 1);
	int16_t delta = (int16_t)take(in, 2);

	if (sel % 11 == 10)
		return take(in, 8);
	return bases[sel % 10] + (uint64_t)(int64_t)delta;
}

static uint64_t take_len(struct in *in)
{
	unsigned int sel = (unsigned int)take(in, 1);

	switch (sel % 8) {
	case 0:
		return take(in, 8); /* anything */
	case 1:
		return 0;
	default:
		return take(in, 2) % (3 * PG); /* mostly small */
	}
}

static uint8_t buf[3 * PG], buf2[3 * PG];

static void op(struct in *in)
{
	unsigned int kind = (unsigned int)take(in, 1) % 12;
	guest_addr_t a = take_addr(in);
	uint64_t len = take_len(in);
	uint64_t k;
	int ret, exp;

	switch (kind) {
	case 0: { /* read */
		len %= sizeof(buf) + 1;
		memset(buf, 0xa5, sizeof(buf));
		ret = guest_memory_read(mem, a, buf, len);
		exp = model_check(a, len, 0);
		CHECK(ret == exp);
		for (k = 0; k < len; k++)
			CHECK(ret ? buf[k] == 0xa5
				  : buf[k] == *shadow_byte(a + k));
		break;
	}
	case 1: /* write */
		len %= sizeof(buf) + 1;
		for (k = 0; k < len; k++)
			buf[k] = (uint8_t)(a + k * 7);
		ret = guest_memory_write(mem, a, buf, len);
		exp = model_check(a, len, 1);
		CHECK(ret == exp);
		if (!ret)
			model_write(a, buf, 0, len);
		break;
	case 2: /* fill */
		len %= sizeof(buf) + 1;
		ret = guest_memory_fill(mem, a, (int)(a & 0xff), len);
		CHECK(ret == model_check(a, len, 1));
		if (!ret)
			model_write(a, NULL, (int)(a & 0xff), len);
		break;
	case 3: { /* typed */
		static const unsigned int sz[] = {1, 2, 4, 8};
		unsigned int s = sz[len % 4];
		uint64_t v = 0x8877665544332211ull;
		uint8_t le[8];

		if (len & 4) {
			switch (s) {
			case 1:
				ret = guest_memory_write_u8(mem, a, (uint8_t)v);
				break;
			case 2:
				ret = guest_memory_write_u16(mem, a,
							     (uint16_t)v);
				break;
			case 4:
				ret = guest_memory_write_u32(mem, a,
							     (uint32_t)v);
				break;
			default:
				ret = guest_memory_write_u64(mem, a, v);
				break;
			}
			CHECK(ret == model_check(a, s, 1));
			for (k = 0; k < 8; k++)
				le[k] = (uint8_t)(v >> (8 * k));
			if (!ret)
				model_write(a, le, 0, s);
		} else {
			uint64_t got = 0, want = 0;

			switch (s) {
			case 1: {
				uint8_t x = 0;

				ret = guest_memory_read_u8(mem, a, &x);
				got = x;
				break;
			}
			case 2: {
				uint16_t x = 0;

				ret = guest_memory_read_u16(mem, a, &x);
				got = x;
				break;
			}
			case 4: {
				uint32_t x = 0;

				ret = guest_memory_read_u32(mem, a, &x);
				got = x;
				break;
			}
			default:
				ret = guest_memory_read_u64(mem, a, &got);
				break;
			}
			CHECK(ret == model_check(a, s, 0));
			if (!ret) {
				for (k = 0; k < s; k++)
					want |= (uint64_t)*shadow_byte(a + k)
						<< (8 * k);
				CHECK(got == want);
			}
		}
		break;
	}
	case 4: { /* atomics */
		unsigned int s = 2u << (len % 3);
		int store = (len >> 2) & 1;
		int mis = (a & (s - 1)) != 0;
		uint64_t got = 0;

		if (store) {
			if (s == 2)
				ret = guest_memory_store_u16(
					mem, a, 0x1234, memory_order_release);
			else if (s == 4)
				ret = guest_memory_store_u32(
					mem, a, 0x12345678,
					memory_order_seq_cst);
			else
				ret = guest_memory_store_u64(
					mem, a, 0x123456789abcdef0ull,
					memory_order_relaxed);
			exp = mis		 ? -EINVAL
			      : region_of(a) < 0 ? -EFAULT
						 : model_check(a, s, 1);
			CHECK(ret == exp);
			if (!ret) {
				uint64_t v = s == 2   ? 0x1234
					     : s == 4 ? 0x12345678
						      : 0x123456789abcdef0ull;
				uint8_t le[8];

				for (k = 0; k < 8; k++)
					le[k] = (uint8_t)(v >> (8 * k));
				model_write(a, le, 0, s);
			}
		} else {
			if (s == 2) {
				uint16_t x = 0;

				ret = guest_memory_load_u16(
					mem, a, &x, memory_order_acquire);
				got = x;
			} else if (s == 4) {
				uint32_t x = 0;

				ret = guest_memory_load_u32(
					mem, a, &x, memory_order_relaxed);
				got = x;
			} else {
				ret = guest_memory_load_u64(
					mem, a, &got, memory_order_seq_cst);
			}
			exp = mis ? -EINVAL : region_of(a) < 0 ? -EFAULT : 0;
			CHECK(ret == exp);
			if (!ret) {
				uint64_t want = 0;

				for (k = 0; k < s; k++)
					want |= (uint64_t)*shadow_byte(a + k)
						<< (8 * k);
				CHECK(got == want);
			}
		}
		break;
	}
	case 5: { /* translate: one region only */
		void *h = NULL;

		ret = guest_memory_translate(mem, a, len, &h);
		if (len == 0) {
			exp = -EINVAL;
		} else {
			exp = model_check(a, len, 0);
			if (exp == 0 && region_of(a + len - 1) != region_of(a))
				exp = -ENXIO;
		}
		CHECK(ret == exp);
		if (!ret) {
			int i = region_of(a);

			CHECK((uint8_t *)h == host[i] + (a - lay[i].gpa));
		}
		break;
	}
	case 6: /* check_range, any length */
		CHECK(guest_memory_check_range(mem, a, len) ==
		      model_check(a, len, 0));
		break;
	case 7: { /* contiguous */
		void *h = NULL;
		uint64_t avail = 0;
		int i = region_of(a);

		ret = guest_memory_contiguous(mem, a, &h, &avail);
		CHECK(ret == (i < 0 ? -EFAULT : 0));
		if (!ret)
			CHECK(avail == lay[i].gpa + lay[i].size - a &&
			      (uint8_t *)h == host[i] + (a - lay[i].gpa));
		break;
	}
	case 8: { /* iovecs */
		struct iovec iov[NREG];
		int max = (int)(take(in, 1) % (NREG + 1));
		uint64_t sum = 0;

		ret = guest_memory_iovecs(mem, a, len, iov, max);
		exp = model_check(a, len, 0);
		if (exp) {
			CHECK(ret == exp);
			break;
		}
		if (ret == -ENOBUFS) {
			/* Then the range really needs more than max. */
			int need = 0;

			for (k = 0; k < len;) {
				int i = region_of(a + k);

				need++;
				k += lay[i].gpa + lay[i].size - (a + k);
			}
			CHECK(need > max);
			break;
		}
		CHECK(ret >= 0 && ret <= max && (len == 0) == (ret == 0));
		for (k = 0; k < (uint64_t)ret; k++) {
			int i = region_of(a + sum);

			CHECK((uint8_t *)iov[k].iov_base ==
			      host[i] + (a + sum - lay[i].gpa));
			sum += iov[k].iov_len;
		}
		CHECK(sum == len);
		break;
	}
	case 9: /* mark_dirty: anything, never fails */
		guest_memory_mark_dirty(mem, a, len);
		model_dirty(a, len);
		break;
	case 10: { /* dirty harvest */
		uint64_t bm[1] = {0};

		CHECK(guest_region_dirty_get_and_clear(
			      guest_memory_region_at(mem, DIRTY_REG), bm, 1) ==
		      __builtin_popcountll(dirty_model));
		CHECK(bm[0] == dirty_model);
		dirty_model = 0;
		break;
	}
	default: { /* zero-length anywhere, and a read via buf2 */
		CHECK(guest_memory_read(mem, a, NULL, 0) == 0);
		CHECK(guest_memory_write(mem, a, NULL, 0) == 0);
		len %= 64;
		ret = guest_memory_read(mem, a, buf2, len);
		CHECK(ret == model_check(a, len, 0));
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	uint64_t bm[1];
	size_t i;
	int ops = 0;

	if (!mem)
		setup();
	/* Start every input from zeroed memory and a clean dirty log. */
	for (i = 0; i < NREG; i++) {
		if (!(lay[i].flags & GUEST_REGION_READONLY))
			memset(host[i], 0, lay[i].size);
		memset(shadow[i], 0, lay[i].size);
	}
	guest_region_dirty_get_and_clear(guest_memory_region_at(mem, DIRTY_REG),
					 bm, 1);
	dirty_model = 0;
	while (in.n && ops++ < 256)
		op(&in);
	for (i = 0; i < NREG; i++)
		CHECK(memcmp(host[i], shadow[i], lay[i].size) == 0);
	return 0;
}
