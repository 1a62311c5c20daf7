/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net on the user-network backend (libslirp), through virtio-mmio
 * with the mock driver playing a guest that builds its own frames:
 *   - DHCP: a DISCOVER gets an OFFER of 10.0.2.15;
 *   - guest -> host: a TCP SYN to 10.0.2.2:P reaches a listener the test
 *     runs on 127.0.0.1:P (accept() succeeds) and the guest then sees the
 *     SYN-ACK;
 *   - host -> guest: with hostfwd tcp:127.0.0.1:F-:22, a host connect()
 *     to 127.0.0.1:F makes a SYN to 10.0.2.15:22 appear at the guest.
 * No full TCP stack in the guest: the handshake's first two segments are
 * what is checked.  Exits 77 when libdevices was built without libslirp.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test-virtio-net-harness.h"

static const uint8_t SLIRP_MAC[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Ethernet + IPv4 header for @proto with @plen payload bytes; returns the
 * offset of the payload. */
static size_t ip_hdr(uint8_t *f, const uint8_t *dst_mac, uint32_t src,
		     uint32_t dst, uint8_t proto, size_t plen)
{
	uint8_t *ip = f + 14;
	uint16_t c;

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, MAC, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + plen) >> 8);
	ip[3] = (uint8_t)(20 + plen);
	ip[4] = 0x12;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	c = (uint16_t)~csum_add(0, ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	return 34;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	ck_assert_int_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* Collect guest-received frames for up to @ms, calling @fn on each until
 * it returns true; answers ARP requests for 10.0.2.15 on the way. */
static bool g_wait_frame(int ms,
			 bool (*fn)(const uint8_t *f, uint32_t len, void *arg),
			 void *arg)
{
	uint8_t buf[4096];
	uint32_t len;

	for (int t = 0; t < ms; t += 2) {
		g_pump();
		while (g_used(0, buf, sizeof(buf), &len) == 1) {
			const uint8_t *f = buf + 12;
			uint32_t fl = len - 12;

			g_post_rx(0, 2048, true);
			if (fl >= 42 && f[12] == 0x08 && f[13] == 0x06 &&
			    f[21] == 1 &&
			    !memcmp(f + 38, "\x0a\x00\x02\x0f", 4)) {
				uint8_t r[42];

				memcpy(r, f + 6, 6);
				memcpy(r + 6, MAC, 6);
				memcpy(r + 12, f + 12, 8);
				r[21] = 2;
				memcpy(r + 22, MAC, 6);
				memcpy(r + 28, f + 38, 4);
				memcpy(r + 32, f + 22, 10);
				g_send(1, NULL, r, sizeof(r));
				continue;
			}
			if (fn(f, fl, arg))
				return true;
		}
		usleep(2000);
	}
	return false;
}

static bool is_dhcp_offer(const uint8_t *f, uint32_t len, void *arg)
{
	const uint8_t *bp = f + 42, *opt;

	(void)arg;
	if (len < 42 + 240 || f[23] != 17 || f[34] != 0 || f[35] != 67 ||
	    bp[0] != 2)
		return false;
	ck_assert_mem_eq(bp + 16, "\x0a\x00\x02\x0f", 4); /* yiaddr */
	opt = bp + 240;
	while (opt < f + len && *opt != 255) {
		if (*opt == 53)
			return opt[2] == 2; /* OFFER */
		if (*opt == 0) {
			opt++;
			continue;
		}
		opt += 2 + opt[1];
	}
	return false;
}

static void send_dhcp_discover(void)
{
	uint8_t f[34 + 8 + 548] = {0};
	uint8_t *udp = f + 34, *bp = udp + 8;

	ip_hdr(f, BCAST, 0, 0xffffffffu, 17, 8 + 548);
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + 548) >> 8);
	udp[5] = (uint8_t)(8 + 548);
	bp[0] = 1;
	bp[1] = 1;
	bp[2] = 6;
	memcpy(bp + 4, "\xca\xfe\xba\xbe", 4);
	memcpy(bp + 28, MAC, 6);
	memcpy(bp + 236, "\x63\x82\x53\x63", 4);
	bp[240] = 53;
	bp[241] = 1;
	bp[242] = 1; /* DISCOVER */
	bp[243] = 255;
	g_send(1, NULL, f, sizeof(f));
}

static void send_tcp_syn(uint32_t dst, uint16_t dport, uint16_t sport)
{
	uint8_t f[34 + 20] = {0}, ph[12];
	uint8_t *tcp = f + 34;
	uint32_t src = ip4("10.0.2.15");
	uint16_t c;

	ip_hdr(f, SLIRP_MAC, src, dst, 6, 20);
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	memcpy(tcp + 4, "\x00\x00\x03\xe8", 4); /* seq 1000 */
	tcp[12] = 5 << 4;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 0xff;
	tcp[15] = 0xff;
	memcpy(ph, &src, 4);
	memcpy(ph + 4, &dst, 4);
	ph[8] = 0;
	ph[9] = 6;
	ph[10] = 0;
	ph[11] = 20;
	c = (uint16_t)~csum_add(csum_add(0, ph, 12), tcp, 20);
	tcp[16] = (uint8_t)(c >> 8);
	tcp[17] = (uint8_t)c;
	g_send(1, NULL, f, sizeof(f));
}

struct tcp_match {
	uint16_t sport, dport;
	uint8_t flags;
	uint32_t ack;
};

static bool is_tcp(const uint8_t *f, uint32_t len, void *arg)
{
	struct tcp_match *m = arg;
	const uint8_t *tcp = f + 34;

	if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return false;
	if (m->sport && (uint16_t)(tcp[0] << 8 | tcp[1]) != m->sport)
		return false;
	if ((uint16_t)(tcp[2] << 8 | tcp[3]) != m->dport)
		return false;
	if ((tcp[13] & 0x3f) != m->flags)
		return false;
	m->ack = (uint32_t)tcp[8] << 24 | (uint32_t)tcp[9] << 16 |
		 (uint32_t)tcp[10] << 8 | tcp[11];
	return true;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

static uint16_t FWD_PORT;

static void user_start(void)
{
	const struct virtio_net_backend_ops *ops;
	struct virtio_net_user_fwd fwd;
	struct virtio_net_user_config c = {.fwds = &fwd, .nfwds = 1};
	char spec[64];
	void *be;

	FWD_PORT = free_port();
	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u-:22", FWD_PORT);
	ck_assert_int_eq(virtio_net_user_fwd_parse(spec, &fwd), 0);
	ck_assert_int_eq(virtio_net_backend_user_create(&c, &ops, &be), 0);
	g_start_be(ops, be, 1, BASE_FEATURES, NULL);
	for (int i = 0; i < 16; i++)
		g_post_rx(0, 2048, false);
	g_kick(0);
}

START_TEST(user_dhcp_offer)
{
	user_start();
	send_dhcp_discover();
	ck_assert(g_wait_frame(3000, is_dhcp_offer, NULL));
	g_stop_dev();
}
END_TEST

START_TEST(user_tcp_syn_reaches_host_listener)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), cs = -1;
	uint16_t port;
	struct tcp_match m = {0};

	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(ls, 4), 0);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &l), 0);
	port = ntohs(a.sin_port);
	user_start();
	send_dhcp_discover(); /* slirp learns the guest's MAC */
	ck_assert(g_wait_frame(3000, is_dhcp_offer, NULL));
	send_tcp_syn(ip4("10.0.2.2"), port, 40000);
	for (int t = 0; t < 3000 && cs < 0; t += 2) {
		g_pump();
		cs = accept(ls, NULL, NULL);
		if (cs < 0)
			usleep(2000);
	}
	ck_assert_int_ge(cs, 0); /* the guest's connection reached us */
	m = (struct tcp_match){.sport = port, .dport = 40000, .flags = 0x12};
	ck_assert(g_wait_frame(3000, is_tcp, &m));
	ck_assert_uint_eq(m.ack, 1001);
	close(cs);
	close(ls);
	g_stop_dev();
}
END_TEST

START_TEST(user_hostfwd_connect_reaches_guest)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct tcp_match m = {.dport = 22, .flags = 0x02};
	int s;

	user_start();
	send_dhcp_discover();
	ck_assert(g_wait_frame(3000, is_dhcp_offer, NULL));
	a.sin_port = htons(FWD_PORT);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert(connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 ||
		  errno == EINPROGRESS);
	ck_assert(g_wait_frame(3000, is_tcp, &m)); /* SYN to :22 */
	close(s);
	g_stop_dev();
}
END_TEST

START_TEST(user_fwd_parse)
{
	struct virtio_net_user_fwd f;

	ck_assert_int_eq(
		virtio_net_user_fwd_parse("tcp:127.0.0.1:2222-:22", &f), 0);
	ck_assert(!f.udp);
	ck_assert_uint_eq(f.host_addr.s_addr, htonl(INADDR_LOOPBACK));
	ck_assert_uint_eq(f.host_port, 2222);
	ck_assert_uint_eq(f.guest_addr.s_addr, 0);
	ck_assert_uint_eq(f.guest_port, 22);
	ck_assert_int_eq(
		virtio_net_user_fwd_parse("udp::5353-10.0.2.15:53", &f), 0);
	ck_assert(f.udp);
	ck_assert_uint_eq(f.host_addr.s_addr, 0);
	ck_assert_uint_eq(f.guest_addr.s_addr, ip4("10.0.2.15"));
	ck_assert_int_eq(virtio_net_user_fwd_parse("::8080-:80", &f), 0);
	ck_assert_int_eq(virtio_net_user_fwd_parse(":8080-:80", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("sctp::1-:2", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp::0-:22", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp::65536-:22", &f),
			 -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp::22", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp:1.2.3:1-:2", &f),
			 -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp::1-:2-3", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse("tcp::x1-:2", &f), -EINVAL);
	ck_assert_int_eq(virtio_net_user_fwd_parse(NULL, &f), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio-net-user");
	TCase *t = tcase_create("user");
	const struct virtio_net_backend_ops *ops;
	SRunner *sr;
	void *be;
	int failed, r = virtio_net_backend_user_create(NULL, &ops, &be);

	if (r == -EOPNOTSUPP) {
		fprintf(stderr, "skip: libdevices built without libslirp\n");
		return 77;
	}
	if (r == 0)
		ops->destroy(be);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, user_fwd_parse);
	tcase_add_test(t, user_dhcp_offer);
	tcase_add_test(t, user_tcp_syn_reaches_host_listener);
	tcase_add_test(t, user_hostfwd_connect_reaches_guest);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed || r ? EXIT_FAILURE : EXIT_SUCCESS;
}
