/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net on the tap backend, inside a network namespace: every test
 * runs in its own forked process (Check's fork mode) that first moves to
 * a new network namespace (unshare(CLONE_NEWNET)), so the taps it creates
 * vanish with it and the host's network is never touched.  Frames are
 * injected and observed with an AF_PACKET socket on the tap.
 *
 * main() exits 77 (skipped) only when /dev/net/tun is missing or the
 * process may not create a network namespace (no CAP_SYS_ADMIN /
 * CAP_NET_ADMIN); as root on a normal kernel the tests run.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "test-virtio-net-harness.h"

#define TAP	  "cvmmtap0"
#define ETHERTYPE 0x88b5 /* local experimental */

static const struct virtio_net_backend_ops *T_ops;
static void *T_be;
static int T_pkt = -1; /* AF_PACKET socket on the tap */

static void enter_netns(void)
{
	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
}

static int if_sock(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(s, 0);
	return s;
}

static void link_up(const char *name)
{
	struct ifreq ifr = {0};
	int s = if_sock();
	char path[128];
	int fd;

	/* no IPv6 autoconfiguration chatter on the tap */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 name);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		ck_assert_int_eq(write(fd, "1", 1), 1);
		close(fd);
	}
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

static int packet_socket(const char *name)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETHERTYPE)};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));

	ck_assert_int_ge(s, 0);
	sll.sll_ifindex = (int)if_nametoindex(name);
	ck_assert_int_gt(sll.sll_ifindex, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return s;
}

/* An Ethernet frame of our own ethertype to @dst. */
static void mk_eframe(uint8_t *f, uint32_t len, const uint8_t *dst,
		      uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x02", 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed * 7 + i);
}

static void tap_start(uint32_t pairs, uint64_t want)
{
	enter_netns();
	ck_assert_int_eq(virtio_net_backend_tap_open(TAP, pairs, &T_ops, &T_be),
			 0);
	ck_assert_str_eq(virtio_net_backend_tap_name(T_ops, T_be), TAP);
	link_up(TAP);
	T_pkt = packet_socket(TAP);
	g_start_be(T_ops, T_be, pairs, want, NULL);
}

static void tap_stop(void)
{
	g_stop_dev();
	close(T_pkt);
}

/* Next guest-received frame of our ethertype (skipping others). */
static int g_rx_ours(uint8_t *buf, uint32_t cap, uint32_t *len)
{
	for (int tries = 0; tries < 200; tries++) {
		if (g_used(0, buf, cap, len) == 1) {
			g_post_rx(0, 2048, true);
			if (*len >= 26 && buf[12 + 12] == (ETHERTYPE >> 8) &&
			    buf[12 + 13] == (ETHERTYPE & 0xff))
				return 1;
			continue;
		}
		g_pump();
		usleep(1000);
	}
	return 0;
}

static int ethtool_get(const char *name, uint32_t cmd)
{
	struct ethtool_value ev = {.cmd = cmd};
	struct ifreq ifr = {0};
	int s = if_sock(), r;

	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&ev;
	r = ioctl(s, SIOCETHTOOL, &ifr);
	close(s);
	ck_assert_int_eq(r, 0);
	return (int)ev.data;
}

START_TEST(tap_hdr_size_and_offloads_mirror_guest)
{
	int sz = 0, fd;

	tap_start(1, BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			     F(VIRTIO_NET_F_GUEST_CSUM) |
			     F(VIRTIO_NET_F_GUEST_TSO4) |
			     F(VIRTIO_NET_F_GUEST_TSO6) |
			     F(VIRTIO_NET_F_HOST_TSO4));
	ck_assert(G.features & F(VIRTIO_NET_F_GUEST_TSO4));
	fd = T_ops->rx_fd(T_be, 0);
	ck_assert_int_eq(ioctl(fd, TUNGETVNETHDRSZ, &sz), 0);
	ck_assert_int_eq(sz, 12);
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTSO), 1);
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTXCSUM), 1);
	/* a reset takes the offloads back */
	g_status_set(0);
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTSO), 0);
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTXCSUM), 0);
	tap_stop();
	/* checksum only: no TSO on the tap */
	tap_start(1, BASE_FEATURES | F(VIRTIO_NET_F_GUEST_CSUM));
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTSO), 0);
	ck_assert_int_eq(ethtool_get(TAP, ETHTOOL_GTXCSUM), 1);
	tap_stop();
}
END_TEST

START_TEST(tap_frames_both_ways)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t f[300], got[4096];
	uint32_t len;
	ssize_t n;
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_halen = 6,
				 .sll_protocol = htons(ETHERTYPE)};

	tap_start(1, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	/* guest -> tap -> the namespace's stack (the packet socket) */
	mk_eframe(f, sizeof(f), bcast, 1);
	g_send(1, NULL, f, sizeof(f));
	n = -1;
	for (int i = 0; i < 1000 && n < 0; i++) {
		n = recv(T_pkt, got, sizeof(got), MSG_DONTWAIT);
		if (n < 0)
			usleep(1000);
	}
	ck_assert_int_eq(n, (ssize_t)sizeof(f));
	ck_assert_mem_eq(got, f, sizeof(f));
	ck_assert_uint_eq(g_stats(0).tx_packets, 1);
	/* the namespace -> tap -> guest */
	for (int i = 0; i < 16; i++)
		g_post_rx(0, 2048, false);
	g_kick(0);
	mk_eframe(f, sizeof(f), MAC, 2);
	to.sll_ifindex = (int)if_nametoindex(TAP);
	memcpy(to.sll_addr, MAC, 6);
	ck_assert_int_eq(sendto(T_pkt, f, sizeof(f), 0, (struct sockaddr *)&to,
				sizeof(to)),
			 (ssize_t)sizeof(f));
	ck_assert_int_eq(g_rx_ours(got, sizeof(got), &len), 1);
	ck_assert_uint_eq(len, 12 + sizeof(f));
	ck_assert_uint_eq(got[10] | (got[11] << 8), 1); /* num_buffers */
	ck_assert_mem_eq(got + 12, f, sizeof(f));
	tap_stop();
}
END_TEST

START_TEST(tap_frame_larger_than_buffers_dropped)
{
	uint8_t f[1000], got[4096];
	uint32_t len;
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_halen = 6,
				 .sll_protocol = htons(ETHERTYPE)};

	tap_start(1, BASE_FEATURES); /* no MRG_RXBUF */
	g_post_rx(0, 200, true);
	mk_eframe(f, sizeof(f), MAC, 3);
	to.sll_ifindex = (int)if_nametoindex(TAP);
	memcpy(to.sll_addr, MAC, 6);
	ck_assert_int_eq(sendto(T_pkt, f, sizeof(f), 0, (struct sockaddr *)&to,
				sizeof(to)),
			 (ssize_t)sizeof(f));
	for (int i = 0; i < 200 && g_stats(0).rx_oversize == 0; i++) {
		g_pump();
		usleep(1000);
	}
	ck_assert_uint_eq(g_stats(0).rx_oversize, 1);
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	/* the buffer takes the next frame that fits */
	ck_assert_int_eq(sendto(T_pkt, f, 100, 0, (struct sockaddr *)&to,
				sizeof(to)),
			 100);
	ck_assert_int_eq(g_rx_ours(got, sizeof(got), &len), 1);
	ck_assert_uint_eq(len, 112);
	tap_stop();
}
END_TEST

/* Is the tap queue of @fd attached?  (Detaching an attached queue
 * succeeds - it is attached again at once - a detached one refuses.) */
static bool queue_attached(int fd)
{
	struct ifreq ifr = {.ifr_flags = IFF_DETACH_QUEUE};

	if (ioctl(fd, TUNSETQUEUE, &ifr) != 0)
		return false;
	ifr.ifr_flags = IFF_ATTACH_QUEUE;
	ck_assert_int_eq(ioctl(fd, TUNSETQUEUE, &ifr), 0);
	return true;
}

START_TEST(tap_multiqueue_pairs_attach)
{
	struct ifreq ifr;
	uint16_t v;
	int fd1;

	tap_start(2, BASE_FEATURES);
	ck_assert(G.features & F(VIRTIO_NET_F_MQ));
	fd1 = T_ops->rx_fd(T_be, 1);
	ck_assert_int_ge(fd1, 0);
	/* pair 1 unused: its queue is detached from the tap */
	ck_assert(!queue_attached(fd1));
	v = htole16(2);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_OK);
	ck_assert(queue_attached(fd1));
	memset(&ifr, 0, sizeof(ifr));
	ck_assert_int_eq(ioctl(fd1, TUNGETIFF, &ifr), 0);
	ck_assert(ifr.ifr_flags & IFF_MULTI_QUEUE);
	v = htole16(1);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_OK);
	ck_assert(!queue_attached(fd1));
	tap_stop();
}
END_TEST

START_TEST(tap_from_fds)
{
	struct ifreq ifr = {0};
	const struct virtio_net_backend_ops *ops;
	void *be;
	int fd;

	enter_netns();
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	strcpy(ifr.ifr_name, "cvmmfd0");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI; /* no VNET_HDR: refused */
	ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	ck_assert_int_eq(virtio_net_backend_tap_from_fds(&fd, 1, &ops, &be),
			 -EINVAL);
	close(fd);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "cvmmfd1");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	ck_assert_int_eq(virtio_net_backend_tap_from_fds(&fd, 1, &ops, &be), 0);
	ck_assert_str_eq(virtio_net_backend_tap_name(ops, be), "cvmmfd1");
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ops->destroy(be); /* closes fd */
	ck_assert_int_lt(fcntl(fd, F_GETFL), 0);
}
END_TEST

/* Can this process make a network namespace with a tap in it?  0 yes,
 * 77 no (and why on stderr). */
static int probe(void)
{
	pid_t pid;
	int st;

	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		fprintf(stderr, "skip: /dev/net/tun: %s\n", strerror(errno));
		return 77;
	}
	pid = fork();
	if (pid == 0) {
		int fd;
		struct ifreq ifr = {0};

		if (unshare(CLONE_NEWNET) != 0)
			_exit(10);
		fd = open("/dev/net/tun", O_RDWR);
		strcpy(ifr.ifr_name, "cvmmprobe");
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0)
			_exit(11);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 1;
	if (WEXITSTATUS(st) == 10) {
		fprintf(stderr, "skip: cannot unshare(CLONE_NEWNET)\n");
		return 77;
	}
	if (WEXITSTATUS(st) == 11) {
		fprintf(stderr, "skip: cannot create a tap (CAP_NET_ADMIN)\n");
		return 77;
	}
	return WEXITSTATUS(st);
}

static Suite *tap_suite(void)
{
	Suite *s = suite_create("virtio-net-tap");
	TCase *t = tcase_create("tap");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, tap_hdr_size_and_offloads_mirror_guest);
	tcase_add_test(t, tap_frames_both_ways);
	tcase_add_test(t, tap_frame_larger_than_buffers_dropped);
	tcase_add_test(t, tap_multiqueue_pairs_attach);
	tcase_add_test(t, tap_from_fds);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	int p = probe();

	if (p)
		return p;
	/* each test unshares a namespace of its own: it must run in a
	 * child, also under valgrind, whose setup asks Check not to fork */
	setenv("CK_FORK", "yes", 1);
	return cvmm_check_run(tap_suite(), false);
}
