/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer targets for virtio-net, driven through virtio-mmio by
 * libvirtio-queue's mock driver with an in-memory backend written here.
 * Built twice:
 *   fuzz-virtio-net-tx   (default): the transmit path - headers of any
 *       content or length (flags, GSO types and sizes, checksum offsets),
 *       frames of any length up to past 64 KiB split over 1..4
 *       descriptors, offload features on or off, a backend with or
 *       without headers, receive frames of any length into buffers of any
 *       size (with and without MRG_RXBUF), link toggles and resets;
 *   fuzz-virtio-net-ctrl (FUZZ_NET_CTRL): the control queue - any class,
 *       command and payload (split anywhere), 0..2 writable ack bytes,
 *       with MQ over 4 pairs.
 *
 * Invariants (abort on violation):
 *   - every iovec the backend sees lies in guest RAM, except the device's
 *     header copy (12 bytes) first on transmit and the receive scratch
 *     last; a transmitted frame is at most 12 + VIRTIO_NET_MAX_FRAME bytes;
 *   - the used length never exceeds the chain's writable bytes, and a
 *     control chain with a writable byte is acked OK or ERR;
 *   - the device never enters NEEDS_RESET (the mock driver builds valid
 *     rings; every per-frame or per-command error is recoverable).
 *
 * The first input byte picks the ring (fuzz-ring.h): split, packed, or
 * packed offered and refused by the driver.  In a packed ring the input
 * can also write hostile raw descriptors on the transmit (control) queue;
 * from then until the next reset used lengths and NEEDS_RESET are not
 * checked.
 */
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-net.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fuzz-common.h"
#include "fuzz-ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  (1u << 20)
#define QSIZE	  32u
#define NPAIRS	  4u
#define RING_BASE 0x1000u
#define AREA_BASE 0x40000u
#define ACK_BASE  0x30000u
#define F(b)	  (1ull << (b))

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static uint8_t *ram;

struct mem_be {
	bool hdr;
	uint32_t rx_len; /* next frame the backend delivers (0: none) */
	uint8_t rx_fill;
	int efd;
};

static void check_iov(const struct iovec *iov, int cnt, bool tx)
{
	uint64_t sum = 0;

	CHECK(cnt > 0 && cnt <= 1024);
	for (int i = 0; i < cnt; i++) {
		const uint8_t *b = iov[i].iov_base;

		sum += iov[i].iov_len;
		if (b >= ram && b + iov[i].iov_len <= ram + MEM_SIZE)
			continue;
		/* the header copy first on transmit, the scratch last on
		 * receive */
		CHECK((tx && i == 0 && iov[i].iov_len == 12) ||
		      (!tx && i == cnt - 1 && iov[i].iov_len <= 64));
	}
	if (tx)
		CHECK(sum <= 12 + VIRTIO_NET_MAX_FRAME);
}

static int be_rx_fd(void *b, uint32_t pair)
{
	(void)pair;
	return ((struct mem_be *)b)->efd;
}

static ssize_t be_recv(void *b, uint32_t pair, const struct iovec *iov, int cnt)
{
	struct mem_be *be = b;
	uint32_t left, done = 0;

	(void)pair;
	check_iov(iov, cnt, false);
	if (!be->rx_len)
		return -EAGAIN;
	left = be->rx_len;
	be->rx_len = 0;
	for (int i = 0; i < cnt && left; i++) {
		uint32_t k = iov[i].iov_len < left ? (uint32_t)iov[i].iov_len
						   : left;

		memset(iov[i].iov_base, be->rx_fill, k);
		left -= k;
		done += k;
	}
	return (ssize_t)(done + left); /* full length, like a datagram */
}

static ssize_t be_send(void *b, uint32_t pair, const struct iovec *iov, int cnt)
{
	uint64_t sum = 0;

	(void)b;
	(void)pair;
	check_iov(iov, cnt, true);
	for (int i = 0; i < cnt; i++)
		sum += iov[i].iov_len;
	return (ssize_t)sum;
}

static uint64_t be_offloads(void *b)
{
	(void)b;
	return VIRTIO_NET_OFFLOAD_FEATURES;
}

static int be_set_hdr(void *b, uint32_t size)
{
	CHECK(size == 12);
	return ((struct mem_be *)b)->hdr ? 0 : -EOPNOTSUPP;
}

static const struct virtio_net_backend_ops mem_ops = {
	.rx_fd = be_rx_fd,
	.recv = be_recv,
	.send = be_send,
	.offloads = be_offloads,
	.set_vnet_hdr_size = be_set_hdr,
};

/* ------------------------------------------------------- the driver */

struct fx {
	struct guest_memory *mem;
	struct virtio_net *net;
	struct virtio_device *dev;
	struct virtio_mmio *mm;
	struct virtq_driver *drv[2 * NPAIRS + 1];
	uint32_t nq;
	uint64_t features;
	bool raw; /* raw descriptors written since the last driver_init() */
	uint32_t wlen[2 * NPAIRS + 1][QSIZE];
	guest_addr_t ack[QSIZE];
	unsigned area, acks;
};

static void mw(struct fx *f, uint32_t off, uint32_t v)
{
	virtio_mmio_write(f->mm, off, &v, 4);
}

static uint32_t mr(struct fx *f, uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(f->mm, off, &v, 4);
	return v;
}

static bool driver_init(struct fx *f, uint64_t drop)
{
	uint64_t feat = 0;
	guest_addr_t ring = RING_BASE;

	for (uint32_t q = 0; q < 2 * NPAIRS + 1; q++) {
		virtq_driver_destroy(f->drv[q]);
		f->drv[q] = NULL;
	}
	mw(f, VIRTIO_MMIO_STATUS, 0);
	mw(f, VIRTIO_MMIO_STATUS, 3);
	for (uint32_t p = 0; p < 2; p++) {
		mw(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, p);
		feat |= (uint64_t)mr(f, VIRTIO_MMIO_DEVICE_FEATURES)
			<< (32 * p);
	}
	feat &= ~drop;
	feat |= F(VIRTIO_F_VERSION_1);
	f->features = feat;
	for (uint32_t p = 0; p < 2; p++) {
		mw(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, p);
		mw(f, VIRTIO_MMIO_DRIVER_FEATURES,
		   (uint32_t)(feat >> (32 * p)));
	}
	mw(f, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(mr(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return false;
	f->nq = (feat & F(VIRTIO_NET_F_MQ)) ? 2 * NPAIRS + 1 : 3;
	for (uint32_t q = 0; q < f->nq; q++) {
		guest_addr_t d, a, u;
		uint64_t t = virtq_driver_layout(QSIZE, ring, &d, &a, &u);

		ring += (t + 4095) & ~4095ull;
		if (virtq_driver_create(f->mem, QSIZE, feat, d, a, u,
					&f->drv[q]))
			return false;
		mw(f, VIRTIO_MMIO_QUEUE_SEL, q);
		mw(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		mw(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
		mw(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		mw(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a);
		mw(f, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
		mw(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)u);
		mw(f, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
		mw(f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	mw(f, VIRTIO_MMIO_STATUS,
	   3 | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	memset(f->wlen, 0, sizeof(f->wlen));
	f->raw = false;
	return mr(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK;
}

/* A scratch area for one chain (128 KiB slots from AREA_BASE). */
static guest_addr_t area(struct fx *f)
{
	return AREA_BASE + (f->area++ % 6) * 0x20000u;
}

static void reap(struct fx *f, uint32_t q)
{
	struct vring_used_elem e;
	int r;

	while ((r = virtq_driver_get_used(f->drv[q], &e)) == 1) {
		/* After raw descriptors the ring may hold slots the guest
		 * itself marked used (any id): fuzz-virtio-device checks what
		 * the device writes in a hostile packed ring. */
		if (f->raw)
			continue;
		CHECK(e.id < QSIZE);
		CHECK(e.len <= f->wlen[q][e.id]);
		if (q == f->nq - 1 && f->wlen[q][e.id]) {
			uint8_t ack = ram[f->ack[e.id]];

			CHECK(e.len == 1);
			CHECK(ack == VIRTIO_NET_OK || ack == VIRTIO_NET_ERR);
		}
	}
	CHECK(r == 0 || f->raw);
}

static void add(struct fx *f, uint32_t q, struct virtq_driver_buf *b,
		unsigned n)
{
	uint16_t head;
	uint32_t w = 0;

	if (q >= f->nq || !f->drv[q])
		return;
	if (virtq_driver_add(f->drv[q], b, n, &head) != 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (!(b[i].flags & VRING_DESC_F_WRITE))
			continue;
		if (!w) /* the ack goes to the first writable byte */
			f->ack[head] = b[i].addr;
		w += b[i].len;
	}
	f->wlen[q][head] = w;
	if (virtq_driver_needs_kick(f->drv[q]))
		mw(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Split @len bytes at @a into 1..4 readable buffers. */
static unsigned split(struct in *in, guest_addr_t a, uint32_t len,
		      struct virtq_driver_buf *b, unsigned at)
{
	unsigned parts = 1 + (unsigned)(take(in, 1) % 4), n = at;
	uint32_t left = len;

	for (unsigned i = 0; i < parts && left; i++) {
		uint32_t k = i + 1 == parts
				     ? left
				     : 1 + (uint32_t)(take(in, 2) % left);

		b[n++] = (struct virtq_driver_buf){a, k, 0};
		a += k;
		left -= k;
	}
	return n;
}

#ifndef FUZZ_NET_CTRL
static void op_tx(struct fx *f, struct in *in)
{
	struct virtq_driver_buf b[8];
	guest_addr_t a = area(f);
	uint8_t shape = (uint8_t)take(in, 1);
	uint32_t len, n;

	/* header fields straight from the input, sometimes sensible */
	for (unsigned i = 0; i < 12; i++)
		ram[a + i] = (uint8_t)take(in, 1);
	if (shape & 1) {
		ram[a] &= 1;	    /* NEEDS_CSUM or nothing */
		ram[a + 1] &= 0x83; /* TCPV4/UDP/TCPV6 + ECN */
	}
	switch ((shape >> 1) & 3) {
	case 0:
		len = (uint32_t)take(in, 1) % 24; /* short */
		break;
	case 1:
		len = 12 + (uint32_t)take(in, 2) % 2000;
		break;
	case 2:
		len = 12 + VIRTIO_NET_MAX_FRAME - 4 + (uint32_t)take(in, 1) % 8;
		break;
	default:
		len = 12 + (uint32_t)take(in, 3) % 0x1ff00;
		break;
	}
	if (len == 0)
		len = 1;
	for (uint32_t i = 12; i < len && i < 64; i++)
		ram[a + i] = (uint8_t)take(in, 1);
	n = split(in, a, len, b, 0);
	add(f, 1 + 2 * ((shape >> 4) % NPAIRS), b, n);
}

static void op_rx(struct fx *f, struct in *in, struct mem_be *be)
{
	uint8_t shape = (uint8_t)take(in, 1);
	unsigned bufs = 1 + (shape & 3);
	uint32_t q = 2 * ((shape >> 2) % NPAIRS);

	if (q >= f->nq - 1)
		return; /* without MQ queue 2 is the control queue */
	for (unsigned i = 0; i < bufs; i++) {
		struct virtq_driver_buf b = {area(f),
					     1 + (uint32_t)take(in, 2) % 3000,
					     VRING_DESC_F_WRITE};

		add(f, q, &b, 1);
	}
	be->rx_len = (uint32_t)take(in, 3) % 0x12000;
	be->rx_fill = shape;
	if (q / 2 < NPAIRS) {
		struct virtio_poll_fd fds[32];
		int nf = virtio_device_poll_fds(f->dev, fds, 32);

		for (int i = (int)virtio_device_num_queues(f->dev);
		     i < nf && i < 32; i++)
			fds[i].ready(fds[i].opaque, 1);
	}
	be->rx_len = 0;
}
#else
static void op_ctrl(struct fx *f, struct in *in)
{
	struct virtq_driver_buf b[8];
	guest_addr_t a = area(f);
	uint8_t shape = (uint8_t)take(in, 1);
	uint32_t len = (uint32_t)take(in, 2) % 1200, n;

	if (shape & 1) {
		ram[a] = (uint8_t)(take(in, 1) % 6);
		ram[a + 1] = (uint8_t)(take(in, 1) % 3);
	} else {
		ram[a] = (uint8_t)take(in, 1);
		ram[a + 1] = (uint8_t)take(in, 1);
	}
	for (uint32_t i = 2; i < len; i++)
		ram[a + i] = (uint8_t)take(in, 1);
	n = len ? split(in, a, len, b, 0) : 0;
	/* ack bytes in slots of their own (a chain not yet processed
	 * keeps its slot while up to QSIZE others are added) */
	for (unsigned w = 0; w < ((shape >> 1) % 3); w++) {
		guest_addr_t ab = ACK_BASE + (f->acks++ % QSIZE) * 4 + w;

		b[n] = (struct virtq_driver_buf){ab, 1, VRING_DESC_F_WRITE};
		ram[ab] = 0xee;
		n++;
	}
	if (n)
		add(f, f->nq - 1, b, n);
}
#endif

/* A hostile packed descriptor in a random slot of the transmit queue
 * (fuzz-virtio-net-ctrl: the control queue), then a notify. */
static void raw_packed(struct fx *f, struct in *in)
{
#ifndef FUZZ_NET_CTRL
	uint32_t q = 1;
#else
	uint32_t q = f->nq - 1;
#endif
	uint16_t slot, id;
	uint64_t addr;
	uint32_t len;
	struct vring_packed_desc d;

	if (!f->drv[q] || !virtq_driver_packed(f->drv[q]))
		return; /* split: no bytes taken, as before packed rings */
	slot = (uint16_t)(take(in, 1) % QSIZE);
	addr = take(in, 1) & 1 ? take(in, 8)
			       : AREA_BASE + take(in, 3) % MEM_SIZE;
	len = (uint32_t)take(in, 4);
	id = (uint16_t)take(in, 2);
	d = fuzz_packed_desc(addr, len, id, (uint8_t)take(in, 1));
	f->raw = true;
	virtq_driver_write_packed_desc(f->drv[q], slot, &d);
	mw(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_region_params rp = {.size = MEM_SIZE,
					 .backing = GUEST_REGION_ANON_PRIVATE};
	struct virtio_net_options o = {.max_pairs = NPAIRS,
				       .queue_size = QSIZE,
				       .mac = {0x52, 0x54, 0, 1, 2, 3}};
	struct in in = {data, size};
	static int efd = -1; /* stands for the rx fd; never polled here */
	struct mem_be be = {.efd = -1};
	struct guest_region *r;
	struct fx f = {0};
	struct fuzz_ring ring = fuzz_ring_mode((uint8_t)take(&in, 1), false);
	uint64_t drop;
	int steps = 0;

	be.hdr = take(&in, 1) & 1;
	drop = (take(&in, 4) & 0xffffffu) | ring.refuse;
	if (guest_region_create(&rp, &r))
		return 0;
	ram = guest_region_host_addr(r);
	if (guest_memory_create(&r, 1, &f.mem)) {
		guest_region_unref(r);
		return 0;
	}
	guest_region_unref(r);
	CHECK(ram);
	if (efd < 0)
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	be.efd = efd;
	CHECK(virtio_net_create(&mem_ops, &be, &o, &f.net) == 0);
	f.dev = virtio_net_device(f.net);
	fuzz_ring_offer(f.dev, ring);
	virtio_device_set_memory(f.dev, f.mem);
	CHECK(virtio_mmio_create(f.dev, NULL, &f.mm) == 0);
	if (!driver_init(&f, drop))
		goto out;
	while (in.n && steps++ < 64) {
		uint8_t op = (uint8_t)take(&in, 1);

		switch (op % 8) {
#ifndef FUZZ_NET_CTRL
		case 0:
		case 1:
		case 2:
			op_tx(&f, &in);
			break;
		case 3:
		case 4:
			op_rx(&f, &in, &be);
			break;
#else
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
			op_ctrl(&f, &in);
			break;
#endif
		case 5:
			virtio_net_set_link(f.net, op & 0x80);
			break;
		case 6:
			if (!driver_init(&f, drop))
				goto out;
			break;
		default:
			if (op & 0x80)
				raw_packed(&f, &in);
			break;
		}
		for (uint32_t q = 0; q < f.nq; q++)
			if (f.drv[q])
				reap(&f, q);
		CHECK(f.raw || !(mr(&f, VIRTIO_MMIO_STATUS) &
				 VIRTIO_CONFIG_S_NEEDS_RESET));
	}
out:
	virtio_mmio_destroy(f.mm);
	virtio_net_destroy(f.net);
	for (uint32_t q = 0; q < 2 * NPAIRS + 1; q++)
		virtq_driver_destroy(f.drv[q]);
	guest_memory_unref(f.mem);
	return 0;
}
