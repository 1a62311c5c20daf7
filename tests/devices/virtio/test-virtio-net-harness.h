/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-net test harness shared by test-virtio-net.c (socketpair
 * backend) and test-virtio-net-tap.c (tap in a network namespace): a mock
 * guest on libvirtio-queue's mock driver behind virtio-mmio, or behind
 * virtio-pci (modern, BAR 0; no MSI-X vector: the ISR) when the includer
 * defines NET_TEST_PCI.  Tests reach the transport only through the g_*
 * helpers here.
 */
#ifndef TEST_VIRTIO_NET_HARNESS_H
#define TEST_VIRTIO_NET_HARNESS_H

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>

#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-net.h>
#ifdef NET_TEST_PCI
#include <linux/virtio_pci.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-pci.h>
#endif
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

/* Helpers are static inline: not every includer uses every one. */

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

#define BASE_FEATURES                                         \
	(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) |       \
	 F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |  \
	 F(VIRTIO_NET_F_CTRL_MAC_ADDR) | F(VIRTIO_NET_F_MQ) | \
	 F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC))

/* ------------------------------------------------------------ the guest */

struct guest {
	struct guest_memory *mem;
	struct virtio_net *net;
	struct virtio_device *vdev;
	struct virtio_mmio *mmio;
	struct virtio_pci *vp; /* NET_TEST_PCI */
	struct pci_device *pd;
	uint64_t features;
	uint32_t nq;
	struct virtq_driver *drv[MAX_Q];
	guest_addr_t head_addr[MAX_Q][QSIZE];
	guest_addr_t next_buf;
	guest_addr_t next_ring;
};

static struct guest G;

#ifndef NET_TEST_PCI
static inline void mmio_w32(uint32_t off, uint32_t v)
{
	virtio_mmio_write(G.mmio, off, &v, 4);
}

static inline uint32_t mmio_r32(uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(G.mmio, off, &v, 4);
	return v;
}

static inline uint8_t g_status_get(void)
{
	return (uint8_t)mmio_r32(VIRTIO_MMIO_STATUS);
}

static inline void g_status_set(uint8_t s)
{
	mmio_w32(VIRTIO_MMIO_STATUS, s);
}

static inline uint64_t g_device_features(void)
{
	uint64_t offered = 0;

	for (uint32_t page = 0; page < 2; page++) {
		mmio_w32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, page);
		offered |= (uint64_t)mmio_r32(VIRTIO_MMIO_DEVICE_FEATURES)
			   << (32 * page);
	}
	return offered;
}

static inline void g_driver_features(uint64_t f)
{
	for (uint32_t page = 0; page < 2; page++) {
		mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
		mmio_w32(VIRTIO_MMIO_DRIVER_FEATURES,
			 (uint32_t)(f >> (32 * page)));
	}
}

static inline uint32_t g_config_generation(void)
{
	return mmio_r32(VIRTIO_MMIO_CONFIG_GENERATION);
}

/* The interrupt status bits (1 queue, 2 configuration), acknowledged. */
static inline uint32_t g_isr_take(void)
{
	uint32_t v = mmio_r32(VIRTIO_MMIO_INTERRUPT_STATUS);

	mmio_w32(VIRTIO_MMIO_INTERRUPT_ACK, v);
	return v;
}

static inline void g_config_read(uint32_t off, void *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		virtio_mmio_read(G.mmio, VIRTIO_MMIO_CONFIG + off + i,
				 (uint8_t *)data + i, 1);
}

static inline void g_kick(uint32_t q)
{
	if (virtq_driver_needs_kick(G.drv[q]))
		mmio_w32(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static inline void g_queue_regs(uint32_t q, guest_addr_t d, guest_addr_t a,
				guest_addr_t u)
{
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

/* The transport for G.vdev; the device must be a network card. */
static inline void g_transport_create(void)
{
	ck_assert_int_eq(virtio_mmio_create(G.vdev, NULL, &G.mmio), 0);
	ck_assert_uint_eq(mmio_r32(VIRTIO_MMIO_DEVICE_ID), 1);
}

static inline void g_transport_destroy(void)
{
	virtio_mmio_destroy(G.mmio);
}
#else
#define NET_CC(f) \
	(VIRTIO_PCI_COMMON_OFFSET + offsetof(struct virtio_pci_common_cfg, f))

static inline void pci_w(uint64_t off, uint64_t v, unsigned len)
{
	(void)pci_device_bar_write(G.pd, VIRTIO_PCI_BAR, off, &v, len);
}

static inline uint64_t pci_r(uint64_t off, unsigned len)
{
	uint64_t v = 0;

	(void)pci_device_bar_read(G.pd, VIRTIO_PCI_BAR, off, &v, len);
	return v;
}

static inline uint8_t g_status_get(void)
{
	return (uint8_t)pci_r(NET_CC(device_status), 1);
}

static inline void g_status_set(uint8_t s)
{
	pci_w(NET_CC(device_status), s, 1);
}

static inline uint64_t g_device_features(void)
{
	uint64_t offered = 0;

	for (uint32_t page = 0; page < 2; page++) {
		pci_w(NET_CC(device_feature_select), page, 4);
		offered |= pci_r(NET_CC(device_feature), 4) << (32 * page);
	}
	return offered;
}

static inline void g_driver_features(uint64_t f)
{
	for (uint32_t page = 0; page < 2; page++) {
		pci_w(NET_CC(guest_feature_select), page, 4);
		pci_w(NET_CC(guest_feature), (uint32_t)(f >> (32 * page)), 4);
	}
}

static inline uint32_t g_config_generation(void)
{
	return (uint32_t)pci_r(NET_CC(config_generation), 1);
}

/* The ISR bits (1 queue, 2 configuration); reading them clears them. */
static inline uint32_t g_isr_take(void)
{
	return (uint32_t)pci_r(VIRTIO_PCI_ISR_OFFSET, 1);
}

static inline void g_config_read(uint32_t off, void *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] =
			(uint8_t)pci_r(VIRTIO_PCI_DEVICE_OFFSET + off + i, 1);
}

static inline void g_kick(uint32_t q)
{
	if (virtq_driver_needs_kick(G.drv[q]))
		pci_w(VIRTIO_PCI_NOTIFY_OFFSET + q * VIRTIO_PCI_NOTIFY_MULT, q,
		      2);
}

static inline void g_queue_regs(uint32_t q, guest_addr_t d, guest_addr_t a,
				guest_addr_t u)
{
	pci_w(NET_CC(queue_select), q, 2);
	ck_assert_uint_ge(pci_r(NET_CC(queue_size), 2), QSIZE);
	pci_w(NET_CC(queue_size), QSIZE, 2);
	pci_w(NET_CC(queue_desc_lo), (uint32_t)d, 4);
	pci_w(NET_CC(queue_desc_hi), d >> 32, 4);
	pci_w(NET_CC(queue_avail_lo), (uint32_t)a, 4);
	pci_w(NET_CC(queue_avail_hi), a >> 32, 4);
	pci_w(NET_CC(queue_used_lo), (uint32_t)u, 4);
	pci_w(NET_CC(queue_used_hi), u >> 32, 4);
	pci_w(NET_CC(queue_enable), 1, 2);
	ck_assert_uint_eq(pci_r(NET_CC(queue_enable), 2), 1);
}

/* The transport for G.vdev: BAR 0 placed, memory decoding on. */
static inline void g_transport_create(void)
{
	ck_assert_int_eq(virtio_pci_create(G.vdev, NULL, &G.vp), 0);
	G.pd = virtio_pci_pci_device(G.vp);
	ck_assert_int_eq(pci_device_set_bar_address(G.pd, VIRTIO_PCI_BAR,
						    0xe0000000ull),
			 0);
	ck_assert_int_eq(pci_device_config_write(G.pd, 4, 2, 0x2), 0);
	{
		uint32_t id = 0;

		/* device id 0x1041: a virtio 1.0 network card */
		ck_assert_int_eq(pci_device_config_read(G.pd, 2, 2, &id), 0);
		ck_assert_uint_eq(id, 0x1041);
	}
}

static inline void g_transport_destroy(void)
{
	virtio_pci_destroy(G.vp);
}
#endif

static inline void g_setup_queue(uint32_t q)
{
	guest_addr_t d, a, u;
	uint64_t total = virtq_driver_layout(QSIZE, G.next_ring, &d, &a, &u);

	G.next_ring += (total + 4095) & ~4095ull;
	ck_assert_int_eq(virtq_driver_create(G.mem, QSIZE, G.features, d, a, u,
					     &G.drv[q]),
			 0);
	g_queue_regs(q, d, a, u);
}

static inline guest_addr_t g_alloc(uint32_t len)
{
	guest_addr_t a = G.next_buf;

	G.next_buf += (len + BUF_SLOT - 1) / BUF_SLOT * BUF_SLOT;
	if (G.next_buf > MEM_SIZE - (1u << 20)) /* recycle the area */
		G.next_buf = BUF_BASE;
	return a;
}

/* Post one writable receive buffer of @len on @q. */
static inline void g_post_rx(uint32_t q, uint32_t len, bool kick)
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
static inline void g_send(uint32_t q, const struct virtio_net_hdr_v1 *hdr,
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
static inline void g_send_raw(uint32_t q, const void *data, uint32_t len)
{
	struct virtq_driver_buf b = {.addr = g_alloc(len), .len = len};

	ck_assert_int_eq(guest_memory_write(G.mem, b.addr, data, len), 0);
	ck_assert_int_eq(virtq_driver_add(G.drv[q], &b, 1, NULL), 0);
	g_kick(q);
}

/* Next used element of @q: 1 with id/len and the first buffer's bytes. */
static inline int g_used(uint32_t q, void *buf, uint32_t cap, uint32_t *len)
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
static inline int g_pump(void)
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
static inline bool g_polled(int fd, uint32_t events)
{
	struct virtio_poll_fd fds[64];
	int n = virtio_device_poll_fds(G.vdev, fds, 64);
	uint32_t nq = virtio_device_num_queues(G.vdev);

	/* The device type's entries (the queue notifiers are not). */
	for (uint32_t q = 0; q < nq; q++)
		if (event_notifier_fd(
			    virtio_device_queue_notifier(G.vdev, q)) == fd)
			return false;
	for (int i = 0; i < n && i < 64; i++)
		if (fds[i].fd == fd && (fds[i].events & events))
			return true;
	return false;
}

static inline struct virtio_net_queue_stats g_stats(uint32_t pair)
{
	struct virtio_net_queue_stats st;

	ck_assert_int_eq(virtio_net_queue_stats(G.net, pair, &st), 0);
	return st;
}

static inline bool g_needs_reset(void)
{
	return g_status_get() & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* An Ethernet frame of @len bytes to @dst, payload bytes from @seed. */
static inline void mk_frame(uint8_t *f, uint32_t len, const uint8_t *dst,
			    uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i);
}

static inline uint32_t ctrl_q(void)
{
	return G.nq - 1;
}

/* Send a control command; returns the ack byte. */
static inline uint8_t g_ctrl(uint8_t cls, uint8_t cmd, const void *data,
			     uint32_t len)
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

/* The driver's bring-up (again, after a reset): reset, negotiate @want
 * of the offered features (VERSION_1 added), set up every queue with a
 * new mock driver, DRIVER_OK. */
static inline void g_bringup(uint32_t pairs, uint64_t want)
{
	uint64_t offered = 0;

	for (uint32_t q = 0; q < MAX_Q; q++) {
		virtq_driver_destroy(G.drv[q]);
		G.drv[q] = NULL;
	}
	G.next_ring = RING_BASE;
	g_status_set(0);
	g_status_set(1);
	g_status_set(3);
	offered = g_device_features();
	G.features = (offered & want) | F(VIRTIO_F_VERSION_1);
	g_driver_features(G.features);
	g_status_set(3 | VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(g_status_get() & VIRTIO_CONFIG_S_FEATURES_OK);
	G.nq = (G.features & F(VIRTIO_NET_F_MQ)) ? 2 * pairs + 1 : 3;
	for (uint32_t q = 0; q < G.nq; q++)
		g_setup_queue(q);
	g_status_set(3 | VIRTIO_CONFIG_S_FEATURES_OK |
		     VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(g_status_get() & VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Bring the device up on backend @ops / @be with @pairs pairs, @want of
 * the offered features (VERSION_1 added), every queue set up, DRIVER_OK.
 * @opts NULL: MAC set, everything else default. */
static inline void g_start_be(const struct virtio_net_backend_ops *ops,
			      void *be, uint32_t pairs, uint64_t want,
			      const struct virtio_net_options *opts)
{
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct virtio_net_options o = {0};
	struct guest_region *r;

	memset(&G, 0, sizeof(G));
	G.next_buf = BUF_BASE;
	G.next_ring = RING_BASE;
	if (opts)
		o = *opts;
	else
		memcpy(o.mac, MAC, 6);
	o.max_pairs = pairs;
	o.queue_size = QSIZE;
	ck_assert_int_eq(guest_region_create(&rp, &r), 0);
	ck_assert_int_eq(guest_memory_create(&r, 1, &G.mem), 0);
	guest_region_unref(r);
	ck_assert_int_eq(virtio_net_create(ops, be, &o, &G.net), 0);
	G.vdev = virtio_net_device(G.net);
	ck_assert_int_eq(virtio_device_set_memory(G.vdev, G.mem), 0);
	g_transport_create();
	g_bringup(pairs, want);
}

/* Tear down the transport, device (and backend) and the guest. */
static inline void g_stop_dev(void)
{
	g_transport_destroy();
	virtio_net_destroy(G.net);
	for (unsigned q = 0; q < MAX_Q; q++)
		virtq_driver_destroy(G.drv[q]);
	guest_memory_unref(G.mem);
	memset(&G, 0, sizeof(G));
}

#endif
