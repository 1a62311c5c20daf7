/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for libvm-allocator: address and id allocators. */
#include <cvmm/vm-allocator.h>

#include <check.h>

#include "alloc-model.h"
#include "cvmm-check.h"

#include <stdint.h>

#define TOP   UINT64_MAX
#define BIT63 (1ULL << 63)

static struct address_allocator *mk(uint64_t base, uint64_t last)
{
	struct address_allocator *a = NULL;

	ck_assert_int_eq(address_allocator_create(base, last, &a), 0);
	ck_assert_ptr_nonnull(a);
	return a;
}

static uint64_t alloc_ok(struct address_allocator *a, uint64_t size,
			 uint64_t align, enum address_allocator_policy p)
{
	uint64_t addr = 0;

	ck_assert_int_eq(address_allocator_allocate(a, size, align, p, &addr),
			 0);
	ck_assert_int_eq(address_allocator_check(a), 0);
	return addr;
}

static int alloc_err(struct address_allocator *a, uint64_t size, uint64_t align,
		     enum address_allocator_policy p, uint64_t at)
{
	uint64_t addr = at;
	int err = address_allocator_allocate(a, size, align, p, &addr);

	/* A failed call never writes the address. */
	ck_assert_uint_eq(addr, at);
	ck_assert_int_eq(address_allocator_check(a), 0);
	return err;
}

static int exact(struct address_allocator *a, uint64_t addr, uint64_t size,
		 uint64_t align)
{
	uint64_t at = addr;
	int err = address_allocator_allocate(a, size, align,
					     ADDRESS_ALLOC_EXACT, &at);

	ck_assert_uint_eq(at, addr);
	ck_assert_int_eq(address_allocator_check(a), 0);
	return err;
}

static size_t nfree_ranges(const struct address_allocator *a)
{
	uint64_t from = 0, s, l;
	size_t n = 0;

	while (address_allocator_next_free(a, from, &s, &l) == 0) {
		n++;
		if (l == TOP)
			break;
		from = l + 1;
	}
	return n;
}

/* ---------------------------------------------------------- lifecycle */

START_TEST(create_destroy)
{
	struct address_allocator *a = mk(0x1000, 0x1fff);
	uint64_t b = 0, l = 0, s = 0;
	bool big = true;

	ck_assert_int_eq(address_allocator_range(a, &b, &l), 0);
	ck_assert_uint_eq(b, 0x1000);
	ck_assert_uint_eq(l, 0x1fff);
	ck_assert_uint_eq(address_allocator_count(a), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), 0x1000);
	ck_assert(!big);
	ck_assert_uint_eq(address_allocator_allocated_bytes(a, &big), 0);
	ck_assert(!big);
	ck_assert_int_eq(address_allocator_next_free(a, 0, &s, &l), 0);
	ck_assert_uint_eq(s, 0x1000);
	ck_assert_uint_eq(l, 0x1fff);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
	address_allocator_destroy(NULL);
}
END_TEST

START_TEST(create_errors)
{
	struct address_allocator *a = (struct address_allocator *)&a;

	ck_assert_int_eq(address_allocator_create(2, 1, &a), -EINVAL);
	ck_assert_int_eq(address_allocator_create(TOP, 0, &a), -EINVAL);
	/* out is untouched on failure */
	ck_assert_ptr_eq(a, (struct address_allocator *)&a);
	ck_assert_int_eq(address_allocator_create(0, 1, NULL), -EINVAL);
}
END_TEST

START_TEST(one_byte_range)
{
	struct address_allocator *a = mk(7, 7);

	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 1);
	ck_assert_uint_eq(alloc_ok(a, 1, 1, ADDRESS_ALLOC_FIRST_FIT), 7);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 0);
	ck_assert_uint_eq(nfree_ranges(a), 0);
	ck_assert_int_eq(address_allocator_free(a, 7, 1), 0);
	ck_assert_uint_eq(alloc_ok(a, 1, 1, ADDRESS_ALLOC_LAST_FIT), 7);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(null_arguments)
{
	struct address_allocator *a = mk(0, 0xffff);
	uint64_t x = 0;
	bool big = true;

	ck_assert_int_eq(address_allocator_allocate(
				 NULL, 1, 1, ADDRESS_ALLOC_FIRST_FIT, &x),
			 -EINVAL);
	ck_assert_int_eq(address_allocator_allocate(
				 a, 1, 1, ADDRESS_ALLOC_FIRST_FIT, NULL),
			 -EINVAL);
	ck_assert_int_eq(address_allocator_allocate_at(NULL, 0, 1), -EINVAL);
	ck_assert_int_eq(address_allocator_free(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(address_allocator_find(NULL, 0, &x, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_next(NULL, 0, &x, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_next(a, 0, NULL, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_next_free(NULL, 0, &x, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_next_free(a, 0, NULL, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_foreach(NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(address_allocator_foreach(a, NULL, NULL), -EINVAL);
	ck_assert_int_eq(address_allocator_range(NULL, &x, &x), -EINVAL);
	ck_assert_int_eq(address_allocator_check(NULL), -EINVAL);
	ck_assert_uint_eq(address_allocator_count(NULL), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(NULL, &big), 0);
	ck_assert(!big);
	big = true;
	ck_assert_uint_eq(address_allocator_allocated_bytes(NULL, &big), 0);
	ck_assert(!big);
	/* NULL out-pointers are optional where documented. */
	ck_assert_int_eq(address_allocator_range(a, NULL, NULL), 0);
	ck_assert_int_eq(address_allocator_next_free(a, 0, &x, NULL), 0);
	address_allocator_destroy(a);
}
END_TEST

/* ----------------------------------------------------------- policies */

START_TEST(first_fit_sequential)
{
	struct address_allocator *a = mk(0x1000, 0x10fff);
	int i;

	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(alloc_ok(a, 0x1000, 1,
					   ADDRESS_ALLOC_FIRST_FIT),
				  0x1000 + (uint64_t)i * 0x1000);
	ck_assert_uint_eq(address_allocator_count(a), 16);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 0);
	ck_assert_uint_eq(address_allocator_allocated_bytes(a, NULL), 0x10000);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(last_fit_sequential)
{
	struct address_allocator *a = mk(0x1000, 0x10fff);
	int i;

	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(alloc_ok(a, 0x1000, 1,
					   ADDRESS_ALLOC_LAST_FIT),
				  0x10000 - (uint64_t)i * 0x1000);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(alignment_honoured)
{
	struct address_allocator *a = mk(0x1001, 0xfffff);

	/* First fit rounds the base up ... */
	ck_assert_uint_eq(alloc_ok(a, 0x10, 0x1000, ADDRESS_ALLOC_FIRST_FIT),
			  0x2000);
	/* ... alignment 1 takes the very first byte ... */
	ck_assert_uint_eq(alloc_ok(a, 3, 1, ADDRESS_ALLOC_FIRST_FIT), 0x1001);
	/* ... 2 rounds 0x1004 up to itself, 8 rounds 0x1007 up to 0x1008. */
	ck_assert_uint_eq(alloc_ok(a, 3, 2, ADDRESS_ALLOC_FIRST_FIT), 0x1004);
	ck_assert_uint_eq(alloc_ok(a, 1, 8, ADDRESS_ALLOC_FIRST_FIT), 0x1008);
	/* Last fit rounds down from last - size + 1. */
	ck_assert_uint_eq(alloc_ok(a, 0x10, 0x1000, ADDRESS_ALLOC_LAST_FIT),
			  0xff000);
	ck_assert_uint_eq(alloc_ok(a, 0x1001, 0x1000, ADDRESS_ALLOC_LAST_FIT),
			  0xfd000);
	address_allocator_destroy(a);
}
END_TEST

/*
 * Free ranges that are long enough but unusable at the alignment asked for
 * must be skipped, in both directions.
 */
START_TEST(alignment_skips_unusable_ranges)
{
	struct address_allocator *a = mk(0, 0xfffff);
	uint64_t i;

	/* Free holes [0x800 + k * 0x4000, + 0x13ff]: each is longer than
	 * 0x1000 but holds no 0x1000-aligned 0x1000-byte block... */
	ck_assert_int_eq(address_allocator_allocate_at(a, 0, 0x800), 0);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(address_allocator_allocate_at(
					 a, 0x1c00 + i * 0x4000, 0x2c00),
				 0);
	ck_assert_uint_eq(nfree_ranges(a), 9);
	ck_assert_int_eq(address_allocator_check(a), 0);
	/* ... so the first fit is past them all, in the big tail. */
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x1000, ADDRESS_ALLOC_FIRST_FIT),
			  0x21000);
	/* A less aligned request fits in the first hole. */
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x800, ADDRESS_ALLOC_FIRST_FIT),
			  0x800);
	address_allocator_destroy(a);

	/* Mirror image for last fit: holes near the top are unusable. */
	a = mk(0, 0xfffff);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0xff800, 0x800), 0);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(address_allocator_allocate_at(
					 a, 0xfb800 - i * 0x4000, 0x2c00),
				 0);
	ck_assert_uint_eq(nfree_ranges(a), 9);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x1000, ADDRESS_ALLOC_LAST_FIT),
			  0xde000);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x400, ADDRESS_ALLOC_LAST_FIT),
			  0xfe800);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(alignment_2_63)
{
	struct address_allocator *a = mk(0, TOP);

	ck_assert_uint_eq(alloc_ok(a, 1, BIT63, ADDRESS_ALLOC_FIRST_FIT), 0);
	ck_assert_uint_eq(alloc_ok(a, 1, BIT63, ADDRESS_ALLOC_FIRST_FIT),
			  BIT63);
	ck_assert_int_eq(alloc_err(a, 1, BIT63, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, 1, BIT63, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	address_allocator_destroy(a);

	/* Excluding 0 leaves only 2^63; a 2^63-byte block fits exactly. */
	a = mk(1, TOP);
	ck_assert_uint_eq(alloc_ok(a, BIT63, BIT63, ADDRESS_ALLOC_LAST_FIT),
			  BIT63);
	ck_assert_int_eq(alloc_err(a, 1, BIT63, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_uint_eq(alloc_ok(a, BIT63 - 1, 1, ADDRESS_ALLOC_FIRST_FIT),
			  1);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 0);
	address_allocator_destroy(a);

	/* A range whose aligned start would wrap: [2^63 + 1, TOP]. */
	a = mk(BIT63 + 1, TOP);
	ck_assert_int_eq(alloc_err(a, 1, BIT63, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, 1, BIT63, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(exact(a, BIT63, 1, BIT63), -ERANGE);
	address_allocator_destroy(a);
}
END_TEST

/* ------------------------------------------------------- full 64 bits */

START_TEST(full_64bit_range)
{
	struct address_allocator *a = mk(0, TOP);
	bool big = false;

	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), TOP);
	ck_assert(big);
	/* The largest size there is. */
	ck_assert_uint_eq(alloc_ok(a, TOP, 1, ADDRESS_ALLOC_FIRST_FIT), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), 1);
	ck_assert(!big);
	ck_assert_uint_eq(address_allocator_allocated_bytes(a, &big), TOP);
	ck_assert(!big);
	ck_assert_int_eq(alloc_err(a, 2, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	/* The last byte of the address space. */
	ck_assert_uint_eq(alloc_ok(a, 1, 1, ADDRESS_ALLOC_FIRST_FIT), TOP);
	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), 0);
	ck_assert(!big);
	ck_assert_uint_eq(address_allocator_allocated_bytes(a, &big), TOP);
	ck_assert(big);
	ck_assert_int_eq(address_allocator_free(a, 0, TOP), 0);
	ck_assert_int_eq(address_allocator_free(a, TOP, 1), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), TOP);
	ck_assert(big);
	ck_assert_uint_eq(nfree_ranges(a), 1);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(allocation_at_top)
{
	struct address_allocator *a = mk(0, TOP);
	uint64_t s = 0, z = 0;

	ck_assert_int_eq(exact(a, TOP, 1, 1), 0);
	ck_assert_int_eq(exact(a, TOP - 0xfff, 0x1000, 1), -EBUSY);
	ck_assert_int_eq(exact(a, TOP - 0x1000, 0x1000, 0x1000), -EINVAL);
	ck_assert_int_eq(exact(a, TOP - 0x1000, 0x1000, 1), 0);
	ck_assert_int_eq(address_allocator_find(a, TOP - 1, &s, &z), 0);
	ck_assert_uint_eq(s, TOP - 0x1000);
	ck_assert_uint_eq(z, 0x1000);
	ck_assert_int_eq(address_allocator_next(a, TOP, &s, &z), 0);
	ck_assert_uint_eq(s, TOP);
	ck_assert_uint_eq(z, 1);
	ck_assert_int_eq(address_allocator_free(a, TOP, 0), 0);
	ck_assert_int_eq(address_allocator_free(a, TOP - 0x1000, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 1);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(last_fit_at_top)
{
	struct address_allocator *a = mk(0, TOP);

	ck_assert_uint_eq(alloc_ok(a, 1, 1, ADDRESS_ALLOC_LAST_FIT), TOP);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x1000, ADDRESS_ALLOC_LAST_FIT),
			  TOP - 0x1fff);
	/* The 0xfff bytes left between the two are used first. */
	ck_assert_uint_eq(alloc_ok(a, 0x10, 1, ADDRESS_ALLOC_LAST_FIT),
			  TOP - 0x10);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 1, ADDRESS_ALLOC_LAST_FIT),
			  TOP - 0x2fff);
	ck_assert_uint_eq(alloc_ok(a, BIT63, BIT63, ADDRESS_ALLOC_LAST_FIT), 0);
	address_allocator_destroy(a);

	/* A range that ends at the top but starts elsewhere. */
	a = mk(TOP - 0xff, TOP);
	ck_assert_uint_eq(alloc_ok(a, 0x10, 0x10, ADDRESS_ALLOC_LAST_FIT),
			  TOP - 0xf);
	ck_assert_uint_eq(alloc_ok(a, 0xf0, 1, ADDRESS_ALLOC_LAST_FIT),
			  TOP - 0xff);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	address_allocator_destroy(a);
}
END_TEST

/* --------------------------------------------------------------- errors */

START_TEST(err_zero_size)
{
	struct address_allocator *a = mk(0, 0xffff);

	ck_assert_int_eq(alloc_err(a, 0, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -EINVAL);
	ck_assert_int_eq(alloc_err(a, 0, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -EINVAL);
	ck_assert_int_eq(exact(a, 0x100, 0, 1), -EINVAL);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x100, 0), -EINVAL);
	ck_assert_uint_eq(address_allocator_count(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_bad_alignment)
{
	static const uint64_t bad[] = {0,      3,   5,	       6,    12,
				       0x1001, TOP, BIT63 + 1, 0x300};
	struct address_allocator *a = mk(0, 0xffff);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(alloc_err(a, 1, bad[i],
					   ADDRESS_ALLOC_FIRST_FIT, 0),
				 -EINVAL);
		ck_assert_int_eq(alloc_err(a, 1, bad[i], ADDRESS_ALLOC_LAST_FIT,
					   0),
				 -EINVAL);
		ck_assert_int_eq(exact(a, 0, 1, bad[i]), -EINVAL);
	}
	/* Every power of two is accepted. */
	for (i = 0; i < 64; i++)
		ck_assert_int_eq(exact(a, 0, 1, 1ULL << i),
				 i == 0 ? 0 : -EBUSY);
	ck_assert_uint_eq(address_allocator_count(a), 1);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_bad_policy)
{
	struct address_allocator *a = mk(0, 0xffff);

	ck_assert_int_eq(alloc_err(a, 1, 1, (enum address_allocator_policy)3,
				   0),
			 -EINVAL);
	ck_assert_int_eq(alloc_err(a, 1, 1, (enum address_allocator_policy) - 1,
				   0),
			 -EINVAL);
	ck_assert_uint_eq(address_allocator_count(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_exhaustion)
{
	struct address_allocator *a = mk(0x100, 0x1ff);

	/* Larger than the whole range. */
	ck_assert_int_eq(alloc_err(a, 0x101, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, TOP, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	ck_assert_uint_eq(alloc_ok(a, 0x100, 1, ADDRESS_ALLOC_LAST_FIT), 0x100);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	ck_assert_uint_eq(address_allocator_count(a), 1);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(exact_basic)
{
	struct address_allocator *a = mk(0x1000, 0x1fff);
	uint64_t at = 0x1800;

	ck_assert_int_eq(address_allocator_allocate(a, 0x100, 0x100,
						    ADDRESS_ALLOC_EXACT, &at),
			 0);
	ck_assert_uint_eq(at, 0x1800);
	/* Whole range edges, exactly. */
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1000, 0x800), 0);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1900, 0x700), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 0);
	ck_assert_uint_eq(nfree_ranges(a), 0);
	/* Misaligned exact request. */
	ck_assert_int_eq(address_allocator_free(a, 0x1800, 0x100), 0);
	ck_assert_int_eq(exact(a, 0x1810, 0x10, 0x20), -EINVAL);
	ck_assert_int_eq(exact(a, 0x1820, 0x10, 0x20), 0);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_exact_busy)
{
	struct address_allocator *a = mk(0, 0xffff);

	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1000, 0x1000), 0);
	ck_assert_int_eq(exact(a, 0x1000, 0x1000, 1), -EBUSY); /* same */
	ck_assert_int_eq(exact(a, 0xfff, 2, 1), -EBUSY);       /* start */
	ck_assert_int_eq(exact(a, 0x1fff, 2, 1), -EBUSY);      /* end */
	ck_assert_int_eq(exact(a, 0x1800, 1, 1), -EBUSY);      /* inside */
	ck_assert_int_eq(exact(a, 0x800, 0x2000, 1), -EBUSY);  /* around */
	/* Touching is fine. */
	ck_assert_int_eq(exact(a, 0xfff, 1, 1), 0);
	ck_assert_int_eq(exact(a, 0x2000, 1, 1), 0);
	ck_assert_uint_eq(address_allocator_count(a), 3);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_exact_out_of_range)
{
	struct address_allocator *a = mk(0x1000, 0x1fff);

	ck_assert_int_eq(exact(a, 0, 1, 1), -ERANGE);
	ck_assert_int_eq(exact(a, 0xfff, 2, 1), -ERANGE);  /* straddles base */
	ck_assert_int_eq(exact(a, 0x1fff, 2, 1), -ERANGE); /* straddles last */
	ck_assert_int_eq(exact(a, 0x2000, 1, 1), -ERANGE);
	ck_assert_int_eq(exact(a, 0x1000, 0x1001, 1), -ERANGE);
	ck_assert_int_eq(exact(a, 0x1000, 0x1000, 1), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_overflow)
{
	struct address_allocator *a = mk(0, TOP);

	ck_assert_int_eq(exact(a, TOP, 2, 1), -EOVERFLOW);
	ck_assert_int_eq(exact(a, TOP - 1, 3, 1), -EOVERFLOW);
	ck_assert_int_eq(exact(a, 2, TOP, 1), -EOVERFLOW);
	ck_assert_int_eq(exact(a, BIT63, BIT63 + 1, BIT63), -EOVERFLOW);
	/* The exact limit does not overflow: [1, UINT64_MAX]. */
	ck_assert_int_eq(exact(a, 1, TOP, 1), 0);
	/* free() with a size that would wrap. */
	ck_assert_int_eq(address_allocator_free(a, 2, TOP), -EOVERFLOW);
	ck_assert_int_eq(address_allocator_free(a, TOP, 2), -EOVERFLOW);
	ck_assert_int_eq(address_allocator_free(a, 1, TOP), 0);
	ck_assert_uint_eq(address_allocator_count(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_free_never_allocated)
{
	struct address_allocator *a = mk(0x1000, 0x1fff);

	ck_assert_int_eq(address_allocator_free(a, 0x1000, 0), -ENOENT);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1100, 0x100), 0);
	/* Inside an allocation but not its start. */
	ck_assert_int_eq(address_allocator_free(a, 0x1101, 0), -ENOENT);
	ck_assert_int_eq(address_allocator_free(a, 0x11ff, 0), -ENOENT);
	ck_assert_int_eq(address_allocator_free(a, 0x10ff, 0), -ENOENT);
	/* Outside the managed range. */
	ck_assert_int_eq(address_allocator_free(a, 0xfff, 0), -ERANGE);
	ck_assert_int_eq(address_allocator_free(a, 0x2000, 1), -ERANGE);
	ck_assert_int_eq(address_allocator_free(a, TOP, 0), -ERANGE);
	ck_assert_uint_eq(address_allocator_count(a), 1);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_double_free)
{
	struct address_allocator *a = mk(0, 0xffff);
	uint64_t x = alloc_ok(a, 0x100, 1, ADDRESS_ALLOC_FIRST_FIT);

	ck_assert_int_eq(address_allocator_free(a, x, 0x100), 0);
	ck_assert_int_eq(address_allocator_free(a, x, 0x100), -ENOENT);
	ck_assert_int_eq(address_allocator_free(a, x, 0), -ENOENT);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 0x10000);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(err_free_size_mismatch)
{
	struct address_allocator *a = mk(0, 0xffff);

	ck_assert_int_eq(address_allocator_allocate_at(a, 0x100, 0x100), 0);
	ck_assert_int_eq(address_allocator_free(a, 0x100, 0xff), -EINVAL);
	ck_assert_int_eq(address_allocator_free(a, 0x100, 0x101), -EINVAL);
	/* Nothing was freed. */
	ck_assert_uint_eq(address_allocator_count(a), 1);
	ck_assert_int_eq(address_allocator_find(a, 0x150, NULL, NULL), 0);
	ck_assert_int_eq(address_allocator_free(a, 0x100, 0x100), 0);
	ck_assert_uint_eq(address_allocator_count(a), 0);
	address_allocator_destroy(a);
}
END_TEST

/* ----------------------------------------------------------- coalescing */

/* Three adjacent blocks A B C inside [0, 0x3fff] with free space around. */
static struct address_allocator *abc(void)
{
	struct address_allocator *a = mk(0, 0x3fff);

	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1000, 0x100), 0);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1100, 0x100), 0);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x1200, 0x100), 0);
	ck_assert_uint_eq(nfree_ranges(a), 2);
	return a;
}

START_TEST(coalesce_left)
{
	struct address_allocator *a = abc();
	uint64_t s, l;

	/* A merges with the free range on its left only. */
	ck_assert_int_eq(address_allocator_free(a, 0x1000, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 2);
	ck_assert_int_eq(address_allocator_next_free(a, 0, &s, &l), 0);
	ck_assert_uint_eq(s, 0);
	ck_assert_uint_eq(l, 0x10ff);
	ck_assert_int_eq(address_allocator_check(a), 0);
	/* The merged range serves an allocation spanning both halves. */
	ck_assert_uint_eq(alloc_ok(a, 0x1100, 1, ADDRESS_ALLOC_FIRST_FIT), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(coalesce_right)
{
	struct address_allocator *a = abc();
	uint64_t s, l;

	ck_assert_int_eq(address_allocator_free(a, 0x1200, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 2);
	ck_assert_int_eq(address_allocator_next_free(a, 0x1000, &s, &l), 0);
	ck_assert_uint_eq(s, 0x1200);
	ck_assert_uint_eq(l, 0x3fff);
	ck_assert_int_eq(address_allocator_check(a), 0);
	ck_assert_uint_eq(alloc_ok(a, 0x2e00, 1, ADDRESS_ALLOC_LAST_FIT),
			  0x1200);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(coalesce_both)
{
	struct address_allocator *a = abc();
	uint64_t s, l;

	/* Free the middle: no neighbour is free, a new range appears. */
	ck_assert_int_eq(address_allocator_free(a, 0x1100, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 3);
	ck_assert_int_eq(address_allocator_free(a, 0x1000, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 2);
	/* Freeing C joins left and right into one range. */
	ck_assert_int_eq(address_allocator_free(a, 0x1200, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 1);
	ck_assert_int_eq(address_allocator_next_free(a, 0, &s, &l), 0);
	ck_assert_uint_eq(s, 0);
	ck_assert_uint_eq(l, 0x3fff);
	ck_assert_uint_eq(alloc_ok(a, 0x4000, 1, ADDRESS_ALLOC_FIRST_FIT), 0);
	address_allocator_destroy(a);

	/* Both sides merge in one free() (left and right already free). */
	a = abc();
	ck_assert_int_eq(address_allocator_free(a, 0x1000, 0), 0);
	ck_assert_int_eq(address_allocator_free(a, 0x1200, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 2);
	ck_assert_int_eq(address_allocator_free(a, 0x1100, 0), 0);
	ck_assert_uint_eq(nfree_ranges(a), 1);
	ck_assert_int_eq(address_allocator_check(a), 0);
	address_allocator_destroy(a);
}
END_TEST

START_TEST(exact_fit_after_frees)
{
	struct address_allocator *a = mk(0, 0xffff);
	uint64_t x[8];
	int i;

	for (i = 0; i < 8; i++)
		x[i] = alloc_ok(a, 0x1000, 1, ADDRESS_ALLOC_FIRST_FIT);
	/* Holes: 0x1000 at x[1], 0x2000 at x[3..4], 0x1000 at x[6]. */
	ck_assert_int_eq(address_allocator_free(a, x[3], 0), 0);
	ck_assert_int_eq(address_allocator_free(a, x[4], 0), 0);
	ck_assert_int_eq(address_allocator_free(a, x[1], 0), 0);
	ck_assert_int_eq(address_allocator_free(a, x[6], 0), 0);
	/* 0x2000 goes to the exactly fitting hole, consuming it. */
	ck_assert_uint_eq(alloc_ok(a, 0x2000, 1, ADDRESS_ALLOC_FIRST_FIT),
			  x[3]);
	/* 0x1000 first-fit / last-fit fill the two exactly fitting holes. */
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 1, ADDRESS_ALLOC_FIRST_FIT),
			  x[1]);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x1000, ADDRESS_ALLOC_LAST_FIT),
			  0xf000);
	ck_assert_uint_eq(alloc_ok(a, 0x1000, 1, ADDRESS_ALLOC_FIRST_FIT),
			  x[6]);
	ck_assert_uint_eq(nfree_ranges(a), 1); /* only [0x8000, 0xefff] */
	address_allocator_destroy(a);
}
END_TEST

START_TEST(fragmentation_then_exhaustion)
{
	struct address_allocator *a = mk(0, 0x3ffff);
	uint64_t x[64];
	int i;

	for (i = 0; i < 64; i++)
		x[i] = alloc_ok(a, 0x1000, 1, ADDRESS_ALLOC_FIRST_FIT);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	/* Free the odd pages: 0x1000, 0x3000, ... */
	for (i = 1; i < 64; i += 2)
		ck_assert_int_eq(address_allocator_free(a, x[i], 0x1000), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, NULL), 32 * 0x1000);
	ck_assert_uint_eq(nfree_ranges(a), 32);
	/* Half the space is free but no two pages are contiguous. */
	ck_assert_int_eq(alloc_err(a, 0x1001, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, 0x2000, 1, ADDRESS_ALLOC_LAST_FIT, 0),
			 -ENOMEM);
	ck_assert_int_eq(alloc_err(a, 0x1000, 0x2000, ADDRESS_ALLOC_LAST_FIT,
				   0),
			 -ENOMEM);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(alloc_ok(a, 0x1000, 0x1000,
					   ADDRESS_ALLOC_FIRST_FIT),
				  x[2 * i + 1]);
	ck_assert_int_eq(alloc_err(a, 1, 1, ADDRESS_ALLOC_FIRST_FIT, 0),
			 -ENOMEM);
	ck_assert_uint_eq(address_allocator_count(a), 64);
	address_allocator_destroy(a);
}
END_TEST

/* -------------------------------------------------------------- queries */

struct collect {
	uint64_t start[8];
	uint64_t size[8];
	int n;
	int stop_at;
};

static int collect_fn(void *opaque, uint64_t start, uint64_t size)
{
	struct collect *c = opaque;

	if (c->n == c->stop_at)
		return 42;
	c->start[c->n] = start;
	c->size[c->n] = size;
	c->n++;
	return 0;
}

START_TEST(find_next_foreach)
{
	struct address_allocator *a = mk(0x100, 0xfff);
	struct collect c = {.stop_at = -1};
	uint64_t s = 0, z = 0;

	ck_assert_int_eq(address_allocator_allocate_at(a, 0x800, 0x10), 0);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0x200, 0x20), 0);
	ck_assert_int_eq(address_allocator_allocate_at(a, 0xf00, 0x100), 0);

	ck_assert_int_eq(address_allocator_find(a, 0x21f, &s, &z), 0);
	ck_assert_uint_eq(s, 0x200);
	ck_assert_uint_eq(z, 0x20);
	ck_assert_int_eq(address_allocator_find(a, 0x220, &s, &z), -ENOENT);
	ck_assert_int_eq(address_allocator_find(a, 0x1ff, &s, &z), -ENOENT);
	ck_assert_int_eq(address_allocator_find(a, 0, NULL, NULL), -ENOENT);
	ck_assert_int_eq(address_allocator_find(a, TOP, NULL, NULL), -ENOENT);
	ck_assert_int_eq(address_allocator_find(a, 0xfff, &s, NULL), 0);
	ck_assert_uint_eq(s, 0xf00);

	ck_assert_int_eq(address_allocator_next(a, 0, &s, &z), 0);
	ck_assert_uint_eq(s, 0x200);
	ck_assert_int_eq(address_allocator_next(a, 0x201, &s, &z), 0);
	ck_assert_uint_eq(s, 0x800);
	ck_assert_uint_eq(z, 0x10);
	ck_assert_int_eq(address_allocator_next(a, 0x800, &s, NULL), 0);
	ck_assert_uint_eq(s, 0x800);
	ck_assert_int_eq(address_allocator_next(a, 0xf01, &s, &z), -ENOENT);

	ck_assert_int_eq(address_allocator_foreach(a, collect_fn, &c), 0);
	ck_assert_int_eq(c.n, 3);
	ck_assert_uint_eq(c.start[0], 0x200);
	ck_assert_uint_eq(c.start[1], 0x800);
	ck_assert_uint_eq(c.start[2], 0xf00);
	ck_assert_uint_eq(c.size[2], 0x100);
	/* A non-zero return stops the walk and is passed back. */
	c.n = 0;
	c.stop_at = 1;
	ck_assert_int_eq(address_allocator_foreach(a, collect_fn, &c), 42);
	ck_assert_int_eq(c.n, 1);
	address_allocator_destroy(a);
}
END_TEST

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*, deterministic */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t pick_size(uint64_t span_of_range)
{
	switch (rng() % 8) {
	case 0:
		return 1;
	case 1:
		return rng() % 16 + 1;
	case 2:
		return (rng() % 8 + 1) * 0x1000;
	case 3:
		return span_of_range < TOP ? span_of_range + 1 : TOP;
	case 4:
		return (span_of_range >> (rng() % 64)) + 1;
	default:
		return rng() % 0x3000 + 1;
	}
}

static void random_run(uint64_t base, uint64_t last, uint64_t seed, int ops)
{
	static struct model_iv buf[4096];
	struct address_allocator *a = mk(base, last);
	struct model m;
	char why[256];
	const char *diff;
	int i, ok[3] = {0}, failed = 0, freed = 0, bad_free = 0;

	rng_state = seed;
	model_init(&m, base, last, buf, 4096);
	for (i = 0; i < ops; i++) {
		uint64_t r = rng() % 10, size, align, at = 0, mat;
		enum address_allocator_policy p;
		int err, merr;

		if (r < 6 && m.n < m.cap - 1) {
			size = pick_size(last - base);
			align = rng() % 3 ? 1ULL << (rng() % 14)
					  : 1ULL << (rng() % 64);
			p = (enum address_allocator_policy)(rng() % 3);
			if (p == ADDRESS_ALLOC_EXACT) {
				uint64_t w = last - base;

				w = w > 0xfffff ? 0xfffff : w;
				at = base + rng() % (w + 1);
				if (rng() % 4)
					at &= ~(align - 1);
			}
			mat = at;
			err = address_allocator_allocate(a, size, align, p,
							 &at);
			merr = model_allocate(&m, size, align, (int)p, &mat);
			ck_assert_msg(err == merr,
				      "op %d alloc size %#llx align %#llx "
				      "policy %d: %d, model %d",
				      i, (unsigned long long)size,
				      (unsigned long long)align, (int)p, err,
				      merr);
			if (!err) {
				ck_assert_uint_eq(at, mat);
				ok[p]++;
			} else {
				failed++;
			}
		} else if (m.n && rng() % 4) {
			size_t k = rng() % m.n;
			uint64_t s = m.v[k].start;

			size = rng() % 2 ? m.v[k].last - s + 1 : 0;
			err = address_allocator_free(a, s, size);
			ck_assert_int_eq(err, model_free(&m, s, size));
			ck_assert_int_eq(err, 0);
			freed++;
		} else {
			at = base + rng() % 0x100000;
			size = rng() % 3 ? 0 : rng() % 0x2000;
			err = address_allocator_free(a, at, size);
			ck_assert_int_eq(err, model_free(&m, at, size));
			bad_free += err != 0;
		}
		diff = model_compare(&m, a, why, sizeof(why));
		ck_assert_msg(diff == NULL, "op %d: %s", i, diff);
	}
	/* The run really exercised every path (figures for these seeds are
	 * several hundred each). */
	ck_assert_int_ge(ok[ADDRESS_ALLOC_FIRST_FIT], 50);
	ck_assert_int_ge(ok[ADDRESS_ALLOC_LAST_FIT], 50);
	ck_assert_int_ge(ok[ADDRESS_ALLOC_EXACT], 50);
	ck_assert_int_ge(failed, 50);
	ck_assert_int_ge(freed, 50);
	ck_assert_int_ge(bad_free, 50);
	address_allocator_destroy(a);
}

START_TEST(random_ops_vs_model)
{
	random_run(0x1000, 0x8ffff, 1, 6000);
	random_run(0, 0xffff, 2, 6000);
	random_run(3, 0x10002, 3, 6000);
	random_run(0, TOP, 4, 3000);
	random_run(TOP - 0xfffff, TOP, 5, 3000);
	random_run(BIT63 - 0x8000, BIT63 + 0x8000, 6, 3000);
}
END_TEST

/* Many allocations: the trees stay balanced and consistent. */
START_TEST(many_allocations)
{
	enum {
		N = 20000
	};
	struct address_allocator *a = mk(0, TOP);
	static uint64_t x[N];
	bool big;
	int i;

	for (i = 0; i < N; i++) {
		ck_assert_int_eq(address_allocator_allocate(
					 a, 0x1000, 0x1000,
					 i % 2 ? ADDRESS_ALLOC_FIRST_FIT
					       : ADDRESS_ALLOC_LAST_FIT,
					 &x[i]),
				 0);
	}
	ck_assert_int_eq(address_allocator_check(a), 0);
	ck_assert_uint_eq(address_allocator_count(a), N);
	rng_state = 99;
	for (i = N - 1; i > 0; i--) {
		int j = (int)(rng() % (uint64_t)(i + 1));
		uint64_t t = x[i];

		x[i] = x[j];
		x[j] = t;
	}
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(address_allocator_free(a, x[i], 0x1000), 0);
		if (i % 1000 == 0)
			ck_assert_int_eq(address_allocator_check(a), 0);
	}
	ck_assert_uint_eq(address_allocator_count(a), 0);
	ck_assert_uint_eq(address_allocator_free_bytes(a, &big), TOP);
	ck_assert(big);
	ck_assert_uint_eq(nfree_ranges(a), 1);
	address_allocator_destroy(a);
}
END_TEST

/* ------------------------------------------------------------- ids */

static struct id_allocator *mkid(uint32_t first, uint32_t last)
{
	struct id_allocator *a = NULL;

	ck_assert_int_eq(id_allocator_create(first, last, &a), 0);
	ck_assert_ptr_nonnull(a);
	return a;
}

START_TEST(id_create_errors)
{
	struct id_allocator *a = (struct id_allocator *)&a;
	uint32_t f = 0, l = 0;

	ck_assert_int_eq(id_allocator_create(5, 4, &a), -EINVAL);
	ck_assert_ptr_eq(a, (struct id_allocator *)&a);
	ck_assert_int_eq(id_allocator_create(0, 4, NULL), -EINVAL);
	a = mkid(5, 5);
	ck_assert_int_eq(id_allocator_range(a, &f, &l), 0);
	ck_assert_uint_eq(f, 5);
	ck_assert_uint_eq(l, 5);
	ck_assert_int_eq(id_allocator_range(NULL, &f, &l), -EINVAL);
	id_allocator_destroy(a);
	id_allocator_destroy(NULL);
}
END_TEST

START_TEST(id_lowest_first_and_reuse)
{
	struct id_allocator *a = mkid(32, 1000);
	uint32_t id = 0, i;

	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
		ck_assert_uint_eq(id, 32 + i);
	}
	ck_assert_uint_eq(id_allocator_count(a), 200);
	ck_assert_int_eq(id_allocator_free(a, 150), 0);
	ck_assert_int_eq(id_allocator_free(a, 40), 0);
	ck_assert_int_eq(id_allocator_free(a, 100), 0);
	/* Freed ids come back lowest first. */
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 40);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 100);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 150);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 232);
	ck_assert_uint_eq(id_allocator_count(a), 201);
	id_allocator_destroy(a);
}
END_TEST

START_TEST(id_specific)
{
	struct id_allocator *a = mkid(0, 127);
	uint32_t id = 0;

	ck_assert_int_eq(id_allocator_allocate_id(a, 0), 0);
	ck_assert_int_eq(id_allocator_allocate_id(a, 2), 0);
	ck_assert_int_eq(id_allocator_allocate_id(a, 127), 0);
	ck_assert_int_eq(id_allocator_allocate_id(a, 2), -EBUSY);
	ck_assert_int_eq(id_allocator_is_allocated(a, 2), 1);
	ck_assert_int_eq(id_allocator_is_allocated(a, 1), 0);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 3);
	ck_assert_uint_eq(id_allocator_count(a), 5);
	id_allocator_destroy(a);
}
END_TEST

START_TEST(id_errors)
{
	struct id_allocator *a = mkid(10, 20);
	uint32_t id = 77;

	ck_assert_int_eq(id_allocator_allocate_id(a, 9), -ERANGE);
	ck_assert_int_eq(id_allocator_allocate_id(a, 21), -ERANGE);
	ck_assert_int_eq(id_allocator_free(a, 9), -ERANGE);
	ck_assert_int_eq(id_allocator_free(a, UINT32_MAX), -ERANGE);
	ck_assert_int_eq(id_allocator_is_allocated(a, 0), -ERANGE);
	ck_assert_int_eq(id_allocator_is_allocated(a, 21), -ERANGE);
	/* Never allocated, then double free. */
	ck_assert_int_eq(id_allocator_free(a, 15), -ENOENT);
	ck_assert_int_eq(id_allocator_allocate_id(a, 15), 0);
	ck_assert_int_eq(id_allocator_free(a, 15), 0);
	ck_assert_int_eq(id_allocator_free(a, 15), -ENOENT);
	ck_assert_uint_eq(id_allocator_count(a), 0);
	/* NULL arguments. */
	ck_assert_int_eq(id_allocator_allocate(NULL, &id), -EINVAL);
	ck_assert_int_eq(id_allocator_allocate(a, NULL), -EINVAL);
	ck_assert_int_eq(id_allocator_allocate_id(NULL, 10), -EINVAL);
	ck_assert_int_eq(id_allocator_free(NULL, 10), -EINVAL);
	ck_assert_int_eq(id_allocator_is_allocated(NULL, 10), -EINVAL);
	ck_assert_uint_eq(id_allocator_count(NULL), 0);
	ck_assert_uint_eq(id, 77);
	id_allocator_destroy(a);
}
END_TEST

START_TEST(id_exhaustion)
{
	/* 191 ids: not a multiple of 64, so the last word is partial. */
	struct id_allocator *a = mkid(10, 200);
	uint32_t id = 0, i;

	for (i = 10; i <= 200; i++) {
		ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
		ck_assert_uint_eq(id, i);
	}
	id = 12345;
	ck_assert_int_eq(id_allocator_allocate(a, &id), -ENOSPC);
	ck_assert_uint_eq(id, 12345);
	ck_assert_uint_eq(id_allocator_count(a), 191);
	ck_assert_int_eq(id_allocator_free(a, 200), 0);
	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, 200);
	ck_assert_int_eq(id_allocator_allocate(a, &id), -ENOSPC);
	id_allocator_destroy(a);
}
END_TEST

START_TEST(id_top_of_range)
{
	struct id_allocator *a = mkid(UINT32_MAX, UINT32_MAX);
	uint32_t id = 0;

	ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
	ck_assert_uint_eq(id, UINT32_MAX);
	ck_assert_int_eq(id_allocator_allocate(a, &id), -ENOSPC);
	ck_assert_int_eq(id_allocator_allocate_id(a, UINT32_MAX - 1), -ERANGE);
	ck_assert_int_eq(id_allocator_free(a, UINT32_MAX), 0);
	id_allocator_destroy(a);

	a = mkid(UINT32_MAX - 64, UINT32_MAX); /* 65 ids */
	ck_assert_int_eq(id_allocator_allocate_id(a, UINT32_MAX), 0);
	ck_assert_int_eq(id_allocator_allocate_id(a, UINT32_MAX), -EBUSY);
	for (int i = 0; i < 64; i++) {
		ck_assert_int_eq(id_allocator_allocate(a, &id), 0);
		ck_assert_uint_eq(id, UINT32_MAX - 64 + (uint32_t)i);
	}
	ck_assert_int_eq(id_allocator_allocate(a, &id), -ENOSPC);
	ck_assert_uint_eq(id_allocator_count(a), 65);
	id_allocator_destroy(a);
}
END_TEST

START_TEST(id_random_vs_model)
{
	enum {
		FIRST = 7,
		LAST = 7 + 300
	};
	static bool used[LAST + 2];
	struct id_allocator *a = mkid(FIRST, LAST);
	uint64_t count = 0;
	int i;

	memset(used, 0, sizeof(used));
	rng_state = 7;
	for (i = 0; i < 50000; i++) {
		uint32_t id = (uint32_t)(rng() % (LAST + 2)), got = 0;
		int err, want;

		switch (rng() % 4) {
		case 0: {
			uint32_t lowest = FIRST;

			while (lowest <= LAST && used[lowest])
				lowest++;
			err = id_allocator_allocate(a, &got);
			if (lowest > LAST) {
				ck_assert_int_eq(err, -ENOSPC);
			} else {
				ck_assert_int_eq(err, 0);
				ck_assert_uint_eq(got, lowest);
				used[lowest] = true;
				count++;
			}
			break;
		}
		case 1:
			err = id_allocator_allocate_id(a, id);
			want = id < FIRST || id > LAST ? -ERANGE
			       : used[id]	       ? -EBUSY
						       : 0;
			ck_assert_int_eq(err, want);
			if (!err) {
				used[id] = true;
				count++;
			}
			break;
		default:
			err = id_allocator_free(a, id);
			want = id < FIRST || id > LAST ? -ERANGE
			       : !used[id]	       ? -ENOENT
						       : 0;
			ck_assert_int_eq(err, want);
			if (!err) {
				used[id] = false;
				count--;
			}
			break;
		}
		ck_assert_uint_eq(id_allocator_count(a), count);
		if (id >= FIRST && id <= LAST)
			ck_assert_int_eq(id_allocator_is_allocated(a, id),
					 used[id]);
	}
	id_allocator_destroy(a);
}
END_TEST

static Suite *vm_allocator_suite(void)
{
	Suite *s = suite_create("vm-allocator");
	TCase *t = tcase_create("address");
	TCase *e = tcase_create("address-errors");
	TCase *r = tcase_create("address-random");
	TCase *id = tcase_create("id");

	tcase_add_test(t, create_destroy);
	tcase_add_test(t, one_byte_range);
	tcase_add_test(t, first_fit_sequential);
	tcase_add_test(t, last_fit_sequential);
	tcase_add_test(t, alignment_honoured);
	tcase_add_test(t, alignment_skips_unusable_ranges);
	tcase_add_test(t, alignment_2_63);
	tcase_add_test(t, full_64bit_range);
	tcase_add_test(t, allocation_at_top);
	tcase_add_test(t, last_fit_at_top);
	tcase_add_test(t, exact_basic);
	tcase_add_test(t, coalesce_left);
	tcase_add_test(t, coalesce_right);
	tcase_add_test(t, coalesce_both);
	tcase_add_test(t, exact_fit_after_frees);
	tcase_add_test(t, fragmentation_then_exhaustion);
	tcase_add_test(t, find_next_foreach);
	suite_add_tcase(s, t);

	tcase_add_test(e, create_errors);
	tcase_add_test(e, null_arguments);
	tcase_add_test(e, err_zero_size);
	tcase_add_test(e, err_bad_alignment);
	tcase_add_test(e, err_bad_policy);
	tcase_add_test(e, err_exhaustion);
	tcase_add_test(e, err_exact_busy);
	tcase_add_test(e, err_exact_out_of_range);
	tcase_add_test(e, err_overflow);
	tcase_add_test(e, err_free_never_allocated);
	tcase_add_test(e, err_double_free);
	tcase_add_test(e, err_free_size_mismatch);
	suite_add_tcase(s, e);

	tcase_add_test(r, random_ops_vs_model);
	tcase_add_test(r, many_allocations);
	tcase_set_timeout(r, 300);
	suite_add_tcase(s, r);

	tcase_add_test(id, id_create_errors);
	tcase_add_test(id, id_lowest_first_and_reuse);
	tcase_add_test(id, id_specific);
	tcase_add_test(id, id_errors);
	tcase_add_test(id, id_exhaustion);
	tcase_add_test(id, id_top_of_range);
	tcase_add_test(id, id_random_vs_model);
	suite_add_tcase(s, id);
	return s;
}

int main(void)
{
	return cvmm_check_run(vm_allocator_suite(), false);
}
