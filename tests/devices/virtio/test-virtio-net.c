/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net, end to end: the device behind the virtio-mmio transport,
 * played by a mock guest on libvirtio-queue's mock driver; the backend is
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

#define MEM_SIZE  (16u << 20)
#define QSIZE	  64u
#define MAX_Q	  9u
#define RING_BASE 0x10000u
#define BUF_BASE  0x100000u
#define BUF_SLOT  4096u
#define F(b)	  (1ull << (b))

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

/* ------------------------------------------------------------ the guest */

struct guest {
	struct guest_memory *mem;
	struct virtio_net *net;
	struct virtio_device *vdev;
	struct virtio_mmio *mmio;
	uint64_t features;
	uint32_t nq;
	struct virtq_driver *drv[MAX_Q];
	guest_addr_t head_addr[MAX_Q][QSIZE];
	guest_addr_t next_buf;
	guest_addr_t next_ring;
};

static struct guest G;

static void mmio_w32(uint32_t off, uint32_t v)
{
	virtio_mmio_write(G.mmio, off, &v, 4);
}

static uint32_t mmio_r32(uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(G.mmio, off, &v, 4);
	return v;
}

static uint8_t g_status_get(void)
{
	return (uint8_t)mmio_r32(VIRTIO_MMIO_STATUS);
}

static void g_config_read(uint32_t off, void *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		virtio_mmio_read(G.mmio, VIRTIO_MMIO_CONFIG + off + i,
				 (uint8_t *)data + i, 1);
}

static void g_kick(uint32_t q)
{
	if (virtq_driver_needs_kick(G.drv[q]))
		mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void g_setup_queue(uint32_t q)
{
	guest_addr_t d, a, u;
	uint64_t total = virtq_driver_layout(QSIZE, G.next_ring, &d, &a, &u);

	G.next_ring += (total + 4095) & ~4095ull;
	ck_assert_int_eq(virtq_driver_create(G.mem, QSIZE, G.features, d, a, u,
					     &G.drv[q]),
			 0);
	mmio_w32(VIRTIO_MMIO_QUEUE_SEL, q);
	mmio_w32(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	mmio_w32(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
	mmio_w32(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
	mmio_w32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
	mmio_w32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(a >> 32));
	mmio_w32(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)u);
	mmio_w32(VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(u >> 32));
	mmio_w32(VIRTIO_MMIO_QUEUE_READY, 1);
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_QUEUE_READY), 1);
}

static guest_addr_t g_alloc(uint32_t len)
{
	guest_addr_t a = G.next_buf;

	G.next_buf += (len + BUF_SLOT - 1) / BUF_SLOT * BUF_SLOT;
	if (G.next_buf > MEM_SIZE - (1u << 20)) /* recycle the area */
		G.next_buf = BUF_BASE;
	return a;
}

/* Post one writable receive buffer of @len on @q. */
static void g_post_rx(uint32_t q, uint32_t len, bool kick)
{
	struct virtq_driver_buf b = {
		.addr = g_alloc(len), .len = len, .flags = VRING_DESC_F_WRITE};
	uint16_t head;

	ck_assert_int_eq(virtq_driver_add(G.drv[q], &b, 1, &head), 0);
	G.head_addr[q][head] = b.addr;
	if (kick)
		g_kick(q);
}

/* Send @hdr (NULL: zero) + @frame (@len) on @q, the header in its own
 * descriptor and the frame in a second one (as Linux without
 * any_header_sg). */
static void g_send(uint32_t q, const struct virtio_net_hdr_v1 *hdr,
		   const void *frame, uint32_t len)
{
	struct virtio_net_hdr_v1 z = {0};
	struct virtq_driver_buf b[2] = {
		{.addr = g_alloc(sizeof(z)), .len = sizeof(z)},
		{.addr = g_alloc(len), .len = len},
	};

	ck_assert_int_eq(guest_memory_write(G.mem, b[0].addr, hdr ? hdr : &z,
					    sizeof(z)),
			 0);
	ck_assert_int_eq(guest_memory_write(G.mem, b[1].addr, frame, len), 0);
	ck_assert_int_eq(virtq_driver_add(G.drv[q], b, len ? 2 : 1, NULL), 0);
	g_kick(q);
}

/* Raw chain of @n readable bytes (for short chains). */
static void g_send_raw(uint32_t q, const void *data, uint32_t len)
{
	struct virtq_driver_buf b = {.addr = g_alloc(len), .len = len};

	ck_assert_int_eq(guest_memory_write(G.mem, b.addr, data, len), 0);
	ck_assert_int_eq(virtq_driver_add(G.drv[q], &b, 1, NULL), 0);
	g_kick(q);
}

/* Next used element of @q: 1 with id/len and the first buffer's bytes. */
static int g_used(uint32_t q, void *buf, uint32_t cap, uint32_t *len)
{
	struct vring_used_elem e;
	int r = virtq_driver_get_used(G.drv[q], &e);

	ck_assert_int_ge(r, 0);
	if (r == 0)
		return 0;
	if (len)
		*len = e.len;
	if (buf && e.len) {
		ck_assert_uint_le(e.len, cap);
		ck_assert_int_eq(guest_memory_read(G.mem, G.head_addr[q][e.id],
						   buf, e.len),
				 0);
	}
	return 1;
}

/* Run the VMM's poll loop until nothing is ready; returns the rounds
 * that found something (200: a busy loop). */
static int g_pump(void)
{
	int round;

	for (round = 0; round < 200; round++) {
		struct virtio_poll_fd fds[64];
		struct pollfd pfd[64];
		int n = virtio_device_poll_fds(G.vdev, fds, 64), any = 0;

		ck_assert_int_ge(n, 0);
		ck_assert_int_le(n, 64);
		for (int i = 0; i < n; i++)
			pfd[i] =
				(struct pollfd){.fd = fds[i].fd,
						.events = (short)fds[i].events};
		if (poll(pfd, (nfds_t)n, 0) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pfd[i].revents) {
				fds[i].ready(fds[i].opaque,
					     (uint32_t)pfd[i].revents);
				any = 1;
			}
		}
		if (!any)
			break;
	}
	return round;
}

/* Does the device poll @fd for any of @events? */
static bool g_polled(int fd, uint32_t events)
{
	struct virtio_poll_fd fds[64];
	int n = virtio_device_poll_fds(G.vdev, fds, 64);
	int nq = (int)virtio_device_num_queues(G.vdev);

	for (int i = nq; i < n && i < 64; i++)
		if (fds[i].fd == fd && (fds[i].events & events))
			return true;
	return false;
}

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

#define BASE_FEATURES                                         \
	(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) |       \
	 F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |  \
	 F(VIRTIO_NET_F_CTRL_MAC_ADDR) | F(VIRTIO_NET_F_MQ) | \
	 F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC))

/* Bring the device up with @pairs backend pairs, @want of the offered
 * features (VERSION_1 added), every queue set up, DRIVER_OK. */
static void g_start_opts(uint32_t pairs, bool hdr, uint64_t want,
			 const struct virtio_net_options *opts)
{
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct virtio_net_options o = {0};
	struct guest_region *r;
	uint64_t offered;

	memset(&G, 0, sizeof(G));
	memset(&FB, 0, sizeof(FB));
	G.next_buf = BUF_BASE;
	G.next_ring = RING_BASE;
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
	if (opts)
		o = *opts;
	else
		memcpy(o.mac, MAC, 6);
	o.max_pairs = pairs;
	o.queue_size = QSIZE;
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	ck_assert_int_eq(virtio_net_create(&fb_ops, &FB, &o, &G.net), 0);
	G.vdev = virtio_net_device(G.net);
	ck_assert_int_eq(virtio_device_set_memory(G.vdev, G.mem), 0);
	ck_assert_int_eq(virtio_mmio_create(G.vdev, NULL, &G.mmio), 0);
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_DEVICE_ID), 1);
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
	mmio_w32(VIRTIO_MMIO_STATUS, 1);
	mmio_w32(VIRTIO_MMIO_STATUS, 3);
	offered = 0;
	for (uint32_t page = 0; page < 2; page++) {
		mmio_w32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, page);
		offered |= (uint64_t)mmio_r32(VIRTIO_MMIO_DEVICE_FEATURES)
			   << (32 * page);
	}
	G.features = (offered & want) | F(VIRTIO_F_VERSION_1);
	for (uint32_t page = 0; page < 2; page++) {
		mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
		mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES,
			 (uint32_t)(G.features >> (32 * page)));
	}
	mmio_w32(VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(g_status_get() & VIRTIO_CONFIG_S_FEATURES_OK);
	G.nq = (G.features & F(VIRTIO_NET_F_MQ)) ? 2 * pairs + 1 : 3;
	for (uint32_t q = 0; q < G.nq; q++)
		g_setup_queue(q);
	mmio_w32(VIRTIO_MMIO_STATUS,
		 3 | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(g_status_get() & VIRTIO_CONFIG_S_DRIVER_OK);
}

static void g_start(uint32_t pairs, bool hdr, uint64_t want)
{
	g_start_opts(pairs, hdr, want, NULL);
}

static void g_stop(void)
{
	virtio_mmio_destroy(G.mmio);
	virtio_net_destroy(G.net);
	ck_assert(FB.destroyed);
	for (unsigned q = 0; q < MAX_Q; q++)
		virtq_driver_destroy(G.drv[q]);
	for (uint32_t i = 0; i < FB.npairs; i++)
		close(FB.peer[i]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
}

static struct virtio_net_queue_stats g_stats(uint32_t pair)
{
	struct virtio_net_queue_stats st;

	ck_assert_int_eq(virtio_net_queue_stats(G.net, pair, &st), 0);
	return st;
}

static bool g_needs_reset(void)
{
	return g_status_get() & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* An Ethernet frame of @len bytes to @dst, payload bytes from @seed. */
static void mk_frame(uint8_t *f, uint32_t len, const uint8_t *dst, uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i);
}

static uint32_t ctrl_q(void)
{
	return G.nq - 1;
}

/* Send a control command; returns the ack byte. */
static uint8_t g_ctrl(uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	struct virtio_net_ctrl_hdr h = {.class = cls, .cmd = cmd};
	struct virtq_driver_buf b[3];
	unsigned nb = 0;
	uint8_t ack = 0xee;
	uint16_t head;
	uint32_t ulen;

	b[nb] = (struct virtq_driver_buf){.addr = g_alloc(2), .len = 2};
	guest_memory_write(G.mem, b[nb].addr, &h, 2);
	nb++;
	if (len) {
		b[nb] = (struct virtq_driver_buf){.addr = g_alloc(len),
						  .len = len};
		guest_memory_write(G.mem, b[nb].addr, data, len);
		nb++;
	}
	b[nb] = (struct virtq_driver_buf){
		.addr = g_alloc(1), .len = 1, .flags = VRING_DESC_F_WRITE};
	guest_memory_write(G.mem, b[nb].addr, &ack, 1);
	ck_assert_int_eq(virtq_driver_add(G.drv[ctrl_q()], b, nb + 1, &head),
			 0);
	g_kick(ctrl_q());
	ck_assert_int_eq(g_used(ctrl_q(), NULL, 0, &ulen), 1);
	ck_assert_uint_eq(ulen, 1);
	guest_memory_read(G.mem, b[nb].addr, &ack, 1);
	return ack;
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
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
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
	ck_assert_int_eq(virtio_mmio_create(G.vdev, NULL, &G.mmio), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t f = bad[i] | F(VIRTIO_F_VERSION_1);

		mmio_w32(VIRTIO_MMIO_STATUS, 0);
		mmio_w32(VIRTIO_MMIO_STATUS, 3);
		for (uint32_t page = 0; page < 2; page++) {
			mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
			mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES,
				 (uint32_t)(f >> (32 * page)));
		}
		mmio_w32(VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
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
	mmio_w32(VIRTIO_MMIO_STATUS, 0);
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
	gen = mmio_r32(VIRTIO_MMIO_CONFIG_GENERATION);
	mmio_w32(VIRTIO_MMIO_INTERRUPT_ACK, 3);
	ck_assert_int_eq(virtio_net_set_link(G.net, false), 0);
	g_config_read(6, &st, 2);
	ck_assert_uint_eq(le16toh(st), 0);
	ck_assert_uint_ne(mmio_r32(VIRTIO_MMIO_CONFIG_GENERATION), gen);
	ck_assert(mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS) &
		  VIRTIO_MMIO_INT_CONFIG);
	mmio_w32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	/* link down: nothing received, transmit dropped */
	ck_assert(!g_polled(FB.dev[0], POLLIN));
	mk_frame(f, sizeof(f), MAC, 1);
	g_send(1, NULL, f, sizeof(f));
	ck_assert_int_lt(peer_recv(0, got, sizeof(got)), 0);
	ck_assert_uint_eq(g_stats(0).tx_dropped, 1);
	ck_assert_int_eq(virtio_net_set_link(G.net, true), 0);
	g_config_read(6, &st, 2);
	ck_assert_uint_eq(le16toh(st), VIRTIO_NET_S_LINK_UP);
	ck_assert(mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS) &
		  VIRTIO_MMIO_INT_CONFIG);
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
