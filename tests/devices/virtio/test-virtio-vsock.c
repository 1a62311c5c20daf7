/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-vsock, end to end: the device behind a real transport (virtio-mmio
 * registers or the virtio-pci BAR; each test runs on both), a mock guest
 * built on libvirtio-queue's mock driver that speaks the vsock packet
 * protocol as Linux's virtio transport does (header and payload in two
 * descriptors, rx buffers of 4 KiB + header), and real unix-socket host
 * peers in a temporary directory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_vsock.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-vsock.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "test-virtio-transport.h"

#define MEM_SIZE  (32u << 20)
#define QSIZE	  64u
#define NQ	  3u
#define RING_BASE 0x10000u
#define BUF_BASE  0x100000u
#define SLOT	  (72u << 10)
#define QAREA	  (QSIZE * SLOT)
#define HDR	  ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RXBUF	  (4096u + HDR)
#define CID	  42u

/* ------------------------------------------------------------ the guest */

struct guest {
	struct vt_transport t; /* tp, mmio, pd */
	struct guest_memory *mem;
	struct virtio_vsock *vs;
	struct virtio_device *vdev;
	struct virtio_pci *pci;
	uint64_t features;
	struct virtq_driver *drv[NQ];
	uint32_t slot_of[NQ][QSIZE]; /* slot of each head */
	bool slot_used[NQ][QSIZE];
	guest_addr_t next_ring;
	bool no_repost; /* g_rx_get() does not post a new rx buffer */
};

static struct guest G;

static uint64_t g_config_cid(void)
{
	uint64_t cid = 0;

	for (unsigned i = 0; i < 8; i++) {
		uint8_t b = 0;

		if (G.t.tp == TP_MMIO)
			virtio_mmio_read(G.t.mmio, VIRTIO_MMIO_CONFIG + i, &b,
					 1);
		else
			b = (uint8_t)vt_bar_r(&G.t,
					      VIRTIO_PCI_DEVICE_OFFSET + i, 1);
		cid |= (uint64_t)b << (8 * i);
	}
	return cid;
}

/* Notify only when the device asked for it, as Linux does. */
static void g_kick(uint32_t q)
{
	if (virtq_driver_needs_kick(G.drv[q]))
		vt_notify(&G.t, q);
}

static void g_setup_queue(uint32_t q)
{
	vt_setup_queue(&G.t, G.mem, q, QSIZE, G.features, &G.next_ring,
		       &G.drv[q]);
}

static guest_addr_t slot_addr(uint32_t q, uint32_t slot)
{
	return BUF_BASE + (guest_addr_t)q * QAREA + (guest_addr_t)slot * SLOT;
}

static uint32_t slot_take(uint32_t q)
{
	for (uint32_t s = 0; s < QSIZE; s++) {
		if (!G.slot_used[q][s]) {
			G.slot_used[q][s] = true;
			return s;
		}
	}
	ck_abort_msg("no free slot on queue %u", q);
	return 0;
}

/* Add @n buffers placed in one slot (offsets given in bufs[i].addr). */
static void g_add_slot(uint32_t q, struct virtq_driver_buf *bufs, unsigned n)
{
	uint32_t s = slot_take(q);
	uint16_t head;

	for (unsigned i = 0; i < n; i++)
		bufs[i].addr += slot_addr(q, s);
	ck_assert_int_eq(virtq_driver_add(G.drv[q], bufs, n, &head), 0);
	G.slot_of[q][head] = s;
}

/* Take the next used element of @q: its slot address and length. */
static int g_used(uint32_t q, guest_addr_t *addr, uint32_t *len)
{
	struct vring_used_elem e;
	int r = virtq_driver_get_used(G.drv[q], &e);

	ck_assert_int_ge(r, 0);
	if (r == 0)
		return 0;
	ck_assert_uint_lt(e.id, QSIZE);
	if (addr)
		*addr = slot_addr(q, G.slot_of[q][e.id]);
	if (len)
		*len = e.len;
	G.slot_used[q][G.slot_of[q][e.id]] = false;
	return 1;
}

/* Run the VMM's poll loop until nothing is ready (bounded). */
static int g_pump(void)
{
	int round;

	for (round = 0; round < 200; round++) {
		struct virtio_poll_fd fds[128];
		struct pollfd pfd[128];
		int n = virtio_device_poll_fds(G.vdev, fds, 128), any = 0;

		ck_assert_int_ge(n, 0);
		ck_assert_int_le(n, 128);
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

/* Is @events asked for on any of the device's own fds (not notifiers)? */
static int g_polled_count(uint32_t events)
{
	struct virtio_poll_fd fds[128];
	int n = virtio_device_poll_fds(G.vdev, fds, 128), k = 0;

	for (int i = (int)NQ; i < n && i < 128; i++)
		if (fds[i].events & events)
			k++;
	return k;
}

static void g_rx_post(unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct virtq_driver_buf b = {
			.addr = 0, .len = size, .flags = VRING_DESC_F_WRITE};

		g_add_slot(0, &b, 1);
	}
	g_kick(0);
}

static struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t gport,
				     uint32_t hport, uint32_t len)
{
	struct virtio_vsock_hdr h = {0};

	h.src_cid = CID;
	h.dst_cid = VIRTIO_VSOCK_HOST_CID;
	h.src_port = gport;
	h.dst_port = hport;
	h.len = len;
	h.type = VIRTIO_VSOCK_TYPE_STREAM;
	h.op = op;
	h.buf_alloc = 256u << 10;
	return h;
}

/* Send one packet on the tx queue as Linux does: header, then payload in
 * a second descriptor.  The device completes it at once. */
static void g_tx(const struct virtio_vsock_hdr *h, const void *data,
		 uint32_t len)
{
	struct virtq_driver_buf b[2] = {{.addr = 0, .len = HDR},
					{.addr = 64, .len = len}};
	guest_addr_t a;
	uint32_t s;

	ck_assert_uint_le(len, SLOT - 64);
	s = slot_take(1);
	G.slot_used[1][s] = false; /* g_add_slot takes it again */
	ck_assert_int_eq(guest_memory_write(G.mem, slot_addr(1, s), h, HDR), 0);
	if (len)
		ck_assert_int_eq(guest_memory_write(G.mem, slot_addr(1, s) + 64,
						    data, len),
				 0);
	g_add_slot(1, b, len ? 2 : 1);
	g_kick(1);
	ck_assert_int_eq(g_used(1, &a, NULL), 1);
}

struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[4096];
	uint32_t len; /* used length */
};

/* The next packet the device sent, or 0; reposts an rx buffer. */
static int g_rx_get(struct pkt *p)
{
	guest_addr_t a;
	uint32_t len;

	if (!g_used(0, &a, &len))
		return 0;
	ck_assert_uint_ge(len, HDR);
	ck_assert_uint_le(len, RXBUF);
	ck_assert_int_eq(guest_memory_read(G.mem, a, &p->h, HDR), 0);
	ck_assert_uint_eq(p->h.len, len - HDR);
	ck_assert_uint_eq(p->h.src_cid, VIRTIO_VSOCK_HOST_CID);
	ck_assert_uint_eq(p->h.dst_cid, CID);
	ck_assert_uint_eq(p->h.type, VIRTIO_VSOCK_TYPE_STREAM);
	if (len > HDR)
		ck_assert_int_eq(guest_memory_read(G.mem, a + HDR, p->data,
						   len - HDR),
				 0);
	p->len = len;
	if (!G.no_repost)
		g_rx_post(1, RXBUF);
	return 1;
}

/* Expect the next packet to be @op between the ports. */
static void g_expect(struct pkt *p, uint16_t op, uint32_t gport, uint32_t hport)
{
	g_pump();
	ck_assert_int_eq(g_rx_get(p), 1);
	ck_assert_uint_eq(p->h.op, op);
	ck_assert_uint_eq(p->h.dst_port, gport);
	ck_assert_uint_eq(p->h.src_port, hport);
}

static void g_expect_none(void)
{
	struct pkt p;

	g_pump();
	ck_assert_int_eq(g_rx_get(&p), 0);
}

static void g_start(int tp, const struct virtio_vsock_params *params)
{
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct guest_region *r;
	uint64_t offered;

	memset(&G, 0, sizeof(G));
	G.t.tp = tp;
	G.next_ring = RING_BASE;
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	ck_assert_int_eq(virtio_vsock_create(params, &G.vs), 0);
	G.vdev = virtio_vsock_device(G.vs);
	ck_assert_ptr_nonnull(G.vdev);
	ck_assert_int_eq(virtio_device_set_memory(G.vdev, G.mem), 0);
	vt_attach(&G.t, tp, G.vdev, 19, &G.pci);
	vt_status(&G.t, 0);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	offered = vt_device_features(&G.t);
	ck_assert(offered & (1ull << VIRTIO_F_VERSION_1));
	ck_assert(!(offered & (1ull << VIRTIO_VSOCK_F_SEQPACKET)));
	G.features = offered & ((1ull << VIRTIO_F_VERSION_1) |
				(1ull << VIRTIO_RING_F_EVENT_IDX) |
				(1ull << VIRTIO_RING_F_INDIRECT_DESC));
	vt_driver_features(&G.t, G.features);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(vt_get_status(&G.t) & VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert_uint_eq(g_config_cid(),
			  params && params->guest_cid ? params->guest_cid : 3);
	for (uint32_t q = 0; q < NQ; q++)
		g_setup_queue(q);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK |
				VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(vt_get_status(&G.t) & VIRTIO_CONFIG_S_DRIVER_OK);
	/* Linux fills the rx queue at probe */
	g_rx_post(QSIZE / 2, RXBUF);
}

static void g_stop(void)
{
	if (G.t.mmio)
		virtio_mmio_destroy(G.t.mmio);
	if (G.pci)
		virtio_pci_destroy(G.pci);
	virtio_vsock_destroy(G.vs);
	for (unsigned q = 0; q < NQ; q++)
		virtq_driver_destroy(G.drv[q]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
}

static bool g_needs_reset(void)
{
	return vt_get_status(&G.t) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static struct virtio_vsock_stats vstats(void)
{
	struct virtio_vsock_stats st;

	ck_assert_int_eq(virtio_vsock_stats(G.vs, &st), 0);
	return st;
}

/* ---------------------------------------------------------- host side */

static char tmpdir[64];
static char uds[80];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vvsock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(uds, sizeof(uds), "%s/v.sock", tmpdir);
}

static void rm_tmpdir(void)
{
	char p[160];

	unlink(uds);
	for (unsigned port = 1000; port < 1010; port++) {
		snprintf(p, sizeof(p), "%s_%u", uds, port);
		unlink(p);
	}
	rmdir(tmpdir);
}

static int unix_listen_port(unsigned port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", uds, port);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int accept_one(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd;

	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Read exactly @len bytes from @fd (bounded by a timeout). */
static void read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		n = read(fd, (char *)buf + got, len - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
}

/* Was the device's end of @fd closed (end of file, or a reset when it
 * closed with input unread)? */
static bool at_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	char c;

	if (poll(&p, 1, 2000) != 1)
		return false;
	n = recv(fd, &c, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static bool has_input(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* Guest connects from @gport to host port @hport, where a listener
 * runs: returns the host's accepted socket. */
static int guest_open(int lfd, uint32_t gport, uint32_t hport)
{
	struct virtio_vsock_hdr h =
		mkhdr(VIRTIO_VSOCK_OP_REQUEST, gport, hport, 0);
	struct pkt p;

	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, gport, hport);
	return accept_one(lfd);
}

/* ------------------------------------------------------------------ tests */

START_TEST(create_rejects_bad_config)
{
	struct virtio_vsock *v = NULL;
	struct virtio_vsock_params p = {0};
	char longpath[120];

	ck_assert_int_eq(virtio_vsock_create(NULL, NULL), -EINVAL);
	p.guest_cid = 2;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.guest_cid = 0xffffffffu;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.guest_cid = 3;
	p.conn_buf_size = 100;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.conn_buf_size = VIRTIO_VSOCK_CONN_BUF_MAX + 1;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.conn_buf_size = 0;
	p.max_connections = VIRTIO_VSOCK_MAX_CONNS_LIMIT + 1;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.max_connections = 0;
	p.queue_max_size = 100;
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.queue_max_size = 0;
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	p.uds_path = longpath; /* PATH_4294967295 would not fit */
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	p.uds_path = "";
	ck_assert_int_eq(virtio_vsock_create(&p, &v), -EINVAL);
	ck_assert_ptr_null(v);
	/* defaults */
	ck_assert_int_eq(virtio_vsock_create(NULL, &v), 0);
	virtio_vsock_destroy(v);
	virtio_vsock_destroy(NULL);
}
END_TEST

START_TEST(guest_connect_data_shutdown)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct virtio_vsock_stats st;
	struct pkt p;
	char buf[16];
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1000);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 1000, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, 5000, 1000);
	ck_assert_uint_eq(p.h.buf_alloc, VIRTIO_VSOCK_CONN_BUF_DEFAULT);
	ck_assert_uint_eq(p.h.fwd_cnt, 0);
	fd = accept_one(lfd);
	/* guest -> host */
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 5000, 1000, 5);
	g_tx(&h, "hello", 5);
	read_all(fd, buf, 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	/* host -> guest */
	ck_assert_int_eq(write(fd, "world!", 6), 6);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 5000, 1000);
	ck_assert_uint_eq(p.h.len, 6);
	ck_assert_int_eq(memcmp(p.data, "world!", 6), 0);
	ck_assert_uint_eq(p.h.fwd_cnt, 5); /* what the host socket took */
	/* guest closes both directions: host sees EOF, guest gets RST */
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 1000, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5000, 1000);
	ck_assert(at_eof(fd));
	st = vstats();
	ck_assert_uint_eq(st.conns_open, 0);
	ck_assert_uint_eq(st.guest_connects, 1);
	ck_assert_uint_eq(st.tx_bytes, 5);
	ck_assert_uint_eq(st.rx_bytes, 6);
	ck_assert(!g_needs_reset());
	close(fd);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* The host closes first: SHUTDOWN SEND to the guest, which answers with
 * its own SHUTDOWN; both directions closed: RST. */
START_TEST(host_closes_first)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1001);
	fd = guest_open(lfd, 5001, 1001);
	ck_assert_int_eq(write(fd, "bye", 3), 3);
	close(fd);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 5001, 1001);
	ck_assert_int_eq(memcmp(p.data, "bye", 3), 0);
	g_expect(&p, VIRTIO_VSOCK_OP_SHUTDOWN, 5001, 1001);
	ck_assert_uint_eq(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5001, 1001, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5001, 1001);
	ck_assert_uint_eq(vstats().conns_open, 0);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(host_connect_handshake)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	char line[32], got[32], buf[8];
	uint32_t local;
	int fd, n;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	fd = unix_connect(uds);
	/* the line and the first data in one write */
	ck_assert_int_eq(write(fd, "CONNECT 7000\nearly", 18), 18);
	g_pump();
	ck_assert_int_eq(g_rx_get(&p), 1);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(p.h.dst_port, 7000);
	local = p.h.src_port;
	ck_assert_uint_ge(local, 1024);
	g_expect_none(); /* no data before the guest accepted */
	h = mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 7000, local, 0);
	g_tx(&h, NULL, 0);
	n = snprintf(line, sizeof(line), "OK %u\n", local);
	read_all(fd, got, (size_t)n);
	ck_assert_int_eq(memcmp(got, line, (size_t)n), 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 7000, local);
	ck_assert_uint_eq(p.h.len, 5);
	ck_assert_int_eq(memcmp(p.data, "early", 5), 0);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 7000, local, 4);
	g_tx(&h, "pong", 4);
	read_all(fd, buf, 4);
	ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
	ck_assert_uint_eq(vstats().host_connects, 1);
	close(fd);
	g_expect(&p, VIRTIO_VSOCK_OP_SHUTDOWN, 7000, local);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(host_connect_refused_and_bad_lines)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	int fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	/* the guest has no listener: it answers RST */
	fd = unix_connect(uds);
	ck_assert_int_eq(write(fd, "CONNECT 7001\n", 13), 13);
	g_pump();
	ck_assert_int_eq(g_rx_get(&p), 1);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	h = mkhdr(VIRTIO_VSOCK_OP_RST, 7001, p.h.src_port, 0);
	g_tx(&h, NULL, 0);
	g_pump();
	ck_assert(at_eof(fd));
	close(fd);
	/* bad lines: closed without OK, nothing sent to the guest */
	/* 33 bytes: no newline within the 32 the device looks at */
	static const char too_long[] = "CONNECT 000000000000000000000001\n";
	static const char *const bad[] = {"HELLO\n",
					  "CONNECT \n",
					  "CONNECT 12x\n",
					  "CONNECT 4294967296\n",
					  "CONNECT 99999999999\n",
					  "CONNECT 1 2\n",
					  too_long};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = unix_connect(uds);
		ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])),
				 (ssize_t)strlen(bad[i]));
		g_pump();
		ck_assert_msg(at_eof(fd), "line %u", i);
		close(fd);
	}
	/* a peer that goes away before its line */
	fd = unix_connect(uds);
	close(fd);
	g_expect_none();
	ck_assert_uint_eq(vstats().host_refused, 1 + 7 + 1);
	ck_assert_uint_eq(vstats().conns_open, 0);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* A host program that leaves before the guest answered: the request is
 * cancelled with a RST, the slot freed; the late RESPONSE is ignored. */
START_TEST(host_connect_peer_leaves)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	uint32_t local;
	int fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	fd = unix_connect(uds);
	ck_assert_int_eq(write(fd, "CONNECT 7002\n", 13), 13);
	g_pump();
	ck_assert_int_eq(g_rx_get(&p), 1);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	local = p.h.src_port;
	ck_assert_uint_eq(vstats().conns_open, 1);
	close(fd);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 7002, local);
	ck_assert_uint_eq(vstats().conns_open, 0);
	h = mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 7002, local, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 7002, local); /* unknown now */
	ck_assert_uint_eq(vstats().host_refused, 1);
	ck_assert_uint_eq(vstats().host_connects, 0);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* SHUTDOWN SEND alone: the host sees end of file but can still send;
 * once it closes too, the device resets the connection. */
START_TEST(guest_half_close)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	char buf[4];
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1001);
	fd = guest_open(lfd, 5100, 1001);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 5100, 1001, 3);
	g_tx(&h, "abc", 3);
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5100, 1001, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	g_tx(&h, NULL, 0);
	read_all(fd, buf, 3);
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
	ck_assert(at_eof(fd));
	ck_assert_int_eq(write(fd, "xyz", 3), 3);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 5100, 1001);
	ck_assert_int_eq(memcmp(p.data, "xyz", 3), 0);
	close(fd);
	g_expect(&p, VIRTIO_VSOCK_OP_SHUTDOWN, 5100, 1001);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5100, 1001);
	ck_assert_uint_eq(vstats().conns_open, 0);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* SHUTDOWN RCV alone: host input is no longer read (nothing reaches the
 * guest), guest output still flows; SEND afterwards closes it. */
START_TEST(guest_shutdown_rcv)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	char c;
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1002);
	fd = guest_open(lfd, 5200, 1002);
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5200, 1002, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV;
	g_tx(&h, NULL, 0);
	ck_assert_int_eq(write(fd, "zzz", 3), 3);
	g_expect_none();
	ck_assert_uint_eq(vstats().rx_bytes, 0);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 5200, 1002, 1);
	g_tx(&h, "q", 1);
	read_all(fd, &c, 1);
	ck_assert_int_eq(c, 'q');
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5200, 1002, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5200, 1002);
	ck_assert(at_eof(fd));
	ck_assert_uint_eq(vstats().conns_open, 0);
	close(fd);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* A host program that never sends its line, and one whose REQUEST the
 * guest never answers: both closed at the handshake deadline (the
 * second with a RST to the guest), their slots freed. */
START_TEST(host_connect_handshake_timeout)
{
	struct virtio_vsock_params prm = {.guest_cid = CID,
					  .connect_timeout_ms = 100};
	struct pkt p;
	uint32_t local;
	int idle, slow;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	idle = unix_connect(uds);
	slow = unix_connect(uds);
	ck_assert_int_eq(write(slow, "CONNECT 7003\n", 13), 13);
	g_pump();
	ck_assert_int_eq(g_rx_get(&p), 1);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	local = p.h.src_port;
	ck_assert_uint_eq(vstats().conns_open, 2);
	usleep(250000);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 7003, local);
	ck_assert(at_eof(idle));
	ck_assert(at_eof(slow));
	ck_assert_uint_eq(vstats().conns_open, 0);
	ck_assert_uint_eq(vstats().host_timeouts, 2);
	/* the timer is quiet afterwards: no busy loop */
	ck_assert_int_lt(g_pump(), 2);
	close(idle);
	close(slow);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(refused_port_gets_rst)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 5002, 1009, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5002, 1009);
	ck_assert_uint_eq(vstats().guest_refused, 1);
	ck_assert_uint_eq(vstats().conns_open, 0);
	g_stop();
	rm_tmpdir();
	/* without a host side at all */
	g_start(_i, &(struct virtio_vsock_params){.guest_cid = CID});
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 5003, 22, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 5003, 22);
	g_stop();
}
END_TEST

/*
 * A guest that never reads (never advances its fwd_cnt) gets at most its
 * buf_alloc; the device stops reading that socket (asks for credit once),
 * while another connection keeps flowing; a CREDIT_UPDATE resumes it.
 */
START_TEST(credit_guest_never_reads)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	static uint8_t big[65536];
	struct virtio_vsock_hdr h;
	struct pkt p;
	uint32_t got = 0, reqs = 0;
	int lfd, a, b, polled_in;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1002);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 6000, 1002, 0);
	h.buf_alloc = 8192;
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, 6000, 1002);
	a = accept_one(lfd);
	b = guest_open(lfd, 6001, 1002);
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(write(a, big, sizeof(big)), (ssize_t)sizeof(big));
	g_pump();
	while (g_rx_get(&p)) {
		ck_assert_uint_eq(p.h.dst_port, 6000);
		if (p.h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
			reqs++;
			continue;
		}
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RW);
		ck_assert_int_eq(memcmp(p.data, big + got, p.h.len), 0);
		got += p.h.len;
		g_pump();
	}
	ck_assert_uint_eq(got, 8192);
	ck_assert_uint_eq(reqs, 1);
	/* the socket is not polled for input meanwhile: no busy loop */
	ck_assert_int_lt(g_pump(), 2);
	polled_in = g_polled_count(POLLIN);
	/* the listener, the handshake timer and b's socket */
	ck_assert_int_eq(polled_in, 3);
	/* the other connection is unaffected */
	ck_assert_int_eq(write(b, "B", 1), 1);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 6001, 1002);
	ck_assert_uint_eq(p.h.len, 1);
	/* the guest reads 8 KiB: more flows */
	h = mkhdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 6000, 1002, 0);
	h.buf_alloc = 8192;
	h.fwd_cnt = 8192;
	g_tx(&h, NULL, 0);
	g_pump();
	while (g_rx_get(&p)) {
		if (p.h.op == VIRTIO_VSOCK_OP_RW) {
			ck_assert_int_eq(memcmp(p.data, big + got, p.h.len), 0);
			got += p.h.len;
		}
		g_pump();
	}
	ck_assert_uint_eq(got, 16384);
	ck_assert_uint_eq(vstats().buffered_bytes, 0);
	close(a);
	close(b);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* Guest side of a credit-respecting sender. */
struct gsend {
	uint32_t gport, hport;
	uint32_t buf_alloc, fwd_cnt; /* the device's, from its packets */
	uint32_t tx_cnt;
};

static void gsend_credit(struct gsend *s, const struct pkt *p)
{
	if (p->h.dst_port == s->gport && p->h.src_port == s->hport) {
		s->buf_alloc = p->h.buf_alloc;
		s->fwd_cnt = p->h.fwd_cnt;
	}
}

/* Send up to @len bytes of @data while credit lasts; returns bytes sent. */
static uint32_t gsend_push(struct gsend *s, const uint8_t *data, uint32_t len)
{
	uint32_t sent = 0;

	while (sent < len) {
		uint32_t credit = s->buf_alloc - (s->tx_cnt - s->fwd_cnt);
		uint32_t n = len - sent;
		struct virtio_vsock_hdr h;

		if (n > 4096)
			n = 4096;
		if (n > credit)
			n = credit;
		if (n == 0)
			break;
		h = mkhdr(VIRTIO_VSOCK_OP_RW, s->gport, s->hport, n);
		g_tx(&h, data + sent, n);
		s->tx_cnt += n;
		sent += n;
	}
	return sent;
}

/*
 * A host peer that stalls (never reads): the device buffers at most
 * conn_buf_size for it, the credit-respecting guest stops, another
 * connection is unaffected; when the peer reads, credit updates resume the
 * transfer and every byte arrives in order.
 */
START_TEST(credit_host_peer_stalls)
{
	struct virtio_vsock_params prm = {.guest_cid = CID,
					  .conn_buf_size = 16384};
	const uint32_t total = 2u << 20;
	uint8_t *data = malloc(total), *rcv = malloc(total);
	struct gsend s = {.gport = 6100, .hport = 1003};
	struct virtio_vsock_hdr h;
	struct pkt p;
	uint32_t sent = 0, rcvd = 0, stalls = 0;
	int lfd, a, b;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(rcv);
	for (uint32_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 13 + (i >> 11));
	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1003);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, s.gport, s.hport, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, s.gport, s.hport);
	gsend_credit(&s, &p);
	ck_assert_uint_eq(s.buf_alloc, 16384);
	a = accept_one(lfd);
	b = guest_open(lfd, 6101, 1003);
	while (sent < total) {
		uint32_t n = gsend_push(&s, data + sent, total - sent);

		sent += n;
		g_pump();
		while (g_rx_get(&p)) {
			gsend_credit(&s, &p);
			g_pump();
		}
		ck_assert_uint_le(vstats().buffered_bytes, 16384);
		if (n == 0 && s.buf_alloc - (s.tx_cnt - s.fwd_cnt) == 0) {
			struct virtio_vsock_hdr hb;
			char c;

			/* stalled: the other connection still works */
			stalls++;
			hb = mkhdr(VIRTIO_VSOCK_OP_RW, 6101, 1003, 1);
			g_tx(&hb, "x", 1);
			read_all(b, &c, 1);
			ck_assert_int_eq(c, 'x');
			ck_assert_uint_gt(vstats().buffered_bytes, 0);
			/* the peer reads a while */
			while (rcvd < sent && has_input(a)) {
				ssize_t r = read(a, rcv + rcvd, sent - rcvd);

				ck_assert_int_gt(r, 0);
				rcvd += (uint32_t)r;
			}
		}
		ck_assert_uint_lt(stalls, 100000);
	}
	ck_assert_uint_gt(stalls, 0);
	/* drain */
	for (unsigned k = 0; rcvd < total; k++) {
		ssize_t r;

		ck_assert_uint_lt(k, 1000000);
		g_pump();
		while (g_rx_get(&p))
			;
		if (!has_input(a))
			continue;
		r = read(a, rcv + rcvd, total - rcvd);
		ck_assert_int_gt(r, 0);
		rcvd += (uint32_t)r;
	}
	ck_assert_int_eq(memcmp(data, rcv, total), 0);
	ck_assert_uint_eq(vstats().credit_violations, 0);
	ck_assert_uint_eq(vstats().tx_bytes, total + stalls);
	close(a);
	close(b);
	close(lfd);
	g_stop();
	rm_tmpdir();
	free(data);
	free(rcv);
}
END_TEST

/* A guest that ignores the credit: the connection is reset, the VMM never
 * holds more than conn_buf_size. */
START_TEST(credit_guest_exceeds_credit)
{
	struct virtio_vsock_params prm = {.guest_cid = CID,
					  .conn_buf_size = 8192};
	static uint8_t chunk[4096];
	struct virtio_vsock_hdr h;
	struct pkt p;
	int lfd, a, i;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1004);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 6200, 1004, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, 6200, 1004);
	a = accept_one(lfd);
	/* the peer never reads: fill its socket, then the buffer, then more */
	for (i = 0; i < 4096 && vstats().credit_violations == 0; i++) {
		h = mkhdr(VIRTIO_VSOCK_OP_RW, 6200, 1004, sizeof(chunk));
		g_tx(&h, chunk, sizeof(chunk));
		ck_assert_uint_le(vstats().buffered_bytes, 8192);
	}
	ck_assert_uint_eq(vstats().credit_violations, 1);
	ck_assert_uint_eq(vstats().buffered_bytes, 0);
	g_pump();
	/* drain: credit updates may come first, then the RST */
	for (;;) {
		ck_assert_int_eq(g_rx_get(&p), 1);
		if (p.h.op == VIRTIO_VSOCK_OP_RST)
			break;
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	}
	ck_assert_uint_eq(p.h.dst_port, 6200);
	ck_assert_uint_eq(vstats().conns_open, 0);
	close(a);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(connection_cap)
{
	struct virtio_vsock_params prm = {.guest_cid = CID,
					  .max_connections = 2};
	struct virtio_vsock_hdr h;
	struct pkt p;
	int lfd, a, b, c;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1005);
	a = guest_open(lfd, 6300, 1005);
	b = guest_open(lfd, 6301, 1005);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 6302, 1005, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6302, 1005);
	/* a host program is refused too */
	c = unix_connect(uds);
	g_pump();
	ck_assert(at_eof(c));
	close(c);
	ck_assert_uint_eq(vstats().conn_cap_hits, 2);
	ck_assert_uint_eq(vstats().conns_open, 2);
	/* a slot freed by a RST can be used again */
	h = mkhdr(VIRTIO_VSOCK_OP_RST, 6300, 1005, 0);
	g_tx(&h, NULL, 0);
	ck_assert(at_eof(a));
	close(a);
	a = guest_open(lfd, 6302, 1005);
	close(a);
	close(b);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* A chain shorter than the header: dropped and counted. */
START_TEST(hostile_short_header)
{
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0);
	struct virtq_driver_buf b = {.addr = 0, .len = HDR - 1};
	guest_addr_t a;

	g_start(_i, &(struct virtio_vsock_params){.guest_cid = CID});
	ck_assert_int_eq(
		guest_memory_write(G.mem, slot_addr(1, 0), &h, HDR - 1), 0);
	g_add_slot(1, &b, 1);
	g_kick(1);
	ck_assert_int_eq(g_used(1, &a, NULL), 1);
	g_expect_none();
	ck_assert_uint_eq(vstats().short_header, 1);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

START_TEST(hostile_wrong_cid)
{
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0);

	g_start(_i, &(struct virtio_vsock_params){.guest_cid = CID});
	h.src_cid = CID + 1;
	g_tx(&h, NULL, 0);
	h.src_cid = CID;
	h.dst_cid = 7;
	g_tx(&h, NULL, 0);
	h.dst_cid = VIRTIO_VSOCK_HOST_CID | (1ull << 40);
	g_tx(&h, NULL, 0);
	g_expect_none();
	ck_assert_uint_eq(vstats().bad_cid, 3);
	g_stop();
}
END_TEST

START_TEST(hostile_len_beyond_chain)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	int lfd, a;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1006);
	a = guest_open(lfd, 6400, 1006);
	/* claims 4 GiB - 1 with 4 bytes behind it */
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 6400, 1006, 0xffffffffu);
	g_tx(&h, "abcd", 4);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6400, 1006);
	ck_assert(at_eof(a)); /* nothing was written to the host */
	/* and on no connection */
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 6401, 1006, 5);
	g_tx(&h, "abcd", 4);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6401, 1006);
	ck_assert_uint_eq(vstats().bad_len, 2);
	ck_assert_uint_eq(vstats().tx_bytes, 0);
	ck_assert(!g_needs_reset());
	close(a);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(hostile_unknown_op_and_type)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtio_vsock_hdr h;
	struct pkt p;
	int lfd, a;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1007);
	a = guest_open(lfd, 6500, 1007);
	h = mkhdr(9, 6500, 1007, 0); /* unknown op on a connection */
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6500, 1007);
	ck_assert(at_eof(a));
	close(a);
	h = mkhdr(VIRTIO_VSOCK_OP_INVALID, 6501, 1007, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6501, 1007);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 6502, 1007, 0);
	h.type = VIRTIO_VSOCK_TYPE_SEQPACKET; /* not negotiated */
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6502, 1007);
	h.type = 0xffff;
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6502, 1007);
	/* ops for no connection: RST, but never a RST for a RST */
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 6503, 1007, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6503, 1007);
	h = mkhdr(VIRTIO_VSOCK_OP_RST, 6503, 1007, 0);
	g_tx(&h, NULL, 0);
	g_expect_none();
	/* RESPONSE to nothing, RW before a connection */
	h = mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 6504, 1007, 0);
	g_tx(&h, NULL, 0);
	g_expect(&p, VIRTIO_VSOCK_OP_RST, 6504, 1007);
	ck_assert_uint_eq(vstats().bad_op, 2);
	ck_assert_uint_eq(vstats().bad_type, 2);
	ck_assert_uint_eq(vstats().unknown_conn, 2);
	ck_assert_uint_eq(vstats().conns_open, 0);
	ck_assert(!g_needs_reset());
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

/* A flood of packets for unknown ports while the guest posts no rx
 * buffer: the RSTs waiting are bounded, the rest counted. */
START_TEST(hostile_rst_flood_bounded)
{
	struct virtio_vsock_hdr h;
	struct pkt p;
	uint32_t n = 0;

	g_start(_i, &(struct virtio_vsock_params){.guest_cid = CID});
	/* the guest posts no more rx buffers than it did at probe */
	G.no_repost = true;
	g_pump();
	for (uint32_t i = 0; i < VIRTIO_VSOCK_ORPHAN_RST_MAX + 40; i++) {
		h = mkhdr(VIRTIO_VSOCK_OP_RW, 7000 + i, 1, 0);
		g_tx(&h, NULL, 0);
	}
	/* QSIZE / 2 went into the posted buffers at once */
	while (g_rx_get(&p))
		n++;
	ck_assert_uint_eq(n, QSIZE / 2);
	ck_assert_uint_eq(vstats().orphan_rst_dropped, 40 - QSIZE / 2);
	G.no_repost = false;
	g_rx_post(QSIZE / 2, RXBUF);
	g_pump();
	while (g_rx_get(&p)) {
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
		n++;
		g_pump();
	}
	ck_assert_uint_eq(n, VIRTIO_VSOCK_ORPHAN_RST_MAX + QSIZE / 2);
	g_stop();
}
END_TEST

/* rx buffers shorter than the header are completed empty. */
START_TEST(hostile_rx_buffer_too_short)
{
	struct virtio_vsock_hdr h;
	struct pkt p;
	guest_addr_t a;
	uint32_t len;

	g_start(_i, &(struct virtio_vsock_params){.guest_cid = CID});
	G.no_repost = true;
	/* use up the normal ones */
	for (uint32_t i = 0; i < QSIZE / 2; i++) {
		h = mkhdr(VIRTIO_VSOCK_OP_RW, 8000 + i, 1, 0);
		g_tx(&h, NULL, 0);
		ck_assert_int_eq(g_rx_get(&p), 1);
	}
	g_rx_post(1, HDR - 1);
	g_rx_post(1, RXBUF);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 9000, 1, 0);
	g_tx(&h, NULL, 0);
	g_pump();
	ck_assert_int_eq(g_used(0, &a, &len), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(g_rx_get(&p), 1);
	ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(vstats().rx_short_buffer, 1);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

/* rx buffers with room for a header only: the data waiting cannot go
 * there; they are used for credit updates (the queue never stalls on
 * them) and the data follows in the next real buffer, intact. */
START_TEST(hostile_rx_buffer_header_only)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct pkt p;
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1003);
	fd = guest_open(lfd, 5300, 1003);
	G.no_repost = true;
	/* use up the posted buffers with credit requests of the guest */
	for (uint32_t i = 0; i < QSIZE / 2; i++) {
		struct virtio_vsock_hdr h =
			mkhdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5300, 1003, 0);

		g_tx(&h, NULL, 0);
		ck_assert_int_eq(g_rx_get(&p), 1);
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	}
	g_expect_none();
	g_rx_post(3, HDR);
	ck_assert_int_eq(write(fd, "data", 4), 4);
	g_pump();
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(g_rx_get(&p), 1);
		ck_assert_uint_eq(p.h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		ck_assert_uint_eq(p.len, HDR);
	}
	ck_assert_int_eq(g_rx_get(&p), 0);
	g_rx_post(1, RXBUF);
	g_expect(&p, VIRTIO_VSOCK_OP_RW, 5300, 1003);
	ck_assert_int_eq(memcmp(p.data, "data", 4), 0);
	ck_assert(!g_needs_reset());
	close(fd);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(transport_reset_event)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	struct virtq_driver_buf b = {
		.addr = 0, .len = 4, .flags = VRING_DESC_F_WRITE};
	guest_addr_t a;
	uint32_t len, id = 0xff;
	int lfd, fd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1008);
	fd = guest_open(lfd, 6600, 1008);
	/* asked before the guest posted an event buffer: held */
	ck_assert_int_eq(virtio_vsock_transport_reset(G.vs), 0);
	ck_assert(at_eof(fd));
	ck_assert_uint_eq(vstats().conns_open, 0);
	ck_assert_int_eq(g_used(2, &a, &len), 0);
	g_add_slot(2, &b, 1);
	g_kick(2);
	ck_assert_int_eq(g_used(2, &a, &len), 1);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(guest_memory_read(G.mem, a, &id, 4), 0);
	ck_assert_uint_eq(id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	/* with a buffer waiting: at once */
	b.addr = 0;
	g_add_slot(2, &b, 1);
	g_kick(2);
	ck_assert_int_eq(g_used(2, &a, &len), 0);
	ck_assert_int_eq(virtio_vsock_transport_reset(G.vs), 0);
	ck_assert_int_eq(g_used(2, &a, &len), 1);
	ck_assert_uint_eq(vstats().events_sent, 2);
	ck_assert_int_eq(virtio_vsock_transport_reset(NULL), -EINVAL);
	/* a connection after the reset works */
	close(fd);
	fd = guest_open(lfd, 6601, 1008);
	close(fd);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

START_TEST(device_reset_closes_connections)
{
	struct virtio_vsock_params prm = {.guest_cid = CID};
	int lfd, fd, hfd;

	mk_tmpdir();
	prm.uds_path = uds;
	g_start(_i, &prm);
	lfd = unix_listen_port(1009);
	fd = guest_open(lfd, 6700, 1009);
	hfd = unix_connect(uds);
	ck_assert_int_eq(write(hfd, "CONNECT 5\n", 10), 10);
	g_pump();
	ck_assert_uint_eq(vstats().conns_open, 2);
	vt_status(&G.t, 0);
	ck_assert(at_eof(fd));
	ck_assert(at_eof(hfd));
	ck_assert_uint_eq(vstats().conns_open, 0);
	close(fd);
	close(hfd);
	close(lfd);
	g_stop();
	rm_tmpdir();
}
END_TEST

static Suite *vsock_suite(void)
{
	Suite *s = suite_create("virtio-vsock");
	TCase *tc = tcase_create("vsock");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, create_rejects_bad_config);
	tcase_add_loop_test(tc, guest_connect_data_shutdown, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, host_closes_first, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, host_connect_handshake, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, host_connect_refused_and_bad_lines, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, host_connect_peer_leaves, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, guest_half_close, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, guest_shutdown_rcv, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, host_connect_handshake_timeout, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, refused_port_gets_rst, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, credit_guest_never_reads, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, credit_host_peer_stalls, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, credit_guest_exceeds_credit, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, connection_cap, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_short_header, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_wrong_cid, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_len_beyond_chain, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_unknown_op_and_type, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_rst_flood_bounded, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_rx_buffer_too_short, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_rx_buffer_header_only, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, transport_reset_event, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, device_reset_closes_connections, TP_MMIO,
			    TP_PCI + 1);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vsock_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN); /* a host peer writing to a closed socket */

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
