/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-console, end to end: the device behind a real transport
 * (virtio-mmio registers or the virtio-pci BAR, each test runs on both),
 * played by a mock guest built on libvirtio-queue's mock driver that
 * follows the Linux virtio_console driver's control sequence; the host
 * side is real fds: socketpairs for port 0, unix sockets for named ports.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-console.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "test-virtio-transport.h"

#define MEM_SIZE  (8u << 20)
#define QSIZE	  64u
#define MAX_Q	  16u
#define RING_BASE 0x10000u
#define BUF_BASE  0x100000u
#define BUF_SLOT  4096u

/* ------------------------------------------------------------ the guest */

struct guest {
	struct vt_transport t; /* tp, mmio, pd */
	struct guest_memory *mem;
	struct virtio_console *con;
	struct virtio_device *vdev;
	struct virtio_pci *pci;
	uint64_t features;
	struct virtq_driver *drv[MAX_Q];
	/* where each descriptor head's first buffer lives */
	guest_addr_t head_addr[MAX_Q][QSIZE];
	guest_addr_t next_buf;
	guest_addr_t next_ring;
};

static struct guest G;

static void g_config_read(uint32_t off, void *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = 0;

		if (G.t.tp == TP_MMIO)
			virtio_mmio_read(G.t.mmio, VIRTIO_MMIO_CONFIG + off + i,
					 &b, 1);
		else
			b = (uint8_t)vt_bar_r(
				&G.t, VIRTIO_PCI_DEVICE_OFFSET + off + i, 1);
		((uint8_t *)data)[i] = b;
	}
}

static void g_config_write32(uint32_t off, uint32_t v)
{
	if (G.t.tp == TP_MMIO)
		virtio_mmio_write(G.t.mmio, VIRTIO_MMIO_CONFIG + off, &v, 4);
	else
		vt_bar_w(&G.t, VIRTIO_PCI_DEVICE_OFFSET + off, v, 4);
}

static uint32_t g_generation(void)
{
	if (G.t.tp == TP_MMIO)
		return vt_mmio_r32(&G.t, VIRTIO_MMIO_CONFIG_GENERATION);
	return (uint32_t)vt_bar_r(&G.t, CC(config_generation), 1);
}

/* Notify like Linux: only when the device asked for it (EVENT_IDX or
 * NO_NOTIFY), so a device that forgets to re-arm kicks stalls here. */
static void g_kick(uint32_t q)
{
	if (virtq_driver_needs_kick(G.drv[q]))
		vt_notify(&G.t, q);
}

static void g_setup_queue(uint32_t q)
{
	ck_assert_uint_lt(q, MAX_Q);
	vt_setup_queue(&G.t, G.mem, q, QSIZE, G.features, &G.next_ring,
		       &G.drv[q]);
}

static guest_addr_t g_alloc(uint32_t len)
{
	guest_addr_t a = G.next_buf;

	G.next_buf += (len + BUF_SLOT - 1) / BUF_SLOT * BUF_SLOT;
	ck_assert_uint_le(G.next_buf, MEM_SIZE);
	return a;
}

/* Add one buffer (readable with @data, else writable of @len) to @q. */
static void g_add(uint32_t q, const void *data, uint32_t len, bool notify)
{
	struct virtq_driver_buf b = {.addr = g_alloc(len), .len = len};
	uint16_t head;

	if (data)
		ck_assert_int_eq(guest_memory_write(G.mem, b.addr, data, len),
				 0);
	else
		b.flags = VRING_DESC_F_WRITE;
	ck_assert_int_eq(virtq_driver_add(G.drv[q], &b, 1, &head), 0);
	G.head_addr[q][head] = b.addr;
	if (notify)
		g_kick(q);
}

/* Take the next used element of @q; copies its bytes into @buf. */
static int g_used(uint32_t q, void *buf, uint32_t cap, uint32_t *len)
{
	struct vring_used_elem e;
	int r = virtq_driver_get_used(G.drv[q], &e);

	ck_assert_int_ge(r, 0);
	if (r == 0)
		return 0;
	ck_assert_uint_lt(e.id, QSIZE);
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

static void g_send_ctrl(uint32_t id, uint16_t event, uint16_t value)
{
	struct virtio_console_control m = {
		.id = id, .event = event, .value = value};

	g_add(3, &m, sizeof(m), true);
	ck_assert_int_eq(g_used(3, NULL, 0, NULL), 1);
}

/* Run the VMM's poll loop until nothing is ready (bounded); returns the
 * number of rounds that found something ready (200: a busy loop). */
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

/* Is @fd in the poll list with any of @events? */
static bool g_polled(int fd, uint32_t events)
{
	struct virtio_poll_fd fds[64];
	int n = virtio_device_poll_fds(G.vdev, fds, 64);

	for (int i = 0; i < n && i < 64; i++)
		if (fds[i].fd == fd && (fds[i].events & events))
			return true;
	return false;
}

/* Does a device-type entry (not a queue notifier) wait for @events? */
static bool g_polled_dev(uint32_t events)
{
	struct virtio_poll_fd fds[64];
	int n = virtio_device_poll_fds(G.vdev, fds, 64);
	int nq = (int)virtio_device_num_queues(G.vdev);

	for (int i = nq; i < n && i < 64; i++)
		if (fds[i].events & events)
			return true;
	return false;
}

struct ctrl {
	uint32_t id;
	uint16_t event, value;
	char extra[300];
	uint32_t extra_len;
};

/* Collect control messages the device sent; repost a buffer for each. */
static int g_ctrl_recv(struct ctrl *out, int max)
{
	int n = 0;
	uint8_t buf[512];
	uint32_t len;

	while (n < max && g_used(2, buf, sizeof(buf), &len) == 1) {
		struct virtio_console_control m;

		ck_assert_uint_ge(len, sizeof(m));
		memcpy(&m, buf, sizeof(m));
		out[n].id = m.id;
		out[n].event = m.event;
		out[n].value = m.value;
		out[n].extra_len = len - (uint32_t)sizeof(m);
		ck_assert_uint_le(out[n].extra_len, sizeof(out[n].extra));
		memcpy(out[n].extra, buf + sizeof(m), out[n].extra_len);
		n++;
		g_add(2, NULL, 512, false);
	}
	if (n)
		g_kick(2);
	return n;
}

static void g_expect_ctrl(uint32_t id, uint16_t event, uint16_t value)
{
	struct ctrl m;

	ck_assert_int_eq(g_ctrl_recv(&m, 1), 1);
	ck_assert_uint_eq(m.id, id);
	ck_assert_uint_eq(m.event, event);
	ck_assert_uint_eq(m.value, value);
}

static void g_expect_no_ctrl(void)
{
	struct ctrl m;

	ck_assert_int_eq(g_ctrl_recv(&m, 1), 0);
}

static uint32_t rxq(uint32_t port)
{
	return port == 0 ? 0 : 2 * port + 2;
}

static uint32_t txq(uint32_t port)
{
	return port == 0 ? 1 : 2 * port + 3;
}

/* Bring the device up: create, negotiate (@want of the offered device
 * features), set up every queue the driver would, DRIVER_OK. */
static void g_start(int tp, int in_fd, int out_fd,
		    const struct virtio_console_params *p, uint64_t want)
{
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct guest_region *r;
	uint64_t offered;
	uint32_t nq, maxp = 1;

	memset(&G, 0, sizeof(G));
	G.t.tp = tp;
	G.next_buf = BUF_BASE;
	G.next_ring = RING_BASE;
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	ck_assert_int_eq(virtio_console_create(in_fd, out_fd, p, &G.con), 0);
	G.vdev = virtio_console_device(G.con);
	ck_assert_ptr_nonnull(G.vdev);
	ck_assert_int_eq(virtio_device_set_memory(G.vdev, G.mem), 0);
	vt_attach(&G.t, tp, G.vdev, VIRTIO_ID_CONSOLE, &G.pci);
	vt_status(&G.t, 0);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	offered = vt_device_features(&G.t);
	ck_assert(offered & (1ull << VIRTIO_F_VERSION_1));
	G.features = (offered & want) | (1ull << VIRTIO_F_VERSION_1);
	vt_driver_features(&G.t, G.features);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(vt_get_status(&G.t) & VIRTIO_CONFIG_S_FEATURES_OK);
	if (G.features & (1ull << VIRTIO_CONSOLE_F_MULTIPORT))
		g_config_read(offsetof(struct virtio_console_config,
				       max_nr_ports),
			      &maxp, 4);
	nq = G.features & (1ull << VIRTIO_CONSOLE_F_MULTIPORT) ? 2 * maxp + 2
							       : 2;
	ck_assert_uint_le(nq, MAX_Q);
	for (uint32_t q = 0; q < nq; q++)
		g_setup_queue(q);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK |
				VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(vt_get_status(&G.t) & VIRTIO_CONFIG_S_DRIVER_OK);
}

static void g_stop(void)
{
	if (G.t.mmio)
		virtio_mmio_destroy(G.t.mmio);
	if (G.pci)
		virtio_pci_destroy(G.pci);
	virtio_console_destroy(G.con);
	for (unsigned q = 0; q < MAX_Q; q++)
		virtq_driver_destroy(G.drv[q]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
}

static bool g_needs_reset(void)
{
	return vt_get_status(&G.t) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

#define ALL_FEATURES                              \
	((1ull << VIRTIO_CONSOLE_F_SIZE) |        \
	 (1ull << VIRTIO_CONSOLE_F_MULTIPORT) |   \
	 (1ull << VIRTIO_CONSOLE_F_EMERG_WRITE) | \
	 (1ull << VIRTIO_RING_F_EVENT_IDX) |      \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/*
 * The Linux driver's bring-up of a multiport device (virtcons_probe and
 * add_port): control buffers, DEVICE_READY; per PORT_ADD: receive buffers
 * then PORT_READY 1; CONSOLE_PORT on port 0 is answered with PORT_OPEN 1
 * (init_port_console).  Returns after the device's answers to every
 * PORT_READY were collected into @msgs (count in *@n).
 */
static void g_linux_probe(uint32_t nports, struct ctrl *msgs, int *n)
{
	struct ctrl add[16];
	int k;

	for (int i = 0; i < 8; i++)
		g_add(2, NULL, 512, false);
	g_kick(2);
	g_send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	k = g_ctrl_recv(add, 16);
	ck_assert_int_eq(k, (int)nports);
	for (int i = 0; i < k; i++) {
		ck_assert_uint_eq(add[i].event, VIRTIO_CONSOLE_PORT_ADD);
		ck_assert_uint_eq(add[i].id, (uint32_t)i);
		for (int b = 0; b < 4; b++)
			g_add(rxq(add[i].id), NULL, 256, false);
		g_kick(rxq(add[i].id));
		g_send_ctrl(add[i].id, VIRTIO_CONSOLE_PORT_READY, 1);
	}
	*n = g_ctrl_recv(msgs, 32);
}

/* Find @event for @id in @msgs; returns its index or -1. */
static int find_msg(const struct ctrl *msgs, int n, uint32_t id, uint16_t event)
{
	for (int i = 0; i < n; i++)
		if (msgs[i].id == id && msgs[i].event == event)
			return i;
	return -1;
}

/* ---------------------------------------------------------- host side */

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vcon-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(const char **paths, int n)
{
	for (int i = 0; i < n; i++)
		unlink(paths[i]);
	rmdir(tmpdir);
}

static char *tpath(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
	return buf;
}

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
			 0);
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

/* Read exactly @len bytes from a blocking @fd (bounded by a timeout). */
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

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

static struct virtio_console_port_stats pstats(uint32_t port)
{
	struct virtio_console_port_stats st;

	ck_assert_int_eq(virtio_console_port_stats(G.con, port, &st), 0);
	return st;
}

static struct virtio_console_stats cstats(void)
{
	struct virtio_console_stats st;

	ck_assert_int_eq(virtio_console_stats(G.con, &st), 0);
	return st;
}

/* ------------------------------------------------------------------ tests */

START_TEST(create_rejects_bad_config)
{
	struct virtio_console *c = NULL;
	struct virtio_console_port_config pc = {.name = "x"};
	struct virtio_console_params p = {0};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* a blocking fd would block the I/O thread */
	ck_assert_int_eq(virtio_console_create(sv[0], sv[0], NULL, &c),
			 -EINVAL);
	ck_assert_int_eq(virtio_console_create(-1, -1, NULL, NULL), -EINVAL);
	p.nr_ports = 1;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.ports = &pc;
	p.max_nr_ports = 1;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.max_nr_ports = VIRTIO_CONSOLE_MAX_PORTS + 1;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.max_nr_ports = 0;
	p.flags = VIRTIO_CONSOLE_NO_MULTIPORT;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.flags = 1u << 30;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.flags = 0;
	p.queue_max_size = 3;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	p.queue_max_size = 0;
	pc.path = "";
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EINVAL);
	pc.path = NULL;
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), 0);
	ck_assert_ptr_nonnull(c);
	virtio_console_destroy(c);
	virtio_console_destroy(NULL);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Device identity, features and config space as the driver reads them. */
START_TEST(config_space_and_features)
{
	struct virtio_console_port_config pc[2] = {{.name = "a"},
						   {.name = "b"}};
	struct virtio_console_params p = {.ports = pc,
					  .nr_ports = 2,
					  .max_nr_ports = 5,
					  .cols = 132,
					  .rows = 43};
	struct virtio_console_config cc;
	uint64_t f;

	g_start(_i, -1, -1, &p, ALL_FEATURES);
	f = vt_device_features(&G.t);
	ck_assert(f & (1ull << VIRTIO_CONSOLE_F_SIZE));
	ck_assert(f & (1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	ck_assert(f & (1ull << VIRTIO_CONSOLE_F_EMERG_WRITE));
	g_config_read(0, &cc, sizeof(cc));
	ck_assert_uint_eq(cc.cols, 132);
	ck_assert_uint_eq(cc.rows, 43);
	ck_assert_uint_eq(cc.max_nr_ports, 5);
	ck_assert_uint_eq(cc.emerg_wr, 0);
	g_stop();
}
END_TEST

/* The full Linux control sequence on a multiport device with port 0 on a
 * socketpair and two named ports (one with a host peer, one without). */
START_TEST(linux_control_sequence)
{
	char p1[128], p2[128];
	const char *paths[] = {p1, p2};
	struct virtio_console_port_config pc[2];
	struct virtio_console_params p = {.ports = pc, .nr_ports = 2};
	struct ctrl m[32];
	int n, i, sv[2], peer;
	char buf[64];

	mk_tmpdir();
	tpath(p1, sizeof(p1), "chan1");
	tpath(p2, sizeof(p2), "chan2");
	pc[0] = (struct virtio_console_port_config){
		.name = "org.qemu.guest_agent.0", .path = p1, .server = true};
	pc[1] = (struct virtio_console_port_config){
		.name = "com.example.nopeer", .path = p2, .server = true};
	pair(sv);
	g_start(_i, sv[0], sv[0], &p, ALL_FEATURES);
	peer = unix_connect(p1);
	g_pump(); /* accept */
	ck_assert(pstats(1).host_connected);

	g_linux_probe(3, m, &n);
	/* port 0: CONSOLE_PORT 1, PORT_OPEN 1 (terminal present) */
	i = find_msg(m, n, 0, VIRTIO_CONSOLE_CONSOLE_PORT);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(m[i].value, 1);
	ck_assert_int_lt(i, find_msg(m, n, 0, VIRTIO_CONSOLE_PORT_OPEN));
	ck_assert_uint_eq(m[find_msg(m, n, 0, VIRTIO_CONSOLE_PORT_OPEN)].value,
			  1);
	ck_assert_int_eq(find_msg(m, n, 0, VIRTIO_CONSOLE_PORT_NAME), -1);
	/* port 1: name (with its NUL) then PORT_OPEN 1 (peer connected) */
	i = find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_NAME);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(m[i].extra_len, strlen(pc[0].name) + 1);
	ck_assert_str_eq(m[i].extra, pc[0].name);
	ck_assert_int_ge(find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_OPEN), 0);
	ck_assert_uint_eq(m[find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_OPEN)].value,
			  1);
	/* port 2: name only, no peer so no PORT_OPEN */
	i = find_msg(m, n, 2, VIRTIO_CONSOLE_PORT_NAME);
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(m[i].extra, pc[1].name);
	ck_assert_int_eq(find_msg(m, n, 2, VIRTIO_CONSOLE_PORT_OPEN), -1);
	ck_assert_int_eq(n, 5);
	for (uint32_t id = 0; id < 3; id++)
		ck_assert(pstats(id).guest_ready);

	/* init_port_console: the guest opens port 0; hvc output */
	g_send_ctrl(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ck_assert(pstats(0).guest_open);
	g_add(txq(0), "login: ", 7, true);
	ck_assert_int_eq(g_used(txq(0), NULL, 0, NULL), 1);
	memset(buf, 0, sizeof(buf));
	read_all(sv[1], buf, 7);
	ck_assert_str_eq(buf, "login: ");
	/* terminal input into port 0's posted buffers */
	ck_assert_int_eq(write(sv[1], "root\n", 5), 5);
	g_pump();
	{
		uint32_t len;

		ck_assert_int_eq(g_used(rxq(0), buf, sizeof(buf), &len), 1);
		ck_assert_uint_eq(len, 5);
		ck_assert_int_eq(memcmp(buf, "root\n", 5), 0);
	}

	/* a guest process opens port 1 and talks to the host peer */
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_add(txq(1), "{\"ping\"}", 8, true);
	ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 1);
	read_all(peer, buf, 8);
	ck_assert_int_eq(memcmp(buf, "{\"ping\"}", 8), 0);
	ck_assert_int_eq(write(peer, "pong", 4), 4);
	g_pump();
	{
		uint32_t len;

		ck_assert_int_eq(g_used(rxq(1), buf, sizeof(buf), &len), 1);
		ck_assert_uint_eq(len, 4);
		ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
	}
	ck_assert_uint_eq(pstats(1).tx_bytes, 8);
	ck_assert_uint_eq(pstats(1).rx_bytes, 4);
	/* the guest closes it: remembered */
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	ck_assert(!pstats(1).guest_open);
	ck_assert(!g_needs_reset());
	ck_assert_uint_eq(cstats().ctrl_bad_port + cstats().ctrl_unknown +
				  cstats().ctrl_truncated,
			  0);

	close(peer);
	close(sv[1]);
	g_stop();
	close(sv[0]);
	rm_tmpdir(paths, 2);
}
END_TEST

/* A driver without MULTIPORT: port 0 on queues 0/1, no control queue. */
START_TEST(console_without_multiport)
{
	int sv[2];
	char buf[64];
	uint32_t len;

	pair(sv);
	g_start(_i, sv[0], sv[0], NULL,
		ALL_FEATURES & ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	ck_assert(!(G.features & (1ull << VIRTIO_CONSOLE_F_MULTIPORT)));
	g_add(0, NULL, 64, true);
	g_add(1, "hello", 5, true);
	ck_assert_int_eq(g_used(1, NULL, 0, NULL), 1);
	read_all(sv[1], buf, 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	g_pump();
	ck_assert_int_eq(g_used(0, buf, sizeof(buf), &len), 1);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
	ck_assert(pstats(0).guest_ready);
	close(sv[1]);
	g_stop();
	close(sv[0]);
}
END_TEST

/* Port 0 with separate input and output fds (pipes, as a terminal). */
START_TEST(console_separate_in_out_fds)
{
	int in[2], outp[2];
	char buf[16];
	uint32_t len;

	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(outp), 0);
	nonblock(in[0]);
	nonblock(outp[1]);
	g_start(_i, in[0], outp[1], NULL,
		ALL_FEATURES & ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	g_add(0, NULL, 16, true);
	g_add(1, "out", 3, true);
	read_all(outp[0], buf, 3);
	ck_assert_int_eq(memcmp(buf, "out", 3), 0);
	ck_assert_int_eq(write(in[1], "in", 2), 2);
	g_pump();
	ck_assert_int_eq(g_used(0, buf, sizeof(buf), &len), 1);
	ck_assert_uint_eq(len, 2);
	/* end of the input: no longer polled, no busy loop */
	close(in[1]);
	g_add(0, NULL, 16, true);
	g_pump();
	ck_assert(!g_polled(in[0], POLLIN));
	ck_assert_int_eq(g_used(0, NULL, 0, NULL), 0);
	g_stop();
	close(in[0]);
	close(outp[0]);
	close(outp[1]);
}
END_TEST

/* A terminal that takes nothing: the guest never waits, the excess beyond
 * the output buffer is dropped and counted, and what was buffered goes
 * out once the terminal drains. */
START_TEST(console_output_overflow_dropped)
{
	struct virtio_console_params p = {.out_buffer_size = 4096};
	static char big[60000];
	int sv[2], sz = 4096;
	uint64_t total = 0, got = 0;
	struct virtio_console_port_stats st;

	pair(sv);
	ck_assert_int_eq(
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	memset(big, 'x', sizeof(big));
	g_start(_i, -1, sv[0], &p,
		ALL_FEATURES & ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	for (int i = 0; i < 8; i++) {
		g_add(1, big, sizeof(big), true);
		/* completed at once: the vCPU never waits for the host */
		ck_assert_int_eq(g_used(1, NULL, 0, NULL), 1);
		total += sizeof(big);
	}
	st = pstats(0);
	ck_assert_uint_gt(st.tx_dropped, 0);
	ck_assert_uint_le(st.tx_bytes + st.tx_dropped, total);
	ck_assert_uint_ge(st.tx_bytes + st.tx_dropped + 4096, total);
	/* POLLOUT interest while bytes wait */
	ck_assert(g_polled(sv[0], POLLOUT));
	for (int round = 0; round < 100 && got < total - st.tx_dropped;
	     round++) {
		char b[65536];
		ssize_t n;

		g_pump();
		n = recv(sv[1], b, sizeof(b), MSG_DONTWAIT);
		if (n > 0)
			got += (uint64_t)n;
	}
	st = pstats(0);
	ck_assert_uint_eq(got + st.tx_dropped, total);
	ck_assert_uint_eq(st.tx_bytes, got);
	ck_assert(!g_polled(sv[0], POLLOUT));
	close(sv[1]);
	g_stop();
	close(sv[0]);
}
END_TEST

/* F_EMERG_WRITE: a write of emerg_wr puts one character on port 0. */
START_TEST(emergency_write)
{
	int sv[2];
	char c = 0;

	pair(sv);
	g_start(_i, sv[0], sv[0], NULL, ALL_FEATURES);
	g_config_write32(offsetof(struct virtio_console_config, emerg_wr), 'Z');
	read_all(sv[1], &c, 1);
	ck_assert_int_eq(c, 'Z');
	ck_assert_uint_eq(cstats().emerg_writes, 1);
	/* a write elsewhere in config space is ignored */
	g_config_write32(0, 0x12345678);
	ck_assert(!readable(sv[1]));
	{
		uint16_t cols;

		g_config_read(0, &cols, 2);
		ck_assert_uint_eq(cols, VIRTIO_CONSOLE_DEFAULT_COLS);
	}
	close(sv[1]);
	g_stop();
	close(sv[0]);
}
END_TEST

/* F_SIZE: a resize updates config space (generation bumped) and, once
 * port 0 is the console under multiport, sends RESIZE (cols, rows). */
START_TEST(console_resize)
{
	struct ctrl m[32];
	uint32_t gen;
	uint16_t sz[2];
	int n;

	g_start(_i, -1, -1, NULL, ALL_FEATURES);
	g_linux_probe(1, m, &n);
	ck_assert_int_ge(find_msg(m, n, 0, VIRTIO_CONSOLE_CONSOLE_PORT), 0);
	gen = g_generation();
	ck_assert_int_eq(virtio_console_set_size(G.con, 100, 40), 0);
	ck_assert_uint_ne(g_generation(), gen);
	g_config_read(0, sz, 4);
	ck_assert_uint_eq(sz[0], 100);
	ck_assert_uint_eq(sz[1], 40);
	ck_assert_int_eq(g_ctrl_recv(m, 4), 1);
	ck_assert_uint_eq(m[0].event, VIRTIO_CONSOLE_RESIZE);
	ck_assert_uint_eq(m[0].id, 0);
	ck_assert_uint_eq(m[0].extra_len, 4);
	memcpy(sz, m[0].extra, 4);
	ck_assert_uint_eq(sz[0], 100);
	ck_assert_uint_eq(sz[1], 40);
	g_stop();
}
END_TEST

/* A size given at creation reaches the guest's console after CONSOLE_PORT
 * (a multiport driver reads no size from config space). */
START_TEST(console_initial_size)
{
	struct virtio_console_params p = {.cols = 120, .rows = 50};
	struct ctrl m[32];
	uint16_t sz[2];
	int n, ic, ir;

	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(1, m, &n);
	ic = find_msg(m, n, 0, VIRTIO_CONSOLE_CONSOLE_PORT);
	ir = find_msg(m, n, 0, VIRTIO_CONSOLE_RESIZE);
	ck_assert_int_ge(ic, 0);
	ck_assert_int_gt(ir, ic);
	memcpy(sz, m[ir].extra, 4);
	ck_assert_uint_eq(sz[0], 120);
	ck_assert_uint_eq(sz[1], 50);
	g_stop();
}
END_TEST

/* VIRTIO_CONSOLE_RESIZE_ROWS_FIRST: the payload order of Linux 6.1. */
START_TEST(console_resize_rows_first)
{
	struct virtio_console_params p = {
		.flags = VIRTIO_CONSOLE_RESIZE_ROWS_FIRST};
	struct ctrl m[32];
	uint16_t sz[2];
	int n;

	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(1, m, &n);
	ck_assert_int_eq(virtio_console_set_size(G.con, 100, 40), 0);
	g_config_read(0, sz, 4);
	ck_assert_uint_eq(sz[0], 100); /* config space: cols, rows */
	ck_assert_uint_eq(sz[1], 40);
	ck_assert_int_eq(g_ctrl_recv(m, 4), 1);
	ck_assert_uint_eq(m[0].event, VIRTIO_CONSOLE_RESIZE);
	memcpy(sz, m[0].extra, 4);
	ck_assert_uint_eq(sz[0], 40);
	ck_assert_uint_eq(sz[1], 100);
	g_stop();
}
END_TEST

/* Server port: a host peer connects (PORT_OPEN 1), disconnects
 * (PORT_OPEN 0; guest output dropped and counted), and reconnects. */
START_TEST(server_port_disconnect_reconnect)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "chan", .server = true};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	struct ctrl m[32];
	char buf[32];
	uint32_t len;
	int n, peer;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "srv");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(2, m, &n);
	ck_assert_int_eq(find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_OPEN), -1);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);

	/* no peer yet: output dropped, counted, chain completed */
	g_add(txq(1), "lost", 4, true);
	ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 1);
	ck_assert_uint_eq(pstats(1).tx_dropped, 4);

	for (int round = 0; round < 3; round++) {
		peer = unix_connect(p1);
		g_pump();
		g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
		ck_assert(pstats(1).host_connected);
		ck_assert_uint_eq(pstats(1).connects, (uint64_t)round + 1);
		g_add(txq(1), "data", 4, true);
		ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 1);
		read_all(peer, buf, 4);
		ck_assert_int_eq(memcmp(buf, "data", 4), 0);
		ck_assert_int_eq(write(peer, "back", 4), 4);
		g_pump();
		ck_assert_int_eq(g_used(rxq(1), buf, sizeof(buf), &len), 1);
		ck_assert_uint_eq(len, 4);
		g_add(rxq(1), NULL, 256, true);
		close(peer);
		g_pump();
		g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
		ck_assert(!pstats(1).host_connected);
		ck_assert_uint_eq(pstats(1).disconnects, (uint64_t)round + 1);
		g_add(txq(1), "gone", 4, true);
		ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 1);
		ck_assert_uint_eq(pstats(1).tx_dropped, 4 + 4 * (round + 1));
	}
	ck_assert(!g_needs_reset());
	g_stop();
	/* the device unlinked its socket at destroy */
	ck_assert_int_eq(access(p1, F_OK), -1);
	rm_tmpdir(paths, 1);
}
END_TEST

/* The peer of a port the guest has not opened hangs up: noticed without
 * reading (PORT_OPEN 0 at once); one that leaves unread input first stays
 * until the guest has read it, with no busy loop meanwhile. */
START_TEST(idle_port_peer_hangup)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "idle", .server = true};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	struct ctrl m[32];
	char buf[64];
	uint32_t len;
	int n, peer;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "idle");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(2, m, &n);
	peer = unix_connect(p1);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	close(peer);
	ck_assert_int_lt(g_pump(), 5);
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	ck_assert_uint_eq(pstats(1).disconnects, 1);

	/* input left behind by a peer that hung up */
	peer = unix_connect(p1);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ck_assert_int_eq(write(peer, "last words", 10), 10);
	close(peer);
	ck_assert_int_lt(g_pump(), 5);
	ck_assert(pstats(1).host_connected);
	g_expect_no_ctrl();
	/* the guest opens the port: it gets the input, then PORT_OPEN 0 */
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ck_assert_int_lt(g_pump(), 5);
	ck_assert_int_eq(g_used(rxq(1), buf, sizeof(buf), &len), 1);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(memcmp(buf, "last words", 10), 0);
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	ck_assert(!pstats(1).host_connected);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/* A receiveq the driver never enabled: host input is not polled (no busy
 * loop); enabling the queue later resumes it. */
START_TEST(rx_queue_not_enabled)
{
	int sv[2];
	char buf[8];
	uint32_t len;

	pair(sv);
	g_start(_i, sv[0], sv[0], NULL,
		ALL_FEATURES & ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	/* bring the device up again with only transmitq 1 enabled */
	vt_status(&G.t, 0);
	for (unsigned q = 0; q < MAX_Q; q++) {
		virtq_driver_destroy(G.drv[q]);
		G.drv[q] = NULL;
	}
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vt_driver_features(&G.t, G.features);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK);
	g_setup_queue(1);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK |
				VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	ck_assert_int_lt(g_pump(), 5);
	ck_assert(!g_polled(sv[0], POLLIN));
	ck_assert_uint_eq(pstats(0).rx_bytes, 0);
	/* the driver enables it after DRIVER_OK: queue_ready resumes input */
	ck_assert(!g_needs_reset());
	g_setup_queue(0);
	g_add(0, NULL, 8, true);
	g_pump();
	ck_assert_int_eq(g_used(0, buf, sizeof(buf), &len), 1);
	ck_assert_uint_eq(len, 3);
	close(sv[1]);
	g_stop();
	close(sv[0]);
}
END_TEST

/* The terminal's socket goes away: console output is dropped and counted
 * (no SIGPIPE), the guest gets PORT_OPEN 0 for port 0, and the fd is no
 * longer polled. */
START_TEST(console_output_peer_gone)
{
	struct ctrl m[32];
	int n, sv[2];

	pair(sv);
	g_start(_i, sv[0], sv[0], NULL, ALL_FEATURES);
	g_linux_probe(1, m, &n);
	ck_assert_uint_eq(m[find_msg(m, n, 0, VIRTIO_CONSOLE_PORT_OPEN)].value,
			  1);
	g_send_ctrl(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	close(sv[1]);
	g_add(txq(0), "to nobody", 9, true);
	ck_assert_int_eq(g_used(txq(0), NULL, 0, NULL), 1);
	ck_assert_uint_eq(pstats(0).tx_dropped, 9);
	ck_assert(!pstats(0).host_connected);
	g_expect_ctrl(0, VIRTIO_CONSOLE_PORT_OPEN, 0);
	ck_assert_int_lt(g_pump(), 5);
	ck_assert(!g_polled(sv[0], POLLIN | POLLOUT));
	g_add(txq(0), "again", 5, true);
	ck_assert_int_eq(g_used(txq(0), NULL, 0, NULL), 1);
	ck_assert_uint_eq(pstats(0).tx_dropped, 14);
	g_stop();
	close(sv[0]);
}
END_TEST

/* A stale socket file at a server path is replaced; a regular file there
 * is not touched (creation fails). */
START_TEST(server_port_stale_socket_replaced)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "s", .server = true};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	struct virtio_console *c = NULL;
	int fd, peer;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "stale");
	fd = unix_listen(p1);
	close(fd); /* the socket file stays behind */
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	peer = unix_connect(p1);
	g_pump();
	ck_assert(pstats(1).host_connected);
	close(peer);
	g_stop();
	fd = open(p1, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(virtio_console_create(-1, -1, &p, &c), -EADDRINUSE);
	ck_assert_int_eq(access(p1, F_OK), 0);
	rm_tmpdir(paths, 1);
}
END_TEST

/* One peer at a time: a second connection is accepted and closed. */
START_TEST(server_port_second_peer_refused)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "one", .server = true};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	int a, b;
	char c;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "one");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	a = unix_connect(p1);
	g_pump();
	b = unix_connect(p1);
	g_pump();
	ck_assert_uint_eq(pstats(1).refused, 1);
	ck_assert_uint_eq(pstats(1).connects, 1);
	/* the second peer sees end of file */
	{
		struct pollfd pf = {.fd = b, .events = POLLIN};

		ck_assert_int_eq(poll(&pf, 1, 5000), 1);
		ck_assert_int_eq(read(b, &c, 1), 0);
	}
	ck_assert(pstats(1).host_connected);
	close(a);
	close(b);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/* Client port: connects at creation; after the peer is gone it connects
 * again when the guest opens the port, or on virtio_console_port_connect.
 */
START_TEST(client_port_reconnect)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "cli"};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	struct ctrl m[32];
	int n, lfd, peer;
	char buf[8];

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "host");
	lfd = unix_listen(p1);
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(peer, 0);
	g_linux_probe(2, m, &n);
	ck_assert_uint_eq(m[find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_OPEN)].value,
			  1);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_add(txq(1), "hi", 2, true);
	read_all(peer, buf, 2);
	close(peer);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	/* the guest closes and reopens: the device connects again */
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(peer, 0);
	g_add(txq(1), "yo", 2, true);
	read_all(peer, buf, 2);
	ck_assert_int_eq(memcmp(buf, "yo", 2), 0);
	close(peer);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	/* the VMM retries on its own */
	ck_assert_int_eq(virtio_console_port_connect(G.con, 1), 1);
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ck_assert_uint_eq(pstats(1).connects, 3);
	peer = accept(lfd, NULL, NULL);
	ck_assert_int_ge(peer, 0);
	close(peer);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	/* nobody listening any more: the connect fails, not an error */
	close(lfd);
	unlink(p1);
	ck_assert_int_eq(virtio_console_port_connect(G.con, 1), 0);
	ck_assert(!pstats(1).host_connected);
	ck_assert_int_eq(virtio_console_port_connect(G.con, 0), -EINVAL);
	ck_assert_int_eq(virtio_console_port_connect(G.con, 2), -EINVAL);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/* Output to ports with no host peer at all is dropped with a counter. */
START_TEST(output_without_peer_dropped)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc[2] = {{.name = "nopath"},
						   {.name = "nolistener"}};
	struct virtio_console_params p = {.ports = pc, .nr_ports = 2};
	struct ctrl m[32];
	int n;

	mk_tmpdir();
	pc[1].path = tpath(p1, sizeof(p1), "absent");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(3, m, &n);
	for (uint32_t id = 0; id < 3; id++) {
		g_add(txq(id), "12345678", 8, true);
		ck_assert_int_eq(g_used(txq(id), NULL, 0, NULL), 1);
		ck_assert_uint_eq(pstats(id).tx_dropped, 8);
		ck_assert_uint_eq(pstats(id).tx_bytes, 0);
	}
	/* port 2's failed connects send nothing to the guest */
	ck_assert_int_eq(virtio_console_port_connect(G.con, 2), 0);
	g_expect_no_ctrl();
	g_stop();
	rm_tmpdir(paths, 0);
}
END_TEST

/* The peer stops reading (the chain is held, backpressure on the guest,
 * not on the vCPU) and then disconnects mid-write: PORT_OPEN 0, the
 * chain is completed, the unsent bytes are dropped and counted. */
START_TEST(peer_disconnect_mid_write)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "slow", .server = true};
	struct virtio_console_params p = {
		.ports = &pc, .nr_ports = 1, .out_buffer_size = 4096};
	static char big[1 << 20];
	struct virtio_console_port_stats st;
	struct ctrl m[32];
	int n, peer, sz = 4096;
	char buf[100];

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "slow");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	g_linux_probe(2, m, &n);
	peer = unix_connect(p1);
	ck_assert_int_eq(
		setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	g_pump();
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	memset(big, 'y', sizeof(big));
	g_add(txq(1), big, sizeof(big), true);
	g_pump();
	/* held: not completed while the peer takes nothing */
	ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 0);
	ck_assert(g_polled_dev(POLLOUT));
	read_all(peer, buf, sizeof(buf)); /* the peer read a little */
	close(peer);
	g_pump();
	ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 1);
	g_expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	st = pstats(1);
	ck_assert_uint_gt(st.tx_dropped, 0);
	ck_assert_uint_eq(st.tx_bytes + st.tx_dropped, sizeof(big));
	ck_assert_uint_eq(st.disconnects, 1);
	ck_assert(!g_needs_reset());
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/* Host input waits in the socket while the guest has no buffer posted:
 * no POLLIN interest (no busy loop), nothing buffered in the VMM; it
 * resumes when buffers arrive. */
START_TEST(rx_backpressure)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "rx", .server = true};
	struct virtio_console_params p = {.ports = &pc, .nr_ports = 1};
	struct ctrl m[32];
	char data[100], buf[64];
	uint32_t len, got = 0;
	int n, peer;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "rx");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	peer = unix_connect(p1);
	g_pump();
	/* probe posts 4 buffers of 256 on port 1: use a fresh port state */
	g_linux_probe(2, m, &n);
	/* host data before the guest opened the port is not read */
	for (int i = 0; i < 100; i++)
		data[i] = (char)i;
	ck_assert_int_eq(write(peer, data, 10), 10);
	g_pump();
	ck_assert_uint_eq(pstats(1).rx_bytes, 0);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_pump();
	/* the 4 posted buffers get the first bytes */
	while (g_used(rxq(1), buf + 0, sizeof(buf), &len) == 1)
		got += len;
	ck_assert_uint_eq(got, 10);
	/* 3 buffers remain; fill them one write at a time */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(write(peer, data, 5), 5);
		g_pump();
	}
	ck_assert_uint_eq(pstats(1).rx_bytes, 25);
	/* no buffer left: more host data stays in the socket */
	ck_assert_int_eq(write(peer, data, 30), 30);
	g_pump();
	ck_assert(pstats(1).rx_stalled);
	{
		struct virtio_poll_fd fds[64];
		int k = virtio_device_poll_fds(G.vdev, fds, 64);
		int nq = 2 * 2 + 2, in = 0, hup = 0;

		/* the queue notifiers, the listening socket (POLLIN) and the
		 * connection watched for a hang-up only */
		ck_assert_int_eq(k, nq + 2);
		for (int i = nq; i < k; i++) {
			in += !!(fds[i].events & POLLIN);
			hup += fds[i].events == POLLRDHUP;
		}
		ck_assert_int_eq(in, 1);
		ck_assert_int_eq(hup, 1);
	}
	ck_assert_uint_eq(pstats(1).rx_bytes, 25);
	/* buffers arrive: reading resumes */
	g_add(rxq(1), NULL, 16, false);
	g_add(rxq(1), NULL, 16, true);
	ck_assert(!pstats(1).rx_stalled);
	g_pump();
	ck_assert_uint_eq(pstats(1).rx_bytes, 25 + 30);
	close(peer);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/*
 * Hostile control messages (HOSTILE-GUEST "Devices"): each is ignored and
 * counted, never a crash, never NEEDS_RESET, and the device stays usable.
 * The device: port 0, named port 1, max_nr_ports 4 (ids 2 and 3 exist in
 * config space but were never added).
 */
static void hostile_start(int tp, bool probe)
{
	static const struct virtio_console_port_config pc = {.name = "p1"};
	struct virtio_console_params p = {
		.ports = &pc, .nr_ports = 1, .max_nr_ports = 4};
	struct ctrl m[32];
	int n;

	g_start(tp, -1, -1, &p, ALL_FEATURES);
	if (probe)
		g_linux_probe(2, m, &n);
}

/* After the hostile part: not broken, and PORT_READY is still answered. */
static void hostile_still_works(void)
{
	struct ctrl m[32];

	ck_assert(!g_needs_reset());
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
	ck_assert_int_eq(g_ctrl_recv(m, 32), 1);
	ck_assert_uint_eq(m[0].event, VIRTIO_CONSOLE_PORT_NAME);
	ck_assert_str_eq(m[0].extra, "p1");
	ck_assert(!g_needs_reset());
}

START_TEST(hostile_ctrl_port_ready_never_added)
{
	hostile_start(_i, false);
	/* before DEVICE_READY nothing was added */
	g_send_ctrl(0, VIRTIO_CONSOLE_PORT_READY, 1);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	ck_assert_uint_eq(cstats().ctrl_bad_port, 2);
	ck_assert(!pstats(0).guest_ready);
	{
		struct ctrl m[32];
		int n;

		g_linux_probe(2, m, &n);
		ck_assert_int_eq(n, 2); /* CONSOLE_PORT 0, PORT_NAME 1 */
	}
	/* id 2 < max_nr_ports but never added */
	g_send_ctrl(2, VIRTIO_CONSOLE_PORT_READY, 1);
	ck_assert_uint_eq(cstats().ctrl_bad_port, 3);
	g_expect_no_ctrl();
	hostile_still_works();
	g_stop();
}
END_TEST

START_TEST(hostile_ctrl_port_id_beyond_max)
{
	hostile_start(_i, true);
	g_send_ctrl(4, VIRTIO_CONSOLE_PORT_READY, 1);
	g_send_ctrl(4, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_send_ctrl(0x10000u, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_send_ctrl(0xffffffffu, VIRTIO_CONSOLE_PORT_READY, 1);
	ck_assert_uint_eq(cstats().ctrl_bad_port, 4);
	g_expect_no_ctrl();
	hostile_still_works();
	g_stop();
}
END_TEST

START_TEST(hostile_ctrl_unknown_port_id)
{
	hostile_start(_i, true);
	/* id 3: in config space, never configured */
	g_send_ctrl(3, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_send_ctrl(3, VIRTIO_CONSOLE_PORT_OPEN, 0);
	ck_assert_uint_eq(cstats().ctrl_bad_port, 2);
	g_expect_no_ctrl();
	hostile_still_works();
	g_stop();
}
END_TEST

START_TEST(hostile_ctrl_unknown_event)
{
	static const uint16_t ev[] = {8,
				      99,
				      0xffff,
				      VIRTIO_CONSOLE_PORT_ADD,
				      VIRTIO_CONSOLE_PORT_REMOVE,
				      VIRTIO_CONSOLE_CONSOLE_PORT,
				      VIRTIO_CONSOLE_RESIZE,
				      VIRTIO_CONSOLE_PORT_NAME};

	hostile_start(_i, true);
	for (unsigned i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		g_send_ctrl(1, ev[i], 1);
	/* the driver reporting failures */
	g_send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 0);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 0);
	ck_assert_uint_eq(cstats().ctrl_unknown, 10);
	ck_assert(!pstats(1).guest_ready);
	g_expect_no_ctrl();
	hostile_still_works();
	g_stop();
}
END_TEST

START_TEST(hostile_ctrl_truncated)
{
	static const char bytes[8] = {1, 0, 0, 0, 6, 0, 1, 0};
	struct virtq_driver_buf b[2];

	hostile_start(_i, true);
	for (uint32_t len = 1; len < 8; len++) {
		g_add(3, bytes, len, true);
		ck_assert_int_eq(g_used(3, NULL, 0, NULL), 1);
	}
	ck_assert_uint_eq(cstats().ctrl_truncated, 7);
	ck_assert(!pstats(1).guest_open);
	/* a whole header split over two descriptors is a valid message */
	b[0] = (struct virtq_driver_buf){.addr = g_alloc(3), .len = 3};
	b[1] = (struct virtq_driver_buf){.addr = g_alloc(5), .len = 5};
	ck_assert_int_eq(guest_memory_write(G.mem, b[0].addr, bytes, 3), 0);
	ck_assert_int_eq(guest_memory_write(G.mem, b[1].addr, bytes + 3, 5), 0);
	ck_assert_int_eq(virtq_driver_add(G.drv[3], b, 2, NULL), 0);
	vt_notify(&G.t, 3);
	ck_assert_int_eq(g_used(3, NULL, 0, NULL), 1);
	ck_assert(pstats(1).guest_open);
	ck_assert_uint_eq(cstats().ctrl_truncated, 7);
	hostile_still_works();
	g_stop();
}
END_TEST

/* A PORT_NAME from the driver with a huge chain (64 x 4 KiB): only the
 * header is read. */
START_TEST(hostile_ctrl_huge_port_name)
{
	struct virtq_driver_buf b[64];
	struct virtio_console_control hm = {
		.id = 1, .event = VIRTIO_CONSOLE_PORT_NAME, .value = 1};
	uint32_t len;

	hostile_start(_i, true);
	for (int i = 0; i < 64; i++) {
		b[i] = (struct virtq_driver_buf){.addr = g_alloc(4096),
						 .len = 4096};
		ck_assert_int_eq(guest_memory_write(G.mem, b[i].addr,
						    i ? "AAAA"
						      : (const char *)&hm,
						    i ? 4 : sizeof(hm)),
				 0);
	}
	ck_assert_int_eq(virtq_driver_add(G.drv[3], b, 64, NULL), 0);
	vt_notify(&G.t, 3);
	ck_assert_int_eq(g_used(3, NULL, 0, &len), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(cstats().ctrl_unknown, 1);
	hostile_still_works();
	g_stop();
}
END_TEST

/* A flood of DEVICE_READY / PORT_READY with no control buffer posted: the
 * device keeps one pending message of each kind per port, not one per
 * request (bounded), and sends them once buffers arrive. */
START_TEST(hostile_ctrl_flood_bounded)
{
	struct ctrl m[64];
	int n;

	hostile_start(_i, false);
	for (int i = 0; i < 500; i++)
		g_send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	for (int i = 0; i < 8; i++)
		g_add(2, NULL, 512, false);
	vt_notify(&G.t, 2);
	n = g_ctrl_recv(m, 64);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(m[0].event, VIRTIO_CONSOLE_PORT_ADD);
	ck_assert_uint_eq(m[1].event, VIRTIO_CONSOLE_PORT_ADD);
	ck_assert_uint_eq(cstats().ctrl_rx, 500);
	hostile_still_works();
	g_stop();
}
END_TEST

/* A control buffer smaller than the message: dropped and counted. */
START_TEST(control_buffer_too_small)
{
	struct virtio_console_control m;
	uint32_t len;

	g_start(_i, -1, -1, NULL, ALL_FEATURES);
	g_add(2, NULL, 4, true);
	g_send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	ck_assert_int_eq(g_used(2, &m, sizeof(m), &len), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(cstats().ctrl_no_room, 1);
	ck_assert(!g_needs_reset());
	g_stop();
}
END_TEST

/* Another queue breaks (NEEDS_RESET) while a port holds a chain for a
 * full socket: once the peer drains, the device stops waiting for POLLOUT
 * (no busy loop on a writable socket) until the driver resets it. */
START_TEST(needs_reset_while_holding)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "h", .server = true};
	struct virtio_console_params p = {
		.ports = &pc, .nr_ports = 1, .out_buffer_size = 4096};
	static char big[1 << 20];
	struct ctrl m[32];
	char buf[65536];
	int n, peer, sz = 4096;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "h");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	peer = unix_connect(p1);
	ck_assert_int_eq(
		setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	g_pump();
	g_linux_probe(2, m, &n);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_add(txq(1), big, sizeof(big), true);
	g_pump();
	ck_assert(g_polled_dev(POLLOUT));
	/* the control transmitq gets a head out of range */
	ck_assert_int_eq(virtq_driver_push_head(G.drv[3], QSIZE + 3), 0);
	vt_notify(&G.t, 3);
	ck_assert(g_needs_reset());
	nonblock(peer);
	for (int i = 0; i < 50; i++) {
		while (read(peer, buf, sizeof(buf)) > 0)
			;
		ck_assert_int_lt(g_pump(), 5);
	}
	ck_assert(!g_polled_dev(POLLOUT));
	close(peer);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

/* A driver reset forgets the guest side (held chains included) and a new
 * bring-up works; host connections stay. */
START_TEST(reset_and_reinit)
{
	char p1[128];
	const char *paths[] = {p1};
	struct virtio_console_port_config pc = {.name = "r", .server = true};
	struct virtio_console_params p = {
		.ports = &pc, .nr_ports = 1, .out_buffer_size = 4096};
	static char big[1 << 20];
	struct ctrl m[32];
	int n, peer, sz = 4096;

	mk_tmpdir();
	pc.path = tpath(p1, sizeof(p1), "r");
	g_start(_i, -1, -1, &p, ALL_FEATURES);
	peer = unix_connect(p1);
	ck_assert_int_eq(
		setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	g_pump();
	g_linux_probe(2, m, &n);
	g_send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	g_add(txq(1), big, sizeof(big), true);
	g_pump();
	ck_assert_int_eq(g_used(txq(1), NULL, 0, NULL), 0);
	vt_status(&G.t, 0);
	ck_assert_uint_eq(vt_get_status(&G.t), 0);
	ck_assert(!pstats(1).guest_ready);
	ck_assert(pstats(1).host_connected);
	for (unsigned q = 0; q < MAX_Q; q++) {
		virtq_driver_destroy(G.drv[q]);
		G.drv[q] = NULL;
	}
	/* bring it up again on the same transport */
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vt_driver_features(&G.t, G.features);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK);
	for (uint32_t q = 0; q < 6; q++)
		g_setup_queue(q);
	vt_status(&G.t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK |
				VIRTIO_CONFIG_S_DRIVER_OK);
	g_linux_probe(2, m, &n);
	ck_assert_uint_eq(m[find_msg(m, n, 1, VIRTIO_CONSOLE_PORT_OPEN)].value,
			  1);
	close(peer);
	g_stop();
	rm_tmpdir(paths, 1);
}
END_TEST

static atomic_bool io_stop;

/* The VMM's I/O thread: polls the device's fds and calls ready. */
static void *io_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&io_stop)) {
		struct virtio_poll_fd fds[64];
		struct pollfd pfd[64];
		int n = virtio_device_poll_fds(G.vdev, fds, 64);

		if (n < 0 || n > 64)
			break;
		for (int i = 0; i < n; i++)
			pfd[i] =
				(struct pollfd){.fd = fds[i].fd,
						.events = (short)fds[i].events};
		if (poll(pfd, (nfds_t)n, 10) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				fds[i].ready(fds[i].opaque,
					     (uint32_t)pfd[i].revents);
	}
	return NULL;
}

/* Notifications arrive through the queue's eventfd on an I/O thread while
 * the vCPU writes emerg_wr and reads config space: every byte arrives or
 * is counted as dropped, nothing is lost or duplicated. */
START_TEST(io_thread_vs_vcpu_config)
{
	enum {
		N = 1500,
		LEN = 16
	};
	pthread_t th;
	int sv[2], sent = 0, done = 0;
	uint64_t got_tx = 0, got_em = 0;
	char msg[LEN], buf[4096];
	struct virtio_console_port_stats st;

	pair(sv);
	nonblock(sv[1]);
	g_start(_i, sv[0], sv[0], NULL,
		ALL_FEATURES & ~(1ull << VIRTIO_CONSOLE_F_MULTIPORT));
	memset(msg, 't', sizeof(msg));
	atomic_store(&io_stop, false);
	ck_assert_int_eq(pthread_create(&th, NULL, io_thread, NULL), 0);
	for (int spin = 0; done < N && spin < 2000000; spin++) {
		uint32_t len;
		ssize_t n;

		if (sent < N && virtq_driver_num_free(G.drv[1]) > 0) {
			struct virtq_driver_buf b = {
				.addr = BUF_BASE +
					(uint64_t)(sent % QSIZE) * LEN,
				.len = LEN};

			ck_assert_int_eq(
				guest_memory_write(G.mem, b.addr, msg, LEN), 0);
			ck_assert_int_eq(
				virtq_driver_add(G.drv[1], &b, 1, NULL), 0);
			sent++;
			/* an ioeventfd: the I/O thread processes it */
			if (virtq_driver_needs_kick(G.drv[1]))
				ck_assert_int_eq(
					virtio_device_queue_kick(G.vdev, 1), 0);
			g_config_write32(offsetof(struct virtio_console_config,
						  emerg_wr),
					 'E');
			g_config_read(4, &len, 4);
			ck_assert_uint_eq(len, 1);
		}
		while (g_used(1, NULL, 0, &len) == 1)
			done++;
		n = read(sv[1], buf, sizeof(buf));
		for (ssize_t i = 0; i < n; i++) {
			got_tx += buf[i] == 't';
			got_em += buf[i] == 'E';
		}
	}
	ck_assert_int_eq(done, N);
	for (int spin = 0; spin < 200; spin++) {
		ssize_t n = read(sv[1], buf, sizeof(buf));

		for (ssize_t i = 0; i < n; i++) {
			got_tx += buf[i] == 't';
			got_em += buf[i] == 'E';
		}
		st = pstats(0);
		if (got_tx + got_em + st.tx_dropped == (uint64_t)N * (LEN + 1))
			break;
		usleep(5000);
	}
	atomic_store(&io_stop, true);
	pthread_join(th, NULL);
	st = pstats(0);
	ck_assert_uint_eq(got_tx + got_em + st.tx_dropped,
			  (uint64_t)N * (LEN + 1));
	ck_assert_uint_eq(st.tx_bytes, got_tx + got_em);
	ck_assert_uint_eq(cstats().emerg_writes, N);
	ck_assert(!g_needs_reset());
	close(sv[1]);
	g_stop();
	close(sv[0]);
}
END_TEST

static Suite *console_suite(void)
{
	Suite *s = suite_create("virtio-console");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_rejects_bad_config);
	tcase_add_loop_test(tc, config_space_and_features, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, linux_control_sequence, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_without_multiport, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_separate_in_out_fds, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, console_output_overflow_dropped, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, emergency_write, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_resize, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_resize_rows_first, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_initial_size, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, server_port_disconnect_reconnect, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, server_port_second_peer_refused, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, client_port_reconnect, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, console_output_peer_gone, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, server_port_stale_socket_replaced, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, output_without_peer_dropped, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, peer_disconnect_mid_write, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, rx_backpressure, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, idle_port_peer_hangup, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, rx_queue_not_enabled, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_port_ready_never_added, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_port_id_beyond_max, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_unknown_port_id, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_unknown_event, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_truncated, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_huge_port_name, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, hostile_ctrl_flood_bounded, TP_MMIO,
			    TP_PCI + 1);
	tcase_add_loop_test(tc, control_buffer_too_small, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, reset_and_reinit, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, needs_reset_while_holding, TP_MMIO, TP_PCI + 1);
	tcase_add_loop_test(tc, io_thread_vs_vcpu_config, TP_MMIO, TP_PCI + 1);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(console_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
