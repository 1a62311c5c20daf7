/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user-blk vs in-process virtio-blk, host side, no KVM: the same
 * mock driver (the virtio-blk harness, virtio-pci) drives
 *   - libdevices' virtio-blk device with its sync backend, in this
 *     process (what cvmm --disk path= runs), and
 *   - libdevices' generic vhost-user device (cvmm --disk vhost_user=)
 *     against c-vmm's examples/vhost-user-blk daemon, a separate process
 *     using the same sync backend, on memfd guest memory,
 * on the same file on tmpfs (/dev/shm), in the same run.  The in-process
 * device completes a request within the notify; through vhost-user a
 * notify is an eventfd write the daemon wakes up on, and the completion
 * comes back as the call eventfd the driver waits on (poll): the cost
 * measured is that of two process wake-ups per request.
 *
 * Workloads: 4 KiB random read and write at queue depth 1 and 32.  Each
 * figure is the best of ROUNDS slices of RUN_NS, the two variants
 * interleaved slice by slice (the machine is shared).  At QD1 the figure
 * is the price of the process boundary (two wake-ups per request).  At
 * QD32 the daemon works on another CPU while the driver refills the ring
 * and the in-process sync device does every request's I/O in the
 * driver's thread, so that ratio depends on how idle the other CPUs are
 * (on a loaded 2-CPU host it came out 0.7x in one run and 3.5x in
 * another).
 *
 * Usage: bench-devices-vhost-user-blk DAEMON
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cvmm/devices/virtio-vhost-user.h>

#include "test-virtio-blk-harness.h"

#define FILE_SZ	  (64ull << 20)
#define RUN_NS	  100000000ull /* per slice */
#define ROUNDS	  10	       /* slices per figure, interleaved; best kept */
#define HDR_AREA  0x200000ull
#define DATA_AREA BH_DATA_BASE
#define NOFFS	  4096

struct wl {
	const char *name;
	bool write;
	uint32_t qd;
};

static const struct wl wls[] = {
	{"4K randread  QD1 ", false, 1},
	{"4K randwrite QD1 ", true, 1},
	{"4K randread  QD32", false, 32},
	{"4K randwrite QD32", true, 32},
};

static char dir[] = "/dev/shm/bench-vhost-user-blk-XXXXXX";
static char img[96], sock[96];
static uint64_t offs[NOFFS];
static uint16_t slot_of_head[128];

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void make_offsets(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, n = FILE_SZ / 4096;

	for (unsigned i = 0; i < NOFFS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		offs[i] = (x % n) * 4096;
	}
}

static int dev_add(struct bh *h, const struct wl *w, uint64_t n, unsigned slot)
{
	uint64_t off = offs[n % NOFFS];
	uint16_t head;
	int rc = bh_add(h, 0, w->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			off / 512, HDR_AREA + slot * 32,
			DATA_AREA + (uint64_t)slot * 4096, 4096, &head);

	if (rc == 0)
		slot_of_head[head & 127] = (uint16_t)slot;
	return rc;
}

/* Keeps @w->qd requests in flight, one notify per round; completions
 * are collected after polling the device's fds (for vhost-user: the
 * backend's call eventfd, as a guest waits for its interrupt).
 * Requests per second, or -1. */
static double device_run(struct bh *h, const struct wl *w)
{
	uint64_t t0, t, issued = 0, done = 0, rounds = 0, counted;
	unsigned nfree = 0, freeslots[64];

	t0 = now_ns();
	for (unsigned s = 0; s < w->qd; s++)
		if (dev_add(h, w, issued++, s))
			return -1;
	bh_notify(h, 0);
	do {
		struct vring_used_elem e;
		int got = 0;

		while (virtq_driver_get_used(h->drv[0], &e) == 1) {
			freeslots[nfree++] = slot_of_head[e.id & 127];
			got++;
		}
		if (!got) {
			if (bh_poll(h, 1000) < 0)
				return -1;
			if (now_ns() - t0 > 10 * RUN_NS)
				return -1; /* stuck */
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
		t = (++rounds & 15) ? 0 : now_ns() - t0;
	} while (t < RUN_NS);
	t = now_ns() - t0;
	counted = done;
	while (done < issued && bh_wait_used(h, 0, NULL, 1, 1000) == 1)
		done++;
	return done < issued ? -1 : (double)counted * 1e9 / (double)t;
}

static pid_t spawn_daemon(const char *daemon)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		execl(daemon, daemon, "--socket", sock, "--image", img,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 200; i++) {
		struct stat st;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(20000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct virtio_vhost_user_options vo = {
		.device_id = VIRTIO_ID_BLOCK,
		.config_size = 60,
		.queue_max_size = 128,
	};
	struct virtio_blk_options bo = {.backend = VIRTIO_BLK_BACKEND_SYNC,
					.queue_size = 128};
	struct virtio_vhost_user *vu = NULL;
	struct virtio_blk *blk = NULL;
	struct bh hi, hv;
	static uint8_t chunk[1 << 20];
	double q1[2] = {0, 0};
	pid_t pid;
	int fd, rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s VHOST-USER-BLK-DAEMON\n", argv[0]);
		return 2;
	}
	if (!mkdtemp(dir)) {
		perror("bench-vhost-user-blk: mkdtemp");
		return 1;
	}
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(sock, sizeof(sock), "%s/blk.sock", dir);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	memset(chunk, 0x5a, sizeof(chunk));
	for (uint64_t off = 0; fd >= 0 && off < FILE_SZ; off += sizeof(chunk))
		if (pwrite(fd, chunk, sizeof(chunk), (off_t)off) !=
		    (ssize_t)sizeof(chunk))
			goto out;
	if (fd < 0)
		goto out;
	close(fd);
	pid = spawn_daemon(argv[1]);
	if (pid < 0) {
		fprintf(stderr, "bench-vhost-user-blk: %s did not start\n",
			argv[1]);
		goto out;
	}
	if (virtio_blk_create(img, &bo, &blk) ||
	    bh_init(&hi, BH_PCI, blk, 128, 0) ||
	    virtio_vhost_user_create(sock, &vo, &vu) ||
	    bh_init_dev(&hv, BH_PCI, virtio_vhost_user_device(vu), 128, 0,
			GUEST_REGION_MEMFD)) {
		fprintf(stderr, "bench-vhost-user-blk: device setup failed\n");
		goto stop;
	}
	make_offsets();
	printf("virtio-blk 4 KiB random I/O on tmpfs (%s, %llu MiB), "
	       "requests/s: best of %d interleaved %.0f ms slices\n",
	       img, (unsigned long long)(FILE_SZ >> 20), ROUNDS,
	       (double)RUN_NS / 1e6);
	printf("%-18s %14s %14s %8s\n", "workload", "in-process", "vhost-user",
	       "ratio");
	for (size_t i = 0; i < sizeof(wls) / sizeof(wls[0]); i++) {
		const struct wl *w = &wls[i];
		double a = 0, b = 0;

		for (int r = 0; r < ROUNDS; r++) {
			double v = device_run(&hi, w);

			if (v <= 0)
				goto fail;
			a = v > a ? v : a;
			v = device_run(&hv, w);
			if (v <= 0)
				goto fail;
			b = v > b ? v : b;
		}
		printf("%-18s %12.0f/s %12.0f/s %7.2fx   (%.1f vs %.1f us per "
		       "request)\n",
		       w->name, a, b, b / a, 1e6 / a * w->qd, 1e6 / b * w->qd);
		if (w->qd == 1)
			q1[w->write] = b / a;
	}
	printf("vhost-user / in-process at 4K QD1: read %.2fx, write %.2fx "
	       "(a figure, no target)\n",
	       q1[0], q1[1]);
	rc = 0;
	goto stop;
fail:
	fprintf(stderr, "bench-vhost-user-blk: a measurement failed\n");
stop:
	if (vu) {
		bh_fini(&hv);
		virtio_vhost_user_destroy(vu);
	}
	if (blk)
		bh_fini(&hi);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
out:
	unlink(sock);
	unlink(img);
	rmdir(dir);
	return rc;
}
