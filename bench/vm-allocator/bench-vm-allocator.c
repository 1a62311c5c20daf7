/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator throughput against the number of live allocations.
 *
 * Steady state: with L allocations live, repeatedly free a random live one
 * and allocate a new one (random size of 1-8 pages, page aligned, first fit
 * or last fit), so the free ranges stay fragmented.  Also times find() on
 * random live addresses.  The baseline is the same loop with 16 live
 * allocations; with O(log n) operations the ratio at 64k live stays a small
 * multiple (log2(65536) / log2(16) = 4), where a linear structure would be
 * ~4000x slower.  To show that contrast, the same churn also runs on a
 * naive sorted-array first-fit allocator (linear search and memmove).
 */
#include <cvmm/vm-allocator.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct result {
	double churn_ns; /* one free + one allocate */
	double find_ns;
};

static volatile uint64_t sink;

static int run(size_t live, enum address_allocator_policy policy, long iters,
	       struct result *res)
{
	struct address_allocator *a = NULL;
	uint64_t *addr = calloc(live, sizeof(*addr)), s = 0, sum = 0;
	double t0;
	size_t i;
	long k;
	int err;

	if (!addr)
		return -1;
	err = address_allocator_create(0, (1ULL << 48) - 1, &a);
	for (i = 0; !err && i < live; i++)
		err = address_allocator_allocate(a, (rng() % 8 + 1) << 12, 4096,
						 policy, &addr[i]);
	/* Churn once untimed so the layout is fragmented. */
	for (k = 0; !err && k < (long)live * 2; k++) {
		i = rng() % live;
		err = address_allocator_free(a, addr[i], 0);
		if (!err)
			err = address_allocator_allocate(a,
							 (rng() % 8 + 1) << 12,
							 4096, policy,
							 &addr[i]);
	}
	t0 = now();
	for (k = 0; !err && k < iters; k++) {
		i = rng() % live;
		err = address_allocator_free(a, addr[i], 0);
		if (!err)
			err = address_allocator_allocate(a,
							 (rng() % 8 + 1) << 12,
							 4096, policy,
							 &addr[i]);
	}
	res->churn_ns = (now() - t0) * 1e9 / (double)iters;
	t0 = now();
	for (k = 0; !err && k < iters; k++) {
		err = address_allocator_find(a, addr[rng() % live] + 5, &s,
					     NULL);
		sum += s;
	}
	res->find_ns = (now() - t0) * 1e9 / (double)iters;
	sink = sum;
	if (!err)
		err = address_allocator_check(a);
	address_allocator_destroy(a);
	free(addr);
	return err;
}

/* Naive reference: sorted array of allocations, linear first fit. */
struct naive {
	uint64_t *start;
	uint64_t *len;
	size_t n;
};

static uint64_t naive_alloc(struct naive *v, uint64_t len)
{
	uint64_t at = 0;
	size_t i;

	for (i = 0; i < v->n; i++) {
		if (v->start[i] - at >= len)
			break;
		at = v->start[i] + v->len[i];
	}
	memmove(&v->start[i + 1], &v->start[i], (v->n - i) * sizeof(uint64_t));
	memmove(&v->len[i + 1], &v->len[i], (v->n - i) * sizeof(uint64_t));
	v->start[i] = at;
	v->len[i] = len;
	v->n++;
	return at;
}

static void naive_free(struct naive *v, uint64_t at)
{
	size_t lo = 0, hi = v->n;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (v->start[mid] <= at)
			lo = mid;
		else
			hi = mid;
	}
	memmove(&v->start[lo], &v->start[lo + 1],
		(v->n - lo - 1) * sizeof(uint64_t));
	memmove(&v->len[lo], &v->len[lo + 1],
		(v->n - lo - 1) * sizeof(uint64_t));
	v->n--;
}

static double naive_run(size_t live, long iters)
{
	struct naive v = {calloc(live + 1, 8), calloc(live + 1, 8), 0};
	uint64_t *addr = calloc(live, sizeof(*addr));
	double t0, ns = -1;
	size_t i;
	long k;

	if (v.start && v.len && addr) {
		for (i = 0; i < live; i++)
			addr[i] = naive_alloc(&v, (rng() % 8 + 1) << 12);
		for (k = 0; k < (long)live * 2; k++) {
			i = rng() % live;
			naive_free(&v, addr[i]);
			addr[i] = naive_alloc(&v, (rng() % 8 + 1) << 12);
		}
		t0 = now();
		for (k = 0; k < iters; k++) {
			i = rng() % live;
			naive_free(&v, addr[i]);
			addr[i] = naive_alloc(&v, (rng() % 8 + 1) << 12);
		}
		ns = (now() - t0) * 1e9 / (double)iters;
		sink = v.start[0];
	}
	free(v.start);
	free(v.len);
	free(addr);
	return ns;
}

int main(void)
{
	static const size_t sizes[] = {1024, 65536};
	static const char *const names[] = {"first-fit", "last-fit"};
	const long iters = 300000;
	int p;
	size_t j;

	printf("ns per operation with N live allocations; baseline: 16 live.\n"
	       "log2r = log2(N)/log2(16), the ratio O(log n) predicts "
	       "(for 'linear': N/16).\n");
	printf("%-10s %8s %14s %14s %8s %8s\n", "policy", "live",
	       "free+alloc ns", "baseline(16)", "ratio", "log2r");
	for (p = 0; p < 2; p++) {
		struct result base, r;

		if (run(16, (enum address_allocator_policy)p, iters, &base))
			return 1;
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			if (run(sizes[j], (enum address_allocator_policy)p,
				iters, &r))
				return 1;
			printf("%-10s %8zu %14.1f %14.1f %8.2f %8.2f\n",
			       names[p], sizes[j], r.churn_ns, base.churn_ns,
			       r.churn_ns / base.churn_ns,
			       log2((double)sizes[j]) / 4.0);
			printf("%-10s %8zu %14.1f %14.1f %8.2f %8.2f  (find)\n",
			       names[p], sizes[j], r.find_ns, base.find_ns,
			       r.find_ns / base.find_ns,
			       log2((double)sizes[j]) / 4.0);
		}
	}
	/* Reference: a linear structure under the same first-fit churn. */
	{
		double base = naive_run(16, iters / 10);

		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			double r = naive_run(sizes[j], sizes[j] > 4096
							       ? iters / 100
							       : iters / 10);

			printf("%-10s %8zu %14.1f %14.1f %8.2f %8.2f  (naive "
			       "sorted array, for contrast)\n",
			       "linear", sizes[j], r, base, r / base,
			       (double)sizes[j] / 16.0);
		}
	}
	return 0;
}
