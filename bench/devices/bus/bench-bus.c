/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Bus dispatch cost.  Prints, in the same run:
 *  - a direct call of the device callback through a function pointer (the
 *    baseline: what a dispatch cannot avoid);
 *  - a rwlock-protected binary search + call (the scheme the bus did not
 *    choose);
 *  - io_bus_read with 1, 8, 64 and 512 registered ranges;
 *  - 2 threads dispatching while a third moves a range in a loop, for the
 *    bus and for the rwlock scheme.
 */
#include <cvmm/devices/bus.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile uint64_t sink;

/* CPU time of the calling thread, for every figure: they are not inflated
 * when the machine is busy and the benchmark is preempted. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static void dev_read(void *opaque, uint64_t off,
					       void *data, unsigned size)
{
	uint32_t v = (uint32_t)off + (uint32_t)(uintptr_t)opaque;

	memcpy(data, &v, size < 4 ? size : 4);
}

static const struct io_bus_ops ops = {dev_read, NULL};

#define NADDR 4096
static uint64_t addrs[NADDR];

static void make_addrs(unsigned ndev)
{
	uint32_t x = 2463534242u;

	for (unsigned i = 0; i < NADDR; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		addrs[i] =
			0x1000 + (uint64_t)(x % ndev) * 0x100 + (x >> 24) % 8;
	}
}

static double bench_direct(unsigned iters)
{
	void (*volatile fn)(void *, uint64_t, void *, unsigned) = dev_read;
	double t0 = cpu_s();

	for (unsigned i = 0; i < iters; i++) {
		uint32_t v;

		fn((void *)1, addrs[i % NADDR] & 0xff, &v, 4);
		sink += v;
	}
	return (cpu_s() - t0) * 1e9 / iters;
}

static double bench_hot(struct io_bus *bus, unsigned iters)
{
	double t0 = cpu_s();
	uint64_t a = addrs[0];

	for (unsigned i = 0; i < iters; i++) {
		uint32_t v;

		io_bus_read(bus, a, &v, 4);
		sink += v;
	}
	return (cpu_s() - t0) * 1e9 / iters;
}

static double bench_bus(struct io_bus *bus, unsigned iters)
{
	double t0 = cpu_s();

	for (unsigned i = 0; i < iters; i++) {
		uint32_t v;

		io_bus_read(bus, addrs[i % NADDR], &v, 4);
		sink += v;
	}
	return (cpu_s() - t0) * 1e9 / iters;
}

/* ----------------------------------------------- rwlock comparison scheme */

struct rw_ent {
	uint64_t base, last;
	void *opaque;
};

struct rw_bus {
	pthread_rwlock_t lock;
	struct rw_ent e[512];
	unsigned n;
};

static int rw_read(struct rw_bus *b, uint64_t addr, void *data, unsigned size)
{
	unsigned lo = 0, hi;
	int ret = 1;

	pthread_rwlock_rdlock(&b->lock);
	hi = b->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (b->e[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && addr + size - 1 <= b->e[lo - 1].last) {
		dev_read(b->e[lo - 1].opaque, addr - b->e[lo - 1].base, data,
			 size);
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

static double bench_rw(struct rw_bus *b, unsigned iters)
{
	double t0 = cpu_s();

	for (unsigned i = 0; i < iters; i++) {
		uint32_t v = 0;

		rw_read(b, addrs[i % NADDR], &v, 4);
		sink += v;
	}
	return (cpu_s() - t0) * 1e9 / iters;
}

/* -------------------------------------------------------- threaded runs */

struct mt {
	struct io_bus *bus;
	struct rw_bus *rw;
	atomic_bool stop;
	atomic_ulong moves;
	double ns[2];
};

struct worker {
	struct mt *mt;
	int idx;
};

static void *dispatcher(void *arg)
{
	struct worker *w = arg;
	struct mt *mt = w->mt;
	unsigned long n = 0;
	double t0 = cpu_s();

	while (!atomic_load_explicit(&mt->stop, memory_order_relaxed)) {
		for (unsigned i = 0; i < 1024; i++) {
			uint32_t v = 0;

			if (mt->bus)
				io_bus_read(mt->bus, addrs[(n + i) % NADDR], &v,
					    4);
			else
				rw_read(mt->rw, addrs[(n + i) % NADDR], &v, 4);
			sink += v;
		}
		n += 1024;
	}
	mt->ns[w->idx] = (cpu_s() - t0) * 1e9 / (double)n;
	return NULL;
}

static void *mover(void *arg)
{
	struct mt *mt = arg;
	uint64_t base = 0x100000;

	while (!atomic_load_explicit(&mt->stop, memory_order_relaxed)) {
		uint64_t nb = base == 0x100000 ? 0x200000 : 0x100000;

		if (mt->bus) {
			io_bus_move(mt->bus, base, nb);
		} else {
			pthread_rwlock_wrlock(&mt->rw->lock);
			mt->rw->e[mt->rw->n - 1].base = nb;
			mt->rw->e[mt->rw->n - 1].last = nb + 0xff;
			pthread_rwlock_unlock(&mt->rw->lock);
		}
		base = nb;
		atomic_fetch_add(&mt->moves, 1);
	}
	return NULL;
}

static void run_mt(struct mt *mt, int with_mover, double secs)
{
	pthread_t th[3];
	struct worker w[2] = {{mt, 0}, {mt, 1}};

	atomic_store(&mt->stop, false);
	atomic_store(&mt->moves, 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, dispatcher, &w[i]);
	if (with_mover)
		pthread_create(&th[2], NULL, mover, mt);
	{
		struct timespec ts = {
			(time_t)secs,
			(long)((secs - (double)(time_t)secs) * 1e9)};

		nanosleep(&ts, NULL);
	}
	atomic_store(&mt->stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	if (with_mover)
		pthread_join(th[2], NULL);
}

int main(void)
{
	static const unsigned counts[] = {1, 8, 64, 512};
	const unsigned iters = 10000000;
	struct rw_bus *rw = calloc(1, sizeof(*rw));
	double direct;

	if (!rw)
		return 1;
	pthread_rwlock_init(&rw->lock, NULL);
	make_addrs(64);
	direct = bench_direct(iters);
	printf("bus dispatch, 4-byte reads, %u iterations each, thread CPU "
	       "time "
	       "per call\n",
	       iters);
	printf("  %-34s %7.2f ns  (baseline)\n", "direct call via fn pointer",
	       direct);
	for (unsigned c = 0; c < 4; c++) {
		struct io_bus *bus;
		unsigned n = counts[c];
		double t, trw, hot;

		if (io_bus_create(&bus))
			return 1;
		for (unsigned i = 0; i < n; i++) {
			if (io_bus_register(bus, 0x1000 + i * 0x100ull, 8, &ops,
					    (void *)(uintptr_t)i))
				return 1;
			rw->e[i] = (struct rw_ent){0x1000 + i * 0x100ull,
						   0x1000 + i * 0x100ull + 7,
						   (void *)(uintptr_t)i};
		}
		rw->n = n;
		make_addrs(n);
		direct = bench_direct(iters);
		t = bench_bus(bus, iters);
		trw = bench_rw(rw, iters);
		hot = bench_hot(bus, iters);
		printf("  io_bus_read, %3u ranges, random   %7.2f ns  "
		       "(%.2fx direct %.2f ns; rwlock scheme %.2f ns = "
		       "%.2fx)\n",
		       n, t, t / direct, direct, trw, trw / t);
		printf("  io_bus_read, %3u ranges, one addr %7.2f ns\n", n,
		       hot);
		io_bus_destroy(bus);
	}

	/* 2 dispatchers + 1 mover, 64 ranges + the moving one */
	{
		struct io_bus *bus;
		struct mt mt = {0};
		double base_ns, mv_ns, rw_base, rw_mv;
		unsigned long bus_moves, rw_moves;

		if (io_bus_create(&bus))
			return 1;
		for (unsigned i = 0; i < 64; i++) {
			io_bus_register(bus, 0x1000 + i * 0x100ull, 8, &ops,
					(void *)(uintptr_t)i);
			rw->e[i] = (struct rw_ent){0x1000 + i * 0x100ull,
						   0x1000 + i * 0x100ull + 7,
						   (void *)(uintptr_t)i};
		}
		io_bus_register(bus, 0x100000, 0x100, &ops, NULL);
		rw->e[64] = (struct rw_ent){0x100000, 0x1000ff, NULL};
		rw->n = 65;
		make_addrs(64);
		mt.bus = bus;
		run_mt(&mt, 0, 1.0);
		base_ns = (mt.ns[0] + mt.ns[1]) / 2;
		run_mt(&mt, 1, 1.0);
		mv_ns = (mt.ns[0] + mt.ns[1]) / 2;
		bus_moves = atomic_load(&mt.moves);
		mt.bus = NULL;
		mt.rw = rw;
		run_mt(&mt, 0, 1.0);
		rw_base = (mt.ns[0] + mt.ns[1]) / 2;
		run_mt(&mt, 1, 1.0);
		rw_mv = (mt.ns[0] + mt.ns[1]) / 2;
		rw_moves = atomic_load(&mt.moves);
		printf("2 threads dispatching (64 ranges), CPU time per "
		       "dispatch:\n");
		printf("  io_bus, no mover                   %7.2f ns\n",
		       base_ns);
		printf("  io_bus, third thread moving        %7.2f ns  "
		       "(%.2fx; %lu moves/s)\n",
		       mv_ns, mv_ns / base_ns, bus_moves);
		printf("  rwlock, no mover                   %7.2f ns  "
		       "(%.2fx io_bus)\n",
		       rw_base, rw_base / base_ns);
		printf("  rwlock, third thread moving        %7.2f ns  "
		       "(%.2fx io_bus with mover; %lu moves/s)\n",
		       rw_mv, rw_mv / mv_ns, rw_moves);
		io_bus_destroy(bus);
	}
	free(rw);
	return sink == 42 ? 1 : 0;
}
