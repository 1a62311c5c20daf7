/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk test and benchmark harness: plays the guest driver of a
 * virtio-blk device through a transport's registers (virtio-pci modern
 * through the PCI function's BAR, or virtio-mmio v2) and libvirtio-queue's
 * mock driver, with no KVM.  Header-only; functions return negative errno
 * or 0 so the benchmark can use them without Check.
 */
#ifndef CVMM_TESTS_VIRTIO_BLK_HARNESS_H
#define CVMM_TESTS_VIRTIO_BLK_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>

#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-blk.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

enum bh_transport {
	BH_PCI = 0,
	BH_MMIO = 1
};

#define BH_MEM_SIZE   (64ull << 20)
#define BH_RING_BASE  0x10000ull /* queue i rings at + i * 0x10000 */
#define BH_DATA_BASE  0x1000000ull
#define BH_MAX_QUEUES 4

struct bh {
	enum bh_transport tp;
	struct guest_region *region;
	struct guest_memory *mem;
	struct virtio_blk *blk;
	struct virtio_device *dev;
	struct virtio_pci *vp;
	struct pci_device *pd;
	struct virtio_mmio *mm;
	struct virtq_driver *drv[BH_MAX_QUEUES];
	uint32_t nq;
	uint64_t features; /* negotiated */
	uint8_t *host;	   /* host view of guest RAM */
};

/* ---- register access through the transport ---- */

static inline void bh_pci_wr(struct bh *h, uint64_t off, uint64_t v,
			     unsigned len)
{
	(void)pci_device_bar_write(h->pd, VIRTIO_PCI_BAR, off, &v, len);
}

static inline uint64_t bh_pci_rd(struct bh *h, uint64_t off, unsigned len)
{
	uint64_t v = 0;

	(void)pci_device_bar_read(h->pd, VIRTIO_PCI_BAR, off, &v, len);
	return v;
}

static inline void bh_mmio_wr(struct bh *h, uint64_t off, uint32_t v)
{
	virtio_mmio_write(h->mm, off, &v, 4);
}

static inline uint32_t bh_mmio_rd(struct bh *h, uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(h->mm, off, &v, 4);
	return v;
}

#define BH_CC(f) \
	(VIRTIO_PCI_COMMON_OFFSET + offsetof(struct virtio_pci_common_cfg, f))

static inline uint8_t bh_status(struct bh *h)
{
	if (h->tp == BH_PCI)
		return (uint8_t)bh_pci_rd(h, BH_CC(device_status), 1);
	return (uint8_t)bh_mmio_rd(h, VIRTIO_MMIO_STATUS);
}

static inline void bh_set_status(struct bh *h, uint8_t s)
{
	if (h->tp == BH_PCI)
		bh_pci_wr(h, BH_CC(device_status), s, 1);
	else
		bh_mmio_wr(h, VIRTIO_MMIO_STATUS, s);
}

static inline uint64_t bh_device_features(struct bh *h)
{
	uint64_t f = 0;

	for (uint32_t page = 0; page < 2; page++) {
		uint64_t v;

		if (h->tp == BH_PCI) {
			bh_pci_wr(h, BH_CC(device_feature_select), page, 4);
			v = bh_pci_rd(h, BH_CC(device_feature), 4);
		} else {
			bh_mmio_wr(h, VIRTIO_MMIO_DEVICE_FEATURES_SEL, page);
			v = bh_mmio_rd(h, VIRTIO_MMIO_DEVICE_FEATURES);
		}
		f |= (v & 0xffffffffu) << (32 * page);
	}
	return f;
}

static inline void bh_driver_features(struct bh *h, uint64_t f)
{
	for (uint32_t page = 0; page < 2; page++) {
		uint32_t v = (uint32_t)(f >> (32 * page));

		if (h->tp == BH_PCI) {
			bh_pci_wr(h, BH_CC(guest_feature_select), page, 4);
			bh_pci_wr(h, BH_CC(guest_feature), v, 4);
		} else {
			bh_mmio_wr(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
			bh_mmio_wr(h, VIRTIO_MMIO_DRIVER_FEATURES, v);
		}
	}
}

/** Device config read of @len (1, 2, 4, 8) bytes at @off. */
static inline uint64_t bh_config_rd(struct bh *h, uint32_t off, unsigned len)
{
	if (h->tp == BH_PCI)
		return bh_pci_rd(h, VIRTIO_PCI_DEVICE_OFFSET + off, len);
	uint64_t v = 0;

	virtio_mmio_read(h->mm, VIRTIO_MMIO_CONFIG + off, &v, len);
	return v;
}

static inline void bh_config_wr(struct bh *h, uint32_t off, uint64_t v,
				unsigned len)
{
	if (h->tp == BH_PCI)
		bh_pci_wr(h, VIRTIO_PCI_DEVICE_OFFSET + off, v, len);
	else
		virtio_mmio_write(h->mm, VIRTIO_MMIO_CONFIG + off, &v, len);
}

static inline int bh_queue_setup(struct bh *h, uint32_t q, uint32_t size)
{
	guest_addr_t desc, avail, used;
	guest_addr_t base = BH_RING_BASE + q * 0x10000ull;
	int rc;

	virtq_driver_layout(size, base, &desc, &avail, &used);
	rc = virtq_driver_create(h->mem, size, h->features, desc, avail, used,
				 &h->drv[q]);
	if (rc)
		return rc;
	if (h->tp == BH_PCI) {
		bh_pci_wr(h, BH_CC(queue_select), q, 2);
		if (bh_pci_rd(h, BH_CC(queue_size), 2) < size)
			return -EINVAL;
		bh_pci_wr(h, BH_CC(queue_size), size, 2);
		bh_pci_wr(h, BH_CC(queue_desc_lo), (uint32_t)desc, 4);
		bh_pci_wr(h, BH_CC(queue_desc_hi), desc >> 32, 4);
		bh_pci_wr(h, BH_CC(queue_avail_lo), (uint32_t)avail, 4);
		bh_pci_wr(h, BH_CC(queue_avail_hi), avail >> 32, 4);
		bh_pci_wr(h, BH_CC(queue_used_lo), (uint32_t)used, 4);
		bh_pci_wr(h, BH_CC(queue_used_hi), used >> 32, 4);
		bh_pci_wr(h, BH_CC(queue_enable), 1, 2);
		return bh_pci_rd(h, BH_CC(queue_enable), 2) == 1 ? 0 : -EIO;
	}
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_SEL, q);
	if (bh_mmio_rd(h, VIRTIO_MMIO_QUEUE_NUM_MAX) < size)
		return -EINVAL;
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_NUM, size);
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
	bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_READY, 1);
	return bh_mmio_rd(h, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -EIO;
}

/** The driver's notify register write for queue @q. */
static inline void bh_notify(struct bh *h, uint32_t q)
{
	if (h->tp == BH_PCI)
		bh_pci_wr(h,
			  VIRTIO_PCI_NOTIFY_OFFSET + q * VIRTIO_PCI_NOTIFY_MULT,
			  q, 2);
	else
		bh_mmio_wr(h, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/**
 * bh_init_dev() - guest RAM of @backing, transport for the virtio-blk
 * device core @dev (any implementation: a vhost-user one too), feature
 * negotiation (accepts everything offered but @drop), @qsize entries per
 * queue, DRIVER_OK.  @dev stays the caller's.
 */
static inline int bh_init_dev(struct bh *h, enum bh_transport tp,
			      struct virtio_device *dev, uint32_t qsize,
			      uint64_t drop, enum guest_region_backing backing)
{
	struct guest_region_params p = {0};
	uint64_t f;
	int rc;

	memset(h, 0, sizeof(*h));
	h->tp = tp;
	h->dev = dev;
	p.gpa = 0;
	p.size = BH_MEM_SIZE;
	p.backing = backing;
	rc = guest_region_create(&p, &h->region);
	if (rc)
		return rc;
	rc = guest_memory_create(&h->region, 1, &h->mem);
	if (rc)
		return rc;
	rc = guest_memory_translate(h->mem, 0, BH_MEM_SIZE, (void **)&h->host);
	if (rc)
		return rc;
	rc = virtio_device_set_memory(h->dev, h->mem);
	if (rc)
		return rc;
	if (tp == BH_PCI) {
		rc = virtio_pci_create(h->dev, NULL, &h->vp);
		if (rc)
			return rc;
		h->pd = virtio_pci_pci_device(h->vp);
		rc = pci_device_set_bar_address(h->pd, VIRTIO_PCI_BAR,
						0xe0000000ull);
		if (rc)
			return rc;
		rc = pci_device_config_write(h->pd, 4, 2, 0x2 /* memory */);
		if (rc)
			return rc;
	} else {
		rc = virtio_mmio_create(h->dev, NULL, &h->mm);
		if (rc)
			return rc;
		if (bh_mmio_rd(h, VIRTIO_MMIO_MAGIC_VALUE) != 0x74726976 ||
		    bh_mmio_rd(h, VIRTIO_MMIO_VERSION) != 2 ||
		    bh_mmio_rd(h, VIRTIO_MMIO_DEVICE_ID) != VIRTIO_ID_BLOCK)
			return -ENODEV;
	}
	bh_set_status(h, 0);
	bh_set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	bh_set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	f = bh_device_features(h) & ~drop;
	if (!(f & (1ull << VIRTIO_F_VERSION_1)))
		return -EPROTO;
	h->features = f;
	bh_driver_features(h, f);
	bh_set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				 VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(bh_status(h) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EPROTO;
	h->nq = virtio_device_num_queues(h->dev);
	if (h->nq > BH_MAX_QUEUES)
		h->nq = BH_MAX_QUEUES;
	for (uint32_t q = 0; q < h->nq; q++) {
		rc = bh_queue_setup(h, q, qsize);
		if (rc)
			return rc;
	}
	bh_set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				 VIRTIO_CONFIG_S_FEATURES_OK |
				 VIRTIO_CONFIG_S_DRIVER_OK);
	return (bh_status(h) & VIRTIO_CONFIG_S_DRIVER_OK) ? 0 : -EPROTO;
}

/**
 * bh_init() - bh_init_dev() for @blk (owned by @h from now on) in
 * anonymous guest RAM.
 */
static inline int bh_init(struct bh *h, enum bh_transport tp,
			  struct virtio_blk *blk, uint32_t qsize, uint64_t drop)
{
	int rc = bh_init_dev(h, tp, virtio_blk_device(blk), qsize, drop,
			     GUEST_REGION_ANON_PRIVATE);

	h->blk = blk;
	return rc;
}

static inline void bh_fini(struct bh *h)
{
	for (uint32_t q = 0; q < BH_MAX_QUEUES; q++)
		virtq_driver_destroy(h->drv[q]);
	virtio_pci_destroy(h->vp);
	virtio_mmio_destroy(h->mm);
	virtio_blk_destroy(h->blk);
	guest_memory_unref(h->mem);
	guest_region_unref(h->region);
	memset(h, 0, sizeof(*h));
}

/**
 * bh_poll() - call the ready function of every device-type poll fd (the
 * io_uring eventfd) that poll(2) reports within @timeout_ms.  Returns the
 * number of ready calls.
 */
static inline int bh_poll(struct bh *h, int timeout_ms)
{
	struct virtio_poll_fd fds[BH_MAX_QUEUES + 8];
	struct pollfd pfd[BH_MAX_QUEUES + 8];
	int n = virtio_device_poll_fds(h->dev, fds, BH_MAX_QUEUES + 8);
	int idx[BH_MAX_QUEUES + 8], k = 0, calls = 0;
	uint32_t nq = virtio_device_num_queues(h->dev);

	if (n > BH_MAX_QUEUES + 8)
		n = BH_MAX_QUEUES + 8;
	/* The device type's fds (the queue notifiers are the guest's). */
	for (int i = 0; i < n; i++) {
		bool notifier = false;

		for (uint32_t q = 0; q < nq; q++)
			notifier |= fds[i].fd ==
				    event_notifier_fd(
					    virtio_device_queue_notifier(h->dev,
									 q));
		if (notifier)
			continue;
		pfd[k].fd = fds[i].fd;
		pfd[k].events = (short)fds[i].events;
		pfd[k].revents = 0;
		idx[k++] = i;
	}
	if (!k || poll(pfd, (nfds_t)k, timeout_ms) <= 0)
		return 0;
	for (int i = 0; i < k; i++) {
		if (pfd[i].revents) {
			fds[idx[i]].ready(fds[idx[i]].opaque,
					  (uint32_t)pfd[i].revents);
			calls++;
		}
	}
	return calls;
}

/* ---- requests ---- */

/** Write the 16-byte request header at @gpa. */
static inline void bh_hdr(struct bh *h, guest_addr_t gpa, uint32_t type,
			  uint64_t sector)
{
	struct virtio_blk_outhdr o = {
		.type = htole32(type), .ioprio = 0, .sector = htole64(sector)};

	memcpy(h->host + gpa, &o, sizeof(o));
}

/**
 * bh_rw() - add (not notify) a request: header at @hdr, @len data bytes
 * at @data (device-writable for IN and GET_ID, readable otherwise; none
 * when @len is 0), status byte at @hdr + 16 (set to 0xff first).
 */
static inline int bh_add(struct bh *h, uint32_t q, uint32_t type,
			 uint64_t sector, guest_addr_t hdr, guest_addr_t data,
			 uint32_t len, uint16_t *head)
{
	struct virtq_driver_buf b[3];
	unsigned n = 0;
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

	bh_hdr(h, hdr, type, sector);
	h->host[hdr + 16] = 0xff;
	b[n++] = (struct virtq_driver_buf){hdr, 16, 0};
	if (len)
		b[n++] = (struct virtq_driver_buf){data, len,
						   in ? VRING_DESC_F_WRITE : 0};
	b[n++] = (struct virtq_driver_buf){hdr + 16, 1, VRING_DESC_F_WRITE};
	return virtq_driver_add(h->drv[q], b, n, head);
}

/**
 * bh_wait_used() - collect @n used elements of queue @q into @elems
 * (may be NULL), polling the device's fds; gives up after @ms.
 * Returns the number collected.
 */
static inline int bh_wait_used(struct bh *h, uint32_t q,
			       struct vring_used_elem *elems, int n, int ms)
{
	struct timespec t0, t;
	int got = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		struct vring_used_elem e;
		int rc = virtq_driver_get_used(h->drv[q], &e);

		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (elems)
				elems[got] = e;
			got++;
			continue;
		}
		bh_poll(h, 10);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000 >
		    ms)
			break;
	}
	return got;
}

#endif /* CVMM_TESTS_VIRTIO_BLK_HARNESS_H */
