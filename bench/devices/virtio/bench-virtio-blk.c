/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk throughput through the device code, driven by the mock driver
 * over the virtio-mmio transport (notify = a register write, completions
 * read from the used ring), against a file on tmpfs (/dev/shm), beside a
 * plain pread/pwrite loop and a plain liburing loop of the same depth on
 * the same file in the same run.
 *
 * Workloads: 4 KiB random read and write at queue depth 1 and 32, 128 KiB
 * sequential read and write at depth 1 and 32.  The device's io_uring
 * loop polls the device's completion eventfd once per round (what a VMM's
 * event loop would do when it wakes up on it).
 *
 * The machine is shared: each figure is the best of ROUNDS slices of
 * RUN_NS, the four variants interleaved slice by slice, so a burst of
 * load from elsewhere hits them alike.
 *
 * Targets: sync backend >= 0.85x the pread/pwrite loop at 4 KiB QD1;
 * io_uring backend >= 0.85x the plain io_uring loop at 4 KiB QD32.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef CVMM_HAVE_LIBURING
#include <liburing.h>
#endif

#include "test-virtio-blk-harness.h"

#define FILE_SZ	  (64ull << 20)
#define RUN_NS	  30000000ull /* per slice */
#define ROUNDS	  8	      /* slices per figure, interleaved; best kept */
#define HDR_AREA  0x200000ull
#define DATA_AREA BH_DATA_BASE
#define NOFFS	  4096

struct wl {
	const char *name;
	bool write;
	uint32_t bs;
	bool random;
	uint32_t qd;
};

static const struct wl wls[] = {
	{"4K randread  QD1 ", false, 4096, true, 1},
	{"4K randwrite QD1 ", true, 4096, true, 1},
	{"4K randread  QD32", false, 4096, true, 32},
	{"4K randwrite QD32", true, 4096, true, 32},
	{"128K seqread  QD1 ", false, 131072, false, 1},
	{"128K seqwrite QD1 ", true, 131072, false, 1},
	{"128K seqread  QD32", false, 131072, false, 32},
	{"128K seqwrite QD32", true, 131072, false, 32},
};

static char path[] = "/dev/shm/bench-virtio-blk-XXXXXX";
static int fd = -1;
static uint64_t offs[NOFFS];

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void make_offsets(const struct wl *w)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, n = FILE_SZ / w->bs;

	for (unsigned i = 0; i < NOFFS; i++) {
		if (w->random) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			offs[i] = (x % n) * w->bs;
		} else {
			offs[i] = (i % n) * w->bs;
		}
	}
}

/* ops per second */
static double plain_sync(const struct wl *w, uint8_t *buf)
{
	uint64_t t0 = now_ns(), t, ops = 0;

	do {
		for (unsigned k = 0; k < 256; k++, ops++) {
			uint64_t off = offs[ops % NOFFS];
			ssize_t r = w->write
					    ? pwrite(fd, buf, w->bs, (off_t)off)
					    : pread(fd, buf, w->bs, (off_t)off);

			if (r != (ssize_t)w->bs)
				return -1;
		}
		t = now_ns() - t0;
	} while (t < RUN_NS);
	return (double)ops * 1e9 / (double)t;
}

#ifdef CVMM_HAVE_LIBURING
static void plain_prep(struct io_uring *ring, const struct wl *w, uint8_t *buf,
		       uint64_t n, unsigned slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	uint8_t *b = buf + (size_t)slot * w->bs;

	if (w->write)
		io_uring_prep_write(sqe, 0, b, w->bs, offs[n % NOFFS]);
	else
		io_uring_prep_read(sqe, 0, b, w->bs, offs[n % NOFFS]);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, slot);
}

static double plain_uring(const struct wl *w, uint8_t *buf)
{
	struct io_uring ring;
	uint64_t t0, t, issued = 0, done = 0, rounds = 0;

	if (io_uring_queue_init(64, &ring, 0) < 0)
		return -1;
	if (io_uring_register_files(&ring, &fd, 1) < 0)
		return -1;
	t0 = now_ns();
	for (unsigned s = 0; s < w->qd; s++)
		plain_prep(&ring, w, buf, issued++, s);
	do {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		if (io_uring_submit_and_wait(&ring, 1) < 0)
			return -1;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			if (cqe->res != (int)w->bs)
				return -1;
			plain_prep(&ring, w, buf, issued++,
				   (unsigned)cqe->user_data);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		done += n;
		t = (++rounds & 31) ? 0 : now_ns() - t0;
	} while (t < RUN_NS);
	t = now_ns() - t0;
	io_uring_queue_exit(&ring);
	return (double)done * 1e9 / (double)t;
}
#endif

static uint16_t slot_of_head[128];

static int dev_add(struct bh *h, const struct wl *w, uint64_t n, unsigned slot)
{
	uint64_t off = offs[n % NOFFS];
	uint16_t head;
	int rc = bh_add(h, 0, w->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			off / 512, HDR_AREA + slot * 32,
			DATA_AREA + (uint64_t)slot * w->bs, w->bs, &head);

	if (rc == 0)
		slot_of_head[head & 127] = (uint16_t)slot;
	return rc;
}

/* The device: keep @w->qd requests in flight; one notify per round. */
static double device_run(struct bh *h, const struct wl *w, bool uring)
{
	uint64_t t0, t, issued = 0, done = 0, rounds = 0;
	unsigned nfree = 0;
	unsigned freeslots[64];

	t0 = now_ns();
	for (unsigned s = 0; s < w->qd; s++)
		if (dev_add(h, w, issued++, s))
			return -1;
	bh_notify(h, 0);
	do {
		struct vring_used_elem e;
		int got = 0;

		if (uring)
			bh_poll(h, 0);
		while (virtq_driver_get_used(h->drv[0], &e) == 1) {
			freeslots[nfree++] = slot_of_head[e.id & 127];
			got++;
		}
		if (!got) {
			if (!uring)
				return -1; /* sync completes at the notify */
			bh_poll(h, 1000);
			continue;
		}
		for (unsigned k = 0; k < nfree; k++) {
			if (h->host[HDR_AREA + freeslots[k] * 32 + 16] !=
			    VIRTIO_BLK_S_OK)
				return -1;
			if (dev_add(h, w, issued++, freeslots[k]))
				return -1;
		}
		nfree = 0;
		done += (uint64_t)got;
		bh_notify(h, 0);
		t = (++rounds & 31) ? 0 : now_ns() - t0;
	} while (t < RUN_NS);
	/* drain */
	while (done < issued && bh_wait_used(h, 0, NULL, 1, 1000) == 1)
		done++;
	return (double)done * 1e9 / (double)(now_ns() - t0);
}

static int device_open(struct bh *h, int backend)
{
	struct virtio_blk_options o = {.backend = (uint32_t)backend,
				       .queue_size = 128};
	struct virtio_blk *blk;
	int rc = virtio_blk_create(path, &o, &blk);

	if (rc)
		return rc;
	return bh_init(h, BH_MMIO, blk, 128, 0);
}

static void verdict(const char *what, double ratio)
{
	printf("  target %s >= 0.85x: %.2fx %s\n", what, ratio,
	       ratio >= 0.85 ? "target met" : "MISSED");
}

int main(void)
{
	struct bh hs, hu;
	uint8_t *buf;
	bool have_uring = false;
	int rc;

	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)FILE_SZ)) {
		perror("bench-virtio-blk: temp file");
		return 1;
	}
	buf = mmap(NULL, 32u << 17, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	memset(buf, 0x5a, 32u << 17);
	for (uint64_t off = 0; off < FILE_SZ; off += 32u << 17)
		if (pwrite(fd, buf, 32u << 17, (off_t)off) != 32 << 17)
			return 1;
	rc = device_open(&hs, VIRTIO_BLK_BACKEND_SYNC);
	if (rc) {
		fprintf(stderr, "bench-virtio-blk: sync device: %d\n", rc);
		return 1;
	}
#ifdef CVMM_HAVE_LIBURING
	rc = device_open(&hu, VIRTIO_BLK_BACKEND_IO_URING);
	have_uring = rc == 0;
	if (rc)
		printf("io_uring backend unavailable (%d): io_uring columns "
		       "skipped\n",
		       rc);
#else
	printf("built without liburing: io_uring columns skipped\n");
#endif
	printf("virtio-blk on tmpfs (%s), %llu MiB file, ops/s: best of %d "
	       "interleaved %.0f ms slices\n",
	       path, (unsigned long long)(FILE_SZ >> 20), ROUNDS,
	       (double)RUN_NS / 1e6);
	printf("%-19s %12s %12s %7s %12s %12s %7s\n", "workload",
	       "pread/pwrite", "dev sync", "ratio", "plain uring", "dev uring",
	       "ratio");
	/* BENCH_VIRTIO_BLK_ONLY=<row index> runs one workload (profiling). */
	const char *only = getenv("BENCH_VIRTIO_BLK_ONLY");

	for (size_t i = 0; i < sizeof(wls) / sizeof(wls[0]); i++) {
		const struct wl *w = &wls[i];
		double ps = 0, ds = 0, pu = 0, du = 0;

		if (only && (size_t)atoi(only) != i)
			continue;

		make_offsets(w);
		for (int round = 0; round < ROUNDS; round++) {
			double v;

			v = plain_sync(w, buf);
			if (v <= 0)
				goto fail;
			ps = v > ps ? v : ps;
			v = device_run(&hs, w, false);
			if (v <= 0)
				goto fail;
			ds = v > ds ? v : ds;
#ifdef CVMM_HAVE_LIBURING
			if (!have_uring)
				continue;
			v = plain_uring(w, buf);
			if (v <= 0)
				goto fail;
			pu = v > pu ? v : pu;
			v = device_run(&hu, w, true);
			if (v <= 0)
				goto fail;
			du = v > du ? v : du;
#endif
		}
		printf("%-19s %10.0f/s %10.0f/s %6.2fx", w->name, ps, ds,
		       ds / ps);
		if (have_uring)
			printf(" %10.0f/s %10.0f/s %6.2fx", pu, du, du / pu);
		printf("   (%.0f / %.0f MB/s)\n", ps * w->bs / 1e6,
		       ds * w->bs / 1e6);
		if (w->bs == 4096 && w->qd == 1)
			verdict("sync backend vs pread/pwrite, 4K QD1",
				ds / ps);
		if (have_uring && w->bs == 4096 && w->qd == 32)
			verdict("io_uring backend vs plain io_uring, 4K QD32",
				du / pu);
	}
	bh_fini(&hs);
	if (have_uring)
		bh_fini(&hu);
	close(fd);
	unlink(path);
	return 0;
fail:
	fprintf(stderr, "bench-virtio-blk: a measurement failed\n");
	unlink(path);
	return 1;
}
