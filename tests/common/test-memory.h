/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory for tests, in one call: the setup every test of a library
 * built on libvm-memory needs (Check tests, fuzz targets and benchmarks
 * alike; no Check dependency).
 *
 *   struct guest_memory *m = CVMM_TEST_MEMORY(
 *	{.gpa = 0, .size = 64 * 1024},
 *	{.gpa = 0x100000, .size = 4096, .flags = GUEST_REGION_READONLY});
 *
 * Each range becomes one region (private anonymous memory unless .backing
 * says otherwise) and the snapshot holds the only references to them:
 * guest_memory_unref() unmaps everything.  A layout whose ranges all share
 * one backing and flags is guest_memory_create_ranges(), the library's own
 * convenience constructor; this helper also mixes them per range.  Setup
 * failures are test bugs: the helper prints what failed and aborts (a
 * Check test in fork mode reports the signal, a fuzzer a crash).
 */
#ifndef CVMM_TESTS_TEST_MEMORY_H
#define CVMM_TESTS_TEST_MEMORY_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/vm-memory.h"

/** One region of a test layout. */
struct cvmm_test_range {
	guest_addr_t gpa;
	uint64_t size;
	unsigned int flags;		   /**< GUEST_REGION_* */
	enum guest_region_backing backing; /**< 0: GUEST_REGION_ANON_PRIVATE */
};

static inline void cvmm_test_memory_die(const char *what, guest_addr_t gpa,
					int err)
{
	fprintf(stderr, "test memory: %s at 0x%llx: %s\n", what,
		(unsigned long long)gpa, strerror(-err));
	abort();
}

/* The snapshot of @n ranges (any order, no overlaps). */
static inline struct guest_memory *
cvmm_test_memory(const struct cvmm_test_range *ranges, size_t n)
{
	struct guest_region *regs[64];
	struct guest_memory *m = NULL;
	size_t i;
	int err;

	if (n > sizeof(regs) / sizeof(regs[0]))
		cvmm_test_memory_die("too many ranges", 0, -E2BIG);
	for (i = 0; i < n; i++) {
		struct guest_region_params p;

		memset(&p, 0, sizeof(p));
		p.gpa = ranges[i].gpa;
		p.size = ranges[i].size;
		p.flags = ranges[i].flags;
		p.backing = ranges[i].backing;
		err = guest_region_create(&p, &regs[i]);
		if (err)
			cvmm_test_memory_die("guest_region_create", p.gpa, err);
	}
	err = guest_memory_create(regs, n, &m);
	if (err)
		cvmm_test_memory_die("guest_memory_create", 0, err);
	for (i = 0; i < n; i++)
		guest_region_unref(regs[i]);
	return m;
}

/* CVMM_TEST_MEMORY(range, ...) - cvmm_test_memory() of the ranges listed,
 * each a struct cvmm_test_range initialiser. */
#define CVMM_TEST_MEMORY(...)                                           \
	cvmm_test_memory(                                               \
		(const struct cvmm_test_range[]){__VA_ARGS__},          \
		sizeof((const struct cvmm_test_range[]){__VA_ARGS__}) / \
			sizeof(struct cvmm_test_range))

/* Host address of guest address @gpa in @m, for tests that look at or
 * poke guest RAM behind the accessors' back; aborts if @gpa is no RAM. */
static inline void *cvmm_test_host(const struct guest_memory *m,
				   guest_addr_t gpa)
{
	struct guest_region *r = guest_memory_find_region(m, gpa);

	if (!r)
		cvmm_test_memory_die("no RAM", gpa, -EFAULT);
	return (uint8_t *)guest_region_host_addr(r) +
	       (gpa - guest_region_gpa(r));
}

#endif /* CVMM_TESTS_TEST_MEMORY_H */
