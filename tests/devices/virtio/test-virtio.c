/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio device core, virtio-pci (modern) and virtio-mmio (v2) transports
 * and virtio-rng, driven end to end through the transport registers on an
 * io_bus with libvirtio-queue's mock driver playing the guest.
 *
 * The probe sequences replay Linux 6.1's virtio_pci_modern and virtio_mmio
 * drivers (register order of vp_modern_probe / virtio_dev_probe /
 * vp_modern_find_vqs / setup_vq and vm_probe / vm_find_vqs / vm_setup_vq).
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include "irq-recorder.h"

#define MEM_SIZE  (4u << 20)
#define BAR_ADDR  0xc0000000ull
#define MMIO_BASE 0xd0000000ull
#define MMIO_IRQ  5
#define SLOT	  3
#define DEVFN	  PCI_ROOT_DEVFN(SLOT, 0)
#define QSIZE	  64u
#define RING_BASE 0x10000ull /* queue i's rings at RING_BASE + i * 0x10000 */
#define BUF_BASE  0x100000ull
#define MSI_ADDR  0xfee00000ull

#define F_VERSION_1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT  (1ull << VIRTIO_RING_F_INDIRECT_DESC)
/* The ring layout a loop test runs in: _i 0 split, 1 packed (the echo
 * device then offers RING_PACKED and IN_ORDER, the transport passes the
 * negotiated bits to its queues, the mock driver follows). */
#define F_PACKED    (1ull << 34)
#define F_IN_ORDER  (1ull << 35)
static uint64_t echo_extra_features;

/* ------------------------------------------------------------ fixture */

static struct guest_region *region;
static struct guest_memory *mem;
static struct io_bus *mmio_bus;
static struct pci_root *root;
static struct virtio_device *vdev;
static struct virtio_pci *vp;
static struct virtio_mmio *vm;
static struct msi_recorder msi;
static struct irq_recorder intx;
static struct irq_recorder mirq;
static struct virtq_driver *drv[4];

static void mem_setup(void)
{
	struct guest_region_params p = {0};

	p.gpa = 0;
	p.size = MEM_SIZE;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	ck_assert_int_eq(guest_region_create(&p, &region), 0);
	ck_assert_int_eq(guest_memory_create(&region, 1, &mem), 0);
	ck_assert_int_eq(io_bus_create(&mmio_bus), 0);
}

static void teardown(void)
{
	echo_extra_features = 0;
	for (unsigned i = 0; i < 4; i++) {
		virtq_driver_destroy(drv[i]);
		drv[i] = NULL;
	}
	if (vm) {
		io_bus_unregister(mmio_bus, MMIO_BASE);
		virtio_mmio_destroy(vm);
		vm = NULL;
	}
	pci_root_destroy(root);
	root = NULL;
	virtio_pci_destroy(vp);
	vp = NULL;
	virtio_device_destroy(vdev);
	vdev = NULL;
	io_bus_destroy(mmio_bus);
	mmio_bus = NULL;
	guest_memory_unref(mem);
	mem = NULL;
	guest_region_unref(region);
	region = NULL;
}

/* Attach vdev to a virtio-pci function at 00:03.0, BAR at BAR_ADDR,
 * memory decoding and bus mastering on. */
static void pci_attach(void)
{
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};

	ck_assert_int_eq(virtio_device_set_memory(vdev, mem), 0);
	pc.msi = msi_recorder_sink(&msi);
	pc.intx = irq_recorder_line(&intx);
	ck_assert_int_eq(virtio_pci_create(vdev, &pc, &vp), 0);
	ck_assert_int_eq(pci_device_set_bar_address(virtio_pci_pci_device(vp),
						    VIRTIO_PCI_BAR, BAR_ADDR),
			 0);
	rc.mmio_bus = mmio_bus;
	ck_assert_int_eq(pci_root_create(&rc, &root), 0);
	ck_assert_int_eq(virtio_pci_add_to_root(vp, root, SLOT, 0), 0);
	ck_assert_int_eq(pci_root_config_write(root, 0, DEVFN, PCI_COMMAND, 2,
					       PCI_COMMAND_MEMORY |
						       PCI_COMMAND_MASTER),
			 0);
}

static void mmio_attach(void)
{
	struct virtio_mmio_config mc = {0};

	ck_assert_int_eq(virtio_device_set_memory(vdev, mem), 0);
	mc.irq = irq_recorder_line(&mirq);
	ck_assert_int_eq(virtio_mmio_create(vdev, &mc, &vm), 0);
	ck_assert_int_eq(io_bus_register(mmio_bus, MMIO_BASE,
					 virtio_mmio_size(vm),
					 virtio_mmio_bus_ops(), vm),
			 0);
}

/* ------------------------------------------------------- bus helpers */

static uint64_t rd(uint64_t addr, unsigned size)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	ck_assert_int_eq(io_bus_read(mmio_bus, addr, b, size), 0);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void wr(uint64_t addr, unsigned size, uint64_t v)
{
	uint8_t b[8];

	for (unsigned i = 0; i < size; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	ck_assert_int_eq(io_bus_write(mmio_bus, addr, b, size), 0);
}

#define COMMON(off) (BAR_ADDR + VIRTIO_PCI_COMMON_OFFSET + (off))
#define MMIO(off)   (MMIO_BASE + (off))

static uint32_t cfg_rd(uint32_t off, unsigned len)
{
	uint32_t v = 0;

	ck_assert_int_eq(pci_root_config_read(root, 0, DEVFN, off, len, &v), 0);
	return v;
}

static void cfg_wr(uint32_t off, unsigned len, uint32_t v)
{
	ck_assert_int_eq(pci_root_config_write(root, 0, DEVFN, off, len, v), 0);
}

/* ----------------------------------------------- Linux's PCI probe */

struct vcap {
	uint8_t pos;
	uint8_t bar;
	uint32_t offset;
	uint32_t length;
};

/* virtio_pci_find_capability(): walk the list for a vendor cap of @type. */
static struct vcap find_vcap(uint8_t type)
{
	struct vcap c = {0};
	unsigned guard = 0;

	for (uint8_t pos = (uint8_t)cfg_rd(PCI_CAPABILITY_LIST, 1); pos;
	     pos = (uint8_t)cfg_rd(pos + PCI_CAP_LIST_NEXT, 1)) {
		ck_assert_uint_lt(++guard, 48);
		if (cfg_rd(pos, 1) != PCI_CAP_ID_VNDR ||
		    cfg_rd(pos + VIRTIO_PCI_CAP_CFG_TYPE, 1) != type)
			continue;
		c.pos = pos;
		c.bar = (uint8_t)cfg_rd(pos + VIRTIO_PCI_CAP_BAR, 1);
		c.offset = cfg_rd(pos + VIRTIO_PCI_CAP_OFFSET, 4);
		c.length = cfg_rd(pos + VIRTIO_PCI_CAP_LENGTH, 4);
		return c;
	}
	return c;
}

static void msix_program(unsigned nvec)
{
	int cap = pci_device_find_capability(virtio_pci_pci_device(vp),
					     PCI_CAP_ID_MSIX);

	ck_assert_int_gt(cap, 0);
	for (unsigned v = 0; v < nvec; v++) {
		uint64_t e = BAR_ADDR + VIRTIO_PCI_MSIX_OFFSET + 16ull * v;

		wr(e + PCI_MSIX_ENTRY_LOWER_ADDR, 4, MSI_ADDR);
		wr(e + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0);
		wr(e + PCI_MSIX_ENTRY_DATA, 4, 0x40 + v);
		wr(e + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
	}
	cfg_wr((uint32_t)cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
}

static void pci_set_status(uint8_t bits)
{
	uint8_t s = (uint8_t)rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1);

	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, s | bits);
}

/* Probe up to FEATURES_OK; returns whether FEATURES_OK stuck. */
static bool pci_negotiate(uint64_t want)
{
	uint64_t f;
	struct vcap c = find_vcap(VIRTIO_PCI_CAP_COMMON_CFG);

	/* vp_modern_probe: the common, ISR, notify and device caps. */
	ck_assert_uint_ne(c.pos, 0);
	ck_assert_uint_eq(c.bar, VIRTIO_PCI_BAR);
	ck_assert_uint_ge(c.length, sizeof(struct virtio_pci_common_cfg));
	ck_assert_uint_ne(find_vcap(VIRTIO_PCI_CAP_ISR_CFG).pos, 0);
	ck_assert_uint_ne(find_vcap(VIRTIO_PCI_CAP_NOTIFY_CFG).pos, 0);
	ck_assert_uint_ne(find_vcap(VIRTIO_PCI_CAP_PCI_CFG).pos, 0);

	/* virtio_dev_probe -> vp_reset: status 0, wait until it reads 0. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 0);
	pci_set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
	pci_set_status(VIRTIO_CONFIG_S_DRIVER);
	/* vp_get_features: two pages. */
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 0);
	f = rd(COMMON(VIRTIO_PCI_COMMON_DF), 4);
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 1);
	f |= rd(COMMON(VIRTIO_PCI_COMMON_DF), 4) << 32;
	ck_assert(f & F_VERSION_1);
	/* vp_finalize_features. */
	wr(COMMON(VIRTIO_PCI_COMMON_GFSELECT), 4, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_GF), 4, (uint32_t)want);
	wr(COMMON(VIRTIO_PCI_COMMON_GFSELECT), 4, 1);
	wr(COMMON(VIRTIO_PCI_COMMON_GF), 4, (uint32_t)(want >> 32));
	pci_set_status(VIRTIO_CONFIG_S_FEATURES_OK);
	return rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
	       VIRTIO_CONFIG_S_FEATURES_OK;
}

static guest_addr_t ring_base(unsigned q)
{
	return RING_BASE + q * 0x10000ull;
}

/* vp_modern_find_vqs / setup_vq for queue @q with vector @vec, then the
 * mock driver on the same rings.  Returns queue_enable read back. */
static unsigned pci_setup_queue(unsigned q, uint16_t size, uint16_t vec,
				uint64_t features)
{
	guest_addr_t d, a, u;
	uint16_t max;

	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, q);
	max = (uint16_t)rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2);
	ck_assert_uint_ge(max, size);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	virtq_driver_layout(size, ring_base(q), &d, &a, &u);
	ck_assert_int_eq(
		virtq_driver_create(mem, size, features, d, a, u, &drv[q]), 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, size);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4, (uint32_t)d);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCHI), 4, (uint32_t)(d >> 32));
	wr(COMMON(VIRTIO_PCI_COMMON_Q_AVAILLO), 4, (uint32_t)a);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_AVAILHI), 4, (uint32_t)(a >> 32));
	wr(COMMON(VIRTIO_PCI_COMMON_Q_USEDLO), 4, (uint32_t)u);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_USEDHI), 4, (uint32_t)(u >> 32));
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_NOFF), 2), q);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, vec);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2), vec);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	return (unsigned)rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2);
}

/* The whole Linux probe with MSI-X: config vector 0, queue i vector i+1. */
static void pci_probe(uint64_t features, unsigned nq)
{
	ck_assert(pci_negotiate(features));
	msix_program(nq + 1);
	wr(COMMON(VIRTIO_PCI_COMMON_MSIX), 2, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_MSIX), 2), 0);
	for (unsigned q = 0; q < nq; q++)
		ck_assert_uint_eq(pci_setup_queue(q, QSIZE, (uint16_t)(q + 1),
						  features),
				  1);
	pci_set_status(VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1),
			  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				  VIRTIO_CONFIG_S_FEATURES_OK |
				  VIRTIO_CONFIG_S_DRIVER_OK);
}

static uint64_t pci_notify_addr(unsigned q)
{
	struct vcap c = find_vcap(VIRTIO_PCI_CAP_NOTIFY_CFG);
	uint32_t mult = cfg_rd(c.pos + sizeof(struct virtio_pci_cap), 4);
	uint16_t off;
	uint64_t a;

	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, q);
	off = (uint16_t)rd(COMMON(VIRTIO_PCI_COMMON_Q_NOFF), 2);
	ck_assert_int_eq(virtio_pci_queue_notify_addr(vp, q, &a), 0);
	ck_assert_uint_eq(a, BAR_ADDR + c.offset + (uint64_t)off * mult);
	return a;
}

/* ---------------------------------------------- Linux's MMIO probe */

static bool mmio_negotiate(uint64_t want)
{
	uint64_t f;

	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_MAGIC_VALUE), 4), 0x74726976);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_VERSION), 4), 2);
	ck_assert_uint_ne(rd(MMIO(VIRTIO_MMIO_DEVICE_ID), 4), 0);
	(void)rd(MMIO(VIRTIO_MMIO_VENDOR_ID), 4);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4, 0); /* vm_reset */
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_STATUS), 4), 0);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4,
	   rd(MMIO(VIRTIO_MMIO_STATUS), 4) | VIRTIO_CONFIG_S_DRIVER);
	/* vm_get_features: high page first. */
	wr(MMIO(VIRTIO_MMIO_DEVICE_FEATURES_SEL), 4, 1);
	f = rd(MMIO(VIRTIO_MMIO_DEVICE_FEATURES), 4) << 32;
	wr(MMIO(VIRTIO_MMIO_DEVICE_FEATURES_SEL), 4, 0);
	f |= rd(MMIO(VIRTIO_MMIO_DEVICE_FEATURES), 4);
	ck_assert(f & F_VERSION_1);
	/* vm_finalize_features. */
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES_SEL), 4, 1);
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES), 4, (uint32_t)(want >> 32));
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES_SEL), 4, 0);
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES), 4, (uint32_t)want);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4,
	   rd(MMIO(VIRTIO_MMIO_STATUS), 4) | VIRTIO_CONFIG_S_FEATURES_OK);
	return rd(MMIO(VIRTIO_MMIO_STATUS), 4) & VIRTIO_CONFIG_S_FEATURES_OK;
}

static unsigned mmio_setup_queue(unsigned q, uint32_t size, uint64_t features)
{
	guest_addr_t d, a, u;

	wr(MMIO(VIRTIO_MMIO_QUEUE_SEL), 4, q);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_READY), 4), 0);
	ck_assert_uint_ge(rd(MMIO(VIRTIO_MMIO_QUEUE_NUM_MAX), 4), size);
	virtq_driver_layout(size, ring_base(q), &d, &a, &u);
	ck_assert_int_eq(
		virtq_driver_create(mem, size, features, d, a, u, &drv[q]), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NUM), 4, size);
	wr(MMIO(VIRTIO_MMIO_QUEUE_DESC_LOW), 4, (uint32_t)d);
	wr(MMIO(VIRTIO_MMIO_QUEUE_DESC_HIGH), 4, (uint32_t)(d >> 32));
	wr(MMIO(VIRTIO_MMIO_QUEUE_AVAIL_LOW), 4, (uint32_t)a);
	wr(MMIO(VIRTIO_MMIO_QUEUE_AVAIL_HIGH), 4, (uint32_t)(a >> 32));
	wr(MMIO(VIRTIO_MMIO_QUEUE_USED_LOW), 4, (uint32_t)u);
	wr(MMIO(VIRTIO_MMIO_QUEUE_USED_HIGH), 4, (uint32_t)(u >> 32));
	wr(MMIO(VIRTIO_MMIO_QUEUE_READY), 4, 1);
	return (unsigned)rd(MMIO(VIRTIO_MMIO_QUEUE_READY), 4);
}

static void mmio_probe(uint64_t features, unsigned nq)
{
	ck_assert(mmio_negotiate(features));
	for (unsigned q = 0; q < nq; q++)
		ck_assert_uint_eq(mmio_setup_queue(q, QSIZE, features), 1);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4,
	   rd(MMIO(VIRTIO_MMIO_STATUS), 4) | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(rd(MMIO(VIRTIO_MMIO_STATUS), 4) & VIRTIO_CONFIG_S_DRIVER_OK);
}

/* vm_interrupt: read InterruptStatus, ACK it. */
static uint32_t mmio_irq_ack(void)
{
	uint32_t s = (uint32_t)rd(MMIO(VIRTIO_MMIO_INTERRUPT_STATUS), 4);

	wr(MMIO(VIRTIO_MMIO_INTERRUPT_ACK), 4, s);
	return s;
}

/* --------------------------------------------------- a test device */

/*
 * "echo": a device type written outside the library, as a user would.
 * Queue 0 completes every chain at once writing the readable bytes back
 * (up to the writable room).  Queue 1 is asynchronous: chains stay in
 * flight until the test signals the completion eventfd, whose ready
 * function (in the device's poll list) completes them.  Config space: 8
 * bytes, a device-owned u32 at 0 and a driver-writable u32 at 4.
 */
#define ECHO_ID	     0x7f
#define ECHO_FLIGHTS 64

struct echo {
	struct virtio_device *dev;
	int efd;
	struct virtq_buf bufs[ECHO_FLIGHTS][QSIZE];
	struct virtq_chain flight[ECHO_FLIGHTS];
	unsigned nflight;
	unsigned resets;
	bool reset_saw_ready_queue; /* reset op ran before the queues reset */
	unsigned notifies;
	unsigned destroyed;
	int late_complete_ret;
};

static struct echo echo_state;

static void echo_q0(struct echo *e)
{
	struct virtq *vq = virtio_device_queue(e->dev, 0);
	struct virtq_buf b[QSIZE];
	struct virtq_chain c;
	uint8_t tmp[256];

	virtq_chain_init(&c, b, QSIZE);
	for (unsigned n = 0; n < QSIZE;) {
		int r = virtq_pop(vq, &c);

		if (r == 0 && virtq_enable_notification(vq))
			continue;
		if (r != 1)
			break;
		n++;
		for (;;) {
			ssize_t got = virtq_chain_read(&c, tmp, sizeof(tmp));

			if (got <= 0 ||
			    virtq_chain_write(&c, tmp, (size_t)got) < got)
				break;
		}
		virtq_complete(vq, &c);
	}
	virtio_device_queue_used(e->dev, 0);
}

static void echo_q1(struct echo *e)
{
	struct virtq *vq = virtio_device_queue(e->dev, 1);

	while (e->nflight < ECHO_FLIGHTS) {
		struct virtq_chain *c = &e->flight[e->nflight];

		virtq_chain_init(c, e->bufs[e->nflight], QSIZE);
		int r = virtq_pop(vq, c);

		if (r == 0 && virtq_enable_notification(vq))
			continue;
		if (r != 1)
			break;
		e->nflight++;
	}
}

static void echo_notify(void *opaque, uint16_t q)
{
	struct echo *e = opaque;

	e->notifies++;
	if (q == 0)
		echo_q0(e);
	else
		echo_q1(e);
}

static void echo_complete_ready(void *opaque, uint32_t revents)
{
	struct echo *e = opaque;
	eventfd_t v;

	(void)revents;
	if (eventfd_read(e->efd, &v))
		return;
	for (unsigned i = 0; i < e->nflight; i++) {
		uint8_t x = 0xab;

		virtq_chain_write(&e->flight[i], &x, 1);
		e->late_complete_ret = virtq_complete(
			virtio_device_queue(e->dev, 1), &e->flight[i]);
	}
	if (e->nflight)
		virtio_device_queue_used(e->dev, 1);
	e->nflight = 0;
}

static void echo_reset(void *opaque)
{
	struct echo *e = opaque;

	e->resets++;
	e->reset_saw_ready_queue =
		virtq_ready(virtio_device_queue(e->dev, 1)) ||
		virtq_ready(virtio_device_queue(e->dev, 0));
	/* A synchronous stand-in for cancelling I/O: forget the chains. */
	e->nflight = 0;
}

static void echo_config_write(void *opaque, uint32_t off, const void *data,
			      unsigned len)
{
	struct echo *e = opaque;
	uint8_t *cfg = virtio_device_config_data(e->dev);

	if (off >= 4 && off + len <= 8)
		memcpy(cfg + off, data, len);
}

static void echo_destroy(void *opaque)
{
	struct echo *e = opaque;

	e->destroyed++;
	close(e->efd);
}

static const struct virtio_device_ops echo_ops = {
	.config_write = echo_config_write,
	.queue_notify = echo_notify,
	.reset = echo_reset,
	.destroy = echo_destroy,
};

static void echo_create(void)
{
	struct virtio_device_info info = {0};
	struct virtio_poll_fd pfd = {0};

	memset(&echo_state, 0, sizeof(echo_state));
	echo_state.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(echo_state.efd, 0);
	info.device_id = ECHO_ID;
	info.num_queues = 2;
	info.queue_max_size = 256;
	info.features = 1ull << 0 | echo_extra_features;
	info.config_size = 8;
	ck_assert_int_eq(
		virtio_device_create(&info, &echo_ops, &echo_state, &vdev), 0);
	echo_state.dev = vdev;
	pfd.fd = echo_state.efd;
	pfd.events = POLLIN;
	pfd.ready = echo_complete_ready;
	pfd.opaque = &echo_state;
	ck_assert_int_eq(virtio_device_add_poll_fd(vdev, &pfd, NULL), 0);
}

static void rng_create(const struct virtio_rng_config *c)
{
	ck_assert_int_eq(virtio_rng_create(c, &vdev), 0);
}

/* Chain helpers. */
static uint16_t add_write_buf(unsigned q, guest_addr_t addr, uint32_t len)
{
	struct virtq_driver_buf b = {
		.addr = addr, .len = len, .flags = VRING_DESC_F_WRITE};
	uint16_t head;

	ck_assert_int_eq(virtq_driver_add(drv[q], &b, 1, &head), 0);
	return head;
}

static int get_used(unsigned q, struct vring_used_elem *e)
{
	return virtq_driver_get_used(drv[q], e);
}

/* ========================================================== PCI tests */

START_TEST(test_pci_identity_and_caps)
{
	struct vcap c;

	rng_create(NULL);
	pci_attach();
	ck_assert_uint_eq(cfg_rd(PCI_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_eq(cfg_rd(PCI_DEVICE_ID, 2), 0x1040 + 4);
	ck_assert_uint_eq(cfg_rd(PCI_REVISION_ID, 1), 1);
	ck_assert_uint_eq(cfg_rd(PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_ge(cfg_rd(PCI_SUBSYSTEM_ID, 2), 0x40);
	ck_assert_uint_eq(cfg_rd(PCI_INTERRUPT_PIN, 1), 1);
	c = find_vcap(VIRTIO_PCI_CAP_COMMON_CFG);
	ck_assert_uint_eq(c.offset, VIRTIO_PCI_COMMON_OFFSET);
	c = find_vcap(VIRTIO_PCI_CAP_NOTIFY_CFG);
	ck_assert_uint_eq(c.offset, VIRTIO_PCI_NOTIFY_OFFSET);
	ck_assert_uint_eq(cfg_rd(c.pos + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
	ck_assert_uint_eq(c.length, VIRTIO_PCI_NOTIFY_MULT);
	ck_assert_uint_eq(find_vcap(VIRTIO_PCI_CAP_ISR_CFG).offset,
			  VIRTIO_PCI_ISR_OFFSET);
	/* rng has no config space: no device cap. */
	ck_assert_uint_eq(find_vcap(VIRTIO_PCI_CAP_DEVICE_CFG).pos, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_NUMQ), 2), 1);
}
END_TEST

/* The rng end to end: Linux probe, a request, the notify address, MSI-X. */
START_TEST(test_pci_rng_probe_kick_msix)
{
	struct vring_used_elem e;
	uint8_t buf[64];
	uint16_t head;
	unsigned before;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1 | F_EVENT_IDX, 1);
	ck_assert_int_eq(guest_memory_fill(mem, BUF_BASE, 0, 64), 0);
	head = add_write_buf(0, BUF_BASE, 64);
	before = msi.count;
	wr(pci_notify_addr(0), 2, 0); /* virtqueue_notify: the queue index */
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.id, head);
	ck_assert_uint_eq(e.len, 64);
	ck_assert_int_eq(guest_memory_read(mem, BUF_BASE, buf, 64), 0);
	{
		unsigned zero = 0;

		for (unsigned i = 0; i < 64; i++)
			zero += buf[i] == 0;
		ck_assert_uint_lt(zero, 16); /* random, not left zero */
	}
	/* Queue 0's vector is 1: data 0x41. */
	ck_assert_uint_eq(msi.count, before + 1);
	ck_assert_uint_eq(msi.last_address, MSI_ADDR);
	ck_assert_uint_eq(msi.last_data, 0x41);
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev), 64);
	/* No interrupt status through INTx with MSI-X on. */
	ck_assert_uint_eq(intx.asserts, 0);
}
END_TEST

/* The same device through the queue's notifier (an ioeventfd) and the
 * poll list instead of the MMIO exit. */
START_TEST(test_pci_notify_via_eventfd_poll_list)
{
	struct virtio_poll_fd fds[4];
	struct vring_used_elem e;
	int n;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	n = virtio_device_poll_fds(vdev, fds, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(
		fds[0].fd,
		event_notifier_fd(virtio_device_queue_notifier(vdev, 0)));
	ck_assert_uint_eq(fds[0].events, POLLIN);
	add_write_buf(0, BUF_BASE, 16);
	/* KVM would signal the eventfd on the guest's write. */
	ck_assert_int_eq(
		event_notifier_signal(virtio_device_queue_notifier(vdev, 0)),
		0);
	{
		struct pollfd p = {.fd = fds[0].fd, .events = POLLIN};

		ck_assert_int_eq(poll(&p, 1, 1000), 1);
		fds[0].ready(fds[0].opaque, (uint32_t)p.revents);
	}
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 16);
	ck_assert_uint_eq(msi.count, 1);
	/* A spurious ready (eventfd empty) does nothing. */
	fds[0].ready(fds[0].opaque, POLLIN);
	ck_assert_int_eq(get_used(0, &e), 0);
}
END_TEST

/* INTx through the ISR when MSI-X is off: read clears and deasserts. */
START_TEST(test_pci_intx_isr_read_clears)
{
	struct vring_used_elem e;

	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	ck_assert_uint_eq(pci_setup_queue(0, QSIZE, VIRTIO_MSI_NO_VECTOR,
					  F_VERSION_1),
			  1);
	pci_set_status(VIRTIO_CONFIG_S_DRIVER_OK);
	add_write_buf(0, BUF_BASE, 8);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert(intx.level);
	ck_assert_uint_eq(cfg_rd(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT,
			  PCI_STATUS_INTERRUPT);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_ISR_OFFSET, 1), 1);
	ck_assert(!intx.level);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_ISR_OFFSET, 1), 0);
	ck_assert_uint_eq(msi.count, 0);
}
END_TEST

/* MSI-X on but the queue has VIRTIO_MSI_NO_VECTOR: nothing is sent. */
START_TEST(test_pci_msix_no_vector_honoured)
{
	struct vring_used_elem e;

	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	msix_program(2);
	ck_assert_uint_eq(pci_setup_queue(0, QSIZE, VIRTIO_MSI_NO_VECTOR,
					  F_VERSION_1),
			  1);
	pci_set_status(VIRTIO_CONFIG_S_DRIVER_OK);
	add_write_buf(0, BUF_BASE, 8);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(msi.count, 0);
	ck_assert(!intx.level);
}
END_TEST

START_TEST(test_hostile_pci_msix_vector_out_of_range)
{
	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	/* Table has num_queues + 1 = 2 vectors. */
	wr(COMMON(VIRTIO_PCI_COMMON_MSIX), 2, 2);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_MSIX), 2),
			  VIRTIO_MSI_NO_VECTOR);
	wr(COMMON(VIRTIO_PCI_COMMON_MSIX), 2, 0x7fff);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_MSIX), 2),
			  VIRTIO_MSI_NO_VECTOR);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, 5);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2),
			  VIRTIO_MSI_NO_VECTOR);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2), 1);
}
END_TEST

START_TEST(test_hostile_pci_queue_select_out_of_range)
{
	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 1); /* one queue only */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2), 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_MSIX), 2), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4), 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, 16);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4, 0x1000);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0xffff);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2), 0);
	/* Queue 0 untouched. */
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2), 256);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	ck_assert(!virtio_device_needs_reset(vdev));
	/* Feature pages past 1 read 0; a driver page past 1 is ignored. */
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 7);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 4), 0);
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 0xffffffff);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 4), 0);
	/* A notify past the last queue is ignored. */
	wr(BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET + 4, 2, 1);
	wr(BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET + 0x800, 2, 1);
}
END_TEST

START_TEST(test_hostile_pci_wrong_access_sizes)
{
	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	/* 32-bit field read as 16 or 8 bits: 0. */
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 4),
			  1); /* VERSION_1 */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 2), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 1), 0);
	/* Unaligned into the middle of a field. */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF + 1), 1), 0);
	/* 16-bit field read as 32 bits: 0. */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_NUMQ), 2), 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_NUMQ), 4), 0);
	/* Status written with 4 bytes: ignored. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 4, 0);
	ck_assert_uint_ne(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 0);
	/* queue_size written with 1 byte: ignored. */
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 1, 16);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2), 256);
	/* 64-bit address fields: two halves or one 8-byte access. */
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 8, 0x1122334455667780ull);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4),
			  0x55667780);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCHI), 4),
			  0x11223344);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 8),
			  0x1122334455667780ull);
	/* 8 bytes at a high half: not a field. */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCHI), 8), 0);
	/* Past the common structure inside its page: 0. */
	ck_assert_uint_eq(rd(COMMON(0x100), 4), 0);
	/* Notify with 1 byte: ignored (nothing to check but no crash). */
	wr(BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET, 1, 0);
	wr(BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET + 1, 2, 0);
}
END_TEST

START_TEST(test_hostile_pci_feature_not_offered)
{
	rng_create(NULL);
	pci_attach();
	/* Bit 5 is not offered by rng. */
	ck_assert(!pci_negotiate(F_VERSION_1 | (1ull << 5)));
	ck_assert_uint_eq(virtio_device_features(vdev), 0);
	/* The queue cannot be enabled without FEATURES_OK. */
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	/* DRIVER_OK without FEATURES_OK does not stick. */
	pci_set_status(VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
				  VIRTIO_CONFIG_S_DRIVER_OK,
			  0);
	/* Without VERSION_1 (a legacy driver): refused too. */
	ck_assert(!pci_negotiate(F_EVENT_IDX));
	/* And a clean negotiation after a reset works. */
	ck_assert(pci_negotiate(F_VERSION_1 | F_INDIRECT));
	ck_assert_uint_eq(virtio_device_features(vdev),
			  F_VERSION_1 | F_INDIRECT);
}
END_TEST

START_TEST(test_hostile_pci_features_changed_after_features_ok)
{
	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	wr(COMMON(VIRTIO_PCI_COMMON_GFSELECT), 4, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_GF), 4, 0xffffffff);
	wr(COMMON(VIRTIO_PCI_COMMON_GFSELECT), 4, 1);
	wr(COMMON(VIRTIO_PCI_COMMON_GF), 4, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_GF), 4), 1);
	ck_assert_uint_eq(virtio_device_features(vdev), F_VERSION_1);
	/* Clearing status bits without a reset is ignored too. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
		  VIRTIO_CONFIG_S_FEATURES_OK);
}
END_TEST

START_TEST(test_hostile_pci_queue_size_not_power_of_two)
{
	guest_addr_t d, a, u;

	rng_create(NULL);
	pci_attach();
	ck_assert(pci_negotiate(F_VERSION_1));
	msix_program(2);
	wr(COMMON(VIRTIO_PCI_COMMON_MSIX), 2, 0);
	pci_set_status(0); /* no-op write of the same bits */
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, 100);
	virtq_driver_layout(128, ring_base(0), &d, &a, &u);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4, (uint32_t)d);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_AVAILLO), 4, (uint32_t)a);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_USEDLO), 4, (uint32_t)u);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	ck_assert(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
		  VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Larger than the maximum: the same. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 0);
	ck_assert(pci_negotiate(F_VERSION_1));
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, 512);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	ck_assert(virtio_device_needs_reset(vdev));
	/* A misaligned ring after a reset: refused the same way. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert(pci_negotiate(F_VERSION_1));
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, 64);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4, 0x10008);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	ck_assert(virtio_device_needs_reset(vdev));
}
END_TEST

/* A malformed chain breaks the queue: NEEDS_RESET, a config interrupt on
 * the config vector, the VMM goes on, and a reset + new probe recovers. */
START_TEST(test_hostile_pci_broken_queue_needs_reset)
{
	struct vring_desc bad = {.addr = BUF_BASE,
				 .len = 16,
				 .flags = VRING_DESC_F_NEXT |
					  VRING_DESC_F_WRITE,
				 .next = 1000};
	struct vring_used_elem e;
	uint8_t gen;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	gen = (uint8_t)rd(COMMON(VIRTIO_PCI_COMMON_CFGGENERATION), 1);
	ck_assert_int_eq(virtq_driver_write_desc(drv[0], 0, &bad), 0);
	ck_assert_int_eq(virtq_driver_push_head(drv[0], 0), 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
		  VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x40); /* config vector 0 */
	ck_assert_uint_eq(virtq_driver_used_idx(drv[0]), 0);
	/* Further kicks do nothing, and no second config interrupt. */
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_uint_eq(msi.count, 1);
	/* Driver writes without NEEDS_RESET cannot clear it. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1,
	   rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
		   ~VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(virtio_device_needs_reset(vdev));
	(void)gen;
	/* Reset and probe again: works. */
	virtq_driver_destroy(drv[0]);
	drv[0] = NULL;
	pci_probe(F_VERSION_1, 1);
	add_write_buf(0, BUF_BASE, 32);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 32);
}
END_TEST

START_TEST(test_hostile_pci_config_past_end)
{
	uint32_t v = 0x11223344;

	echo_create();
	pci_attach();
	virtio_device_lock(vdev);
	virtio_device_config_set(vdev, 0, &v, 4, false);
	virtio_device_unlock(vdev);
	ck_assert_uint_eq(find_vcap(VIRTIO_PCI_CAP_DEVICE_CFG).length, 8);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET, 4),
			  0x11223344);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 1, 2),
			  0x2233);
	/* Straddling the end and past it: zeros. */
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 6, 4), 0);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 8, 4), 0);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 0xffc, 4),
			  0);
	/* Writes: the device-owned field is not driver-writable, past the
	 * end ignored, the writable field stored. */
	wr(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET, 4, 0);
	wr(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 6, 4, 0xffffffff);
	wr(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 4, 4, 0xcafe);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET, 4),
			  0x11223344);
	ck_assert_uint_eq(rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 4, 4),
			  0xcafe);
}
END_TEST

/* config_generation moves on every device-side change; a change while
 * DRIVER_OK raises the config interrupt. */
START_TEST(test_pci_config_generation_and_interrupt)
{
	uint32_t v = 7;
	uint8_t g0, g1;

	echo_create();
	pci_attach();
	pci_probe(F_VERSION_1, 2);
	g0 = (uint8_t)rd(COMMON(VIRTIO_PCI_COMMON_CFGGENERATION), 1);
	virtio_device_lock(vdev);
	ck_assert_int_eq(virtio_device_config_set(vdev, 0, &v, 4, true), 0);
	ck_assert_int_eq(virtio_device_config_set(vdev, 6, &v, 4, true),
			 -EINVAL);
	virtio_device_unlock(vdev);
	g1 = (uint8_t)rd(COMMON(VIRTIO_PCI_COMMON_CFGGENERATION), 1);
	ck_assert_uint_ne(g0, g1);
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_uint_eq(msi.last_data, 0x40);
	/* A driver write does not bump the generation. */
	wr(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 4, 4, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_CFGGENERATION), 1), g1);
}
END_TEST

/* The VIRTIO_PCI_CAP_PCI_CFG window reaches the BAR through config space. */
START_TEST(test_pci_cfg_access_window)
{
	struct vcap c;
	uint32_t data;

	rng_create(NULL);
	pci_attach();
	c = find_vcap(VIRTIO_PCI_CAP_PCI_CFG);
	ck_assert_uint_ne(c.pos, 0);
	data = c.pos + 16;
	/* Read num_queues (2 bytes at 0x12). */
	cfg_wr(c.pos + VIRTIO_PCI_CAP_BAR, 1, VIRTIO_PCI_BAR);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_NUMQ);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	ck_assert_uint_eq(cfg_rd(data, 4), 1);
	/* Write device_status through the window: ACKNOWLEDGE. */
	cfg_wr(c.pos + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_STATUS);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_LENGTH, 4, 1);
	cfg_wr(data, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1),
			  VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_eq(cfg_rd(data, 4), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* Hostile window settings: bad length, other BAR, misaligned. */
	cfg_wr(c.pos + VIRTIO_PCI_CAP_LENGTH, 4, 3);
	ck_assert_uint_eq(cfg_rd(data, 4), 0);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_OFFSET, 4, 0x13);
	ck_assert_uint_eq(cfg_rd(data, 4), 0);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_BAR, 1, 5);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_NUMQ);
	ck_assert_uint_eq(cfg_rd(data, 4), 0);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_BAR, 1, VIRTIO_PCI_BAR);
	cfg_wr(c.pos + VIRTIO_PCI_CAP_OFFSET, 4, 0xfffffffe);
	ck_assert_uint_eq(cfg_rd(data, 4), 0);
}
END_TEST

/* Reset drains: chains in flight in an asynchronous device are cancelled
 * by the reset op before the queues reset, and a completion attempted
 * after the driver read status 0 writes nothing to guest memory. */
START_TEST(test_reset_drains_before_status_zero)
{
	struct virtio_poll_fd fds[4];
	int n;

	echo_create();
	pci_attach();
	pci_probe(F_VERSION_1, 2);
	add_write_buf(1, BUF_BASE, 16);
	add_write_buf(1, BUF_BASE + 16, 16);
	wr(pci_notify_addr(1), 2, 1);
	ck_assert_uint_eq(echo_state.nflight, 2);
	/* Keep one chain the way a buggy device would. */
	{
		struct virtq_chain stale = echo_state.flight[0];

		wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
		ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 0);
		ck_assert_uint_eq(echo_state.resets, 2); /* probe's + this */
		ck_assert(echo_state.reset_saw_ready_queue);
		ck_assert_uint_eq(echo_state.nflight, 0);
		/* The completion event fires after the reset. */
		n = virtio_device_poll_fds(vdev, fds, 4);
		ck_assert_int_eq(n, 3);
		ck_assert_int_eq(eventfd_write(echo_state.efd, 1), 0);
		fds[2].ready(fds[2].opaque, POLLIN);
		ck_assert_uint_eq(virtq_driver_used_idx(drv[1]), 0);
		/* Even the stale chain cannot complete. */
		virtio_device_lock(vdev);
		ck_assert_int_lt(virtq_complete(virtio_device_queue(vdev, 1),
						&stale),
				 0);
		virtio_device_unlock(vdev);
		ck_assert_uint_eq(virtq_driver_used_idx(drv[1]), 0);
	}
}
END_TEST

/* The async path works when not reset: completion from the poll list. */
START_TEST(test_async_completion_from_poll_fd)
{
	struct virtio_poll_fd fds[4];
	struct vring_used_elem e;
	uint8_t b = 0;

	echo_create();
	pci_attach();
	pci_probe(F_VERSION_1, 2);
	add_write_buf(1, BUF_BASE, 16);
	wr(pci_notify_addr(1), 2, 1);
	ck_assert_int_eq(get_used(1, &e), 0);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 4), 3);
	ck_assert_int_eq(fds[2].fd, echo_state.efd);
	ck_assert_int_eq(eventfd_write(echo_state.efd, 1), 0);
	fds[2].ready(fds[2].opaque, POLLIN);
	ck_assert_int_eq(echo_state.late_complete_ret, 0);
	ck_assert_int_eq(get_used(1, &e), 1);
	ck_assert_uint_eq(e.len, 1);
	ck_assert_int_eq(guest_memory_read(mem, BUF_BASE, &b, 1), 0);
	ck_assert_uint_eq(b, 0xab);
	ck_assert_uint_eq(msi.last_data, 0x42); /* queue 1's vector 2 */
}
END_TEST

/* Echo queue 0 through PCI with indirect descriptors. */
START_TEST(test_pci_echo_indirect)
{
	struct virtq_driver_buf b[2] = {
		{.addr = BUF_BASE, .len = 8, .flags = 0},
		{.addr = BUF_BASE + 0x100,
		 .len = 8,
		 .flags = VRING_DESC_F_WRITE},
	};
	struct vring_used_elem e;
	uint64_t out = 0;
	uint64_t layout = _i ? F_PACKED | F_IN_ORDER : 0;

	echo_extra_features = layout;
	echo_create();
	pci_attach();
	pci_probe(F_VERSION_1 | F_INDIRECT | F_EVENT_IDX | layout, 2);
	ck_assert_uint_eq(virtio_device_features(vdev) & layout, layout);
	ck_assert_int_eq(guest_memory_write_u64(mem, BUF_BASE,
						0x0102030405060708ull),
			 0);
	ck_assert_int_eq(virtq_driver_add_indirect(drv[0], b, 2,
						   BUF_BASE + 0x1000, NULL),
			 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 8);
	ck_assert_int_eq(guest_memory_read_u64(mem, BUF_BASE + 0x100, &out), 0);
	ck_assert_uint_eq(out, 0x0102030405060708ull);
	ck_assert_uint_eq(msi.last_data, 0x41);
}
END_TEST

/* A buffer pointing at the device's own BAR (DMA onto MMIO, the
 * CVE-2024-3446 class): the guest-memory accessors never dispatch to a
 * device, the queue breaks with NEEDS_RESET, no notify re-enters. */
START_TEST(test_hostile_pci_buffer_on_own_bar)
{
	struct virtq_driver_buf b = {.addr = BAR_ADDR +
					     VIRTIO_PCI_NOTIFY_OFFSET,
				     .len = 16,
				     .flags = VRING_DESC_F_WRITE};
	unsigned long before;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	before = io_bus_unhandled_count(mmio_bus);
	ck_assert_int_eq(virtq_driver_add(drv[0], &b, 1, NULL), 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert(virtio_device_needs_reset(vdev));
	ck_assert_uint_eq(virtq_driver_used_idx(drv[0]), 0);
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev), 0);
	ck_assert_uint_eq(io_bus_unhandled_count(mmio_bus), before);
	ck_assert_uint_eq(msi.count, 1); /* the config interrupt only */
	ck_assert_uint_eq(msi.last_data, 0x40);
}
END_TEST

/* FAILED (the driver gave up): kicks are not processed. */
START_TEST(test_pci_failed_status_stops_processing)
{
	struct vring_used_elem e;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	pci_set_status(VIRTIO_CONFIG_S_FAILED);
	add_write_buf(0, BUF_BASE, 8);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 0);
	ck_assert_uint_eq(msi.count, 0);
}
END_TEST

struct remap_log {
	unsigned calls;
	bool mapped;
	uint64_t base;
};

static void on_remap(void *opaque, bool mapped, uint64_t base)
{
	struct remap_log *l = opaque;

	l->calls++;
	l->mapped = mapped;
	l->base = base;
}

/* The VMM learns where the notify area decodes (to move ioeventfds), and
 * the notify address follows the BAR. */
START_TEST(test_pci_notify_remap_follows_bar)
{
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};
	static struct remap_log log; /* teardown removes the function later */
	struct virtio_pci *other = NULL;
	uint64_t a;

	memset(&log, 0, sizeof(log));
	memset(&log, 0, sizeof(log));
	rng_create(NULL);
	ck_assert_int_eq(virtio_device_set_memory(vdev, mem), 0);
	pc.notify_remap = on_remap;
	pc.remap_opaque = &log;
	ck_assert_int_eq(virtio_pci_create(vdev, &pc, &vp), 0);
	ck_assert_int_eq(pci_device_set_bar_address(virtio_pci_pci_device(vp),
						    VIRTIO_PCI_BAR, BAR_ADDR),
			 0);
	rc.mmio_bus = mmio_bus;
	ck_assert_int_eq(pci_root_create(&rc, &root), 0);
	ck_assert_int_eq(virtio_pci_add_to_root(vp, root, SLOT, 0), 0);
	ck_assert_int_eq(virtio_pci_add_to_root(vp, root, SLOT, 0), -EEXIST);
	ck_assert_int_eq(virtio_pci_queue_notify_addr(vp, 0, &a), -ENODEV);
	ck_assert_int_eq(virtio_pci_queue_notify_addr(vp, 1, &a), -EINVAL);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert_uint_ge(log.calls, 1);
	ck_assert(log.mapped);
	ck_assert_uint_eq(log.base, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET);
	ck_assert_int_eq(virtio_pci_queue_notify_addr(vp, 0, &a), 0);
	ck_assert_uint_eq(a, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFFSET);
	/* Move the BAR (64-bit: low and high dwords). */
	cfg_wr(PCI_COMMAND, 2, 0);
	ck_assert(!log.mapped);
	cfg_wr(PCI_BASE_ADDRESS_0, 4,
	       0xd0000000u | PCI_BASE_ADDRESS_MEM_TYPE_64);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert(log.mapped);
	ck_assert_uint_eq(log.base, 0xd0000000ull + VIRTIO_PCI_NOTIFY_OFFSET);
	ck_assert_int_eq(virtio_pci_queue_notify_addr(vp, 0, &a), 0);
	ck_assert_uint_eq(a, 0xd0000000ull + VIRTIO_PCI_NOTIFY_OFFSET);
	/* A second device cannot take the occupied slot; its transport still
	 * owns (and frees) its function. */
	{
		struct virtio_device *d2 = NULL;

		ck_assert_int_eq(virtio_rng_create(NULL, &d2), 0);
		ck_assert_int_eq(virtio_pci_create(d2, NULL, &other), 0);
		ck_assert_int_eq(virtio_pci_add_to_root(other, root, SLOT, 0),
				 -EBUSY);
		virtio_pci_destroy(other);
		virtio_device_destroy(d2);
	}
}
END_TEST

/* Once a queue is enabled its size and addresses are read-only. */
START_TEST(test_hostile_pci_queue_fields_readonly_when_enabled)
{
	struct vring_used_elem e;
	uint32_t desc;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SELECT), 2, 0);
	desc = (uint32_t)rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2, 16);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4, 0x200000);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_USEDHI), 4, 1);
	wr(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2, 0); /* drivers never do */
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_SIZE), 2), QSIZE);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_DESCLO), 4), desc);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_USEDHI), 4), 0);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_Q_ENABLE), 2), 1);
	add_write_buf(0, BUF_BASE, 8);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
}
END_TEST

/* ========================================================= MMIO tests */

START_TEST(test_mmio_rng_probe_kick_irq)
{
	struct vring_used_elem e;
	uint16_t head;

	rng_create(NULL);
	mmio_attach();
	mmio_probe(F_VERSION_1 | F_EVENT_IDX, 1);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_DEVICE_ID), 4), 4);
	head = add_write_buf(0, BUF_BASE, 100);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.id, head);
	ck_assert_uint_eq(e.len, 100);
	ck_assert(mirq.level);
	ck_assert_uint_eq(mmio_irq_ack(), VIRTIO_MMIO_INT_VRING);
	ck_assert(!mirq.level);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_INTERRUPT_STATUS), 4), 0);
	/* Shared memory: no region. */
	wr(MMIO(VIRTIO_MMIO_SHM_SEL), 4, 0);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_SHM_LEN_LOW), 4), 0xffffffff);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_SHM_LEN_HIGH), 4), 0xffffffff);
}
END_TEST

START_TEST(test_mmio_echo_two_queues_and_config)
{
	struct virtq_driver_buf b[2] = {
		{.addr = BUF_BASE, .len = 4, .flags = 0},
		{.addr = BUF_BASE + 0x100,
		 .len = 4,
		 .flags = VRING_DESC_F_WRITE},
	};
	struct vring_used_elem e;
	uint32_t v = 0xdeadbeef, g;
	uint64_t layout = _i ? F_PACKED : 0;

	echo_extra_features = layout;
	echo_create();
	mmio_attach();
	mmio_probe(F_VERSION_1 | (1ull << 0) | layout, 2);
	ck_assert_uint_eq(virtio_device_features(vdev),
			  F_VERSION_1 | 1 | layout);
	ck_assert_int_eq(guest_memory_write_u32(mem, BUF_BASE, 0x600d), 0);
	ck_assert_int_eq(virtq_driver_add(drv[0], b, 2, NULL), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 4);
	ck_assert_uint_eq(mmio_irq_ack(), VIRTIO_MMIO_INT_VRING);
	/* Config space at 0x100, generation and the config interrupt. */
	g = (uint32_t)rd(MMIO(VIRTIO_MMIO_CONFIG_GENERATION), 4);
	virtio_device_lock(vdev);
	virtio_device_config_set(vdev, 0, &v, 4, true);
	virtio_device_unlock(vdev);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_CONFIG_GENERATION), 4), g + 1);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_CONFIG), 4), 0xdeadbeef);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_CONFIG + 2), 1), 0xad);
	ck_assert(mirq.level);
	ck_assert_uint_eq(mmio_irq_ack(), VIRTIO_MMIO_INT_CONFIG);
	ck_assert(!mirq.level);
	/* QueueReady 0 disables queue 1; it reads back 0. */
	wr(MMIO(VIRTIO_MMIO_QUEUE_SEL), 4, 1);
	wr(MMIO(VIRTIO_MMIO_QUEUE_READY), 4, 0);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_READY), 4), 0);
}
END_TEST

START_TEST(test_hostile_mmio_registers)
{
	rng_create(NULL);
	mmio_attach();
	ck_assert(mmio_negotiate(F_VERSION_1));
	/* Wrong sizes and misaligned accesses of control registers. */
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_MAGIC_VALUE), 2), 0);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_MAGIC_VALUE), 1), 0);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_MAGIC_VALUE + 1), 4), 0);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_MAGIC_VALUE), 8), 0);
	wr(MMIO(VIRTIO_MMIO_STATUS), 1, 0);
	ck_assert_uint_ne(rd(MMIO(VIRTIO_MMIO_STATUS), 4), 0);
	/* QueueSel out of range: QueueNumMax 0, writes ignored. */
	wr(MMIO(VIRTIO_MMIO_QUEUE_SEL), 4, 1);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_NUM_MAX), 4), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NUM), 4, 16);
	wr(MMIO(VIRTIO_MMIO_QUEUE_READY), 4, 1);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_READY), 4), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_SEL), 4, 0xffffffff);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_NUM_MAX), 4), 0);
	/* A notify for a queue that does not exist. */
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0xffff);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 7);
	/* Config past the end (rng has none): zeros. */
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_CONFIG), 4), 0);
	ck_assert_uint_eq(rd(MMIO(0x1fc), 4), 0);
	wr(MMIO(VIRTIO_MMIO_CONFIG), 4, 0x1234);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_CONFIG), 4), 0);
	/* Legacy registers (GuestPageSize, QueuePFN) read 0 and do nothing. */
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_PFN), 4), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_PFN), 4, 0x10);
	/* Feature page past 1 reads 0; driver page past 1 ignored. */
	wr(MMIO(VIRTIO_MMIO_DEVICE_FEATURES_SEL), 4, 2);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_DEVICE_FEATURES), 4), 0);
	ck_assert(!virtio_device_needs_reset(vdev));
}
END_TEST

START_TEST(test_hostile_mmio_queue_size_and_features)
{
	rng_create(NULL);
	mmio_attach();
	/* A feature not offered: FEATURES_OK refused. */
	ck_assert(!mmio_negotiate(F_VERSION_1 | (1ull << 40)));
	ck_assert(mmio_negotiate(F_VERSION_1));
	/* FEATURES_OK then changing features: ignored. */
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES_SEL), 4, 0);
	wr(MMIO(VIRTIO_MMIO_DRIVER_FEATURES), 4, 0xffffffff);
	ck_assert_uint_eq(virtio_device_features(vdev), F_VERSION_1);
	/* Queue size 3: enabling fails with NEEDS_RESET. */
	wr(MMIO(VIRTIO_MMIO_QUEUE_SEL), 4, 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NUM), 4, 3);
	wr(MMIO(VIRTIO_MMIO_QUEUE_READY), 4, 1);
	ck_assert_uint_eq(rd(MMIO(VIRTIO_MMIO_QUEUE_READY), 4), 0);
	ck_assert(rd(MMIO(VIRTIO_MMIO_STATUS), 4) &
		  VIRTIO_CONFIG_S_NEEDS_RESET);
}
END_TEST

START_TEST(test_hostile_mmio_broken_queue_needs_reset)
{
	struct vring_used_elem e;

	rng_create(NULL);
	mmio_attach();
	mmio_probe(F_VERSION_1, 1);
	/* avail.idx far ahead of the queue size. */
	ck_assert_int_eq(virtq_driver_set_avail_idx(drv[0], 1000), 0);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0);
	ck_assert(rd(MMIO(VIRTIO_MMIO_STATUS), 4) &
		  VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(mirq.level);
	ck_assert_uint_eq(mmio_irq_ack(), VIRTIO_MMIO_INT_CONFIG);
	/* Reset recovers. */
	virtq_driver_destroy(drv[0]);
	drv[0] = NULL;
	mmio_probe(F_VERSION_1, 1);
	ck_assert(!virtio_device_needs_reset(vdev));
	add_write_buf(0, BUF_BASE, 8);
	wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
}
END_TEST

START_TEST(test_mmio_cmdline)
{
	char buf[64];

	ck_assert_int_eq(virtio_mmio_cmdline(buf, sizeof(buf), 0x200,
					     0xd0000000, 5),
			 (int)strlen("virtio_mmio.device=0x200@0xd0000000:5"));
	ck_assert_str_eq(buf, "virtio_mmio.device=0x200@0xd0000000:5");
	ck_assert_int_eq(virtio_mmio_cmdline(buf, 10, 0x200, 0xd0000000, 5),
			 -ENOSPC);
	ck_assert_str_eq(buf, "");
	/* Exactly the length: no room for the NUL. */
	ck_assert_int_eq(virtio_mmio_cmdline(buf, 37, 0x200, 0xd0000000, 5),
			 -ENOSPC);
	ck_assert_int_eq(virtio_mmio_cmdline(buf, 38, 0x200, 0xd0000000, 5),
			 37);
	ck_assert_int_eq(virtio_mmio_cmdline(NULL, 0, 0x200, 0, 5), -ENOSPC);
	ck_assert_int_eq(virtio_mmio_cmdline(NULL, 4, 0x200, 0, 5), -EINVAL);
	ck_assert_int_eq(virtio_mmio_cmdline(buf, 4, 0, 0, 5), -EINVAL);
}
END_TEST

/* ========================================================== rng tests */

START_TEST(test_rng_request_capped)
{
	struct vring_used_elem e;
	struct virtq_driver_buf b[3] = {
		{.addr = BUF_BASE,
		 .len = 64 * 1024,
		 .flags = VRING_DESC_F_WRITE},
		{.addr = BUF_BASE + 64 * 1024,
		 .len = 64 * 1024,
		 .flags = VRING_DESC_F_WRITE},
		{.addr = BUF_BASE + 128 * 1024,
		 .len = 8,
		 .flags = VRING_DESC_F_WRITE},
	};

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	ck_assert_int_eq(virtq_driver_add(drv[0], b, 3, NULL), 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, VIRTIO_RNG_MAX_REQUEST_DEFAULT);
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev),
			  VIRTIO_RNG_MAX_REQUEST_DEFAULT);
}
END_TEST

START_TEST(test_rng_config_checks)
{
	struct virtio_rng_config c = {.max_request_bytes = 2u << 20};
	struct virtio_device *d = NULL;

	ck_assert_int_eq(virtio_rng_create(&c, &d), -EINVAL);
	c.max_request_bytes = 0;
	c.queue_max_size = 100;
	ck_assert_int_eq(virtio_rng_create(&c, &d), -EINVAL);
	ck_assert_int_eq(virtio_rng_create(NULL, NULL), -EINVAL);
	c.queue_max_size = 0;
	c.max_request_bytes = 16;
	ck_assert_int_eq(virtio_rng_create(&c, &d), 0);
	ck_assert_uint_eq(virtio_device_id(d), 4);
	virtio_device_destroy(d);
	ck_assert_uint_eq(virtio_rng_bytes_served(NULL), 0);
}
END_TEST

START_TEST(test_rng_rate_limited)
{
	struct virtio_rng_config c = {.rate_bytes_per_sec = 2048,
				      .burst_bytes = 1024};
	struct virtio_poll_fd fds[4];
	struct vring_used_elem e;
	struct pollfd p;
	int n;

	rng_create(&c);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	n = virtio_device_poll_fds(vdev, fds, 4);
	ck_assert_int_eq(n, 2); /* the notifier and the timer */
	add_write_buf(0, BUF_BASE, 4096);
	add_write_buf(0, BUF_BASE + 4096, 4096);
	wr(pci_notify_addr(0), 2, 0);
	/* The first request gets the whole bucket (it asks for more); the
	 * second waits for 1024 tokens, half a second at 2 KiB/s. */
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 1024);
	ck_assert_int_eq(get_used(0, &e), 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 0);
	p.fd = fds[1].fd;
	p.events = (short)fds[1].events;
	ck_assert_int_eq(poll(&p, 1, 10000), 1);
	fds[1].ready(fds[1].opaque, (uint32_t)p.revents);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.len, 1024);
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev), 2048);
}
END_TEST

/* ====================================================== core API tests */

START_TEST(test_core_create_checks)
{
	struct virtio_device_info info = {.device_id = 1, .num_queues = 1};
	uint32_t sizes[2] = {64, 3};
	struct virtio_device *d = NULL;

	ck_assert_int_eq(virtio_device_create(NULL, NULL, NULL, &d), -EINVAL);
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, NULL),
			 -EINVAL);
	info.device_id = 0;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.device_id = 1;
	info.num_queues = 0;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.num_queues = VIRTIO_DEVICE_MAX_QUEUES + 1;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.num_queues = 2;
	info.queue_max_sizes = sizes;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	sizes[1] = 0;
	info.config_size = VIRTIO_DEVICE_MAX_CONFIG + 1;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.config_size = 4;
	info.flags = 0x80;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), -EINVAL);
	info.flags = VIRTIO_DEVICE_NO_EVENT_IDX;
	ck_assert_int_eq(virtio_device_create(&info, NULL, NULL, &d), 0);
	ck_assert_uint_eq(virtq_max_size(virtio_device_queue(d, 0)), 64);
	ck_assert_uint_eq(virtq_max_size(virtio_device_queue(d, 1)), 256);
	ck_assert_ptr_null(virtio_device_queue(d, 2));
	ck_assert_uint_eq(virtio_device_offered_features(d),
			  F_VERSION_1 | F_INDIRECT);
	virtio_device_destroy(d);
	virtio_device_destroy(NULL);
}
END_TEST

/*
 * virtio_device_set_ring_features(), the switch cvmm's --virtio-ring
 * uses: bad bits and a started driver are refused; the offer shows in
 * feature page 1 through the transport; a driver that accepts IN_ORDER
 * when only RING_PACKED is offered fails FEATURES_OK; a device type that
 * knows nothing of layouts (virtio-rng) serves a packed ring through
 * virtio-pci (descriptor ring, driver and device event areas in
 * queue_desc / queue_driver / queue_device), across a ring wrap, then
 * after a reset serves a split ring to a driver that declines it.
 */
START_TEST(test_core_ring_features_switch)
{
	struct vring_used_elem e;
	uint16_t head;

	rng_create(NULL);
	ck_assert_uint_eq(virtio_device_offered_features(vdev) &
				  (F_PACKED | F_IN_ORDER),
			  0);
	ck_assert_int_eq(virtio_device_set_ring_features(NULL, F_PACKED),
			 -EINVAL);
	ck_assert_int_eq(virtio_device_set_ring_features(vdev, F_EVENT_IDX),
			 -EINVAL);
	ck_assert_int_eq(
		virtio_device_set_ring_features(vdev, F_PACKED | (1ull << 36)),
		-EINVAL);
	ck_assert_int_eq(virtio_device_set_ring_features(vdev,
							 F_PACKED | F_IN_ORDER),
			 0);
	ck_assert_int_eq(virtio_device_set_ring_features(vdev, F_PACKED), 0);
	ck_assert_uint_eq(virtio_device_offered_features(vdev) &
				  (F_PACKED | F_IN_ORDER),
			  F_PACKED);
	pci_attach();
	/* Hostile: IN_ORDER accepted but not offered. */
	ck_assert(!pci_negotiate(F_VERSION_1 | F_PACKED | F_IN_ORDER));
	ck_assert_uint_eq(virtio_device_features(vdev), 0);
	/* Once the driver started the offer is fixed. */
	ck_assert_int_eq(virtio_device_set_ring_features(vdev, 0), -EBUSY);
	wr(COMMON(VIRTIO_PCI_COMMON_DFSELECT), 4, 1);
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_DF), 4) & 0xc, 0x4);

	pci_probe(F_VERSION_1 | F_EVENT_IDX | F_PACKED, 1);
	ck_assert_uint_eq(virtq_features(virtio_device_queue(vdev, 0)) &
				  F_PACKED,
			  F_PACKED);
	for (unsigned k = 0; k < 3 * QSIZE / 2; k++) {
		head = add_write_buf(0, BUF_BASE + (k % 8) * 64, 64);
		wr(pci_notify_addr(0), 2, 0);
		ck_assert_int_eq(get_used(0, &e), 1);
		ck_assert_uint_eq(e.id, head);
		ck_assert_uint_eq(e.len, 64);
	}
	ck_assert(!virtio_device_needs_reset(vdev));
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev), 3 * QSIZE / 2 * 64);

	/* Reset: the driver declines RING_PACKED and gets a split ring. */
	virtq_driver_destroy(drv[0]);
	drv[0] = NULL;
	pci_probe(F_VERSION_1, 1);
	ck_assert_uint_eq(
		virtq_features(virtio_device_queue(vdev, 0)) & F_PACKED, 0);
	head = add_write_buf(0, BUF_BASE, 16);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.id, head);
	ck_assert_uint_eq(e.len, 16);
	/* After the reset the offer may change again. */
	wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
	ck_assert_int_eq(virtio_device_set_ring_features(vdev, 0), 0);
}
END_TEST

/*
 * A hostile driver on a packed ring through the transport: a descriptor
 * with a buffer id beyond the queue size breaks the queue; the core sets
 * DEVICE_NEEDS_RESET and raises the config interrupt, the device serves
 * nothing more; the driver's reset clears it and a new packed probe of the
 * same device works.
 */
START_TEST(test_hostile_packed_ring_needs_reset_then_reset)
{
	struct vring_packed_desc d = {0};
	struct vring_used_elem e;
	uint16_t head;

	rng_create(NULL);
	ck_assert_int_eq(virtio_device_set_ring_features(vdev, F_PACKED), 0);
	pci_attach();
	pci_probe(F_VERSION_1 | F_PACKED, 1);
	/* Slot 0 made available in the first lap (AVAIL 1, USED 0) with id
	 * 0xffff, written behind the mock driver's back. */
	d.addr = htole64(BUF_BASE);
	d.len = htole32(16);
	d.id = htole16(0xffff);
	d.flags = htole16((uint16_t)(VRING_DESC_F_WRITE |
				     (1u << VRING_PACKED_DESC_F_AVAIL)));
	ck_assert_int_eq(guest_memory_write(mem, ring_base(0), &d, sizeof(d)),
			 0);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert(virtio_device_needs_reset(vdev));
	ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1) &
				  VIRTIO_CONFIG_S_NEEDS_RESET,
			  VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(msi.last_data, 0x40); /* the config vector */
	ck_assert_uint_eq(virtio_rng_bytes_served(vdev), 0);

	/* Reset and a new packed probe: served again. */
	virtq_driver_destroy(drv[0]);
	drv[0] = NULL;
	ck_assert_int_eq(guest_memory_write(mem, ring_base(0),
					    &(uint8_t[16]){0}, 16),
			 0);
	pci_probe(F_VERSION_1 | F_PACKED, 1);
	ck_assert(!virtio_device_needs_reset(vdev));
	head = add_write_buf(0, BUF_BASE, 16);
	wr(pci_notify_addr(0), 2, 0);
	ck_assert_int_eq(get_used(0, &e), 1);
	ck_assert_uint_eq(e.id, head);
	ck_assert_uint_eq(e.len, 16);
}
END_TEST

static unsigned watcher_calls;

static void watcher(void *opaque, struct virtio_device *d)
{
	(void)d;
	(*(unsigned *)opaque)++;
}

static void dummy_ready(void *opaque, uint32_t revents)
{
	(void)revents;
	(*(unsigned *)opaque)++;
}

START_TEST(test_core_poll_list_changes)
{
	struct virtio_poll_fd fds[8], pfd = {0};
	unsigned id, id2, hits = 0;
	int efd = eventfd(0, EFD_NONBLOCK);

	echo_create();
	watcher_calls = 0;
	virtio_device_set_poll_watcher(vdev, watcher, &watcher_calls);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 8), 3);
	pfd.fd = efd;
	pfd.events = POLLIN;
	pfd.ready = dummy_ready;
	pfd.opaque = &hits;
	ck_assert_int_eq(virtio_device_add_poll_fd(vdev, &pfd, &id), 0);
	ck_assert_uint_eq(watcher_calls, 1);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 8), 4);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 2), 4);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, NULL, 0), 4);
	fds[3].ready(fds[3].opaque, POLLIN);
	ck_assert_uint_eq(hits, 1);
	/* Removed: a stale call is ignored; the slot is reused. */
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 8), 4);
	ck_assert_int_eq(virtio_device_remove_poll_fd(vdev, id), 0);
	ck_assert_uint_eq(watcher_calls, 2);
	fds[3].ready(fds[3].opaque, POLLIN);
	ck_assert_uint_eq(hits, 1);
	ck_assert_int_eq(virtio_device_remove_poll_fd(vdev, id), -ENOENT);
	ck_assert_int_eq(virtio_device_remove_poll_fd(vdev, 0), -EINVAL);
	ck_assert_int_eq(virtio_device_poll_fds(vdev, fds, 8), 3);
	ck_assert_int_eq(virtio_device_add_poll_fd(vdev, &pfd, &id2), 0);
	ck_assert_uint_eq(id2, id);
	/* Added under the lock: the watcher runs at unlock. */
	virtio_device_lock(vdev);
	ck_assert_int_eq(virtio_device_remove_poll_fd(vdev, id2), 0);
	ck_assert_uint_eq(watcher_calls, 3);
	virtio_device_unlock(vdev);
	ck_assert_uint_eq(watcher_calls, 4);
	pfd.fd = -1;
	ck_assert_int_eq(virtio_device_add_poll_fd(vdev, &pfd, NULL), -EINVAL);
	close(efd);
}
END_TEST

START_TEST(test_core_destroy_calls_destroy_op)
{
	echo_create();
	virtio_device_destroy(vdev);
	vdev = NULL;
	ck_assert_uint_eq(echo_state.destroyed, 1);
	ck_assert_uint_eq(echo_state.resets, 1);
}
END_TEST

START_TEST(test_core_one_transport)
{
	struct virtio_mmio *m2 = NULL;
	struct virtio_pci *p2 = NULL;

	rng_create(NULL);
	mmio_attach();
	ck_assert_int_eq(virtio_mmio_create(vdev, NULL, &m2), -EBUSY);
	ck_assert_int_eq(virtio_pci_create(vdev, NULL, &p2), -EBUSY);
	ck_assert_int_eq(virtio_pci_create(NULL, NULL, &p2), -EINVAL);
}
END_TEST

/* A device type's features_ok op may refuse a combination; its activate
 * op failing puts the device into NEEDS_RESET. */
static int picky_features_ok(void *opaque, uint64_t f)
{
	(void)opaque;
	return (f & (1ull << 1)) && !(f & (1ull << 0)) ? -EINVAL : 0;
}

static int picky_activate(void *opaque)
{
	return *(int *)opaque;
}

static const struct virtio_device_ops picky_ops = {
	.features_ok = picky_features_ok,
	.activate = picky_activate,
};

START_TEST(test_core_features_ok_and_activate_ops)
{
	struct virtio_device_info info = {
		.device_id = 9, .num_queues = 1, .features = 3};
	int activate_ret = 0;

	ck_assert_int_eq(virtio_device_create(&info, &picky_ops, &activate_ret,
					      &vdev),
			 0);
	mmio_attach();
	ck_assert(!mmio_negotiate(F_VERSION_1 | 2));
	ck_assert(mmio_negotiate(F_VERSION_1 | 3));
	ck_assert_uint_eq(virtio_device_features(vdev), F_VERSION_1 | 3);
	/* activate fails: NEEDS_RESET and a config interrupt. */
	activate_ret = -EIO;
	ck_assert(mmio_negotiate(F_VERSION_1));
	ck_assert_uint_eq(mmio_setup_queue(0, QSIZE, F_VERSION_1), 1);
	wr(MMIO(VIRTIO_MMIO_STATUS), 4,
	   rd(MMIO(VIRTIO_MMIO_STATUS), 4) | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(rd(MMIO(VIRTIO_MMIO_STATUS), 4) &
		  VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(mmio_irq_ack(), VIRTIO_MMIO_INT_CONFIG);
}
END_TEST

/* New guest memory without the rings' region: the queue breaks, the
 * device asks for a reset. */
START_TEST(test_core_memory_change_breaks_queue)
{
	struct guest_region_params p = {0};
	struct guest_region *hi = NULL;
	struct guest_memory *m2 = NULL;

	rng_create(NULL);
	pci_attach();
	pci_probe(F_VERSION_1, 1);
	/* NULL memory with a queue enabled is refused. */
	ck_assert_int_eq(virtio_device_set_memory(vdev, NULL), -EINVAL);
	p.gpa = 1ull << 32;
	p.size = 1 << 20;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	ck_assert_int_eq(guest_region_create(&p, &hi), 0);
	ck_assert_int_eq(guest_memory_create(&hi, 1, &m2), 0);
	ck_assert_int_eq(virtio_device_set_memory(vdev, m2), 0);
	ck_assert(virtio_device_needs_reset(vdev));
	ck_assert_uint_eq(msi.count, 1);
	ck_assert_int_eq(virtio_device_set_memory(vdev, mem), 0);
	guest_memory_unref(m2);
	guest_region_unref(hi);
}
END_TEST

/* ==================================================== threaded test */

/*
 * An I/O thread polls the queue notifier and the device's fds and calls
 * their ready functions (as a VMM's epoll thread would) while a "vCPU"
 * thread hammers the config space, config_msix_vector and status reads
 * through the bus and a driver thread adds chains and kicks through the
 * eventfd.  Every chain must come back exactly once; bounded run time.
 */
#define THREAD_CHAINS 5000

static atomic_bool stop_threads;

static void *io_thread(void *arg)
{
	struct virtio_poll_fd fds[8];
	struct pollfd p[8];
	int n = virtio_device_poll_fds(vdev, fds, 8);

	(void)arg;
	for (int i = 0; i < n; i++) {
		p[i].fd = fds[i].fd;
		p[i].events = (short)fds[i].events;
	}
	while (!atomic_load(&stop_threads)) {
		int r = poll(p, (nfds_t)n, 10);

		for (int i = 0; r > 0 && i < n; i++)
			if (p[i].revents)
				fds[i].ready(fds[i].opaque,
					     (uint32_t)p[i].revents);
	}
	return NULL;
}

static void *vcpu_thread(void *arg)
{
	unsigned long iters = 0;

	(void)arg;
	while (!atomic_load(&stop_threads)) {
		uint32_t v = (uint32_t)iters;

		wr(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET + 4, 4, v);
		(void)rd(BAR_ADDR + VIRTIO_PCI_DEVICE_OFFSET, 4);
		(void)rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1);
		(void)rd(COMMON(VIRTIO_PCI_COMMON_CFGGENERATION), 1);
		wr(COMMON(VIRTIO_PCI_COMMON_MSIX), 2, 0);
		virtio_device_lock(vdev);
		virtio_device_config_set(vdev, 0, &v, 4, false);
		virtio_device_unlock(vdev);
		iters++;
	}
	return (void *)iters;
}

START_TEST(test_threaded_notifier_vs_config_writes)
{
	pthread_t io, vcpu;
	struct vring_used_elem e;
	unsigned done = 0, sent = 0;
	struct timespec t0, t1;
	void *iters;

	echo_create();
	pci_attach();
	pci_probe(F_VERSION_1 | F_EVENT_IDX, 2);
	atomic_store(&stop_threads, false);
	ck_assert_int_eq(pthread_create(&io, NULL, io_thread, NULL), 0);
	ck_assert_int_eq(pthread_create(&vcpu, NULL, vcpu_thread, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < THREAD_CHAINS) {
		struct virtq_driver_buf b[2] = {
			{.addr = BUF_BASE + (sent % QSIZE) * 64, .len = 8},
			{.addr = BUF_BASE + 0x10000 + (sent % QSIZE) * 64,
			 .len = 8,
			 .flags = VRING_DESC_F_WRITE},
		};
		int r;

		if (sent < THREAD_CHAINS &&
		    virtq_driver_num_free(drv[0]) >= 2) {
			ck_assert_int_eq(virtq_driver_add(drv[0], b, 2, NULL),
					 0);
			sent++;
			if (virtq_driver_needs_kick(drv[0]))
				event_notifier_signal(
					virtio_device_queue_notifier(vdev, 0));
		}
		while ((r = get_used(0, &e)) == 1) {
			ck_assert_uint_eq(e.len, 8);
			done++;
		}
		ck_assert_int_eq(r, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 60);
		if (sent == THREAD_CHAINS || virtq_driver_num_free(drv[0]) < 2)
			event_notifier_signal(
				virtio_device_queue_notifier(vdev, 0));
	}
	atomic_store(&stop_threads, true);
	pthread_join(io, NULL);
	pthread_join(vcpu, &iters);
	ck_assert_uint_eq(done, THREAD_CHAINS);
	ck_assert(!virtio_device_needs_reset(vdev));
	ck_assert_uint_gt((unsigned long)iters, 0);
}
END_TEST

static void *vcpu_thread_mmio(void *arg)
{
	unsigned long iters = 0;

	(void)arg;
	while (!atomic_load(&stop_threads)) {
		uint32_t v = (uint32_t)iters;

		wr(MMIO(VIRTIO_MMIO_CONFIG + 4), 4, v);
		(void)rd(MMIO(VIRTIO_MMIO_CONFIG), 4);
		(void)rd(MMIO(VIRTIO_MMIO_STATUS), 4);
		(void)rd(MMIO(VIRTIO_MMIO_CONFIG_GENERATION), 4);
		wr(MMIO(VIRTIO_MMIO_INTERRUPT_ACK), 4,
		   (uint32_t)rd(MMIO(VIRTIO_MMIO_INTERRUPT_STATUS), 4));
		virtio_device_lock(vdev);
		virtio_device_config_set(vdev, 0, &v, 4, true);
		virtio_device_unlock(vdev);
		iters++;
	}
	return (void *)iters;
}

/* The same over virtio-mmio, with config interrupts raised and acked by
 * the vCPU thread while the I/O thread raises queue interrupts. */
START_TEST(test_threaded_mmio_notifier_vs_config_writes)
{
	pthread_t io, vcpu;
	struct vring_used_elem e;
	unsigned done = 0, sent = 0;
	struct timespec t0, t1;
	void *iters;

	echo_create();
	mmio_attach();
	mmio_probe(F_VERSION_1 | F_EVENT_IDX, 2);
	atomic_store(&stop_threads, false);
	ck_assert_int_eq(pthread_create(&io, NULL, io_thread, NULL), 0);
	ck_assert_int_eq(pthread_create(&vcpu, NULL, vcpu_thread_mmio, NULL),
			 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < THREAD_CHAINS) {
		struct virtq_driver_buf b[2] = {
			{.addr = BUF_BASE + (sent % QSIZE) * 64, .len = 8},
			{.addr = BUF_BASE + 0x10000 + (sent % QSIZE) * 64,
			 .len = 8,
			 .flags = VRING_DESC_F_WRITE},
		};
		int r;

		if (sent < THREAD_CHAINS &&
		    virtq_driver_num_free(drv[0]) >= 2) {
			ck_assert_int_eq(virtq_driver_add(drv[0], b, 2, NULL),
					 0);
			sent++;
			if (virtq_driver_needs_kick(drv[0]))
				wr(MMIO(VIRTIO_MMIO_QUEUE_NOTIFY), 4, 0);
		}
		while ((r = get_used(0, &e)) == 1) {
			ck_assert_uint_eq(e.len, 8);
			done++;
		}
		ck_assert_int_eq(r, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 60);
		if (sent == THREAD_CHAINS || virtq_driver_num_free(drv[0]) < 2)
			event_notifier_signal(
				virtio_device_queue_notifier(vdev, 0));
	}
	atomic_store(&stop_threads, true);
	pthread_join(io, NULL);
	pthread_join(vcpu, &iters);
	ck_assert_uint_eq(done, THREAD_CHAINS);
	ck_assert(!virtio_device_needs_reset(vdev));
	ck_assert_uint_gt((unsigned long)iters, 0);
}
END_TEST

/* Reset racing an I/O thread that completes in-flight chains: once the
 * driver has read status 0, used.idx never moves again. */
static void *completer_thread(void *arg)
{
	struct virtio_poll_fd fds[8];
	int n = virtio_device_poll_fds(vdev, fds, 8);

	(void)arg;
	while (!atomic_load(&stop_threads)) {
		eventfd_write(echo_state.efd, 1);
		fds[n - 1].ready(fds[n - 1].opaque, POLLIN);
		fds[1].ready(fds[1].opaque, POLLIN); /* queue 1 notifier */
	}
	return NULL;
}

START_TEST(test_threaded_reset_vs_completions)
{
	pthread_t t;

	echo_create();
	pci_attach();
	for (int round = 0; round < 50; round++) {
		uint16_t idx;

		pci_probe(F_VERSION_1, 2);
		atomic_store(&stop_threads, false);
		ck_assert_int_eq(
			pthread_create(&t, NULL, completer_thread, NULL), 0);
		for (int i = 0; i < 8; i++) {
			add_write_buf(1, BUF_BASE + (unsigned)i * 16, 16);
			event_notifier_signal(
				virtio_device_queue_notifier(vdev, 1));
		}
		wr(COMMON(VIRTIO_PCI_COMMON_STATUS), 1, 0);
		ck_assert_uint_eq(rd(COMMON(VIRTIO_PCI_COMMON_STATUS), 1), 0);
		idx = virtq_driver_used_idx(drv[1]);
		for (int i = 0; i < 50; i++)
			sched_yield();
		ck_assert_uint_eq(virtq_driver_used_idx(drv[1]), idx);
		atomic_store(&stop_threads, true);
		pthread_join(t, NULL);
		ck_assert_uint_eq(virtq_driver_used_idx(drv[1]), idx);
		virtq_driver_destroy(drv[0]);
		virtq_driver_destroy(drv[1]);
		drv[0] = drv[1] = NULL;
	}
}
END_TEST

static Suite *virtio_suite(void)
{
	Suite *s = suite_create("virtio");
	TCase *tc = tcase_create("pci");
	TCase *th;

	tcase_add_checked_fixture(tc, mem_setup, teardown);
	tcase_add_test(tc, test_pci_identity_and_caps);
	tcase_add_test(tc, test_pci_rng_probe_kick_msix);
	tcase_add_test(tc, test_pci_notify_via_eventfd_poll_list);
	tcase_add_test(tc, test_pci_intx_isr_read_clears);
	tcase_add_test(tc, test_pci_msix_no_vector_honoured);
	tcase_add_test(tc, test_hostile_pci_msix_vector_out_of_range);
	tcase_add_test(tc, test_hostile_pci_queue_select_out_of_range);
	tcase_add_test(tc, test_hostile_pci_wrong_access_sizes);
	tcase_add_test(tc, test_hostile_pci_feature_not_offered);
	tcase_add_test(tc, test_hostile_pci_features_changed_after_features_ok);
	tcase_add_test(tc, test_hostile_pci_queue_size_not_power_of_two);
	tcase_add_test(tc, test_hostile_pci_broken_queue_needs_reset);
	tcase_add_test(tc, test_hostile_pci_config_past_end);
	tcase_add_test(tc, test_pci_config_generation_and_interrupt);
	tcase_add_test(tc, test_pci_cfg_access_window);
	tcase_add_test(tc, test_reset_drains_before_status_zero);
	tcase_add_test(tc, test_async_completion_from_poll_fd);
	tcase_add_loop_test(tc, test_pci_echo_indirect, 0, 2);
	tcase_add_test(tc, test_hostile_pci_buffer_on_own_bar);
	tcase_add_test(tc, test_pci_failed_status_stops_processing);
	tcase_add_test(tc, test_pci_notify_remap_follows_bar);
	tcase_add_test(tc, test_hostile_pci_queue_fields_readonly_when_enabled);
	suite_add_tcase(s, tc);

	tc = tcase_create("mmio");
	tcase_add_checked_fixture(tc, mem_setup, teardown);
	tcase_add_test(tc, test_mmio_rng_probe_kick_irq);
	tcase_add_loop_test(tc, test_mmio_echo_two_queues_and_config, 0, 2);
	tcase_add_test(tc, test_hostile_mmio_registers);
	tcase_add_test(tc, test_hostile_mmio_queue_size_and_features);
	tcase_add_test(tc, test_hostile_mmio_broken_queue_needs_reset);
	tcase_add_test(tc, test_mmio_cmdline);
	suite_add_tcase(s, tc);

	tc = tcase_create("rng");
	tcase_add_checked_fixture(tc, mem_setup, teardown);
	tcase_add_test(tc, test_rng_request_capped);
	tcase_add_test(tc, test_rng_config_checks);
	tcase_add_test(tc, test_rng_rate_limited);
	suite_add_tcase(s, tc);

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, mem_setup, teardown);
	tcase_add_test(tc, test_core_create_checks);
	tcase_add_test(tc, test_core_poll_list_changes);
	tcase_add_test(tc, test_core_destroy_calls_destroy_op);
	tcase_add_test(tc, test_core_one_transport);
	tcase_add_test(tc, test_core_features_ok_and_activate_ops);
	tcase_add_test(tc, test_core_memory_change_breaks_queue);
	tcase_add_test(tc, test_core_ring_features_switch);
	tcase_add_test(tc, test_hostile_packed_ring_needs_reset_then_reset);
	suite_add_tcase(s, tc);

	th = tcase_create("threads");
	tcase_add_checked_fixture(th, mem_setup, teardown);
	tcase_set_timeout(th, 120);
	tcase_add_test(th, test_threaded_notifier_vs_config_writes);
	tcase_add_test(th, test_threaded_mmio_notifier_vs_config_writes);
	tcase_add_test(th, test_threaded_reset_vs_completions);
	suite_add_tcase(s, th);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(virtio_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
