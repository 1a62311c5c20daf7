/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net, end to end: the device behind the virtio-mmio transport
 * (devices-virtio-net) or, built with NET_TEST_PCI, behind virtio-pci
 * (devices-virtio-net-pci), played by a mock guest on libvirtio-queue's mock driver; the backend is
 * a fake written here on SOCK_SEQPACKET socketpairs (one per queue pair;
 * bare frames, or frames with a virtio-net header when asked), so no root
 * is needed.  The tap backend is tested in test-virtio-net-tap.c.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>

#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-net.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "test-virtio-net-harness.h"

/* ------------------------------------------------------- fake backend */

struct fake_be {
	int dev[4];  /* device ends, one per pair */
	int peer[4]; /* test ends */
	uint32_t npairs;
	bool hdr; /* frames carry a virtio-net header */
	uint64_t offloads;
	uint64_t set_offloads;
	int hdr_size;
	int open_calls[4], close_calls[4];
	bool destroyed;
};

static struct fake_be FB;

static int fb_rx_fd(void *be, uint32_t pair)
{
	struct fake_be *b = be;

	return pair < b->npairs ? b->dev[pair] : -1;
}

static ssize_t fb_recv(void *be, uint32_t pair, const struct iovec *iov,
		       int cnt)
{
	struct fake_be *b = be;
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)cnt};
	ssize_t n = recvmsg(b->dev[pair], &m, MSG_DONTWAIT | MSG_TRUNC);

	return n < 0 ? -errno : n;
}

static ssize_t fb_send(void *be, uint32_t pair, const struct iovec *iov,
		       int cnt)
{
	struct fake_be *b = be;
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)cnt};
	ssize_t n = sendmsg(b->dev[pair], &m, MSG_DONTWAIT | MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

static int fb_open(void *be, uint32_t pair)
{
	((struct fake_be *)be)->open_calls[pair]++;
	return 0;
}

static void fb_close(void *be, uint32_t pair)
{
	((struct fake_be *)be)->close_calls[pair]++;
}

static uint64_t fb_offloads(void *be)
{
	return ((struct fake_be *)be)->offloads;
}

static int fb_set_hdr(void *be, uint32_t size)
{
	struct fake_be *b = be;

	if (!b->hdr)
		return -EOPNOTSUPP;
	b->hdr_size = (int)size;
	return 0;
}

static int fb_set_offloads(void *be, uint64_t f)
{
	((struct fake_be *)be)->set_offloads = f;
	return 0;
}

static void fb_destroy(void *be)
{
	struct fake_be *b = be;

	for (uint32_t i = 0; i < b->npairs; i++)
		close(b->dev[i]);
	b->destroyed = true;
}

static const struct virtio_net_backend_ops fb_ops = {
	.open_queue_pair = fb_open,
	.close_queue_pair = fb_close,
	.rx_fd = fb_rx_fd,
	.tx_fd = fb_rx_fd,
	.recv = fb_recv,
	.send = fb_send,
	.offloads = fb_offloads,
	.set_vnet_hdr_size = fb_set_hdr,
	.set_offloads = fb_set_offloads,
	.destroy = fb_destroy,
};

/* Bring the device up on the fake backend (@hdr: frames carry headers). */
static void g_start_opts(uint32_t pairs, bool hdr, uint64_t want,
			 const struct virtio_net_options *opts)
{
	memset(&FB, 0, sizeof(FB));
	FB.npairs = pairs;
	FB.hdr = hdr;
	FB.offloads = hdr ? VIRTIO_NET_OFFLOAD_FEATURES : 0;
	for (uint32_t i = 0; i < pairs; i++) {
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
		FB.dev[i] = sv[0];
		FB.peer[i] = sv[1];
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
	}
	g_start_be(&fb_ops, &FB, pairs, want, opts);
}

static void g_start(uint32_t pairs, bool hdr, uint64_t want)
{
	g_start_opts(pairs, hdr, want, NULL);
}

static void g_stop(void)
{
	g_stop_dev();
	ck_assert(FB.destroyed);
	for (uint32_t i = 0; i < FB.npairs; i++)
		close(FB.peer[i]);
}

/* Peer side helpers. */
static ssize_t peer_recv(uint32_t pair, void *buf, size_t cap)
{
	return recv(FB.peer[pair], buf, cap, MSG_DONTWAIT);
}

static void peer_send(uint32_t pair, const void *buf, size_t len)
{
	ck_assert_int_eq(send(FB.peer[pair], buf, len, 0), (ssize_t)len);
}

static int peer_pending(uint32_t pair)
{
	uint8_t b[70000];

	return recv(FB.peer[pair], b, sizeof(b), MSG_DONTWAIT | MSG_PEEK) >= 0;
}

/* ---------------------------------------------------------------- tests */

START_TEST(tx_frame_reaches_backend)
{
	uint8_t f[100], got[200];
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	mk_frame(f, sizeof(f), MAC, 1);
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_eq(peer_recv(0, got, sizeof(got)), (ssize_t)sizeof(f));
	ck_assert_mem_eq(got, f, sizeof(f));
	ck_assert_int_eq(g_used(1, NULL, 0, &ulen), 1);
	ck_assert_uint_eq(ulen, 0);
	ck_assert_uint_eq(g_stats(0).tx_packets, 1);
	ck_assert_uint_eq(g_stats(0).tx_bytes, sizeof(f));
	g_stop();
}
END_TEST

START_TEST(rx_frame_reaches_guest)
{
	uint8_t f[60], got[2048];
	struct virtio_net_hdr_v1 h;
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	for (int i = 0; i < 4; i++)
		g_post_rx(0, 1536, false);
	g_kick(0);
	mk_frame(f, sizeof(f), MAC, 7);
	peer_send(0, f, sizeof(f));
	ck_assert_int_lt(g_pump(), 10);
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_uint_eq(ulen, sizeof(h) + sizeof(f));
	memcpy(&h, got, sizeof(h));
	ck_assert_uint_eq(le16toh(h.num_buffers), 1);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(h.gso_type, 0);
	ck_assert_mem_eq(got + sizeof(h), f, sizeof(f));
	ck_assert_uint_eq(g_stats(0).rx_packets, 1);
	g_stop();
}
END_TEST

START_TEST(rx_mrg_rxbuf_spans_buffers)
{
	uint8_t f[1400], got[600];
	struct virtio_net_hdr_v1 h;
	uint32_t ulen, lens[3] = {512, 512, 1412 - 1024};

	g_start(1, false, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	ck_assert(G.features & F(VIRTIO_NET_F_MRG_RXBUF));
	for (int i = 0; i < 6; i++)
		g_post_rx(0, 512, false);
	g_kick(0);
	mk_frame(f, sizeof(f), MAC, 3);
	peer_send(0, f, sizeof(f));
	g_pump();
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
		ck_assert_uint_eq(ulen, lens[i]);
		if (i == 0) {
			memcpy(&h, got, sizeof(h));
			ck_assert_uint_eq(le16toh(h.num_buffers), 3);
			ck_assert_mem_eq(got + 12, f, 500);
		} else {
			ck_assert_mem_eq(got, f + 500 + 512 * (i - 1), ulen);
		}
	}
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	/* the three buffers left serve the next frame */
	peer_send(0, f, 100);
	g_pump();
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_uint_eq(ulen, 112);
	ck_assert_uint_eq(g_stats(0).rx_packets, 2);
	g_stop();
}
END_TEST

START_TEST(rx_no_buffers_backpressure)
{
	uint8_t f[80], got[256];
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	mk_frame(f, sizeof(f), MAC, 5);
	for (int i = 0; i < 3; i++)
		peer_send(0, f, sizeof(f));
	/* no buffers: the device stops reading, no busy loop, no drop */
	ck_assert_int_lt(g_pump(), 5);
	ck_assert(!g_polled(FB.dev[0], POLLIN));
	ck_assert_uint_ge(g_stats(0).rx_no_buffers, 1);
	ck_assert_uint_eq(g_stats(0).rx_packets, 0);
	ck_assert(peer_pending(0) == 0); /* device end still holds them */
	{
		int q = 0;

		ck_assert_int_eq(ioctl(FB.dev[0], FIONREAD, &q), 0);
		ck_assert_int_eq(q, 3 * (int)sizeof(f));
	}
	/* the guest posts buffers and kicks: reading resumes */
	for (int i = 0; i < 4; i++)
		g_post_rx(0, 2048, false);
	g_kick(0);
	g_pump();
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
		ck_assert_uint_eq(ulen, 12 + sizeof(f));
	}
	ck_assert_uint_eq(g_stats(0).rx_packets, 3);
	ck_assert(g_polled(FB.dev[0], POLLIN));
	g_stop();
}
END_TEST

START_TEST(hostile_rx_frame_larger_than_buffers_dropped)
{
	uint8_t f[1000], got[256];
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	g_post_rx(0, 100, true);
	mk_frame(f, sizeof(f), MAC, 9);
	peer_send(0, f, sizeof(f));
	g_pump();
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	ck_assert_uint_eq(g_stats(0).rx_oversize, 1);
	/* the buffer stays for a frame that fits */
	peer_send(0, f, 60);
	g_pump();
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_uint_eq(ulen, 72);
	ck_assert_mem_eq(got + 12, f, 60);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(hostile_tx_chain_shorter_than_header)
{
	uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8}, f[64], got[128];
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	g_send_raw(1, junk, sizeof(junk));
	ck_assert_int_eq(g_used(1, NULL, 0, &ulen), 1);
	ck_assert_uint_eq(ulen, 0);
	ck_assert_uint_eq(g_stats(0).tx_errors, 1);
	ck_assert_int_lt(peer_recv(0, got, sizeof(got)), 0);
	ck_assert(!g_needs_reset());
	/* header only, no frame */
	g_send_raw(1, f, 12);
	ck_assert_uint_eq(g_stats(0).tx_errors, 2);
	/* the device goes on */
	mk_frame(f, sizeof(f), MAC, 2);
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_eq(peer_recv(0, got, sizeof(got)), (ssize_t)sizeof(f));
	g_stop();
}
END_TEST

START_TEST(hostile_tx_frame_over_64k)
{
	static uint8_t f[VIRTIO_NET_MAX_FRAME + 1];
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	mk_frame(f, sizeof(f), MAC, 2);
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_eq(g_used(1, NULL, 0, &ulen), 1);
	ck_assert_uint_eq(ulen, 0);
	ck_assert_uint_eq(g_stats(0).tx_errors, 1);
	ck_assert_uint_eq(g_stats(0).tx_packets, 0);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(hostile_tx_bad_headers_counted)
{
	uint8_t f[200], got[400];
	struct virtio_net_hdr_v1 h;
	const uint64_t want = BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			      F(VIRTIO_NET_F_HOST_TSO4);

	g_start(1, true, want);
	ck_assert_int_eq(FB.hdr_size, 12);
	mk_frame(f, sizeof(f), MAC, 4);
	/* checksum offsets past the frame */
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .csum_start = htole16(190),
				       .csum_offset = htole16(16)};
	g_send(1, &h, f, sizeof(f));
	/* GSO with a zero segment size */
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				       .hdr_len = htole16(54),
				       .csum_start = htole16(34),
				       .csum_offset = htole16(16)};
	g_send(1, &h, f, sizeof(f));
	/* GSO type not negotiated (TCPv6) */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	h.gso_size = htole16(1448);
	g_send(1, &h, f, sizeof(f));
	/* unknown flag bits */
	h = (struct virtio_net_hdr_v1){.flags = 0x80};
	g_send(1, &h, f, sizeof(f));
	ck_assert_uint_eq(g_stats(0).tx_errors, 4);
	ck_assert_int_lt(peer_recv(0, got, sizeof(got)), 0);
	/* a good TSO frame passes with its header */
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				       .gso_size = htole16(1448),
				       .hdr_len = htole16(54),
				       .csum_start = htole16(34),
				       .csum_offset = htole16(16),
				       .num_buffers = htole16(77)};
	g_send(1, &h, f, sizeof(f));
	ck_assert_int_eq(peer_recv(0, got, sizeof(got)), 12 + sizeof(f));
	ck_assert_uint_eq(got[1], VIRTIO_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(got[10] | got[11], 0); /* num_buffers cleared */
	ck_assert_mem_eq(got + 12, f, sizeof(f));
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(offloads_mirror_negotiation)
{
	const uint64_t want = BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			      F(VIRTIO_NET_F_GUEST_CSUM) |
			      F(VIRTIO_NET_F_GUEST_TSO4);

	g_start(1, true, want);
	ck_assert_uint_eq(FB.set_offloads & VIRTIO_NET_OFFLOAD_FEATURES,
			  F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |
				  F(VIRTIO_NET_F_GUEST_TSO4));
	g_status_set(0);
	ck_assert_uint_eq(FB.set_offloads, 0);
	g_stop();
	/* a bare backend gets no offloads offered */
	g_start(1, false, ~0ull);
	ck_assert_uint_eq(G.features & VIRTIO_NET_OFFLOAD_FEATURES, 0);
	g_stop();
}
END_TEST

START_TEST(hostile_features_without_dependencies_refused)
{
	struct virtio_net_options o = {.max_pairs = 1, .queue_size = QSIZE};
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct guest_region *r;
	const uint64_t bad[] = {
		F(VIRTIO_NET_F_GUEST_TSO4),
		F(VIRTIO_NET_F_HOST_TSO4),
		F(VIRTIO_NET_F_CTRL_RX),
		F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN),
	};

	memset(&FB, 0, sizeof(FB));
	FB.hdr = true;
	FB.offloads = VIRTIO_NET_OFFLOAD_FEATURES;
	FB.npairs = 1;
	{
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
		FB.dev[0] = sv[0];
		FB.peer[0] = sv[1];
	}
	memset(&G, 0, sizeof(G));
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	ck_assert_int_eq(virtio_net_create(&fb_ops, &FB, &o, &G.net), 0);
	G.vdev = virtio_net_device(G.net);
	virtio_device_set_memory(G.vdev, G.mem);
	g_transport_create();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t f = bad[i] | F(VIRTIO_F_VERSION_1);

		g_status_set(0);
		g_status_set(3);
		g_driver_features(f);
		g_status_set(3 | VIRTIO_CONFIG_S_FEATURES_OK);
		ck_assert(!(g_status_get() & VIRTIO_CONFIG_S_FEATURES_OK));
	}
	g_stop();
}
END_TEST

START_TEST(ctrl_rx_mode_and_filter)
{
	uint8_t on = 0, f[60], other[6] = {0x52, 0, 0, 0, 0, 0x99}, got[256];
	uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
	struct virtio_net_rx_mode m;
	uint32_t ulen;

	g_start(1, false, BASE_FEATURES);
	ck_assert_int_eq(virtio_net_rx_mode(G.net, &m), 0);
	ck_assert(m.promisc);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC,
				 &on, 1),
			  VIRTIO_NET_OK);
	ck_assert_int_eq(virtio_net_rx_mode(G.net, &m), 0);
	ck_assert(!m.promisc);
	for (int i = 0; i < 8; i++)
		g_post_rx(0, 1536, false);
	g_kick(0);
	mk_frame(f, sizeof(f), other, 1);
	peer_send(0, f, sizeof(f)); /* another host's unicast: filtered */
	mk_frame(f, sizeof(f), mcast, 1);
	peer_send(0, f, sizeof(f)); /* multicast not in the table */
	mk_frame(f, sizeof(f), MAC, 1);
	peer_send(0, f, sizeof(f)); /* ours: delivered */
	g_pump();
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_mem_eq(got + 12, MAC, 6);
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	ck_assert_uint_eq(g_stats(0).rx_filtered, 2);
	/* MAC table: one unicast (other), one multicast */
	{
		uint8_t t[4 + 6 + 4 + 6];
		uint32_t one = htole32(1);

		memcpy(t, &one, 4);
		memcpy(t + 4, other, 6);
		memcpy(t + 10, &one, 4);
		memcpy(t + 14, mcast, 6);
		ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
					 VIRTIO_NET_CTRL_MAC_TABLE_SET, t,
					 sizeof(t)),
				  VIRTIO_NET_OK);
	}
	mk_frame(f, sizeof(f), other, 1);
	peer_send(0, f, sizeof(f));
	mk_frame(f, sizeof(f), mcast, 1);
	peer_send(0, f, sizeof(f));
	g_pump();
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_mem_eq(got + 12, other, 6);
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_mem_eq(got + 12, mcast, 6);
	/* allmulti, then an unknown RX command */
	on = 1;
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			  VIRTIO_NET_OK);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST,
				 &on, 1),
			  VIRTIO_NET_ERR);
	ck_assert_int_eq(virtio_net_rx_mode(G.net, &m), 0);
	ck_assert(m.allmulti);
	g_stop();
}
END_TEST

START_TEST(ctrl_mac_addr_set)
{
	uint8_t nm[6] = {0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}, cfg[6];
	struct virtio_net_rx_mode m;

	g_start(1, false, BASE_FEATURES);
	g_config_read(0, cfg, 6);
	ck_assert_mem_eq(cfg, MAC, 6);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_ADDR_SET, nm, 6),
			  VIRTIO_NET_OK);
	g_config_read(0, cfg, 6);
	ck_assert_mem_eq(cfg, nm, 6);
	ck_assert_int_eq(virtio_net_rx_mode(G.net, &m), 0);
	ck_assert_mem_eq(m.mac, nm, 6);
	/* short payload */
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_ADDR_SET, nm, 4),
			  VIRTIO_NET_ERR);
	/* a reset restores the VMM's MAC */
	g_status_set(0);
	g_config_read(0, cfg, 6);
	ck_assert_mem_eq(cfg, MAC, 6);
	g_stop();
}
END_TEST

START_TEST(hostile_ctrl_mac_table_counts)
{
	uint8_t t[4 + 6 * 2];
	uint32_t huge = htole32(0xffffffffu), two = htole32(2);

	g_start(1, false, BASE_FEATURES);
	memcpy(t, &huge, 4);
	memset(t + 4, 0x11, 12);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, t, sizeof(t)),
			  VIRTIO_NET_ERR);
	/* two unicast entries but no multicast count */
	memcpy(t, &two, 4);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, t, sizeof(t)),
			  VIRTIO_NET_ERR);
	/* no payload at all, unknown class */
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, NULL, 0),
			  VIRTIO_NET_ERR);
	ck_assert_uint_eq(g_ctrl(0x77, 0, t, 4), VIRTIO_NET_ERR);
	ck_assert(!g_needs_reset());
	{
		struct virtio_net_rx_mode m;

		ck_assert_int_eq(virtio_net_rx_mode(G.net, &m), 0);
		ck_assert_uint_eq(m.uni_entries, 0);
	}
	g_stop();
}
END_TEST

START_TEST(ctrl_mq_pairs)
{
	uint16_t v;
	uint8_t f[64], got[256];
	uint32_t ulen;

	g_start(3, false, BASE_FEATURES);
	ck_assert(G.features & F(VIRTIO_NET_F_MQ));
	g_config_read(8, &v, 2);
	ck_assert_uint_eq(le16toh(v), 3);
	ck_assert_uint_eq(virtio_net_active_pairs(G.net), 1);
	ck_assert_int_eq(FB.open_calls[0], 1);
	ck_assert_int_eq(FB.open_calls[1], 0);
	ck_assert(!g_polled(FB.dev[1], POLLIN));
	v = htole16(2);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_OK);
	ck_assert_uint_eq(virtio_net_active_pairs(G.net), 2);
	ck_assert_int_eq(FB.open_calls[1], 1);
	ck_assert(g_polled(FB.dev[1], POLLIN));
	ck_assert(!g_polled(FB.dev[2], POLLIN));
	/* pair 1's queues go to backend pair 1 */
	mk_frame(f, sizeof(f), MAC, 8);
	g_send(3, NULL, f, sizeof(f));
	ck_assert_int_eq(peer_recv(1, got, sizeof(got)), (ssize_t)sizeof(f));
	ck_assert_int_lt(peer_recv(0, got, sizeof(got)), 0);
	g_post_rx(2, 1536, true);
	peer_send(1, f, sizeof(f));
	g_pump();
	ck_assert_int_eq(g_used(2, got, sizeof(got), &ulen), 1);
	ck_assert_uint_eq(ulen, 12 + sizeof(f));
	ck_assert_uint_eq(g_stats(1).rx_packets, 1);
	ck_assert_uint_eq(g_stats(1).tx_packets, 1);
	/* out of range */
	v = htole16(0);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_ERR);
	v = htole16(4);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_ERR);
	ck_assert_uint_eq(virtio_net_active_pairs(G.net), 2);
	/* back to one */
	v = htole16(1);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &v, 2),
			  VIRTIO_NET_OK);
	ck_assert_int_eq(FB.close_calls[1], 1);
	ck_assert(!g_polled(FB.dev[1], POLLIN));
	g_stop();
}
END_TEST

START_TEST(ctrl_queue_without_mq_is_queue_2)
{
	uint8_t on = 0;

	g_start(2, false, BASE_FEATURES & ~F(VIRTIO_NET_F_MQ));
	ck_assert_uint_eq(G.nq, 3);
	ck_assert_uint_eq(g_ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC,
				 &on, 1),
			  VIRTIO_NET_OK);
	g_stop();
}
END_TEST

START_TEST(link_status_change)
{
	uint16_t st;
	uint32_t gen;
	uint8_t f[64], got[128];

	g_start(1, false, BASE_FEATURES);
	g_config_read(6, &st, 2);
	ck_assert_uint_eq(le16toh(st), VIRTIO_NET_S_LINK_UP);
	gen = g_config_generation();
	(void)g_isr_take();
	ck_assert_int_eq(virtio_net_set_link(G.net, false), 0);
	g_config_read(6, &st, 2);
	ck_assert_uint_eq(le16toh(st), 0);
	ck_assert_uint_ne(g_config_generation(), gen);
	ck_assert(g_isr_take() & VIRTIO_MMIO_INT_CONFIG);
	/* link down: nothing received, transmit dropped */
	ck_assert(!g_polled(FB.dev[0], POLLIN));
	mk_frame(f, sizeof(f), MAC, 1);
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_lt(peer_recv(0, got, sizeof(got)), 0);
	ck_assert_uint_eq(g_stats(0).tx_dropped, 1);
	ck_assert_int_eq(virtio_net_set_link(G.net, true), 0);
	g_config_read(6, &st, 2);
	ck_assert_uint_eq(le16toh(st), VIRTIO_NET_S_LINK_UP);
	ck_assert(g_isr_take() & VIRTIO_MMIO_INT_CONFIG);
	ck_assert(g_polled(FB.dev[0], POLLIN));
	g_stop();
}
END_TEST

START_TEST(tx_backpressure_holds_chain)
{
	uint8_t f[2000], got[4096];
	int sent = 0, sndbuf = 4096;

	g_start(1, false, BASE_FEATURES);
	setsockopt(FB.dev[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	mk_frame(f, sizeof(f), MAC, 1);
	for (int i = 0; i < 30; i++)
		g_send(1, NULL, f, sizeof(f));
	/* the socket filled: the device waits for POLLOUT, holding one */
	ck_assert(g_polled(FB.dev[0], POLLOUT));
	ck_assert_uint_eq(g_stats(0).tx_dropped, 0);
	while (peer_recv(0, got, sizeof(got)) > 0)
		sent++;
	g_pump();
	while (peer_recv(0, got, sizeof(got)) > 0)
		sent++;
	for (int k = 0; k < 40 && sent < 30; k++) {
		g_pump();
		while (peer_recv(0, got, sizeof(got)) > 0)
			sent++;
	}
	ck_assert_int_eq(sent, 30);
	ck_assert_uint_eq(g_stats(0).tx_packets, 30);
	g_stop();
}
END_TEST

START_TEST(reset_with_held_chains_and_reinit)
{
	uint8_t f[100], got[2048];
	uint32_t ulen;
	const uint64_t want = BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF);

	g_start(1, false, want);
	/* three 512-byte buffers are popped ahead for a 1518-byte frame;
	 * a small frame takes one, two stay held by the device */
	for (int i = 0; i < 3; i++)
		g_post_rx(0, 512, false);
	g_kick(0);
	mk_frame(f, sizeof(f), MAC, 1);
	peer_send(0, f, sizeof(f));
	g_pump();
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 1);
	ck_assert_uint_eq(virtq_in_flight(virtio_device_queue(G.vdev, 0)), 2);
	/* a frame waits in the backend while the driver resets */
	peer_send(0, f, sizeof(f));
	g_status_set(0);
	ck_assert_uint_eq(g_status_get(), 0);
	ck_assert_int_eq(FB.close_calls[0], 1);
	ck_assert_uint_eq(virtio_net_active_pairs(G.net), 0);
	ck_assert(!g_polled(FB.dev[0], POLLIN));
	/* nothing is written after the reset; a new bring-up works */
	g_pump();
	g_bringup(1, want);
	ck_assert_int_eq(FB.open_calls[0], 2);
	g_post_rx(0, 2048, true);
	g_pump();
	ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
	ck_assert_uint_eq(ulen, 12 + sizeof(f));
	ck_assert_mem_eq(got + 12, f, sizeof(f));
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_eq(peer_recv(0, got, sizeof(got)), (ssize_t)sizeof(f));
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

/*
 * The device over a packed ring (cvmm --virtio-ring packed): up on a
 * split ring, reset, RING_PACKED offered with
 * virtio_device_set_ring_features(), up again packed (through virtio-mmio
 * or, in devices-virtio-net-pci, virtio-pci).
 * Forty rounds of a frame out and a 1400-byte frame in over three
 * mergeable 512-byte buffers (one batch completion of three elements):
 * 120 receive descriptors in a 64-entry ring, so the wrap counters turn.
 */
START_TEST(packed_ring_rx_tx)
{
	const uint64_t want = BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF);
	uint8_t f[1400], got[2048];
	struct virtio_net_hdr_v1 h;
	uint32_t ulen, lens[3] = {512, 512, 1412 - 1024};

	g_start(1, false, want);
	ck_assert(!(G.features & F(VIRTIO_F_RING_PACKED)));
	g_status_set(0);
	ck_assert_int_eq(virtio_device_set_ring_features(
				 G.vdev, F(VIRTIO_F_RING_PACKED)),
			 0);
	g_bringup(1, want | F(VIRTIO_F_RING_PACKED));
	ck_assert(G.features & F(VIRTIO_F_RING_PACKED));
	ck_assert(virtq_features(virtio_device_queue(G.vdev, 0)) &
		  F(VIRTIO_F_RING_PACKED));
	for (int round = 0; round < 40; round++) {
		mk_frame(f, 100, MAC, (uint8_t)round);
		g_send(1, NULL, f, 100);
		ck_assert_int_eq(peer_recv(0, got, sizeof(got)), 100);
		ck_assert_mem_eq(got, f, 100);
		ck_assert_int_eq(g_used(1, NULL, 0, &ulen), 1);

		for (int i = 0; i < 3; i++)
			g_post_rx(0, 512, false);
		g_kick(0);
		mk_frame(f, sizeof(f), MAC, (uint8_t)(round + 100));
		peer_send(0, f, sizeof(f));
		g_pump();
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(g_used(0, got, sizeof(got), &ulen), 1);
			ck_assert_uint_eq(ulen, lens[i]);
			if (i == 0) {
				memcpy(&h, got, sizeof(h));
				ck_assert_uint_eq(le16toh(h.num_buffers), 3);
				ck_assert_mem_eq(got + 12, f, 500);
			} else {
				ck_assert_mem_eq(got, f + 500 + 512 * (i - 1),
						 ulen);
			}
		}
		ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	}
	ck_assert_uint_eq(g_stats(0).rx_packets, 40);
	ck_assert_uint_eq(g_stats(0).tx_packets, 40);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(rx_backend_eof_not_busy)
{
	g_start(1, false, BASE_FEATURES);
	for (int i = 0; i < 4; i++)
		g_post_rx(0, 1536, false);
	g_kick(0);
	close(FB.peer[0]); /* the peer hangs up: recv returns 0 */
	FB.peer[0] = socket(AF_UNIX, SOCK_DGRAM, 0); /* for g_stop */
	ck_assert_int_lt(g_pump(), 5);
	ck_assert(!g_polled(FB.dev[0], POLLIN));
	ck_assert_uint_eq(g_stats(0).rx_errors, 1);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(create_errors)
{
	struct virtio_net *n;
	struct virtio_net_options o = {.max_pairs = 17};
	struct virtio_net_backend_ops none = {0};

	ck_assert_int_eq(virtio_net_create(NULL, NULL, NULL, &n), -EINVAL);
	ck_assert_int_eq(virtio_net_create(&none, NULL, NULL, &n), -EINVAL);
	ck_assert_int_eq(virtio_net_create(&fb_ops, &FB, &o, &n), -EINVAL);
	o = (struct virtio_net_options){.queue_size = 100};
	ck_assert_int_eq(virtio_net_create(&fb_ops, &FB, &o, &n), -EINVAL);
	o = (struct virtio_net_options){.mtu = 20};
	ck_assert_int_eq(virtio_net_create(&fb_ops, &FB, &o, &n), -EINVAL);
	virtio_net_destroy(NULL);
	ck_assert_int_eq(virtio_net_set_link(NULL, true), -EINVAL);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("virtio-net");
	TCase *t = tcase_create("net");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, tx_frame_reaches_backend);
	tcase_add_test(t, rx_frame_reaches_guest);
	tcase_add_test(t, rx_mrg_rxbuf_spans_buffers);
	tcase_add_test(t, rx_no_buffers_backpressure);
	tcase_add_test(t, hostile_rx_frame_larger_than_buffers_dropped);
	tcase_add_test(t, hostile_tx_chain_shorter_than_header);
	tcase_add_test(t, hostile_tx_frame_over_64k);
	tcase_add_test(t, hostile_tx_bad_headers_counted);
	tcase_add_test(t, offloads_mirror_negotiation);
	tcase_add_test(t, hostile_features_without_dependencies_refused);
	tcase_add_test(t, ctrl_rx_mode_and_filter);
	tcase_add_test(t, ctrl_mac_addr_set);
	tcase_add_test(t, hostile_ctrl_mac_table_counts);
	tcase_add_test(t, ctrl_mq_pairs);
	tcase_add_test(t, ctrl_queue_without_mq_is_queue_2);
	tcase_add_test(t, link_status_change);
	tcase_add_test(t, tx_backpressure_holds_chain);
	tcase_add_test(t, reset_with_held_chains_and_reinit);
	tcase_add_test(t, rx_backend_eof_not_busy);
	tcase_add_test(t, packed_ring_rx_tx);
	tcase_add_test(t, create_errors);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
