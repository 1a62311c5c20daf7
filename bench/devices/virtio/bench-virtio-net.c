/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net transmit through the device code onto a tap, beside plain
 * writev() of the same frames to the same tap, in the same run.  The
 * benchmark moves into a network namespace of its own (unshare), makes
 * the tap there and brings it up; it exits 77 when it may not.
 *
 * Device path: the mock driver (virtio-mmio transport) posts BATCH
 * chains (12-byte header + frame, two descriptors each, data written
 * once beforehand), notifies once (a register write; the device pops,
 * checks each header and writev()s each frame to the tap), then reaps
 * the used ring.  Plain path: BATCH writev()s of the header + frame to
 * the tap fd.  The kernel drops the frames after the tap (they are for
 * another host), the same way for both.
 *
 * Workloads: 64-byte frames (packets/s) and, when the tap takes TSO,
 * 64 KiB TCPv4 TSO frames (Gbit/s of frame bytes).  Each figure is the
 * best of ROUNDS slices of RUN_NS, the two paths interleaved slice by
 * slice; the ratio device/plain is printed (target >= 0.8x).
 * BENCH_NET_ONLY=64 or =tso runs one workload (for profiling).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* the unit tests' guest harness (it asserts with Check's macros: a
 * failed setup aborts the benchmark) */
#include "test-virtio-net-harness.h"

#define RUN_NS	 40000000ull
#define ROUNDS	 8
#define BATCH	 16u
#define DATA	 0x400000ull
#define TSO_SIZE 65000u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int link_up(const char *name)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0), r;

	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (r == 0)
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

/* A frame to another host (dropped after the tap) with its header. */
static void mk(uint8_t *hdr, uint8_t *f, uint32_t len, bool tso)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t *ip = f + 14, *tcp = f + 34;

	memset(f, 0, len);
	memcpy(f, "\x02\x00\x00\x00\x00\x99", 6);
	memcpy(f + 6, MAC, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((len - 14) >> 8);
	ip[3] = (uint8_t)(len - 14);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x00\x02", 4);
	memcpy(ip + 16, "\x0a\x00\x00\x63", 4);
	tcp[12] = 5 << 4;
	tcp[13] = 0x10;
	if (tso) {
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		h.gso_size = htole16(1448);
		h.hdr_len = htole16(54);
		h.csum_start = htole16(34);
		h.csum_offset = htole16(16);
	}
	memcpy(hdr, &h, sizeof(h));
}

struct wl {
	const char *name;
	uint32_t len;
	bool tso;
};

/* BATCH frames through the device; returns frames done. */
static uint32_t dev_batch(uint32_t len)
{
	struct virtq_driver_buf b[2] = {{DATA, 12, 0}, {DATA + 64, len, 0}};
	struct vring_used_elem e;
	uint32_t got = 0;

	for (uint32_t i = 0; i < BATCH; i++)
		virtq_driver_add_nopublish(G.drv[1], b, 2, NULL);
	virtq_driver_publish(G.drv[1]);
	mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	while (virtq_driver_get_used(G.drv[1], &e) == 1)
		got++;
	return got;
}

static uint32_t plain_batch(int fd, const uint8_t *hdr, const uint8_t *f,
			    uint32_t len)
{
	struct iovec iov[2] = {{(void *)hdr, 12}, {(void *)f, len}};
	uint32_t n = 0;

	for (uint32_t i = 0; i < BATCH; i++)
		if (writev(fd, iov, 2) == (ssize_t)(12 + len))
			n++;
	return n;
}

static int bench_rc;

/* Runs inside a Check runner (the harness's assertions need one). */
START_TEST(bench)
{
	static const struct wl wls[] = {
		{"64 B frames     ", 64, false},
		{"64 KiB TSO (v4) ", TSO_SIZE, true},
	};
	const struct virtio_net_backend_ops *ops;
	static uint8_t hdr[12], frame[TSO_SIZE];
	void *be;
	int fd;

	if (unshare(CLONE_NEWNET) != 0) {
		perror("skip: unshare(CLONE_NEWNET)");
		bench_rc = 77;
		return;
	}
	if (virtio_net_backend_tap_open("cvmmbench0", 1, &ops, &be) != 0) {
		fprintf(stderr, "skip: no tap (/dev/net/tun, CAP_NET_ADMIN)\n");
		bench_rc = 77;
		return;
	}
	ck_assert_int_eq(link_up("cvmmbench0"), 0);
	g_start_be(ops, be, 1,
		   BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			   F(VIRTIO_NET_F_HOST_TSO4),
		   NULL);
	fd = ops->rx_fd(be, 0);
	printf("virtio-net tx onto a tap (netns), best of %d x %llu ms, "
	       "batch %u\n",
	       ROUNDS, RUN_NS / 1000000, BATCH);
	for (unsigned w = 0; w < sizeof(wls) / sizeof(wls[0]); w++) {
		const struct wl *l = &wls[w];
		double best[2] = {0, 0};

		if (getenv("BENCH_NET_ONLY") &&
		    strcmp(getenv("BENCH_NET_ONLY"), l->tso ? "tso" : "64"))
			continue;
		if (l->tso && !(G.features & F(VIRTIO_NET_F_HOST_TSO4))) {
			printf("%s: skipped (the tap takes no TSO)\n", l->name);
			continue;
		}
		mk(hdr, frame, l->len, l->tso);
		guest_memory_write(G.mem, DATA, hdr, 12);
		guest_memory_write(G.mem, DATA + 64, frame, l->len);
		for (int r = 0; r < ROUNDS; r++) {
			for (int path = 0; path < 2; path++) {
				uint64_t t0 = now_ns(), t, n = 0;

				do {
					n += path == 0 ? dev_batch(l->len)
						       : plain_batch(fd, hdr,
								     frame,
								     l->len);
					t = now_ns();
				} while (t - t0 < RUN_NS);
				if (n / ((double)(t - t0) / 1e9) > best[path])
					best[path] =
						n / ((double)(t - t0) / 1e9);
			}
		}
		if (l->tso)
			printf("%s: device %.2f Gbit/s, plain writev %.2f "
			       "Gbit/s, ratio %.2fx\n",
			       l->name, best[0] * l->len * 8 / 1e9,
			       best[1] * l->len * 8 / 1e9, best[0] / best[1]);
		else
			printf("%s: device %.0f pkt/s, plain writev %.0f "
			       "pkt/s, ratio %.2fx\n",
			       l->name, best[0], best[1], best[0] / best[1]);
	}
	{
		struct virtio_net_queue_stats st;

		virtio_net_queue_stats(G.net, 0, &st);
		printf("device counters: tx_packets %llu tx_errors %llu "
		       "tx_dropped %llu\n",
		       (unsigned long long)st.tx_packets,
		       (unsigned long long)st.tx_errors,
		       (unsigned long long)st.tx_dropped);
		ck_assert_uint_eq(st.tx_errors, 0);
		ck_assert_uint_eq(st.tx_dropped, 0);
	}
	g_stop_dev();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench-virtio-net");
	TCase *t = tcase_create("bench");
	SRunner *sr;
	int failed;

	tcase_set_timeout(t, 110);
	tcase_add_test(t, bench);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	/* in this process: it keeps the namespace and prints the figures */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed)
		return EXIT_FAILURE;
	return bench_rc;
}
