/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvm-memory benchmark: checked guest memory access against plain host
 * access to the same buffers, measured in the same run.
 *
 * Each figure is the best of several timed rounds, in ns per operation.
 * Baselines call libc memcpy with the same run-time length (so neither side
 * is constant-folded into inline moves), and plain loads read the same host
 * address through a volatile pointer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvmm/vm-memory.h"

#define ROUNDS 101

/* Keep the compiler from dropping or merging the work. */
#define barrier() __asm__ volatile("" ::: "memory")

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-vm-memory: %s failed: %d\n", what, err);
	exit(1);
}

static struct guest_region *mkreg(guest_addr_t gpa, uint64_t size)
{
	struct guest_region_params p;
	struct guest_region *r;
	int ret;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	ret = guest_region_create(&p, &r);
	if (ret)
		die("guest_region_create", ret);
	return r;
}

static void report(const char *name, double ns, const char *bname, double bns)
{
	printf("%-34s %9.2f ns/op   %-22s %9.2f ns/op   ratio %5.2fx\n", name,
	       ns, bname, bns, ns / bns);
}

/*
 * Time @body_a and @body_b (each run @iters times, with the loop index in
 * `i`) in alternating rounds, so that both see the same machine conditions;
 * keep the best round of each.
 */
#define TIME_ONE(t, iters, body)                          \
	do {                                              \
		double t0_ = now_ns();                    \
		for (long i = 0; i < (iters); i++) {      \
			body;                             \
			barrier();                        \
		}                                         \
		(t) = (now_ns() - t0_) / (double)(iters); \
	} while (0)

#define TIME2(ra, rb, iters, body_a, body_b)          \
	do {                                          \
		double ba_ = 1e300, bb_ = 1e300, t_;  \
		for (int r_ = 0; r_ < ROUNDS; r_++) { \
			TIME_ONE(t_, iters, body_b);  \
			if (t_ < bb_)                 \
				bb_ = t_;             \
			TIME_ONE(t_, iters, body_a);  \
			if (t_ < ba_)                 \
				ba_ = t_;             \
		}                                     \
		(ra) = ba_;                           \
		(rb) = bb_;                           \
	} while (0)

#define TIME(result, iters, body)                     \
	do {                                          \
		double b_ = 1e300, t_;                \
		for (int r_ = 0; r_ < ROUNDS; r_++) { \
			TIME_ONE(t_, iters, body);    \
			if (t_ < b_)                  \
				b_ = t_;              \
		}                                     \
		(result) = b_;                        \
	} while (0)

/* ------------------------------------------------------------ copies */

static void bench_copies(void)
{
	static const size_t sizes[] = {8, 64, 4096, 1 << 20};
	struct guest_region *r = mkreg(0, 4 << 20);
	struct guest_memory *m;
	uint8_t *host = guest_region_host_addr(r), *buf = malloc(2 << 20);
	volatile size_t vlen;
	size_t k;
	int ret;

	ret = guest_memory_create(&r, 1, &m);
	if (ret)
		die("guest_memory_create", ret);
	guest_region_unref(r);
	memset(host, 1, 4 << 20);
	memset(buf, 2, 2 << 20);
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		long iters = sizes[k] >= (1 << 20) ? 20
			     : sizes[k] >= 4096	   ? 10000
						   : 200000;
		char name[64];
		size_t len;
		double a, b;

		vlen = sizes[k];
		len = vlen; /* a run-time length for both sides */
		/* Walk through 64 offsets so the address is not constant. */
		TIME2(
			a, b, iters,
			{
				if (guest_memory_read(m,
						      ((uint64_t)i & 63) * 64,
						      buf, len))
					die("guest_memory_read", -1);
			},
			memcpy(buf, host + ((uint64_t)i & 63) * 64, len));
		snprintf(name, sizeof(name), "guest_memory_read %zu B", len);
		report(name, a, "memcpy", b);
		TIME2(
			a, b, iters,
			{
				if (guest_memory_write(m,
						       ((uint64_t)i & 63) * 64,
						       buf, len))
					die("guest_memory_write", -1);
			},
			memcpy(host + ((uint64_t)i & 63) * 64, buf, len));
		snprintf(name, sizeof(name), "guest_memory_write %zu B", len);
		report(name, a, "memcpy", b);
	}
	guest_memory_unref(m);

	/* Writes into a region that logs dirty pages (the write path that
	 * also sets bits), 64 B and 4 KiB. */
	{
		struct guest_region_params p;
		size_t lens[2] = {64, 4096};

		memset(&p, 0, sizeof(p));
		p.size = 4 << 20;
		p.backing = GUEST_REGION_ANON_PRIVATE;
		p.flags = GUEST_REGION_DIRTY_LOG;
		ret = guest_region_create(&p, &r);
		if (ret)
			die("guest_region_create", ret);
		ret = guest_memory_create(&r, 1, &m);
		if (ret)
			die("guest_memory_create", ret);
		host = guest_region_host_addr(r);
		memset(host, 1, 4 << 20);
		guest_region_unref(r);
		for (k = 0; k < 2; k++) {
			long iters = lens[k] >= 4096 ? 10000 : 200000;
			char name[64];
			size_t len;
			double a, b;

			vlen = lens[k];
			len = vlen;
			TIME2(
				a, b, iters,
				{
					if (guest_memory_write(m,
							       ((uint64_t)i &
								63) * 4096,
							       buf, len))
						die("guest_memory_write", -1);
				},
				memcpy(host + ((uint64_t)i & 63) * 4096, buf,
				       len));
			snprintf(name, sizeof(name),
				 "write %zu B, dirty log on", len);
			report(name, a, "memcpy", b);
		}
		guest_memory_unref(m);
	}
	free(buf);
}

/* ------------------------------------------------------------ typed loads */

static void bench_typed(void)
{
	struct guest_region *r = mkreg(0, 1 << 20);
	struct guest_memory *m;
	uint8_t *host = guest_region_host_addr(r);
	const long iters = 200000;
	uint64_t acc = 0;
	double a, b;
	int ret;

	ret = guest_memory_create(&r, 1, &m);
	if (ret)
		die("guest_memory_create", ret);
	guest_region_unref(r);

	TIME2(
		a, b, iters,
		{
			uint32_t v;

			if (guest_memory_read_u32(m, ((uint64_t)i & 1023) * 4,
						  &v))
				die("read_u32", -1);
			acc += v;
		},
		acc += *(volatile uint32_t *)(void *)(host + ((uint64_t)i &
							      1023) * 4));
	report("guest_memory_read_u32", a, "plain load", b);
	TIME2(
		a, b, iters,
		{
			uint64_t v;

			if (guest_memory_read_u64(m, ((uint64_t)i & 1023) * 8,
						  &v))
				die("read_u64", -1);
			acc += v;
		},
		acc += *(volatile uint64_t *)(void *)(host + ((uint64_t)i &
							      1023) * 8));
	report("guest_memory_read_u64", a, "plain load", b);
	TIME2(
		a, b, iters,
		{
			if (guest_memory_write_u32(m, ((uint64_t)i & 1023) * 4,
						   (uint32_t)i))
				die("write_u32", -1);
		},
		*(volatile uint32_t *)(void *)(host + ((uint64_t)i & 1023) *
							      4) = (uint32_t)i);
	report("guest_memory_write_u32", a, "plain store", b);
	TIME2(
		a, b, iters,
		{
			uint64_t v;

			if (guest_memory_load_u64(m, ((uint64_t)i & 1023) * 8,
						  &v, memory_order_acquire))
				die("load_u64", -1);
			acc += v;
		},
		acc += __atomic_load_n(
			(uint64_t *)(void *)(host + ((uint64_t)i & 1023) * 8),
			__ATOMIC_ACQUIRE));
	report("guest_memory_load_u64 (acquire)", a, "plain atomic load", b);
	sink = (size_t)acc;
	guest_memory_unref(m);
}

/* ------------------------------------------------------------ lookup */

/* @n regions of 64 KiB at 128 KiB strides; 1024 pseudo-random addresses
 * inside them. */
static struct guest_memory *lookup_mem(size_t n, guest_addr_t *addrs)
{
	struct guest_region *r[64];
	struct guest_memory *m;
	uint64_t x = 88172645463325252ull;
	size_t i;
	int ret;

	for (i = 0; i < n; i++)
		r[i] = mkreg(i * (128 << 10), 64 << 10);
	ret = guest_memory_create(r, n, &m);
	if (ret)
		die("guest_memory_create", ret);
	for (i = 0; i < n; i++)
		guest_region_unref(r[i]);
	for (i = 0; i < 1024; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		addrs[i] = (x % n) * (128 << 10) + (x >> 32) % (64 << 10);
	}
	return m;
}

static void bench_lookup(void)
{
	static const size_t counts[] = {1, 8, 64};
	static guest_addr_t addrs[1024];
	const long iters = 200000;
	double base_find = 0, base_read = 0;
	uint64_t acc = 0;
	size_t k;

	for (k = 0; k < 3; k++) {
		struct guest_memory *m = lookup_mem(counts[k], addrs);
		char name[64];
		double a, c;

		TIME(a, iters, {
			acc += (uintptr_t)guest_memory_find_region(
				m, addrs[i & 1023]);
		});
		TIME(c, iters, {
			uint8_t v;

			if (guest_memory_read_u8(m, addrs[i & 1023], &v))
				die("read_u8", -1);
			acc += v;
		});
		if (k == 0) {
			base_find = a;
			base_read = c;
		}
		snprintf(name, sizeof(name), "find_region, %zu regions",
			 counts[k]);
		report(name, a, "find_region, 1 region", base_find);
		snprintf(name, sizeof(name), "read_u8, %zu regions", counts[k]);
		report(name, c, "read_u8, 1 region", base_read);
		guest_memory_unref(m);
	}
	sink = (size_t)acc;
}

int main(void)
{
	double t0 = now_ns();

	printf("libvm-memory benchmark (best of %d rounds)\n", ROUNDS);
	bench_copies();
	bench_typed();
	bench_lookup();
	printf("total %.1f s\n", (now_ns() - t0) / 1e9);
	return 0;
}
