/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Cost of one virtio-pci notify -> process -> MSI-X delivery round trip,
 * beside a baseline measured in the same run.
 *
 * Each iteration the mock driver makes one one-descriptor chain available,
 * then:
 *   - virtio-pci: writes the queue index at the queue's notify address
 *     through io_bus_write() (the path of an MMIO exit), which runs the PCI
 *     BAR dispatch, the common-config / notify decode, the device lock,
 *     the device's queue_notify (a null device: pop, complete with 0 bytes,
 *     virtio_device_queue_used()), and after unlock the MSI-X delivery
 *     through pci_device_msix_notify() to a counting msi_sink;
 *   - baseline: calls a function that does virtq_pop + virtq_complete +
 *     virtq_needs_interrupt on a plain virtq and then the msi_sink
 *     directly;
 * and then takes the used element back.  Both include the driver's side.
 * The rng line is the same round trip with virtio-rng filling 16 bytes
 * from getrandom(2).  The irqfd line is the virtio-pci round trip with the
 * vector delivered through its per-vector event notifier (an eventfd
 * write, what a VMM registers as an irqfd) instead of the msi_sink call;
 * the eventfd's count is checked at the end.
 */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/pci.h>
#include <cvmm/devices/virtio-pci.h>
#include <cvmm/devices/virtio-rng.h>
#include <cvmm/devices/virtio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include <linux/virtio_pci.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAR   0xc0000000ull
#define QSIZE 256u
#define ITERS 200000u
#define RINGS 0x10000ull
#define BUF   0x100000ull

static unsigned long msi_count;

static int count_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	(void)addr;
	(void)data;
	msi_count++;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-virtio: %s failed (%d)\n", what, err);
	exit(1);
}

#define CHECK(call)                     \
	do {                            \
		int r_ = (call);        \
		if (r_ < 0)             \
			die(#call, r_); \
	} while (0)

/* ------------------------------------------------------ a null device */

struct null_dev {
	struct virtio_device *dev;
	struct virtq_buf bufs[QSIZE];
	struct virtq_chain chain;
};

static void null_notify(void *opaque, uint16_t q)
{
	struct null_dev *n = opaque;
	struct virtq *vq = virtio_device_queue(n->dev, q);

	for (unsigned i = 0; i < QSIZE;) {
		int r = virtq_pop(vq, &n->chain);

		if (r == 0 && virtq_enable_notification(vq))
			continue;
		if (r != 1)
			break;
		virtq_complete(vq, &n->chain);
		i++;
	}
	virtio_device_queue_used(n->dev, q);
}

static const struct virtio_device_ops null_ops = {
	.queue_notify = null_notify,
};

/* ------------------------------------------------------ the fixture */

static struct guest_memory *mem;

static void wr(struct io_bus *bus, uint64_t a, unsigned size, uint32_t v)
{
	CHECK(io_bus_write(bus, a, &v, size));
}

static uint32_t rd(struct io_bus *bus, uint64_t a, unsigned size)
{
	uint32_t v = 0;

	CHECK(io_bus_read(bus, a, &v, size));
	return v;
}

struct rig {
	struct io_bus *bus;
	struct pci_root *root;
	struct virtio_pci *vp;
	struct virtq_driver *drv;
	uint64_t notify;
	struct event_notifier *vec[2]; /* irqfd rig: per-vector notifiers */
};

static int route_ok(void *opaque, uint16_t vector, uint64_t addr, uint32_t data,
		    bool masked)
{
	(void)opaque;
	(void)vector;
	(void)addr;
	(void)data;
	(void)masked;
	return 0;
}

static void rig_up(struct rig *g, struct virtio_device *vdev, bool irqfd)
{
	struct pci_root_config rc = {0};
	struct virtio_pci_config pc = {0};
	struct pci_device *pd;
	guest_addr_t d, a, u;
	int cap;

	CHECK(io_bus_create(&g->bus));
	CHECK(virtio_device_set_memory(vdev, mem));
	pc.msi.send = count_msi;
	if (irqfd)
		pc.msix_update = route_ok;
	CHECK(virtio_pci_create(vdev, &pc, &g->vp));
	for (unsigned v = 0; irqfd && v < 2; v++) {
		CHECK(event_notifier_create(0, &g->vec[v]));
		CHECK(virtio_pci_set_vector_notifier(g->vp, (uint16_t)v,
						     g->vec[v]));
	}
	pd = virtio_pci_pci_device(g->vp);
	CHECK(pci_device_set_bar_address(pd, VIRTIO_PCI_BAR, BAR));
	rc.mmio_bus = g->bus;
	CHECK(pci_root_create(&rc, &g->root));
	CHECK(virtio_pci_add_to_root(g->vp, g->root, 1, 0));
	CHECK(pci_device_config_write(pd, PCI_COMMAND, 2,
				      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	cap = pci_device_find_capability(pd, PCI_CAP_ID_MSIX);
	CHECK(cap);
	for (unsigned v = 0; v < 2; v++) {
		uint64_t e = BAR + VIRTIO_PCI_MSIX_OFFSET + 16ull * v;

		wr(g->bus, e, 4, 0xfee00000u);
		wr(g->bus, e + 4, 4, 0);
		wr(g->bus, e + 8, 4, 0x30 + v);
		wr(g->bus, e + 12, 4, 0);
	}
	CHECK(pci_device_config_write(pd, (uint32_t)cap + PCI_MSIX_FLAGS, 2,
				      PCI_MSIX_FLAGS_ENABLE));
	/* Linux's probe, VERSION_1 only (every completion interrupts). */
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 3);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_GF, 4, 1);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0xb);
	virtq_driver_layout(QSIZE, RINGS, &d, &a, &u);
	CHECK(virtq_driver_create(mem, QSIZE, 1ull << 32, d, a, u, &g->drv));
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_MSIX, 2, 0);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)d);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)a);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)u);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	wr(g->bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
	if (rd(g->bus, BAR + VIRTIO_PCI_COMMON_STATUS, 1) != 0xf)
		die("probe", -1);
	CHECK(virtio_pci_queue_notify_addr(g->vp, 0, &g->notify));
}

static void rig_down(struct rig *g, struct virtio_device *vdev)
{
	pci_root_destroy(g->root);
	virtio_pci_destroy(g->vp);
	virtio_device_destroy(vdev);
	virtq_driver_destroy(g->drv);
	io_bus_destroy(g->bus);
	event_notifier_destroy(g->vec[0]);
	event_notifier_destroy(g->vec[1]);
}

static double round_trip_ns(struct rig *g, uint32_t len, unsigned iters)
{
	struct virtq_driver_buf b = {
		.addr = BUF, .len = len, .flags = VRING_DESC_F_WRITE};
	struct vring_used_elem e;
	unsigned long before = msi_count;
	uint16_t idx = 0;
	double t0;

	if (g->vec[1])
		(void)event_notifier_consume(g->vec[1]);
	t0 = now();

	for (unsigned i = 0; i < iters; i++) {
		CHECK(virtq_driver_add(g->drv, &b, 1, NULL));
		CHECK(io_bus_write(g->bus, g->notify, &idx, 2));
		if (virtq_driver_get_used(g->drv, &e) != 1)
			die("round trip: no used element", -1);
	}
	t0 = (now() - t0) * 1e9 / iters;
	if (g->vec[1]) {
		int n = event_notifier_consume(g->vec[1]);

		if (n != (int)iters || msi_count != before)
			die("round trip: irqfd count", n);
		return t0;
	}
	if (msi_count - before != iters)
		die("round trip: MSI count", (int)(msi_count - before));
	return t0;
}

/* ------------------------------------------------------ the baseline */

struct raw {
	struct virtq *vq;
	struct virtq_chain chain;
	struct virtq_buf bufs[QSIZE];
	struct msi_sink sink;
};

static __attribute__((noinline)) void raw_process(struct raw *r)
{
	while (virtq_pop(r->vq, &r->chain) == 1)
		virtq_complete(r->vq, &r->chain);
	if (virtq_needs_interrupt(r->vq))
		r->sink.send(r->sink.opaque, 0xfee00000u, 0x31);
}

static double baseline_ns(unsigned iters)
{
	struct virtq_driver_buf b = {
		.addr = BUF, .len = 8, .flags = VRING_DESC_F_WRITE};
	struct virtq_driver *drv;
	struct vring_used_elem e;
	struct raw r;
	guest_addr_t d, a, u;
	unsigned long before = msi_count;
	double t0;

	memset(&r, 0, sizeof(r));
	virtq_chain_init(&r.chain, r.bufs, QSIZE);
	r.sink.send = count_msi;
	virtq_driver_layout(QSIZE, RINGS + 0x8000, &d, &a, &u);
	CHECK(virtq_driver_create(mem, QSIZE, 1ull << 32, d, a, u, &drv));
	CHECK(virtq_create(QSIZE, &r.vq));
	CHECK(virtq_set_memory(r.vq, mem));
	CHECK(virtq_driver_configure(drv, r.vq));
	t0 = now();
	for (unsigned i = 0; i < iters; i++) {
		CHECK(virtq_driver_add(drv, &b, 1, NULL));
		raw_process(&r);
		if (virtq_driver_get_used(drv, &e) != 1)
			die("baseline: no used element", -1);
	}
	t0 = (now() - t0) * 1e9 / iters;
	if (msi_count - before != iters)
		die("baseline: MSI count", -1);
	virtq_destroy(r.vq);
	virtq_driver_destroy(drv);
	return t0;
}

int main(void)
{
	struct guest_region_params p = {0};
	struct guest_region *region;
	struct virtio_device_info info = {
		.device_id = 0x7e, .num_queues = 1, .queue_max_size = QSIZE};
	struct null_dev nd;
	struct virtio_device *vdev;
	struct rig g;
	double pci, base, rng, efd;

	p.size = 4u << 20;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	CHECK(guest_region_create(&p, &region));
	CHECK(guest_memory_create(&region, 1, &mem));

	memset(&nd, 0, sizeof(nd));
	virtq_chain_init(&nd.chain, nd.bufs, QSIZE);
	CHECK(virtio_device_create(&info, &null_ops, &nd, &vdev));
	nd.dev = vdev;
	memset(&g, 0, sizeof(g));
	rig_up(&g, vdev, false);
	(void)round_trip_ns(&g, 8, ITERS / 10); /* warm up */
	(void)baseline_ns(ITERS / 10);
	pci = round_trip_ns(&g, 8, ITERS);
	base = baseline_ns(ITERS);
	rig_down(&g, vdev);

	memset(&nd, 0, sizeof(nd));
	virtq_chain_init(&nd.chain, nd.bufs, QSIZE);
	CHECK(virtio_device_create(&info, &null_ops, &nd, &vdev));
	nd.dev = vdev;
	memset(&g, 0, sizeof(g));
	rig_up(&g, vdev, true);
	(void)round_trip_ns(&g, 8, ITERS / 10);
	efd = round_trip_ns(&g, 8, ITERS);
	rig_down(&g, vdev);

	CHECK(virtio_rng_create(NULL, &vdev));
	memset(&g, 0, sizeof(g));
	rig_up(&g, vdev, false);
	(void)round_trip_ns(&g, 16, ITERS / 10);
	rng = round_trip_ns(&g, 16, ITERS);
	rig_down(&g, vdev);

	printf("virtio-pci notify -> process -> MSI-X round trip (null "
	       "device): "
	       "%.1f ns\n",
	       pci);
	printf("baseline: virtq pop + complete + direct msi_sink call:         "
	       "%.1f ns\n",
	       base);
	printf("ratio: %.2fx (transport + core overhead %.1f ns)\n", pci / base,
	       pci - base);
	printf("same round trip, vector through its eventfd (irqfd path):      "
	       "%.1f ns (%+.1f ns against the sink)\n",
	       efd, efd - pci);
	printf("virtio-rng round trip (16 bytes from getrandom):               "
	       "%.1f ns\n",
	       rng);
	guest_memory_unref(mem);
	guest_region_unref(region);
	return 0;
}
